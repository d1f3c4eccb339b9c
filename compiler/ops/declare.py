"""How a family module of ``compiler/ops`` declares its ops: ``Family.onnx_op`` and ``Family.op``.

Each op is declared once, in the module of its family (``FAMILY_MODULES``, laid
out as the ONNX spec groups its operators), with everything Ember knows about
it in one call::

    FAMILY = Family("nn")
    onnx_op = FAMILY.onnx_op

    onnx_op("Conv", traits={Trait.LAYOUT_SENSITIVE}, kernel=conv, contract=conv_contract,
            flops=conv_flops, fusion=Fusion.ANCHOR)

``onnx_op`` merges those facts with what onnx's schema says (attribute kinds and
defaults, arity, doc): attribute schemas are never hand-written.  Type inference
is onnx's per-op inference unless ``infer`` is given; the reference kernel is
``onnx.reference``'s unless ``kernel`` is.  Every op is pure unless it has
``Trait.RANDOM``.  ``Family.op`` declares an op onnx does not define (Ember's
own, Caffe's), with its attributes written out.

``registry._ensure_loaded`` imports every module of ``FAMILY_MODULES``, so what
is registered never depends on what was imported before.
"""

from __future__ import annotations

from typing import Any, Iterable

from .infer_onnx import onnx_infer
from .onnx_schemas import arity, attr_specs, earlier_schema, schema_of
from .reference_onnx import onnx_reference
from .registry import AttrSpec, ContractFn, FlopsFn, FoldFn, Fusion, InferFn, OpDef, ReferenceFn, Trait, register_op

# The modules of compiler/ops that declare ops, one per operator family (see each module's docstring).
FAMILY_MODULES = (
    "elementwise",
    "reduction",
    "nn",
    "normalization",
    "recurrent",
    "tensor",
    "indexing",
    "quantization",
    "image",
    "object_detection",
    "signal",
    "sequence",
    "control",
    "random",
    "ml",
    "text",
    "training",
    "contrib",
    "ember",
    "caffe",
)

FAMILIES: dict[str, "Family"] = {}


def families() -> dict[str, "Family"]:
    """Every op family by name, with all family modules loaded."""
    from .registry import all_ops

    all_ops()
    return FAMILIES


class Family:
    """The ops one module of ``compiler/ops`` declares; each is registered with ``family=name``."""

    def __init__(self, name: str):
        if name in FAMILIES:
            raise ValueError(f"op family '{name}' is declared twice")
        self.name = name
        self.names: list[str] = []
        FAMILIES[name] = self

    def onnx_op(
        self,
        name: str,
        *,
        traits: Iterable[Trait] = (),
        kernel: ReferenceFn | None = None,
        infer: InferFn | None = None,
        contract: ContractFn | None = None,
        fold: FoldFn | None = None,
        flops: FlopsFn | None = None,
        view: bool = False,
        may_trap: bool = False,
        cheap_fold: bool = False,
        fusion: Fusion = Fusion.OPAQUE,
    ) -> OpDef:
        """Declare and register an op onnx defines (``"Conv"``, ``"ai.onnx.ml.Scaler"``).

        An op whose latest schema onnx deprecated is declared from the schema before it and needs
        Ember's own ``infer`` and ``kernel`` (models still use its earlier versions).
        """
        schema = schema_of(name)
        if schema is None:
            raise ValueError(f"family {self.name}: onnx defines no op '{name}'")
        if schema.deprecated:
            if infer is None or kernel is None:
                raise ValueError(f"family {self.name}: '{name}' is deprecated in onnx; declare its infer and kernel")
            schema = earlier_schema(schema)
        traits = set(traits)
        if Trait.RANDOM not in traits:
            traits.add(Trait.PURE)
        inputs, outputs = arity(schema)
        return self._register(
            OpDef(
                name=name,
                attrs=attr_specs(schema),
                traits=frozenset(traits),
                inputs=inputs,
                outputs=outputs,
                infer=infer if infer is not None else onnx_infer,
                reference=kernel if kernel is not None else onnx_reference,
                fold=fold,
                contract=contract,
                flops=flops,
                view=view,
                may_trap=may_trap,
                cheap_fold=cheap_fold,
                fusion=fusion,
                doc=(schema.doc or "").strip().split("\n")[0],
                domain=schema.domain,
            )
        )

    def op(
        self,
        name: str,
        *,
        domain: str,
        inputs: tuple[int, int | None],
        outputs: tuple[int, int | None],
        attrs: Iterable[AttrSpec] = (),
        traits: Iterable[Trait] = (),
        infer: InferFn | None = None,
        kernel: ReferenceFn | None = None,
        doc: str = "",
        **facts: Any,
    ) -> OpDef:
        """Declare and register an op onnx does not define; traits are exactly those given."""
        return self._register(
            OpDef(
                name=name,
                domain=domain,
                inputs=inputs,
                outputs=outputs,
                attrs={a.name: a for a in attrs},
                traits=frozenset(traits),
                infer=infer,
                reference=kernel,
                doc=doc,
                **facts,
            )
        )

    def _register(self, op_def: OpDef) -> OpDef:
        op_def.family = self.name
        register_op(op_def)
        self.names.append(op_def.name)
        return op_def
