"""Lowerings of traditional ML ops (``ai.onnx.ml``) and of Ember's ``ember.TreeEnsemble`` kernel.

    ai.onnx.ml.Binarizer(x){threshold}      1 where x > threshold, else 0 (same type)
    ai.onnx.ml.ArrayFeatureExtractor(x, y)  x[..., y[j]] along the last axis (1-D x -> [1, len(y)])
    ember.TreeEnsemble(X, feature, split, mode, true_next, false_next, missing_true, members,
                       roots, weights, mask){depth, aggregate}

The ``lower-tree-ensembles`` pass (passes/lower_tree_ensembles.py) rewrites tree ensembles into
``ember.TreeEnsemble`` with the tables of ``compiler.ops.trees`` (the interpreter walks the same
ones). The kernel walks every (row, tree) pair ``depth`` steps, one compute stage per step:

    state_0[r, t]   = roots[t]
    state_k+1[r, t] = state_k[r, t]                          if it is a leaf (>= nodes)
                      true_next[n] or false_next[n]          by node n = state_k[r, t]'s test of
                                                             X[r, feature[n]] against split[n]
    scores[r, j]    = aggregate over t of weights[leaf, j] where mask[leaf, j], leaf = state_depth - nodes
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx

from ..registry import lowering
from ..te_util import MATERIALISED, index_in_range, is_nan, require_all, wrapped_index
from ..tir_util import unravel

# Binarizer, ArrayFeatureExtractor ----------------------------------------------------------------------


@lowering("ai.onnx.ml.Binarizer")
def _binarizer(ctx, x):
    dtype = str(x.dtype)
    threshold = tirx.const(float(ctx.attr("threshold", 0.0)), "float64")
    one, zero = tirx.const(1, dtype), tirx.const(0, dtype)
    return te.compute(x.shape, lambda *i: tirx.Select(x(*i).astype("float64") > threshold, one, zero), name="binarizer")


@lowering("ai.onnx.ml.ArrayFeatureExtractor")
def _array_feature_extractor(ctx, x, y):
    n = int(x.shape[-1])
    require_all(ctx, y, lambda v, j: index_in_range(v, n), f"an index is outside [-{n}, {n}) for the last axis")
    y_shape = [int(d) for d in y.shape]

    def body(*o):
        pick = wrapped_index(y(*unravel(o[-1], y_shape)) if y_shape else y(), n)
        lead = list(o[:-1]) if len(x.shape) > 1 else []
        return x(*lead, pick)

    return te.compute(ctx.out_shape(), body, name="array_feature_extractor")


@lowering("ember.TreeEnsemble", kind="reduce")
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
            nan = is_nan(v)  # TVM's != is ordered (false for NaN); IEEE's and NumPy's is not
            tests = [v <= s, v < s, v >= s, v > s, v == s, tirx.Or(v != s, nan), member]
            taken = tirx.any(*[tirx.And(mode[n] == i, test) for i, test in enumerate(tests)])
            taken = tirx.Or(taken, tirx.And(missing_true[n] != 0, nan))
            return tirx.Select(at >= nodes, at, tirx.Select(taken, true_next[n], false_next[n]))

        # each step reads its producer many times: inlining the chain would grow exponentially
        return te.compute((rows, trees), body, name="tree_step", attrs=MATERIALISED)

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
    return te.compute(
        (rows, targets), lambda r, j: tirx.Select(hits[r, j] > 0, best[r, j], tirx.const(0.0, f64)), name="tree_scores"
    )
