"""``lower-tree-ensembles``: tree ensembles become a table-walking kernel plus post-transform ops.

    TreeEnsemble(X) / TreeEnsembleRegressor(X)            (ai.onnx.ml, X a static matrix)
    ->  s = ember.TreeEnsemble(X, feature, split, mode, true_next, false_next, missing_true, members,
                               roots, weights, mask){depth, aggregate}            (float64)
        s = s + base_values                                   (when given)
        SOFTMAX: Softmax(s)   LOGISTIC: Sigmoid(s)
        SOFTMAX_ZERO: e = Where(s != 0, Exp(s - ReduceMax(s)), 0); e / ReduceSum(e)
        PROBIT: sqrt(2) erfinv(2 s - 1), erfinv as the interpreter computes it (Winitzki's guess,
                three Newton steps on Erf; +-inf at +-1, NaN outside)
        Cast(s, to = the output's type)

with the tables of ``compiler.ops.trees`` (the interpreter walks the same ones).  An X that is not
a static matrix leaves the node alone, and the planner then names it as unsupported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.diagnostics import EmberError
from compiler.ir.core import Graph, Node
from compiler.ir.types import DType, TensorType
from compiler.ops.trees import (
    TreeTables,
    effective_post_transform,
    tables_from_tree_ensemble,
    tables_from_tree_regressor,
)
from compiler.passes import Pass, PassResult
from compiler.rewrite import Rewriter

TABLES_OF = {
    "ai.onnx.ml.TreeEnsemble": tables_from_tree_ensemble,
    "ai.onnx.ml.TreeEnsembleRegressor": tables_from_tree_regressor,
}


def lower_tree_ensembles(rw: Rewriter, graph: Graph) -> int:
    """Rewrite each top-level tree ensemble over a static matrix as above; returns how many were."""
    count = 0
    for node in [n for n in graph.nodes if n.op in TABLES_OF]:
        x = node.operands[0].type
        if not isinstance(x, TensorType) or not x.is_static or len(x.shape) != 2:
            continue
        try:
            tables = TABLES_OF[node.op](node.attrs)
        except ValueError as exc:
            raise EmberError(str(exc), node=node.name, op=node.op) from None
        if tables.n_nodes and int(tables.feature.max()) >= x.shape[1]:
            raise EmberError(
                f"a tree reads feature {int(tables.feature.max())}, but X has {x.shape[1]}", node=node.name, op=node.op
            )
        _rewrite(rw, node, _with_a_node(tables))
        count += 1
    return count


def _with_a_node(t: TreeTables) -> TreeTables:
    """The tables with at least one node (an ensemble of single leaves gets one unreachable node)."""
    if t.n_nodes:
        return t
    one = np.zeros(1, np.int64)
    return TreeTables(
        one,
        np.zeros(1),
        one,
        one,
        one,
        one,
        np.full((1, 1), np.nan),
        t.roots + 1,
        t.weights,
        t.mask,
        0,
        t.aggregate,
        t.post_transform,
        t.base_values,
    )


def _rewrite(rw: Rewriter, node: Node, t: TreeTables) -> None:
    rw.set_insertion_point_before(node)
    b = rw
    tables = [
        t.feature,
        t.split,
        t.mode,
        t.true_next,
        t.false_next,
        t.missing_true,
        t.members,
        t.roots,
        t.weights,
        t.mask,
    ]
    s = b.op(
        "ember.TreeEnsemble",
        [node.operands[0]] + [b.constant(np.ascontiguousarray(a)) for a in tables],
        {"depth": int(t.depth), "aggregate": t.aggregate},
    )
    if t.base_values is not None:
        s = b.op("Add", [s, b.constant(np.asarray(t.base_values, np.float64))])
    post = effective_post_transform(t)
    if post == "SOFTMAX":
        s = b.op("Softmax", [s], {"axis": -1})
    elif post == "LOGISTIC":
        s = b.op("Sigmoid", [s])
    elif post == "SOFTMAX_ZERO":
        last = b.constant(np.array([-1], np.int64))
        zero = b.constant(np.array(0.0))
        shifted = b.op("Sub", [s, b.op("ReduceMax", [s, last], {"keepdims": 1})])
        e = b.op("Where", [b.op("Not", [b.op("Equal", [s, zero])]), b.op("Exp", [shifted]), zero])
        s = b.op("Div", [e, b.op("ReduceSum", [e, last], {"keepdims": 1})])
    elif post == "PROBIT":
        s = b.op(
            "Mul",
            [
                _erfinv(b, b.op("Sub", [b.op("Add", [s, s]), b.constant(np.array(1.0))])),
                b.constant(np.array(np.sqrt(2.0))),
            ],
        )
    out = node.results[0]
    if not isinstance(out.type, TensorType) or out.type.dtype != DType.FLOAT64:
        dtype = out.type.dtype if isinstance(out.type, TensorType) else DType.FLOAT32
        s = b.op("Cast", [s], {"to": dtype.onnx})
    s.name = out.name
    rw.replace_node(node, [s])


def _erfinv(b: Rewriter, z):
    """float64 graph ops for erfinv(z), step for step ``compiler.ops.trees._erfinv``."""

    def c(v):
        return b.constant(np.array(v, np.float64))

    def op(name, *args):
        return b.op(name, list(args))

    w = op("Neg", op("Log", op("Mul", op("Sub", c(1.0), z), op("Add", c(1.0), z))))
    k = op("Sub", c(2 / (np.pi * 0.147)), op("Mul", w, c(0.5)))
    root = op("Sqrt", op("Add", op("Mul", k, k), op("Div", w, c(0.147))))
    guess = op("Mul", op("Sign", z), op("Sqrt", op("Sub", root, k)))
    for _ in range(3):
        slope = op("Mul", c(2 / np.sqrt(np.pi)), op("Exp", op("Neg", op("Mul", guess, guess))))
        guess = op("Sub", guess, op("Div", op("Sub", op("Erf", guess), z), slope))
    edge = op("Equal", op("Abs", z), c(1.0))
    return b.op("Where", [edge, op("Mul", op("Sign", z), c(np.inf)), guess])


@dataclass(frozen=True)
class LowerTreeEnsemblesPass(Pass):
    """Lower every top-level tree ensemble over a static matrix (see the module docstring)."""

    name = "lower-tree-ensembles"

    def run(self, graph: Graph) -> PassResult:
        count = lower_tree_ensembles(Rewriter(graph, rule_name=self.name), graph)
        return PassResult(count > 0, {"lowered": count})
