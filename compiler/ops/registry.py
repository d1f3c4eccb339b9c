"""The op registry: every op is declared once, as an ``OpDef``.

An ``OpDef`` carries the op's attribute schema (kinds and defaults), traits,
operand/result arity, type inference, its shape contract, a NumPy reference
implementation, an optional ``fold``, its FLOP count, the facts passes and
codegen need (``view``, ``may_trap``, ``cheap_fold``, ``fusion``) and one
lowering per backend.  Passes and codegen query the op
(``op_def.has(Trait.COMMUTATIVE)``, ``op_def.view``, ``op_def.lowering("tvm")``),
never lists of op names; frontends, the interpreter and codegen look ops up here.

Lowerings are added with ``add_lowering(op, backend)`` from the backend's own
modules; ``LOWERING_MODULES`` names, per backend, the module that imports all of
them, so what ``op_def.lowering(backend)`` finds never depends on what was
imported before.  A second lowering for the same op and backend raises.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..ir.types import Type


class Trait(str, enum.Enum):
    """Properties of an op that passes may rely on."""

    PURE = "pure"  # no side effects, same inputs -> same outputs
    ELEMENTWISE = "elementwise"  # output[i] depends on input[i] (with broadcasting)
    COMMUTATIVE = "commutative"  # binary op, operands may be swapped
    REDUCTION = "reduction"  # reduces along axes
    SHAPE_ONLY = "shape-only"  # output depends on input shapes only (Shape, Size)
    LAYOUT_SENSITIVE = "layout-sensitive"  # semantics depend on the dim order (NCHW...)
    RANDOM = "random"  # nondeterministic: never folded nor CSE'd
    CONTROL_FLOW = "control-flow"  # has nested graphs
    SEQUENCE = "sequence"  # reads or makes sequences/optionals
    TRANSCENDENTAL = "transcendental"  # elementwise e^, log, tanh, erf or a function built on them


class Fusion(str, enum.Enum):
    """How an op's kernel may combine with its neighbours' (TVM's OpPatternKind, simplified)."""

    ELEMENTWISE = "elementwise"  # out[i] from in[i] (operands may broadcast): fuses as a prologue/epilogue
    INJECTIVE = "injective"  # each output element reads a few input elements (Transpose, Slice, Gather)
    REDUCTION = "reduction"  # reduces along axes (ReduceSum, Softmax's inner sums)
    ANCHOR = "anchor"  # heavy compute (Conv, MatMul, Gemm): elementwise epilogues fuse into it
    OPAQUE = "opaque"  # fuses with nothing


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED = _Required()

ATTR_KINDS = (
    "int",
    "float",
    "string",
    "tensor",
    "graph",
    "ints",
    "floats",
    "strings",
    "tensors",
    "graphs",
    "type",
    "types",
    "sparse_tensor",
    "sparse_tensors",
)


@dataclass(frozen=True)
class AttrSpec:
    """One attribute of an op: its kind (``ATTR_KINDS``) and default (``REQUIRED`` or None = optional)."""

    name: str
    kind: str
    default: Any = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def check(self, value: Any) -> str | None:
        """None when ``value`` fits this spec, else the reason why not."""
        ok = {
            "int": lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool),
            "float": lambda v: isinstance(v, (float, int, np.floating)) and not isinstance(v, bool),
            "string": lambda v: isinstance(v, str),
            "tensor": lambda v: isinstance(v, np.ndarray),
            "ints": lambda v: isinstance(v, list) and all(isinstance(x, (int, np.integer)) for x in v),
            "floats": lambda v: isinstance(v, list) and all(isinstance(x, (float, int)) for x in v),
            "strings": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
            "tensors": lambda v: isinstance(v, list) and all(isinstance(x, np.ndarray) for x in v),
            "type": lambda v: isinstance(v, Type),
            "types": lambda v: isinstance(v, list) and all(isinstance(x, Type) for x in v),
        }.get(self.kind)
        if self.kind in ("graph", "graphs"):
            from ..ir.core import Graph

            good = (
                isinstance(value, Graph)
                if self.kind == "graph"
                else (isinstance(value, list) and all(isinstance(x, Graph) for x in value))
            )
            return None if good else f"attribute '{self.name}' must be a {self.kind}"
        if ok is None or ok(value):
            return None
        return f"attribute '{self.name}' must be {self.kind}, got {type(value).__name__} {value!r:.60}"


@dataclass
class InferContext:
    """What type inference sees of a node: input types, constant inputs, attributes."""

    op: str
    input_types: list[Type | None]
    attrs: dict[str, Any]
    num_outputs: int
    const_inputs: list[np.ndarray | None]
    node: Any = None


@dataclass
class EvalContext:
    """What a reference kernel sees besides its inputs: the op, its attributes, the interpreter."""

    op: str
    attrs: dict[str, Any]
    num_outputs: int
    input_types: list[Type | None]
    node: Any = None
    interpreter: Any = None

    def attr(self, name: str) -> Any:
        """The attribute's value, or the op's declared default."""
        if name in self.attrs:
            return self.attrs[name]
        op_def = get_op(self.op)
        return None if op_def is None else op_def.attr_default(name)


@dataclass
class FlopContext:
    """What a FLOP formula sees: static shapes and dtypes of operands and results, and attributes."""

    op: str
    attrs: dict[str, Any]
    in_shapes: list[tuple[int, ...] | None]
    out_shapes: list[tuple[int, ...]]

    def attr(self, name: str) -> Any:
        if name in self.attrs:
            return self.attrs[name]
        op_def = get_op(self.op)
        return None if op_def is None else op_def.attr_default(name)


InferFn = Callable[[InferContext], Sequence[Type]]
ContractFn = Callable[[InferContext], "str | Sequence[str] | None"]  # reasons the node breaks the contract
FlopsFn = Callable[[FlopContext], int]
ReferenceFn = Callable[..., Sequence[Any]]  # (inputs, attrs, ctx) -> outputs
FoldFn = Callable[[Any, list], Sequence[Any] | None]


@dataclass
class OpDef:
    """Everything Ember knows about one op."""

    name: str
    attrs: dict[str, AttrSpec] = field(default_factory=dict)
    traits: frozenset[Trait] = frozenset()
    inputs: tuple[int, int | None] = (0, None)  # min, max (None = variadic)
    outputs: tuple[int, int | None] = (1, 1)
    infer: InferFn | None = None
    reference: ReferenceFn | None = None
    fold: FoldFn | None = None
    # the shape contract beyond what ``infer`` checks: reasons (naming the shapes) when a node breaks it
    contract: ContractFn | None = None
    # floating-point operations of one application (multiply-add = 2); None: one per output element
    flops: FlopsFn | None = None
    view: bool = False  # result 0 reinterprets operand 0's memory (Reshape, Squeeze, Identity)
    may_trap: bool = False  # may fail or read out of bounds on some inputs: never computed speculatively
    cheap_fold: bool = False  # folding only fills or moves data: fold whatever the size
    fusion: Fusion = Fusion.OPAQUE
    # its result loses too much in fp16/bf16/int8 (sums of many terms, exponentials, statistics):
    # compression passes keep it in fp32
    precision_sensitive: bool = False
    # learned-weight operands -> the axis of each that indexes output channels (Conv's W: 0), from the
    # node's attributes; compression passes quantize per channel, prune and factorise along it
    weight_axes: Callable[[dict[str, Any]], dict[int, int]] | None = None
    bias_operand: int | None = None  # the per-output-channel bias operand (quantized to int32)
    # NCHW op whose output channel c reads only channel c of operand 0 (pools, per-channel
    # normalizations; other operands, if any, hold one entry per channel): channel pruning passes through
    channelwise: bool = False
    family: str = ""  # the family module of compiler/ops that declares it (elementwise, nn, tensor, ...)
    lowerings: dict[str, Any] = field(default_factory=dict)
    doc: str = ""
    domain: str = ""

    def has(self, trait: Trait) -> bool:
        return trait in self.traits

    def lowering(self, backend: str) -> Any:
        """This op's lowering for ``backend`` (e.g. ``"tvm"``), or None; loads the backend's lowerings."""
        _load_lowerings(backend)
        return self.lowerings.get(backend)

    def count_flops(self, ctx: FlopContext) -> int:
        """FLOPs of one application: the op's formula, else one per output element."""
        if self.flops is not None:
            return int(self.flops(ctx))
        return sum(int(np.prod(s, dtype=np.int64)) for s in ctx.out_shapes)

    def check_contract(self, ctx: InferContext) -> list[str]:
        """Reasons the application in ``ctx`` breaks this op's shape contract (empty when it holds)."""
        if self.contract is None:
            return []
        found = self.contract(ctx)
        if not found:
            return []
        return [found] if isinstance(found, str) else [r for r in found if r]

    def attr_default(self, name: str) -> Any:
        spec = self.attrs.get(name)
        return None if spec is None or spec.required else spec.default

    def get_attr(self, attrs: dict[str, Any], name: str) -> Any:
        """The attribute's value on a node, falling back to its declared default."""
        if name in attrs:
            return attrs[name]
        return self.attr_default(name)

    def check_attrs(self, attrs: dict[str, Any]) -> list[str]:
        """Reasons why ``attrs`` do not fit the schema (empty when they do)."""
        problems = []
        for name, value in attrs.items():
            spec = self.attrs.get(name)
            if spec is None:
                problems.append(f"unknown attribute '{name}' for {self.name}")
                continue
            reason = spec.check(value)
            if reason:
                problems.append(reason)
        for spec in self.attrs.values():
            if spec.required and spec.name not in attrs:
                problems.append(f"missing required attribute '{spec.name}'")
        return problems


_REGISTRY: dict[str, OpDef] = {}


def register_op(op_def: OpDef, *, replace: bool = False) -> OpDef:
    """Add an op to the registry (a second registration of a name raises unless ``replace``)."""
    if op_def.name in _REGISTRY and not replace:
        raise ValueError(f"op '{op_def.name}' is already registered")
    _REGISTRY[op_def.name] = op_def
    return op_def


def get_op(name: str) -> OpDef | None:
    """The OpDef of ``name``, or None when no such op is registered."""
    _ensure_loaded()
    return _REGISTRY.get(name)


def all_ops() -> list[OpDef]:
    _ensure_loaded()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


# backend -> the module whose import adds every lowering of that backend (imported on first query)
LOWERING_MODULES: dict[str, str] = {"tvm": "codegen.tvm.lowering"}
_LOWERINGS_LOADED: set[str] = set()


def add_lowering(op_name: str, backend: str, lowering: Any) -> Any:
    """Make ``lowering`` the ``backend`` lowering of ``op_name``; a second one for the same pair raises."""
    op = get_op(op_name)
    if op is None:
        raise ValueError(f"cannot add a {backend} lowering to unknown op '{op_name}'")
    if backend in op.lowerings and op.lowerings[backend] is not lowering:
        raise ValueError(
            f"op '{op_name}' already has a {backend} lowering ({getattr(op.lowerings[backend], '__module__', '?')})"
        )
    op.lowerings[backend] = lowering
    return lowering


def _load_lowerings(backend: str) -> None:
    if backend in _LOWERINGS_LOADED or backend not in LOWERING_MODULES:
        return
    _LOWERINGS_LOADED.add(backend)
    import importlib

    importlib.import_module(LOWERING_MODULES[backend])


def ops_with_lowering(backend: str) -> list[OpDef]:
    """Every registered op that has a ``backend`` lowering."""
    _load_lowerings(backend)
    return [op for op in all_ops() if backend in op.lowerings]


_loaded = False


def _ensure_loaded() -> None:
    """Import every family module of compiler/ops (each registers its ops), whatever was imported before."""
    global _loaded
    if not _loaded:
        _loaded = True
        import importlib

        from .declare import FAMILY_MODULES

        for module in FAMILY_MODULES:
            importlib.import_module(f"{__package__}.{module}")
