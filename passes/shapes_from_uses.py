"""``shapes-from-uses``: share what is known of a shape among values that must have the same shape.

Forward inference cannot type ``s = ReduceSum(x, axes)`` when ``axes`` is a run-time input, nor
``r = Range(0, n, 1)`` when ``n`` is. If such a value then only flows through ops that keep its
shape, and the model declares the final shape (``y = Sqrt(s)`` with ``y: f32[3, 2]``), the shape
of ``s`` is that of ``y``.

Values are grouped into shape classes, walking forward:
- ``r = U(v)`` with ``U`` elementwise and ``v`` its only operand that is not 0-d (``Sqrt``,
  ``Cast``, ``Add(v, scalar)``, ``Mul(scalar, v)``...): ``r`` joins the class of ``v``;
- ``r = B(u, v, ...)`` elementwise where every operand that is not 0-d is in one class (``Add(Cos(t),
  Sin(t))``: equal shapes broadcast to themselves): ``r`` joins that class;
- ``r = Identity(v)`` and ``r = CastLike(v, t)``: ``r`` joins the class of ``v``.

Rewrites (types only; no node changes): every value of a class gains the dims known for any
member (a static dim beats a symbol, a symbol beats an unknown). A class whose members disagree
on a static dim or on the rank is left alone. Graph parameters keep their types (they are the
interface). Nested graphs are handled on their own. Used by codegen's graph preparation.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler import Graph, TensorType
from compiler.ops import Trait, get_op
from compiler.passes import Pass, PassResult

from .infer_shapes import refines

_SAME_SHAPE_AS_OPERAND_0 = {"Identity", "CastLike"}


def _is_0d(value) -> bool:
    t = value.type
    return isinstance(t, TensorType) and t.shape is not None and len(t.shape) == 0


def _same_shape_operands(node) -> list | None:
    """Operands whose shape is the node's (single) result shape, or None when that is not certain."""
    if len(node.results) != 1 or not node.operands or node.operands[0] is None:
        return None
    if node.op in _SAME_SHAPE_AS_OPERAND_0:
        return [node.operands[0]]
    try:
        op_def = get_op(node.op)
    except Exception:
        return None
    if not op_def.has(Trait.ELEMENTWISE):
        return None
    shaped = [v for v in node.operands if v is not None and not _is_0d(v)]
    return shaped or None


class _Classes:
    """Union-find over values (by identity)."""

    def __init__(self):
        self.parent: dict[int, int] = {}
        self.values: dict[int, object] = {}

    def find(self, value) -> int:
        key = id(value)
        self.values.setdefault(key, value)
        self.parent.setdefault(key, key)
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def union(self, a, b) -> None:
        self.parent[self.find(a)] = self.find(b)

    def groups(self) -> list[list]:
        by_root: dict[int, list] = {}
        for value in self.values.values():
            by_root.setdefault(self.find(value), []).append(value)
        return [members for members in by_root.values() if len(members) > 1]


def _merged_dims(members) -> list | None:
    """The best known dim per position over ``members``, or None if they disagree."""
    shapes = [m.type.shape for m in members if isinstance(m.type, TensorType) and m.type.shape is not None]
    if not shapes or len({len(s) for s in shapes}) != 1:
        return None
    merged = []
    for dims in zip(*shapes):
        ints = {d for d in dims if isinstance(d, int)}
        if len(ints) > 1:
            return None
        symbols = [d for d in dims if isinstance(d, str)]
        merged.append(ints.pop() if ints else symbols[0] if symbols else None)
    return merged


def refine_classes(graph: Graph) -> int:
    """Apply the rewrites in ``graph`` and nested graphs; returns the number of types refined."""
    changes = 0
    classes = _Classes()
    for node in graph.nodes:
        for sub in node.subgraphs:
            changes += refine_classes(sub)
        operands = _same_shape_operands(node)
        if operands and len({classes.find(v) for v in operands}) == 1:
            classes.union(node.results[0], operands[0])
    params = {id(p) for p in graph.params}
    for members in classes.groups():
        merged = _merged_dims(members)
        if merged is None:
            continue
        for value in members:
            current = value.type
            if id(value) in params or not isinstance(current, TensorType):
                continue
            own = current.shape or [None] * len(merged)
            dims = tuple(m if isinstance(m, int) or not isinstance(o, str) else o for m, o in zip(merged, own))
            candidate = TensorType(current.dtype, dims)
            if refines(candidate, current):
                value.type = candidate
                changes += 1
    return changes


@dataclass(frozen=True)
class ShapesFromUsesPass(Pass):
    """Share known dims among values that must have equal shapes (see the module docstring)."""

    name = "shapes-from-uses"

    def run(self, graph: Graph) -> PassResult:
        changes = refine_classes(graph)
        return PassResult(changes > 0, {"changes": changes})
