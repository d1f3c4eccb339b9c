"""The op registry: every op is declared once, as an ``OpDef``.

An ``OpDef`` carries the op's attribute schema (kinds and defaults), traits,
operand/result arity, type inference, a NumPy reference implementation, an
optional ``fold`` and per-backend lowerings.  Passes query traits
(``op_def.has(Trait.COMMUTATIVE)``), never lists of op names; frontends,
the interpreter and codegen look ops up here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..ir.types import Type


class Trait(str, enum.Enum):
    """Properties of an op that passes may rely on."""

    PURE = "pure"                      # no side effects, same inputs -> same outputs
    ELEMENTWISE = "elementwise"        # output[i] depends on input[i] (with broadcasting)
    COMMUTATIVE = "commutative"        # binary op, operands may be swapped
    REDUCTION = "reduction"            # reduces along axes
    SHAPE_ONLY = "shape-only"          # output depends on input shapes only (Shape, Size)
    LAYOUT_SENSITIVE = "layout-sensitive"  # semantics depend on the dim order (NCHW...)
    RANDOM = "random"                  # nondeterministic: never folded nor CSE'd
    CONTROL_FLOW = "control-flow"      # has nested graphs
    SEQUENCE = "sequence"              # reads or makes sequences/optionals


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED = _Required()

ATTR_KINDS = ("int", "float", "string", "tensor", "graph", "ints", "floats", "strings",
              "tensors", "graphs", "type", "types", "sparse_tensor", "sparse_tensors")


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
            good = isinstance(value, Graph) if self.kind == "graph" else (
                isinstance(value, list) and all(isinstance(x, Graph) for x in value))
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


InferFn = Callable[[InferContext], Sequence[Type]]
ReferenceFn = Callable[..., Sequence[Any]]  # (inputs, attrs, ctx) -> outputs
FoldFn = Callable[[Any, list], Sequence[Any] | None]


@dataclass
class OpDef:
    """Everything Ember knows about one op."""

    name: str
    attrs: dict[str, AttrSpec] = field(default_factory=dict)
    traits: frozenset[Trait] = frozenset()
    inputs: tuple[int, int | None] = (0, None)   # min, max (None = variadic)
    outputs: tuple[int, int | None] = (1, 1)
    infer: InferFn | None = None
    reference: ReferenceFn | None = None
    fold: FoldFn | None = None
    lowerings: dict[str, Callable] = field(default_factory=dict)
    doc: str = ""
    domain: str = ""

    def has(self, trait: Trait) -> bool:
        return trait in self.traits

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


def add_lowering(op_name: str, backend: str):
    """Decorator: register ``fn`` as the lowering of ``op_name`` for ``backend``."""

    def deco(fn):
        op = get_op(op_name)
        if op is None:
            raise ValueError(f"cannot add a {backend} lowering to unknown op '{op_name}'")
        op.lowerings[backend] = fn
        return fn

    return deco


_loaded = False


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        from . import onnx_ops, ember_ops  # noqa: F401  (registration side effects)
