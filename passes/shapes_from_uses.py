"""``shapes-from-uses``: learn an unknown shape from a shape-preserving use whose result is known.

Forward inference cannot type ``s = ReduceSum(x, axes)`` when ``axes`` is a run-time input. If
``s`` then only flows through ops that keep the shape of their operand, and the model declares
the final shape (``y = Sqrt(s)`` with ``y: f32[3, 2]``), the shape of ``s`` is that of ``y``.

Rewrites (types only; no node changes):
- ``r = U(v)`` with ``U`` elementwise and one tensor operand (``Sqrt``, ``Log``, ``Relu``,
  ``Cast``...), or every other operand 0-d (``Add(v, scalar)``): ``type(v)`` gains the static
  dims of ``type(r)``;
- ``r = Identity(v)`` and ``r = CastLike(v, t)``: likewise.

It walks the graph backwards, so a chain of such ops is resolved in one run. Graph parameters
keep their types (they are the interface). Used by codegen's graph preparation.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler import Graph, TensorType
from compiler.ops import Trait, get_op
from compiler.passes import Pass, PassResult

from .infer_shapes import refines

_SAME_SHAPE_AS_OPERAND_0 = {"Identity", "CastLike"}


def _shape_source(node):
    """The operand whose shape equals the node's (single) result shape, or None."""
    if len(node.results) != 1 or not node.operands or node.operands[0] is None:
        return None
    if node.op in _SAME_SHAPE_AS_OPERAND_0:
        return node.operands[0]
    try:
        op_def = get_op(node.op)
    except Exception:
        return None
    if not op_def.has(Trait.ELEMENTWISE):
        return None
    tensors = [v for v in node.operands if v is not None]
    first, others = tensors[0], tensors[1:]
    for other in others:
        t = other.type
        if not isinstance(t, TensorType) or t.shape is None or len(t.shape) != 0:
            return None
    return first


def refine_backwards(graph: Graph) -> int:
    """Apply the rewrites in ``graph`` and nested graphs; returns the number of types refined."""
    changes = 0
    params = set(id(p) for p in graph.params)
    for node in reversed(list(graph.nodes)):
        for sub in node.subgraphs:
            changes += refine_backwards(sub)
        source = _shape_source(node)
        if source is None or id(source) in params:
            continue
        result, current = node.results[0].type, source.type
        if not isinstance(result, TensorType) or not isinstance(current, TensorType) or result.shape is None:
            continue
        candidate = TensorType(current.dtype, tuple(result.shape))
        if refines(candidate, current):
            source.type = candidate
            changes += 1
    return changes


@dataclass(frozen=True)
class ShapesFromUsesPass(Pass):
    """Refine unknown shapes from shape-preserving uses (see the module docstring)."""

    name = "shapes-from-uses"

    def run(self, graph: Graph) -> PassResult:
        changes = refine_backwards(graph)
        return PassResult(changes > 0, {"changes": changes})
