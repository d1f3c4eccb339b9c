"""onnxruntime's ``com.microsoft`` contrib ops, as its quantizer and transformers optimizer write them.

Named ``com.microsoft.<Op>`` (as ``ai.onnx.ml.<Op>`` names that domain's ops).  onnx's package has
no schema for them, so their attributes are written out here, from onnxruntime's
``docs/ContribOperators.md`` (contrib opset 1).  Each has its own type inference and a NumPy
reference kernel that follows onnxruntime's CPU kernels (``tests/ops/test_contrib.py`` checks them
against onnxruntime); the ``decompose-contrib`` pass rewrites each into standard ONNX ops for codegen.

Quantized (QLinear*) ops compute in float32 between a dequantize and a quantize:
``deq(x) = (x - zero_point) * scale``, ``q(v) = saturate(round_half_even(v / scale) + zero_point)``;
an absent zero point is 0 of the quantized type.
"""

from __future__ import annotations

import numpy as np

from ..ir.types import DType, TensorType
from .declare import Family
from .infer_onnx import onnx_infer
from .kernels_contrib import (
    MS,
    POOL_ATTRS,
    attention_infer,
    attention_kernel,
    conv_attrs,
    dequantize,
    dequantize_kernel,
    dq_matmul_kernel,
    dqlstm_kernel,
    fast_gelu,
    float_type,
    fused_conv_kernel,
    fused_gemm_kernel,
    gelu,
    infer_as,
    int_matmul_kernel,
    mha_infer,
    mha_kernel,
    qconcat_kernel,
    qgap_kernel,
    qgemm_infer,
    qgemm_kernel,
    qpool_kernel,
    qreduce_mean_kernel,
    qsoftmax_kernel,
    quantize,
    quantize_kernel,
    qwhere_kernel,
    same_as,
    simplified_norm_infer,
    simplified_norm_kernel,
    skip_norm,
    spatial_axes,
    stat_shape,
)
from .registry import REQUIRED, AttrSpec, InferContext, Trait

FAMILY = Family("contrib")
PURE = frozenset({Trait.PURE})


def contrib_op(name: str, inputs, outputs, attrs=(), *, infer, kernel, doc: str, traits=PURE, **facts):
    """Declare ``com.microsoft.<name>`` (``facts``: further ``OpDef`` fields)."""
    return FAMILY.op(
        f"{MS}.{name}",
        domain=MS,
        inputs=inputs,
        outputs=outputs,
        attrs=attrs,
        traits=traits,
        infer=infer,
        kernel=kernel,
        doc=doc,
        **facts,
    )


# ------------------------------------------------------------------------------------ quantized ops


def _qlinear_binary(fn):
    def kernel(inputs, attrs, ctx):
        a, sa, za, b, sb, zb, sc, zc = (list(inputs) + [None] * 8)[:8]
        return [quantize(fn(dequantize(a, sa, za), dequantize(b, sb, zb)), sc, zc, np.asarray(a).dtype)]

    return kernel


def _qlinear_binary_infer(ctx):
    a, b = ctx.input_types[0], ctx.input_types[3]
    (out,) = infer_as(ctx, "Add", [float_type(a), float_type(b)])
    return [TensorType(a.dtype, out.shape) if isinstance(out, TensorType) else None]


for _name, _fn in (("QLinearAdd", np.add), ("QLinearMul", np.multiply)):
    contrib_op(
        _name,
        (7, 8),
        (1, 1),
        infer=_qlinear_binary_infer,
        kernel=_qlinear_binary(_fn),
        doc=f"C = q({_name[7:]}(deq(A), deq(B))) with broadcasting (inputs A, A_scale, A_zero_point, B, B_scale, "
        "B_zero_point, C_scale, C_zero_point).",
    )


def _qlinear_unary(fn):
    def kernel(inputs, attrs, ctx):
        x, sx, zx, sy, zy = (list(inputs) + [None] * 5)[:5]
        return [quantize(fn(dequantize(x, sx, zx), ctx), sy, zy, np.asarray(x).dtype)]

    return kernel


def _sigmoid(v, ctx):
    return (1.0 / (1.0 + np.exp(-v))).astype(np.float32)


def _leaky_relu(v, ctx):
    return np.where(v >= 0, v, v * np.float32(ctx.attr("alpha"))).astype(np.float32)


contrib_op(
    "QLinearSigmoid",
    (4, 5),
    (1, 1),
    infer=same_as(0),
    kernel=_qlinear_unary(_sigmoid),
    doc="Y = q(Sigmoid(deq(X))) (inputs X, X_scale, X_zero_point, Y_scale, Y_zero_point).",
)
contrib_op(
    "QLinearLeakyRelu",
    (4, 5),
    (1, 1),
    [AttrSpec("alpha", "float", 0.01)],
    infer=same_as(0),
    kernel=_qlinear_unary(_leaky_relu),
    doc="Y = q(LeakyRelu(deq(X)){alpha}).",
)


def _qgap_infer(ctx):
    x = ctx.input_types[0]
    if not isinstance(x, TensorType) or x.shape is None:
        return [x]
    axes = spatial_axes(len(x.shape), bool(ctx.attrs.get("channels_last", 0)))
    return [x.with_shape(tuple(1 if i in axes else d for i, d in enumerate(x.shape)))]


contrib_op(
    "QLinearGlobalAveragePool",
    (5, 5),
    (1, 1),
    [AttrSpec("channels_last", "int", 0)],
    infer=_qgap_infer,
    kernel=qgap_kernel,
    doc="Y = q(GlobalAveragePool(deq(X))); spatial dims are 1.. rank-2 when channels_last, else 2..",
)


def _qconcat_infer(ctx):
    parts = ctx.input_types[2::3]
    (out,) = infer_as(ctx, "Concat", [float_type(t) for t in parts], {"axis": int(ctx.attrs["axis"])})
    dtype = ctx.input_types[1].dtype if isinstance(ctx.input_types[1], TensorType) else parts[0].dtype
    return [TensorType(dtype, out.shape) if isinstance(out, TensorType) else None]


contrib_op(
    "QLinearConcat",
    (5, None),
    (1, 1),
    [AttrSpec("axis", "int", REQUIRED)],
    infer=_qconcat_infer,
    kernel=qconcat_kernel,
    doc="Y = q(Concat(deq(X_i)...)); inputs Y_scale, Y_zero_point, then (X_i, X_i_scale, X_i_zero_point) triples.",
)


def _quantize_infer(ctx):
    x, zp = ctx.input_types[0], ctx.input_types[2] if len(ctx.input_types) > 2 else None
    dtype = zp.dtype if isinstance(zp, TensorType) else DType.UINT8
    return [TensorType(dtype, x.shape) if isinstance(x, TensorType) else None]


def _dequantize_infer(ctx):
    return [float_type(ctx.input_types[0])]


AXIS = AttrSpec("axis", "int", None)
contrib_op(
    "QuantizeLinear",
    (2, 3),
    (1, 1),
    [AXIS],
    infer=_quantize_infer,
    kernel=quantize_kernel,
    doc="y = saturate(round(x / y_scale) + y_zero_point), per tensor or along axis (default 1).",
)
contrib_op(
    "DequantizeLinear",
    (2, 3),
    (1, 1),
    [AXIS],
    infer=_dequantize_infer,
    kernel=dequantize_kernel,
    doc="y = (x - x_zero_point) * x_scale, per tensor or along axis (default 1).",
)


# ----------------------------------------------------------------------------- DynamicQuantizeLSTM


def _dqlstm_infer(ctx):
    x = ctx.input_types[0]
    hidden = ctx.attrs.get("hidden_size")
    dirs = 2 if ctx.attrs.get("direction", "forward") == "bidirectional" else 1
    if not isinstance(x, TensorType) or x.shape is None or hidden is None:
        return [TensorType(DType.FLOAT32, None)] * ctx.num_outputs
    seq, batch = x.shape[0], x.shape[1]
    shapes = [(seq, dirs, batch, int(hidden)), (dirs, batch, int(hidden)), (dirs, batch, int(hidden))]
    return [TensorType(x.dtype, s) for s in shapes[: ctx.num_outputs]]


contrib_op(
    "DynamicQuantizeLSTM",
    (12, 12),
    (0, 3),
    [
        AttrSpec("activation_alpha", "floats", None),
        AttrSpec("activation_beta", "floats", None),
        AttrSpec("activations", "strings", None),
        AttrSpec("clip", "float", None),
        AttrSpec("direction", "string", "forward"),
        AttrSpec("hidden_size", "int", None),
        AttrSpec("input_forget", "int", 0),
    ],
    infer=_dqlstm_infer,
    kernel=dqlstm_kernel,
    doc="LSTM with int8/uint8 weights W [D, I, 4H] and R [D, H, 4H] (transposed against ONNX's), dequantized "
    "with W_scale/R_scale, W_zero_point/R_zero_point per direction (or per direction and column).",
)


# --------------------------------------------------------------------------------- fused float ops


def _fused_conv_infer(ctx):
    return infer_as(ctx, "Conv", ctx.input_types[:3], conv_attrs(ctx.attrs.get))


contrib_op(
    "FusedConv",
    (2, 4),
    (1, 1),
    [
        AttrSpec("activation", "string", None),
        AttrSpec("activation_params", "floats", None),
        AttrSpec("auto_pad", "string", "NOTSET"),
        AttrSpec("dilations", "ints", None),
        AttrSpec("group", "int", 1),
        AttrSpec("kernel_shape", "ints", None),
        AttrSpec("pads", "ints", None),
        AttrSpec("strides", "ints", None),
    ],
    infer=_fused_conv_infer,
    kernel=fused_conv_kernel,
    doc="Y = activation(Conv(X, W, B) + Z); activation Relu, Tanh, Sigmoid, LeakyRelu, Clip or HardSigmoid "
    "with its parameters in activation_params.",
)


def _swap_last(t):
    if not isinstance(t, TensorType) or t.shape is None or len(t.shape) < 2:
        return t
    return t.with_shape(t.shape[:-2] + (t.shape[-1], t.shape[-2]))


def _fused_matmul_check(get):
    if get("transBatchA") or get("transBatchB"):
        raise ValueError("FusedMatMul with transBatchA/transBatchB is not supported")


def _fused_matmul_infer(ctx):
    _fused_matmul_check(ctx.attrs.get)
    a, b = ctx.input_types[:2]
    a = _swap_last(a) if ctx.attrs.get("transA") else a
    b = _swap_last(b) if ctx.attrs.get("transB") else b
    return infer_as(ctx, "MatMul", [a, b])


def _fused_matmul_kernel(inputs, attrs, ctx):
    _fused_matmul_check(ctx.attr)
    a, b = inputs
    a = np.swapaxes(a, -1, -2) if ctx.attr("transA") else a
    b = np.swapaxes(b, -1, -2) if ctx.attr("transB") else b
    y = np.matmul(a, b)
    return [(y * np.asarray(ctx.attr("alpha"), y.dtype)).astype(y.dtype)]


contrib_op(
    "FusedMatMul",
    (2, 2),
    (1, 1),
    [
        AttrSpec("alpha", "float", 1.0),
        AttrSpec("transA", "int", 0),
        AttrSpec("transB", "int", 0),
        AttrSpec("transBatchA", "int", 0),
        AttrSpec("transBatchB", "int", 0),
    ],
    infer=_fused_matmul_infer,
    kernel=_fused_matmul_kernel,
    doc="Y = alpha * MatMul(A', B'), A' / B' with the last two dims swapped when transA / transB "
    "(transBatchA/transBatchB are refused).",
)

contrib_op(
    "Gelu",
    (1, 1),
    (1, 1),
    infer=same_as(0),
    kernel=lambda i, a, c: [gelu(i[0])],
    doc="Y = 0.5 X (1 + erf(X / sqrt 2)).",
)
contrib_op(
    "BiasGelu",
    (2, 2),
    (1, 1),
    infer=same_as(0),
    kernel=lambda i, a, c: [gelu(i[0] + i[1])],
    doc="C = Gelu(A + B), B broadcast along A's last dim.",
)
contrib_op(
    "FastGelu",
    (1, 2),
    (1, 1),
    infer=same_as(0),
    kernel=lambda i, a, c: [fast_gelu(i[0] if len(i) < 2 or i[1] is None else i[0] + i[1])],
    doc="Y = tanh-approximated Gelu(X + bias).",
)


def _quick_gelu_kernel(inputs, attrs, ctx):
    x = inputs[0]
    alpha = np.asarray(ctx.attr("alpha"), x.dtype)
    return [(x / (1 + np.exp(-alpha * x))).astype(x.dtype)]


contrib_op(
    "QuickGelu",
    (1, 1),
    (1, 1),
    [AttrSpec("alpha", "float", 1.702)],
    infer=same_as(0),
    kernel=_quick_gelu_kernel,
    doc="Y = X * Sigmoid(alpha * X).",
)
contrib_op(
    "BiasAdd",
    (3, 3),
    (1, 1),
    infer=same_as(0),
    kernel=lambda i, a, c: [(i[0] + i[1] + i[2]).astype(i[0].dtype)],
    doc="Y = X + bias + skip (X, skip [N, S, C]; bias [C]).",
)


# ------------------------------------------------------------------------ skip layer normalizations


def _skip_norm_infer(ctx):
    x = ctx.input_types[0]
    return [x, stat_shape(x), stat_shape(x), x][: ctx.num_outputs]


contrib_op(
    "SkipLayerNormalization",
    (3, 5),
    (1, 4),
    [AttrSpec("epsilon", "float", 1e-12)],
    infer=_skip_norm_infer,
    kernel=lambda i, a, ctx: skip_norm(i, ctx.attr("epsilon"), False, ctx.num_outputs),
    doc="LayerNormalization(input + skip + bias, gamma, beta) over the last dim; outputs output, mean, "
    "inv_std_var, input_skip_bias_sum (inputs input, skip, gamma, beta?, bias?).",
)
contrib_op(
    "SkipSimplifiedLayerNormalization",
    (3, 4),
    (1, 4),
    [AttrSpec("epsilon", "float", 1e-12)],
    infer=_skip_norm_infer,
    kernel=lambda i, a, ctx: skip_norm(i, ctx.attr("epsilon"), True, ctx.num_outputs),
    doc="RMS normalization of input + skip + bias over the last dim, times gamma (inputs input, skip, gamma, "
    "bias?); outputs output, mean (unused), inv_std_var, input_skip_bias_sum.",
)


# ------------------------------------------------------------------------- more quantizer / optimizer ops


def _fused_gemm_infer(ctx):
    gemm = {n: ctx.attrs[n] for n in ("alpha", "beta", "transA", "transB") if n in ctx.attrs}
    return infer_as(ctx, "Gemm", [t for t in ctx.input_types if t is not None], gemm)


contrib_op(
    "FusedGemm",
    (2, 3),
    (1, 1),
    [
        AttrSpec("activation", "string", None),
        AttrSpec("activation_alpha", "float", None),
        AttrSpec("activation_beta", "float", None),
        AttrSpec("activation_gamma", "float", None),
        AttrSpec("alpha", "float", 1.0),
        AttrSpec("beta", "float", 1.0),
        AttrSpec("transA", "int", 0),
        AttrSpec("transB", "int", 0),
    ],
    infer=_fused_gemm_infer,
    kernel=fused_gemm_kernel,
    doc="Y = activation(Gemm(A, B, C){alpha, beta, transA, transB}); the activation's parameters are "
    "activation_alpha / activation_beta.",
)


def _qpool_infer(ctx):
    x = ctx.input_types[0]
    last = bool(ctx.attrs.get("channels_last", 0))
    if last and isinstance(x, TensorType) and x.shape is not None:
        x = x.with_shape((x.shape[0], x.shape[-1]) + tuple(x.shape[1:-1]))
    (out,) = infer_as(ctx, "AveragePool", [float_type(x)], {n: ctx.attrs[n] for n in POOL_ATTRS if n in ctx.attrs})
    shape = out.shape
    if last and shape is not None:
        shape = (shape[0],) + tuple(shape[2:]) + (shape[1],)
    return [TensorType(ctx.input_types[0].dtype, shape)]


contrib_op(
    "QLinearAveragePool",
    (4, 5),
    (1, 1),
    [
        AttrSpec("auto_pad", "string", "NOTSET"),
        AttrSpec("ceil_mode", "int", 0),
        AttrSpec("channels_last", "int", 0),
        AttrSpec("count_include_pad", "int", 0),
        AttrSpec("kernel_shape", "ints", REQUIRED),
        AttrSpec("pads", "ints", None),
        AttrSpec("strides", "ints", None),
    ],
    infer=_qpool_infer,
    kernel=qpool_kernel,
    doc="Y = q(AveragePool(deq(X))) (NHWC when channels_last).",
)


contrib_op(
    "QLinearSoftmax",
    (4, 5),
    (1, 1),
    [AttrSpec("axis", "int", -1), AttrSpec("opset", "int", REQUIRED)],
    infer=same_as(0),
    kernel=qsoftmax_kernel,
    doc="Y = q(Softmax(deq(X)){axis}) with the Softmax of the given opset (before 13: over the 2-D coercion at axis).",
)


contrib_op(
    "QGemm",
    (6, 9),
    (1, 1),
    [AttrSpec("alpha", "float", 1.0), AttrSpec("transA", "int", 0), AttrSpec("transB", "int", 0)],
    infer=qgemm_infer,
    kernel=qgemm_kernel,
    doc="Y = alpha a_scale b_scale ((A - a_zero_point)(B - b_zero_point) + C), C int32; quantized with "
    "y_scale / y_zero_point when given, else float (b_scale / b_zero_point per tensor or per column).",
)


def _matmul_to_float_infer(ctx):
    (out,) = infer_as(ctx, "MatMul", [float_type(ctx.input_types[0]), float_type(ctx.input_types[1])])
    return [TensorType(DType.FLOAT32, out.shape)]


contrib_op(
    "DynamicQuantizeMatMul",
    (3, 5),
    (1, 1),
    infer=_matmul_to_float_infer,
    kernel=dq_matmul_kernel,
    doc="Y = deq(DynamicQuantizeLinear(A)) @ deq(B, b_scale, b_zero_point) + bias (A quantized to uint8 at "
    "run time, as onnxruntime does; b_scale per tensor or per column).",
)
contrib_op(
    "MatMulIntegerToFloat",
    (4, 7),
    (1, 1),
    infer=_matmul_to_float_infer,
    kernel=int_matmul_kernel,
    doc="Y = deq(A, a_scale, a_zero_point) @ deq(B, b_scale, b_zero_point) + bias (inputs A, B, a_scale, "
    "b_scale, a_zero_point?, b_zero_point?, bias?).",
)


def _qreduce_mean_infer(ctx):
    x = ctx.input_types[0]
    keep = {"keepdims": int(ctx.attrs["keepdims"])}
    sub = InferContext("ReduceMean", [float_type(x), None], keep, 1, [None, np.asarray(ctx.attrs["axes"], np.int64)])
    sub.input_types[1] = TensorType(DType.INT64, (len(ctx.attrs["axes"]),))
    (out,) = onnx_infer(sub)
    return [TensorType(x.dtype, out.shape)]


contrib_op(
    "QLinearReduceMean",
    (4, 5),
    (1, 1),
    [AttrSpec("axes", "ints", REQUIRED), AttrSpec("keepdims", "int", REQUIRED)],
    infer=_qreduce_mean_infer,
    kernel=qreduce_mean_kernel,
    doc="reduced = q(ReduceMean(deq(data)){axes, keepdims}).",
)


def _qwhere_infer(ctx):
    cond, x, y = ctx.input_types[0], ctx.input_types[1], ctx.input_types[4]
    (out,) = infer_as(ctx, "Where", [cond, float_type(x), float_type(y)])
    return [TensorType(x.dtype, out.shape)]


contrib_op(
    "QLinearWhere",
    (9, 9),
    (1, 1),
    infer=_qwhere_infer,
    kernel=qwhere_kernel,
    doc="Z = q(Where(condition, deq(X), deq(Y)), z_scale, z_zero_point).",
)


contrib_op(
    "SimplifiedLayerNormalization",
    (2, 2),
    (1, 2),
    [AttrSpec("axis", "int", -1), AttrSpec("epsilon", "float", 1e-5), AttrSpec("stash_type", "int", 1)],
    infer=simplified_norm_infer,
    kernel=simplified_norm_kernel,
    doc="Y = X / sqrt(mean(X^2 over dims axis..) + epsilon) * scale; outputs Y, inv_std_var.  onnxruntime "
    "registers it in the default domain, where the importer finds it.",
)


ATTENTION_ATTRS = [
    AttrSpec("mask_filter_value", "float", None),
    AttrSpec("num_heads", "int", REQUIRED),
    AttrSpec("scale", "float", None),
    AttrSpec("unidirectional", "int", 0),
]
contrib_op(
    "Attention",
    (2, 7),
    (1, 2),
    ATTENTION_ATTRS
    + [
        AttrSpec("do_rotary", "int", None),
        AttrSpec("past_present_share_buffer", "int", None),
        AttrSpec("qkv_hidden_sizes", "ints", None),
        AttrSpec("rotary_embedding_dim", "int", None),
    ],
    infer=attention_infer,
    kernel=attention_kernel,
    precision_sensitive=True,  # holds a Softmax (as ONNX Attention)
    doc="Multi-head self-attention of input [B, S, H_in] with packed weights [H_in, Hq + Hk + Hv] and bias; "
    "mask_index 2-D [B, S] (0 masks) or 1-D [B] (key lengths); no past / attention_bias.",
)
contrib_op(
    "MultiHeadAttention",
    (1, 10),
    (1, 4),
    ATTENTION_ATTRS,
    infer=mha_infer,
    kernel=mha_kernel,
    precision_sensitive=True,
    doc="Multi-head attention of query [B, S, H], key [B, L, H], value [B, L, Hv], bias [2H + Hv] and "
    "key_padding_mask [B, L] or [B] (separate 3-D key and value only; no past / attention_bias).",
)
