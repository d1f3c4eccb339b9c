"""``infer-shapes``: re-run type inference and propagate the static shapes it finds.

Rewrites:
- a result type that inference can make more precise (known rank, a symbol or
  unknown dim resolved to a number, ``?`` resolved to a symbol) -> the precise type,
  in program order so that refinements flow downstream;
- ``Shape(x){start,end}`` where the selected dims of ``x`` are static -> ``Constant``;
- ``Size(x)`` where ``x`` is fully static -> ``Constant``;
- ``Gather(Shape(x), Constant i)`` where the gathered dims of ``x`` are static -> ``Constant``
  (the usual first step of a dynamic ``Reshape``; ``fold-constants`` finishes the rest).

Graph parameters and nested-graph parameters keep their types: they are the interface.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler import Graph, Node, TensorType, Type
from compiler.ops import InferenceError, get_op, infer_types
from compiler.passes import Pass, PassResult
from compiler.rewrite import Rewriter


def _dim_rank(d) -> int:
    return 2 if isinstance(d, int) else 1 if isinstance(d, str) else 0


def refines(new: Type | None, old: Type | None) -> bool:
    """True if ``new`` says strictly more than ``old`` about the same tensor, and agrees with it."""
    if not isinstance(new, TensorType) or not isinstance(old, TensorType) or new.dtype != old.dtype:
        return False
    if new.shape is None:
        return False
    if old.shape is None:
        return True
    if len(new.shape) != len(old.shape):
        return False
    better = False
    for n, o in zip(new.shape, old.shape):
        if isinstance(o, int) and n != o:
            return False
        if isinstance(o, str) and not isinstance(n, int) and n != o:
            return False
        better |= _dim_rank(n) > _dim_rank(o)
    return better


def _selected_dims(node: Node) -> list | None:
    """The dims of the operand that ``Shape``/``Size`` at ``node`` reports (any kind), or None."""
    t = node.operands[0].type if node.operands and node.operands[0] is not None else None
    if not isinstance(t, TensorType) or t.shape is None:
        return None
    dims = list(t.shape)
    if node.op == "Shape":
        op_def = get_op("Shape")
        start, end = op_def.get_attr(node.attrs, "start") or 0, op_def.get_attr(node.attrs, "end")
        dims = dims[start:end] if end is not None else dims[start:]
    return dims


def _all_static(dims: list | None) -> bool:
    return dims is not None and all(isinstance(d, int) for d in dims)


def _gathered_dims(node: Node) -> np.ndarray | None:
    """``Gather(Shape(x), Constant i)`` with static picked dims -> their values, else None."""
    data, idx = node.operands
    index = idx.const_value if idx is not None else None
    shape_node = data.producer if data is not None else None
    if shape_node is None or shape_node.op != "Shape" or index is None:
        return None
    if (get_op("Gather").get_attr(node.attrs, "axis") or 0) != 0:
        return None
    selected = _selected_dims(shape_node)
    if selected is None:
        return None
    n = len(selected)
    flat = [int(i) for i in np.ravel(index)]
    if any(i < -n or i >= n for i in flat):
        return None
    picked = [selected[i] for i in flat]
    if not _all_static(picked):
        return None
    return np.array(picked, np.int64).reshape(np.shape(index))


def _shape_constant(node: Node) -> np.ndarray | None:
    """The constant that replaces a Shape/Size/Gather-of-Shape ``node``, or None."""
    if node.op in ("Shape", "Size"):
        dims = _selected_dims(node)
        if not _all_static(dims):
            return None
        if node.op == "Shape":
            return np.array(dims, np.int64)
        return np.array(int(np.prod(dims, dtype=np.int64)), np.int64)
    if node.op == "Gather" and len(node.operands) == 2:
        return _gathered_dims(node)
    return None


def _refine_node(node: Node) -> bool:
    try:
        inferred = infer_types(node.op, node.operands, node.attrs, len(node.results), node)
    except InferenceError:
        return False
    changed = False
    for r, t in zip(node.results, inferred):
        if refines(t, r.type):
            r.type = t
            changed = True
    return changed


def infer_graph(graph: Graph) -> int:
    """Refine types and fold static shape queries in ``graph`` and nested graphs; returns the change count."""
    changes = 0
    rw = Rewriter(graph)
    for node in graph.nodes:
        for sub in node.subgraphs:
            changes += infer_graph(sub)
        const = _shape_constant(node)
        if const is not None:
            rw.set_insertion_point_before(node)
            rw.replace_node(node, rw.constant(const, name=node.results[0].name))
            changes += 1
            continue
        changes += _refine_node(node)
    return changes


@dataclass(frozen=True)
class InferShapesPass(Pass):
    """Propagate static shapes and replace static shape queries by constants (see the module docstring)."""

    name = "infer-shapes"

    def run(self, graph: Graph) -> PassResult:
        changes = infer_graph(graph)
        return PassResult(changes > 0, {"changes": changes})
