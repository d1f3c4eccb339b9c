"""The ONNX default-domain ops, declared once each from onnx's own schemas.

Attribute kinds, defaults and arity come from ``onnx.defs`` (latest opset:
importers normalise older opsets to it).  Traits come from the tables below.
Type inference reuses ``onnx.shape_inference.infer_node_outputs``; reference
kernels reuse ``onnx.reference`` unless Ember has its own in ``kernels.py``;
control flow lives in ``control.py``.
"""

from __future__ import annotations

from dataclasses import replace

from onnx import defs, helper

from .. import onnx_bridge as bridge
from .infer_onnx import onnx_infer, split_domain
from .kernels import KERNELS
from .reference_onnx import onnx_reference
from .registry import REQUIRED, AttrSpec, FlopContext, Fusion, OpDef, Trait, register_op

UNARY_ELEMENTWISE = {
    "Abs", "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "BitwiseNot", "Cast", "CastLike", "Ceil", "Celu",
    "Cos", "Cosh", "Elu", "Erf", "Exp", "Floor", "Gelu", "HardSigmoid", "HardSwish", "Identity", "IsInf",
    "IsNaN", "LeakyRelu", "Log", "Mish", "Neg", "Not", "Reciprocal", "Relu", "Round", "Selu", "Sigmoid",
    "Sign", "Sin", "Sinh", "Softplus", "Softsign", "Sqrt", "Tan", "Tanh", "ThresholdedRelu", "Shrink",
    "Clip", "DequantizeLinear", "QuantizeLinear", "Swish",
}
BINARY_ELEMENTWISE = {
    "Add", "Sub", "Mul", "Div", "Pow", "Mod", "And", "Or", "Xor", "Equal", "Greater", "GreaterOrEqual",
    "Less", "LessOrEqual", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "PRelu", "Max", "Min",
    "Sum", "Mean", "Where",
}
COMMUTATIVE = {"Add", "Mul", "And", "Or", "Xor", "Equal", "BitwiseAnd", "BitwiseOr", "BitwiseXor",
               "Max", "Min", "Sum", "Mean"}
REDUCTION = {"ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
             "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare", "ArgMax", "ArgMin"}
SHAPE_ONLY = {"Shape", "Size"}
LAYOUT_SENSITIVE = {
    "Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "DeformConv", "MaxPool", "AveragePool",
    "LpPool", "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", "BatchNormalization",
    "InstanceNormalization", "GroupNormalization", "LRN", "DepthToSpace", "SpaceToDepth", "MaxUnpool",
    "RoiAlign", "MaxRoiPool", "GridSample", "Col2Im", "Resize", "Upsample", "AffineGrid", "LpNormalization",
}
RANDOM = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli"}
SEQUENCE = {"SequenceAt", "SequenceConstruct", "SequenceEmpty", "SequenceErase", "SequenceInsert",
            "SequenceLength", "SequenceMap", "SplitToSequence", "ConcatFromSequence", "Optional",
            "OptionalGetElement", "OptionalHasElement"}
CONTROL_FLOW = {"If", "Loop", "Scan", "SequenceMap"}

# Facts codegen and passes ask for (see OpDef): views, speculation safety, cheap folds, fusion kinds.
VIEW = {"Flatten", "Identity", "Reshape", "Squeeze", "Unsqueeze"}
MAY_TRAP = {  # fail or index out of bounds on some run-time operand values (integer Div/Mod by zero)
    "Gather", "GatherElements", "GatherND", "Scatter", "ScatterElements", "ScatterND", "OneHot",
    "Reshape", "Expand", "Tile", "Range", "ConstantOfShape", "Pad", "Resize", "Upsample", "TopK",
    "Compress", "NonZero", "Slice", "Split", "Squeeze", "Unsqueeze", "CumSum", "ReduceSum", "Div", "Mod",
}
CHEAP_FOLD = {"ConstantOfShape", "Cast", "Transpose", "Unsqueeze", "Squeeze", "Reshape", "Expand",
              "Identity", "Concat", "Slice", "Gather"}
ANCHOR = {"Conv", "MatMul", "Gemm"}
ELEMENTWISE_FUSABLE = (UNARY_ELEMENTWISE | BINARY_ELEMENTWISE | {"BitCast", "BatchNormalization",
                                                                  "ai.onnx.ml.Binarizer"}) - {
    "DequantizeLinear", "QuantizeLinear", "Shrink", "Swish", "Celu"}
INJECTIVE = {
    "AffineGrid", "BlackmanWindow", "CenterCropPad", "Concat", "ConstantOfShape", "CumProd", "CumSum",
    "DepthToSpace", "DequantizeLinear", "Dropout", "Expand", "EyeLike", "Gather", "GatherElements", "GatherND",
    "GridSample", "HammingWindow", "HannWindow", "MelWeightMatrix", "OneHot", "Pad", "QuantizeLinear", "Range",
    "Resize", "ReverseSequence", "Scatter", "ScatterElements", "ScatterND", "Slice", "SpaceToDepth", "Split",
    "TensorScatter", "Tile", "Transpose", "Trilu", "Upsample", "ai.onnx.ml.ArrayFeatureExtractor",
} | VIEW
REDUCTION_FUSION = REDUCTION | {"Hardmax", "InstanceNormalization", "LRN", "LayerNormalization", "LogSoftmax",
                                "LpNormalization", "RMSNormalization", "Softmax", "GlobalAveragePool",
                                "GlobalMaxPool"}


def fusion_of(name: str) -> Fusion:
    if name in ANCHOR:
        return Fusion.ANCHOR
    if name in ELEMENTWISE_FUSABLE:
        return Fusion.ELEMENTWISE
    if name in INJECTIVE:
        return Fusion.INJECTIVE
    if name in REDUCTION_FUSION:
        return Fusion.REDUCTION
    return Fusion.OPAQUE


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _conv_flops(ctx: FlopContext) -> int:
    """2 x output elements x (input channels per group x kernel size)."""
    w = ctx.in_shapes[1]
    if w is None:
        return _numel(ctx.out_shapes[0])
    return 2 * _numel(ctx.out_shapes[0]) * _numel(w[1:])


def _conv_transpose_flops(ctx: FlopContext) -> int:
    """2 x input elements x (output channels per group x kernel size)."""
    x, w = ctx.in_shapes[0], ctx.in_shapes[1]
    if x is None or w is None:
        return _numel(ctx.out_shapes[0])
    return 2 * _numel(x) * _numel(w[1:])


def _matmul_flops(ctx: FlopContext) -> int:
    a = ctx.in_shapes[0]
    k = a[-1] if len(a) else 1
    return 2 * _numel(ctx.out_shapes[0]) * int(k)


def _gemm_flops(ctx: FlopContext) -> int:
    a = ctx.in_shapes[0]
    k = a[0] if ctx.attr("transA") else a[-1]
    return 2 * _numel(ctx.out_shapes[0]) * int(k)


FLOPS = {"Conv": _conv_flops, "ConvTranspose": _conv_transpose_flops, "MatMul": _matmul_flops,
         "Gemm": _gemm_flops}

_MAX = 2**31 - 1


def traits_of(name: str) -> frozenset[Trait]:
    traits = set()
    if name not in RANDOM:
        traits.add(Trait.PURE)
    tables = [(UNARY_ELEMENTWISE | BINARY_ELEMENTWISE, Trait.ELEMENTWISE), (COMMUTATIVE, Trait.COMMUTATIVE),
              (REDUCTION, Trait.REDUCTION), (SHAPE_ONLY, Trait.SHAPE_ONLY), (RANDOM, Trait.RANDOM),
              (LAYOUT_SENSITIVE, Trait.LAYOUT_SENSITIVE), (SEQUENCE, Trait.SEQUENCE),
              (CONTROL_FLOW, Trait.CONTROL_FLOW)]
    for names, trait in tables:
        if name in names:
            traits.add(trait)
    return frozenset(traits)


def _attr_specs(schema) -> dict[str, AttrSpec]:
    specs = {}
    for name, attr in schema.attributes.items():
        kind = bridge.attr_kind(attr.type)
        if attr.required:
            default = REQUIRED
        elif attr.default_value is not None and attr.default_value.type != 0:
            default = bridge.attr_value_from_proto(attr.default_value)
        else:
            default = None
        specs[name] = AttrSpec(name, kind, default)
    return specs


# Other onnx domains whose ops Ember declares, named "<domain>.<op>" (e.g. "ai.onnx.ml.LabelEncoder").
EXTRA_DOMAINS = ("ai.onnx.ml", "ai.onnx.preview.training")
# Ops no kernel can run one node at a time (Gradient differentiates the graph around it).
UNDECLARED = {("ai.onnx.preview.training", "Gradient")}


def _declare(schema) -> OpDef:
    name = f"{schema.domain}.{schema.name}" if schema.domain else schema.name
    kernel = KERNELS.get(name)
    return OpDef(
        name=name,
        attrs=_attr_specs(schema),
        traits=traits_of(name),
        inputs=(schema.min_input, None if schema.max_input >= _MAX else schema.max_input),
        outputs=(schema.min_output, None if schema.max_output >= _MAX else schema.max_output),
        infer=onnx_infer,
        reference=kernel if kernel is not None else onnx_reference,
        flops=FLOPS.get(name),
        view=name in VIEW,
        may_trap=name in MAY_TRAP,
        cheap_fold=name in CHEAP_FOLD,
        fusion=fusion_of(name),
        doc=(schema.doc or "").strip().split("\n")[0],
        domain=schema.domain,
    )


def _legacy_tree_infer(ctx):
    """TreeEnsembleRegressor: float32 [N, n_targets] (onnx's latest schema of it is deprecated)."""
    x = ctx.input_types[0]
    rows = x.shape[:1] if isinstance(x, bridge.TensorType) and x.shape is not None and len(x.shape) else None
    n_targets = int(ctx.attrs.get("n_targets") or 1)
    return [bridge.TensorType(bridge.DType.FLOAT32, None if rows is None else tuple(rows) + (n_targets,))]


# Ops onnx deprecated whose earlier versions models still use: name -> Ember's own type inference.
# Each is declared from its last schema before the deprecation and needs a kernel of Ember's.
LEGACY = {"ai.onnx.ml.TreeEnsembleRegressor": _legacy_tree_infer}


def _declare_legacy(schema) -> OpDef:
    name = f"{schema.domain}.{schema.name}"
    earlier = defs.get_schema(schema.name, schema.since_version - 1, schema.domain)
    return replace(_declare(earlier), infer=LEGACY[name])


def _register_all() -> None:
    from . import control  # noqa: F401  (control flow ops have their own declarations)

    for schema in defs.get_all_schemas():
        if f"{schema.domain}.{schema.name}" in LEGACY:
            register_op(_declare_legacy(schema))
            continue
        if schema.domain not in ("",) + EXTRA_DOMAINS or (schema.domain, schema.name) in UNDECLARED \
                or schema.deprecated or schema.name in control.CONTROL_OPS:
            continue
        register_op(_declare(schema))


def onnx_schema(name: str):
    """The latest onnx OpSchema of a default-domain op."""
    return defs.get_schema(name, defs.onnx_opset_version(), "")


def make_node_proto(op: str, attrs: dict, n_inputs: int, n_outputs: int, input_names=None, output_names=None):
    """A NodeProto for an Ember op (attribute kinds taken from the op's schema)."""
    from .registry import get_op

    op_def = get_op(op)
    ins = input_names if input_names is not None else [f"i{i}" for i in range(n_inputs)]
    outs = output_names if output_names is not None else [f"o{i}" for i in range(n_outputs)]
    domain, op_type = split_domain(op)
    node = helper.make_node(op_type, ins, outs, domain=domain or None)
    for key, value in attrs.items():
        spec = op_def.attrs.get(key) if op_def else None
        node.attribute.append(bridge.attr_to_proto(key, value, spec.kind if spec else None))
    return node


_register_all()
