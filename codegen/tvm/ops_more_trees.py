"""Tree ensembles (``ai.onnx.ml.TreeEnsemble``, ``TreeEnsembleRegressor``) as a table-walking kernel.

The ``lower-tree-ensembles`` pass (passes/lower_tree_ensembles.py) rewrites

    TreeEnsemble(X) / TreeEnsembleRegressor(X)
    ->  s = ember.TreeEnsemble(X, feature, split, mode, true_next, false_next, missing_true, members,
                               roots, weights, mask){depth, aggregate}            (float64)
        s = s + base_values                                   (when given)
        SOFTMAX: Softmax(s)   LOGISTIC: Sigmoid(s)
        SOFTMAX_ZERO: e = Where(s != 0, Exp(s - ReduceMax(s)), 0); e / ReduceSum(e)
        PROBIT: sqrt(2) erfinv(2 s - 1), erfinv as the interpreter computes it (Winitzki's guess,
                three Newton steps on Erf; +-inf at +-1, NaN outside)
        Cast(s, to = the output's type)

with the tables of ``compiler.ops.trees`` (the interpreter walks the same ones). An X that is not a
static matrix leaves the node alone, and the planner then names it as unsupported.

The kernel walks every (row, tree) pair ``depth`` steps, one compute stage per step:

    state_0[r, t]   = roots[t]
    state_k+1[r, t] = state_k[r, t]                          if it is a leaf (>= nodes)
                      true_next[n] or false_next[n]          by node n = state_k[r, t]'s test of
                                                             X[r, feature[n]] against split[n]
    scores[r, j]    = aggregate over t of weights[leaf, j] where mask[leaf, j], leaf = state_depth - nodes
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx

from .ops_more_common import lowering_if_missing


@lowering_if_missing("ember.TreeEnsemble", kind="reduce")
def _tree_ensemble(ctx, x, feature, split, mode, true_next, false_next, missing_true, members, roots, weights, mask):
    depth, aggregate = int(ctx.attr("depth")), ctx.attr("aggregate")
    rows, trees = int(x.shape[0]), int(roots.shape[0])
    nodes, n_members, targets = int(feature.shape[0]), int(members.shape[1]), int(weights.shape[1])
    f64 = "float64"

    def step(previous):
        def body(r, t):
            at = previous[r, t]
            n = tirx.min(at, nodes - 1)
            v = x[r, feature[n]].astype(f64)
            s = split[n]
            member = tirx.any(*[v == members[n, m] for m in range(n_members)]) if n_members > 1 else v == members[n, 0]
            nan = tirx.isnan(v)  # TVM's != is ordered (false for NaN); IEEE's and NumPy's is not
            tests = [v <= s, v < s, v >= s, v > s, v == s, tirx.Or(v != s, nan), member]
            taken = tirx.any(*[tirx.And(mode[n] == i, test) for i, test in enumerate(tests)])
            taken = tirx.Or(taken, tirx.And(missing_true[n] != 0, nan))
            return tirx.Select(at >= nodes, at, tirx.Select(taken, true_next[n], false_next[n]))
        return te.compute((rows, trees), body, name="tree_step")

    state = te.compute((rows, trees), lambda r, t: roots[t], name="tree_roots")
    for _ in range(depth):
        state = step(state)
    t = te.reduce_axis((0, trees), "t")

    def picked(r, j, empty):
        leaf = state[r, t] - nodes
        return tirx.Select(mask[leaf, j] != 0, weights[leaf, j], tirx.const(empty, f64))

    if aggregate in ("SUM", "AVERAGE"):
        scale = 1.0 / trees if aggregate == "AVERAGE" else 1.0
        total = te.compute((rows, targets), lambda r, j: te.sum(picked(r, j, 0.0), axis=t), name="tree_sum")
        return te.compute((rows, targets), lambda r, j: total[r, j] * tirx.const(scale, f64), name="tree_scores")
    pick = te.min if aggregate == "MIN" else te.max
    empty = np.inf if aggregate == "MIN" else -np.inf
    best = te.compute((rows, targets), lambda r, j: pick(picked(r, j, empty), axis=t), name="tree_best")
    u = te.reduce_axis((0, trees), "u")
    hits = te.compute((rows, targets), lambda r, j: te.sum(mask[state[r, u] - nodes, j], axis=u), name="tree_hits")
    return te.compute((rows, targets), lambda r, j: tirx.Select(hits[r, j] > 0, best[r, j], tirx.const(0.0, f64)),
                      name="tree_scores")
