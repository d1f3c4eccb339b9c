"""``fold-constants{max-bytes=1048576,max-input-elements=0,cheap-any-size=false}``: evaluate pure ops on
constant inputs at compile time.

Rewrites:
- ``Op(Constant a, Constant b, ...)`` -> ``Constant(reference_kernel(a, b, ...))`` for every op
  that is pure and not random (missing optional inputs are fine), using the op's own
  ``fold`` hook when it has one and its NumPy reference kernel otherwise;
- ``Shape(x)``, ``Size(x)`` (any shape-only op) of an ``x`` with a fully static shape -> ``Constant``;
  together with the first rule, shape sub-graphs such as
  ``Reshape(x, Concat(Gather(Shape(x), 0), -1))`` become ``Reshape(x, Constant)`` when the dims are static.

Size limit: a result larger than ``max-bytes`` is folded only if it is no larger than the
constant inputs that die with the folded node, so weights are never inflated
(``Tile``/``Expand`` of a small constant stay in the graph, ``Transpose`` of a weight folds).
Two more limits serve code generation, which must not compute at run time what is known at
compile time (``codegen-prepare`` sets them to what the planner used to fold itself):
``max-input-elements=N`` folds a node whatever its result's size when its constant operands hold
at most N elements together, and ``cheap-any-size=true`` folds ops whose folding only fills or
moves data (``OpDef.cheap_fold``: ConstantOfShape, Expand, Transpose, ...) whatever the size;
both stop at ``MAX_RESULT_BYTES`` (1 GiB).
Ops with nested graphs are not folded; a kernel that fails leaves the node alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from compiler import Graph, Node, TensorType, Value
from compiler.ops import EvalContext, OpDef, Trait, get_op
from compiler.passes import Pass, PassResult
from compiler.rewrite import Rewriter


def _input_arrays(node: Node, op_def: OpDef) -> list[Any] | None:
    """The constant value of every present operand (static-shape stand-ins for shape-only ops), or None."""
    arrays: list[Any] = []
    shape_only = op_def.has(Trait.SHAPE_ONLY)
    for v in node.operands:
        if v is None:
            arrays.append(None)
            continue
        c = v.const_value
        if c is None and shape_only and isinstance(v.type, TensorType) and v.type.is_static:
            c = np.broadcast_to(np.zeros((), v.type.dtype.np), tuple(v.type.shape))  # no memory used
        if c is None:
            return None
        arrays.append(c)
    return arrays


def _evaluate(node: Node, op_def: OpDef, arrays: list[Any]) -> list[Any] | None:
    """The node's outputs computed from ``arrays``, or None when it cannot be folded."""
    if op_def.fold is not None:
        folded = op_def.fold(node, arrays)
        if folded is not None:
            return list(folded)
    if op_def.reference is None:
        return None
    ctx = EvalContext(
        node.op, node.attrs, len(node.results), [None if v is None else v.type for v in node.operands], node, None
    )
    try:
        return list(op_def.reference(arrays, node.attrs, ctx))
    except Exception:  # the interpreter will report it at run time, with context
        return None


def _fits(out: Any, value: Value) -> bool:
    """True if ``out`` is an array of exactly the type the IR declares for ``value``."""
    t = value.type
    if not isinstance(out, np.ndarray) or not isinstance(t, TensorType) or out.dtype != t.dtype.np:
        return False
    return t.is_compatible(TensorType.of(out))


def _dying_input_bytes(node: Node) -> int:
    """Bytes of constant operands read only by ``node`` (freed when it folds)."""
    total = 0
    for v in set(v for v in node.operands if v is not None):
        c = v.const_value
        if c is not None and all(u.user is node for u in v.uses):
            total += c.nbytes
    return total


MAX_RESULT_BYTES = 1 << 30  # what max-input-elements and cheap-any-size fold at most


def _may_fold(node: Node, op_def: OpDef, arrays: list[Any], size: int, limits: "FoldLimits") -> bool:
    """Whether results of ``size`` bytes may replace ``node`` under ``limits``."""
    if size <= limits.max_bytes or size <= _dying_input_bytes(node):
        return True
    if size > MAX_RESULT_BYTES:
        return False
    if limits.cheap_any_size and op_def.cheap_fold:
        return True
    consts = [a for a, v in zip(arrays, node.operands) if v is not None and v.const_value is not None]
    return sum(int(np.size(a)) for a in consts) <= limits.max_input_elements


@dataclass(frozen=True)
class FoldLimits:
    """How big a folded result may be (see the module docstring)."""

    max_bytes: int = 1 << 20
    max_input_elements: int = 0
    cheap_any_size: bool = False


def try_fold(node: Node, max_bytes: int | FoldLimits) -> list[np.ndarray] | None:
    """The constant results of ``node`` if it can and may be folded (``max_bytes``: a byte limit
    or full ``FoldLimits``), else None."""
    limits = max_bytes if isinstance(max_bytes, FoldLimits) else FoldLimits(max_bytes)
    op_def = get_op(node.op)
    if (
        op_def is None
        or node.op == "Constant"
        or not node.results
        or node.subgraphs
        or not op_def.has(Trait.PURE)
        or op_def.has(Trait.RANDOM)
    ):
        return None
    arrays = _input_arrays(node, op_def)
    if arrays is None:
        return None
    outs = _evaluate(node, op_def, arrays)
    if outs is None or len(outs) < len(node.results):
        return None
    outs = [np.asarray(o) if isinstance(o, np.generic) else o for o in outs[: len(node.results)]]
    if not all(_fits(o, r) for o, r in zip(outs, node.results)):
        return None
    if not _may_fold(node, op_def, arrays, sum(o.nbytes for o in outs), limits):
        return None
    return [np.array(o, order="C") for o in outs]  # (ascontiguousarray would make 0-d arrays 1-d)


def fold_node(rw: Rewriter, node: Node, max_bytes: int | FoldLimits) -> list[Value] | None:
    """Replace ``node`` by constants when it folds (``try_fold``), through ``rw``; returns the new
    constants (None when it does not fold).  Constants only ``node`` read are erased too."""
    outs = try_fold(node, max_bytes)
    if outs is None:
        return None
    rw.set_insertion_point_before(node)
    consts = [rw.constant(o, name=r.name) for o, r in zip(outs, node.results)]
    dead_inputs = [v.producer for v in node.operands if v is not None and v.producer is not None]
    rw.replace_node(node, consts)
    for producer in dead_inputs:  # drop constants only the folded node read
        if producer.graph is not None and producer.op == "Constant" and not producer.results[0].has_uses():
            rw.erase_node(producer)
    return consts


def fold_graph(graph: Graph, max_bytes: int | FoldLimits) -> int:
    """Fold what can be folded in ``graph`` and nested graphs, in order; returns the count."""
    folded = 0
    rw = Rewriter(graph)
    for node in graph.nodes:
        for sub in node.subgraphs:
            folded += fold_graph(sub, max_bytes)
        if fold_node(rw, node, max_bytes) is not None:
            folded += 1
    return folded


@dataclass(frozen=True)
class FoldConstantsPass(Pass):
    """Evaluate pure ops whose inputs are constants (see the module docstring)."""

    name = "fold-constants"
    max_bytes: int = 1 << 20
    max_input_elements: int = 0
    cheap_any_size: bool = False

    def run(self, graph: Graph) -> PassResult:
        folded = fold_graph(graph, FoldLimits(self.max_bytes, self.max_input_elements, self.cheap_any_size))
        return PassResult(folded > 0, {"folded": folded})
