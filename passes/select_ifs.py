"""``select-ifs{max-nodes=8,anchors=0}``: an ``If`` with a run-time condition and tiny branches becomes both
branches and a ``Where``.

    If(c){then_branch, else_branch}  ->  t = then_branch's nodes; e = else_branch's nodes;
                                         Where(c, t, e) per output

when both branches have at most ``max-nodes`` nodes, none of them heavy (no ``Fusion.ANCHOR`` op:
Conv, MatMul, Gemm ..., unless ``anchors``), all pure tensor ops, safe to compute when not taken (no op that may trap
on a run-time index, shape or divisor: ``OpDef.may_trap``), and results of one static type (or one
dtype and element count: reshaped to the If's shape).  A rank-1 one-element condition is reshaped
to a scalar.  Run it after folding: a condition that folds to a constant is better inlined
(``inline-constant-ifs``).

The rule: computing a tiny branch that is not taken costs less than the kernel-call boundary a real
branch puts around it (its ops fuse with their neighbours once selected), so tiny branches are
selected.  Every other ``If`` stays, and code generation runs it as real branches: only the taken
branch's kernels run (``prepare-if-branches`` prepares their bodies, ``codegen/branches.py`` plans
them); ``branch_problem`` says why an ``If`` cannot, and ``check-codegen-ready`` names it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.ir.core import Graph, Node
from compiler.ir.types import DType, TensorType
from compiler.ops import Fusion, Trait, get_op
from compiler.passes import Pass, PassResult
from compiler.rewrite import Rewriter

from .unrolling import replace_results, scalar_bool, speculation_problem

MAX_SELECT_NODES = 8  # nodes per branch of an If computed both ways and selected with Where
BRANCHES = ("then_branch", "else_branch")


def select_problem(node: Node, max_nodes: int = MAX_SELECT_NODES, anchors: bool = False) -> str | None:
    """Why ``node`` (an If with a run-time condition) cannot become ``Where(cond, then, else)``."""
    for key in BRANCHES:
        branch = node.attrs[key]
        inner = list(branch.walk())
        if branch.params or len(inner) > max_nodes:
            return f"its {key} has more than {max_nodes} nodes to compute both ways"
        for n in inner:
            op_def = get_op(n.op)
            if (
                n.subgraphs
                or op_def is None
                or not op_def.has(Trait.PURE)
                or op_def.has(Trait.RANDOM)
                or op_def.has(Trait.SEQUENCE)
            ):
                return f"its {key} uses {n.op}, which is not a pure tensor op"
            if op_def.fusion == Fusion.ANCHOR and not anchors:
                return f"its {key} runs {n.op}, too heavy to compute when not taken"
        unsafe = speculation_problem(inner)
        if unsafe:
            return f"its {key} is unsafe to compute when not taken: {unsafe}"
    then_out, else_out = node.attrs["then_branch"].outputs, node.attrs["else_branch"].outputs
    for t, e, r in zip(then_out, else_out, node.results):
        if t.type == e.type and isinstance(t.type, TensorType) and t.type.is_static:
            continue
        if not _same_elements(t.type, e.type, r.type):
            return f"its branches produce values of different or non-static types ({t.type} vs {e.type})"
    return None


def branch_problem(node: Node) -> str | None:
    """Why ``node`` (an If with a run-time condition) cannot run as real branches in compiled code:
    its condition must be one bool, and each output one static type in both branches (or one dtype
    and element count), since the If's result buffer has one static shape; or None."""
    cond = node.operands[0].type
    if not (isinstance(cond, TensorType) and cond.is_static and cond.dtype == DType.BOOL):
        return f"its condition has type {cond}, not a bool of static shape"
    if int(np.prod(cond.shape, dtype=np.int64)) != 1:
        return f"its condition has type {cond}, not one bool"
    then_out, else_out = (node.attrs[key].outputs for key in BRANCHES)
    for key in BRANCHES:
        if node.attrs[key].params:
            return f"its {key} takes parameters"
    for t, e, r in zip(then_out, else_out, node.results):
        if not all(isinstance(v.type, TensorType) and v.type.dtype != DType.STRING for v in (t, e)):
            return f"its branches produce {t.type} and {e.type}, but compiled code carries numeric tensors only"
        if not _same_elements(t.type, e.type, r.type):
            return f"its branches produce values of different or non-static types ({t.type} vs {e.type})"
    return None


def _same_elements(*types) -> bool:
    """Static tensor types of one dtype and element count (the If's result type among them):
    each branch's value can be reshaped to the result's shape."""
    if not all(isinstance(t, TensorType) and t.is_static for t in types):
        return False
    return len({t.dtype for t in types}) == 1 and len({int(np.prod(t.shape, dtype=np.int64)) for t in types}) == 1


def select_if(rw: Rewriter, node: Node) -> None:
    """Rewrite one ``If`` that ``select_problem`` finds nothing against."""
    picks = [rw.inline_region(node, node.attrs[key]) for key in BRANCHES]
    rw.set_insertion_point_before(node)
    cond = scalar_bool(rw, node.operands[0])
    results = []
    for t, e, r in zip(*picks, node.results):
        if t.type != e.type:  # same elements in other shapes (f32[] vs f32[1]): the If's shape
            shape = rw.constant(np.array(r.type.shape, np.int64))
            t, e = (rw.op("Reshape", [v, shape]) for v in (t, e))
        results.append(t if t is e else rw.op("Where", [cond, t, e]))
    replace_results(rw, node, results)


@dataclass(frozen=True)
class SelectIfsPass(Pass):
    """Turn every top-level ``If`` with a run-time condition and tiny branches into a ``Where``."""

    name = "select-ifs"
    max_nodes: int = MAX_SELECT_NODES
    anchors: bool = False  # also select branches with heavy ops (targets that cannot branch: CUDA)

    def run(self, graph: Graph) -> PassResult:
        rw = Rewriter(graph, rule_name=self.name)
        count = 0
        for node in list(graph.nodes):
            cond = node.operands[0] if node.op == "If" else None
            if cond is None or cond.const_value is not None:
                continue
            if select_problem(node, self.max_nodes, self.anchors) is not None:
                continue
            select_if(rw, node)
            count += 1
        return PassResult(count > 0, {"selected": count})
