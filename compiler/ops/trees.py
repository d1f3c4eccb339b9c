"""Tree ensembles as flat tables, shared by the interpreter and codegen.

``ai.onnx.ml.TreeEnsemble`` (opset 5) and the older ``TreeEnsembleRegressor`` both become
``TreeTables``. Branch nodes and leaves share one numbering: nodes ``0..N-1``, leaves
``N..N+L-1``. A node tests ``X[row, feature]`` against its split (``mode``: 0 LEQ, 1 LT, 2 GTE,
3 GT, 4 EQ, 5 NEQ, or 6 membership in its row of ``members``); a NaN feature goes the true way
where ``missing_true``. A leaf steps to itself, so ``depth`` steps from a tree's root reach its leaf
whatever the path. Leaf ``l`` adds ``weights[l, t]`` to every target ``t`` with ``mask[l, t]``; the
trees' contributions are aggregated (SUM; AVERAGE = SUM / trees; MIN; MAX; a target that no tree
reaches is 0, as onnxruntime has it), ``base_values`` are added and the post transform applied
(``effective_post_transform`` says which).

Comparisons are made in float64 between the feature and the split as written (both exact there),
and scores are accumulated in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MODES = {
    "BRANCH_LEQ": 0,
    "BRANCH_LT": 1,
    "BRANCH_GTE": 2,
    "BRANCH_GT": 3,
    "BRANCH_EQ": 4,
    "BRANCH_NEQ": 5,
    "BRANCH_MEMBER": 6,
}
MEMBER = MODES["BRANCH_MEMBER"]
AGGREGATES = ("AVERAGE", "SUM", "MIN", "MAX")  # TreeEnsemble's integer codes are the positions
POST_TRANSFORMS = ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT")


@dataclass(frozen=True)
class TreeTables:
    feature: np.ndarray  # int64 [N]
    split: np.ndarray  # float64 [N]
    mode: np.ndarray  # int64 [N]
    true_next: np.ndarray  # int64 [N], shared numbering
    false_next: np.ndarray  # int64 [N]
    missing_true: np.ndarray  # int64 [N], 0 or 1
    members: np.ndarray  # float64 [N, M], NaN-padded (M >= 1)
    roots: np.ndarray  # int64 [trees], shared numbering
    weights: np.ndarray  # float64 [L, targets]
    mask: np.ndarray  # int64 [L, targets], 0 or 1
    depth: int  # steps from any root to its leaf
    aggregate: str  # one of AGGREGATES
    post_transform: str  # one of POST_TRANSFORMS
    base_values: np.ndarray | None  # float64 [targets]

    @property
    def n_nodes(self) -> int:
        return len(self.feature)

    @property
    def n_targets(self) -> int:
        return self.weights.shape[1]


def _text(value, default: str) -> str:
    if value is None:
        return default
    return value.decode() if isinstance(value, bytes) else str(value)


def _floats(attrs: dict, name: str):
    """A float list attribute, or its ``_as_tensor`` twin, as float64 (None when neither is set)."""
    for key in (name + "_as_tensor", name):
        value = attrs.get(key)
        if value is not None and len(np.asarray(value).reshape(-1)):
            return np.asarray(value, np.float64).reshape(-1)
    return None


def tables_from_tree_ensemble(attrs: dict) -> TreeTables:
    """``ai.onnx.ml.TreeEnsemble`` (opset 5): per-node arrays, leaf ids where ``nodes_*leafs``."""
    feature = np.asarray(attrs["nodes_featureids"], np.int64).reshape(-1)
    n = len(feature)
    mode = np.asarray(attrs["nodes_modes"], np.int64).reshape(-1)
    split = np.asarray(attrs["nodes_splits"], np.float64).reshape(-1)
    leaf_weights = np.asarray(attrs["leaf_weights"], np.float64).reshape(-1)
    leaf_targets = np.asarray(attrs["leaf_targetids"], np.int64).reshape(-1)
    n_targets = int(attrs["n_targets"])
    _check(len(mode) == n and len(split) == n, "nodes_modes, nodes_splits and nodes_featureids differ in length")
    _check(len(leaf_weights) == len(leaf_targets), "leaf_weights and leaf_targetids differ in length")
    _check(
        bool(np.all((leaf_targets >= 0) & (leaf_targets < n_targets))),
        f"a leaf_targetids entry is outside [0, {n_targets})",
    )
    _check(bool(np.all((mode >= 0) & (mode <= MEMBER))), "a nodes_modes entry is not 0..6")
    steps = []
    for side in ("true", "false"):
        ids = np.asarray(attrs[f"nodes_{side}nodeids"], np.int64).reshape(-1)
        leafs = np.asarray(attrs[f"nodes_{side}leafs"], np.int64).reshape(-1)
        _check(
            len(ids) == n and len(leafs) == n, f"nodes_{side}nodeids/nodes_{side}leafs differ in length from the nodes"
        )
        steps.append(np.where(leafs != 0, ids + n, ids))
    weights = np.zeros((len(leaf_weights), n_targets))
    mask = np.zeros((len(leaf_weights), n_targets), np.int64)
    weights[np.arange(len(leaf_weights)), leaf_targets] = leaf_weights
    mask[np.arange(len(leaf_weights)), leaf_targets] = 1
    missing = attrs.get("nodes_missing_value_tracks_true")
    aggregate = int(attrs.get("aggregate_function", 1))
    post = int(attrs.get("post_transform", 0))
    _check(0 <= aggregate < len(AGGREGATES), f"aggregate_function {aggregate} is not 0..3")
    _check(0 <= post < len(POST_TRANSFORMS), f"post_transform {post} is not 0..4")
    members = _member_rows(mode, attrs.get("membership_values"))
    return _finish(
        feature,
        split,
        mode,
        steps[0],
        steps[1],
        missing,
        members,
        np.asarray(attrs["tree_roots"], np.int64).reshape(-1),
        weights,
        mask,
        AGGREGATES[aggregate],
        POST_TRANSFORMS[post],
        None,
    )


def tables_from_tree_regressor(attrs: dict) -> TreeTables:
    """``ai.onnx.ml.TreeEnsembleRegressor``: nodes keyed by (tree id, node id), mode ``LEAF`` for
    leaves; a tree's root is its first listed node; targets listed per (tree, leaf)."""
    tree_ids = [int(v) for v in attrs["nodes_treeids"]]
    node_ids = [int(v) for v in attrs["nodes_nodeids"]]
    modes = [_text(m, "") for m in attrs["nodes_modes"]]
    values = _floats(attrs, "nodes_values")
    values = np.zeros(len(modes)) if values is None else values
    features = [int(v) for v in attrs.get("nodes_featureids") or [0] * len(modes)]
    trues = [int(v) for v in attrs.get("nodes_truenodeids") or [0] * len(modes)]
    falses = [int(v) for v in attrs.get("nodes_falsenodeids") or [0] * len(modes)]
    missing = list(attrs.get("nodes_missing_value_tracks_true") or [0] * len(modes))
    _check(
        len({len(tree_ids), len(node_ids), len(modes), len(values), len(features), len(trues), len(falses)}) == 1,
        "the nodes_* attributes differ in length",
    )
    unknown = sorted({m for m in modes if (m != "LEAF" and m not in MODES) or m == "BRANCH_MEMBER"})
    _check(not unknown, f"unknown node mode(s) {unknown}")
    branch, leaf = {}, {}
    for i, (tree, node, m) in enumerate(zip(tree_ids, node_ids, modes)):
        key = (tree, node)
        _check(key not in branch and key not in leaf, f"node {node} of tree {tree} is listed twice")
        (leaf if m == "LEAF" else branch)[key] = i
    branch_index = {key: k for k, key in enumerate(branch)}
    leaf_index = {key: len(branch) + k for k, key in enumerate(leaf)}

    def target_of(tree: int, node: int) -> int:
        key = (tree, node)
        _check(key in branch_index or key in leaf_index, f"tree {tree} refers to node {node}, which is not listed")
        return branch_index.get(key, leaf_index.get(key))

    rows = list(branch.values())
    n_targets = int(attrs.get("n_targets", 1))
    weights = np.zeros((max(len(leaf), 1), n_targets))
    mask = np.zeros((max(len(leaf), 1), n_targets), np.int64)
    target_weights = _floats(attrs, "target_weights")
    for tree, node, target, w in zip(
        attrs.get("target_treeids") or [],
        attrs.get("target_nodeids") or [],
        attrs.get("target_ids") or [],
        [] if target_weights is None else target_weights,
    ):
        key = (int(tree), int(node))
        _check(key in leaf_index, f"a target refers to node {node} of tree {tree}, which is not a leaf")
        _check(0 <= int(target) < n_targets, f"target id {target} is outside [0, {n_targets})")
        weights[leaf_index[key] - len(branch), int(target)] += w
        mask[leaf_index[key] - len(branch), int(target)] = 1
    roots = np.array([target_of(tree, node_ids[i]) for tree, i in _first_per_tree(tree_ids).items()], np.int64)
    aggregate = _text(attrs.get("aggregate_function"), "SUM")
    post = _text(attrs.get("post_transform"), "NONE")
    _check(aggregate in AGGREGATES, f"aggregate_function {aggregate!r} is not one of {AGGREGATES}")
    _check(post in POST_TRANSFORMS, f"post_transform {post!r} is not one of {POST_TRANSFORMS}")
    base = _floats(attrs, "base_values")
    _check(
        base is None or len(base) == n_targets,
        f"base_values has {0 if base is None else len(base)} entries, not n_targets={n_targets}",
    )
    pick = np.array(rows, np.int64)
    return _finish(
        np.array(features, np.int64)[pick],
        values[pick],
        np.array([MODES[modes[i]] for i in rows], np.int64),
        np.array([target_of(tree_ids[i], trues[i]) for i in rows], np.int64),
        np.array([target_of(tree_ids[i], falses[i]) for i in rows], np.int64),
        [missing[i] for i in rows],
        np.full((len(rows), 1), np.nan),
        roots,
        weights,
        mask,
        aggregate,
        post,
        base,
    )


def _first_per_tree(tree_ids: list[int]) -> dict[int, int]:
    first: dict[int, int] = {}
    for i, tree in enumerate(tree_ids):
        first.setdefault(tree, i)
    return first


def _member_rows(mode: np.ndarray, membership_values) -> np.ndarray:
    """[N, M] members of each BRANCH_MEMBER node (in node order, NaN-delimited in the attribute)."""
    sets: list[list[float]] = [[]]
    for v in np.asarray(membership_values if membership_values is not None else [], np.float64).reshape(-1):
        if np.isnan(v):
            sets.append([])
        else:
            sets[-1].append(float(v))
    sets = sets[:-1] if not sets[-1] else sets
    member_nodes = np.flatnonzero(mode == MEMBER)
    _check(
        len(sets) >= len(member_nodes) if len(member_nodes) else True,
        f"membership_values holds {len(sets)} set(s) for {len(member_nodes)} BRANCH_MEMBER node(s)",
    )
    rows = np.full((len(mode), max([len(s) for s in sets] + [1])), np.nan)
    for node, members in zip(member_nodes, sets):
        rows[node, : len(members)] = members
    return rows


def _finish(
    feature, split, mode, true_next, false_next, missing, members, roots, weights, mask, aggregate, post, base
) -> TreeTables:
    n, leaves = len(feature), len(weights)
    for name, ids in (("true", true_next), ("false", false_next)):
        _check(bool(np.all((ids >= 0) & (ids < n + leaves))), f"a nodes_{name} id is outside the nodes and leaves")
    _check(len(roots) > 0 and bool(np.all((roots >= 0) & (roots < n + leaves))), "tree_roots is empty or out of range")
    _check(bool(np.all(feature >= 0)), "a nodes_featureids entry is negative")
    given = missing is not None and len(missing) > 0
    missing = np.asarray(missing, np.int64).reshape(-1) if given else np.zeros(n, np.int64)
    _check(len(missing) == n, "nodes_missing_value_tracks_true differs in length from the nodes")
    depth = _depth(roots, true_next, false_next, n)
    return TreeTables(
        feature,
        split,
        mode,
        true_next,
        false_next,
        (missing != 0).astype(np.int64),
        members,
        roots,
        weights,
        mask,
        depth,
        aggregate,
        post,
        base,
    )


def _depth(roots, true_next, false_next, n: int) -> int:
    """The most branch nodes on a path from a root to a leaf; a cycle is an error."""
    memo: dict[int, int] = {}
    for root in roots.tolist():
        stack, on_path = [(root, False)], set()
        while stack:
            at, done = stack.pop()
            if at >= n or at in memo:
                continue
            if done:
                on_path.discard(at)
                memo[at] = 1 + max(memo.get(int(true_next[at]), 0), memo.get(int(false_next[at]), 0))
                continue
            _check(at not in on_path, f"the tree from root {root} loops back to node {at}")
            on_path.add(at)
            stack.append((at, True))
            stack += [(int(true_next[at]), False), (int(false_next[at]), False)]
    return max([memo.get(int(r), 0) for r in roots] + [0])


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(f"tree ensemble: {message}")


def leaves_reached(x: np.ndarray, t: TreeTables) -> np.ndarray:
    """int64 [rows, trees]: the leaf (shared numbering) each row reaches in each tree."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    _check(
        t.n_nodes == 0 or int(t.feature.max()) < x.shape[1],
        f"a node reads feature {int(t.feature.max()) if t.n_nodes else 0} of {x.shape[1]}",
    )
    state = np.broadcast_to(t.roots, (len(x), len(t.roots))).copy()
    rows = np.arange(len(x))[:, None]
    for _ in range(t.depth if t.n_nodes else 0):
        node = np.minimum(state, t.n_nodes - 1)
        go_true = branch_taken(
            x[rows, t.feature[node]], t.split[node], t.mode[node], t.members[node], t.missing_true[node]
        )
        state = np.where(state >= t.n_nodes, state, np.where(go_true, t.true_next[node], t.false_next[node]))
    return state


def branch_taken(v, split, mode, members, missing_true):
    """Whether each feature value ``v`` takes its node's true branch (NumPy, elementwise)."""
    with np.errstate(invalid="ignore"):
        tests = [
            v <= split,
            v < split,
            v >= split,
            v > split,
            v == split,
            v != split,
            np.any(v[..., None] == members, axis=-1),
        ]
    taken = np.choose(mode, tests)
    return taken | ((missing_true != 0) & np.isnan(v))


def scores(x: np.ndarray, t: TreeTables) -> np.ndarray:
    """float64 [rows, targets]: aggregated leaf weights plus base values, before the post transform."""
    leaf = leaves_reached(x, t) - t.n_nodes
    w, m = t.weights[leaf], t.mask[leaf] != 0  # [rows, trees, targets]
    if t.aggregate in ("SUM", "AVERAGE"):
        out = np.where(m, w, 0.0).sum(axis=1) / (len(t.roots) if t.aggregate == "AVERAGE" else 1)
    else:
        pick = np.min if t.aggregate == "MIN" else np.max
        out = pick(np.where(m, w, np.inf if t.aggregate == "MIN" else -np.inf), axis=1)
        out = np.where(m.any(axis=1), out, 0.0)
    return out if t.base_values is None else out + t.base_values


def post_transform(y: np.ndarray, kind: str) -> np.ndarray:
    """The post transforms over the last axis (SOFTMAX_ZERO leaves zeros out of the softmax)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "SOFTMAX":
            e = np.exp(y - y.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)
        if kind == "LOGISTIC":
            return np.exp(-np.logaddexp(0, -y))
        if kind == "SOFTMAX_ZERO":
            e = np.where(y != 0, np.exp(y - y.max(axis=-1, keepdims=True)), 0.0)
            return e / e.sum(axis=-1, keepdims=True)
        if kind == "PROBIT":
            return math.sqrt(2) * _erfinv(2 * y - 1)
    return y


def _erfinv(z: np.ndarray) -> np.ndarray:
    """Inverse error function: a rational first guess refined by Newton steps on ``math.erf``."""
    z = np.asarray(z, np.float64)
    out = np.full(z.shape, np.nan)
    out[z == 1], out[z == -1] = np.inf, -np.inf
    inside = np.abs(z) < 1
    w = -np.log((1 - z[inside]) * (1 + z[inside]))  # -ln(1 - z^2)
    c = 2 / (np.pi * 0.147) - w / 2  # Winitzki's approximation, a = 0.147
    guess = np.sign(z[inside]) * np.sqrt(np.sqrt(c * c + w / 0.147) - c)
    erf = np.vectorize(math.erf)
    for _ in range(3):
        guess = guess - (erf(guess) - z[inside]) / (2 / math.sqrt(math.pi) * np.exp(-guess * guess))
    out[inside] = guess
    return out


def effective_post_transform(t: TreeTables) -> str:
    """The post transform applied: with one target only PROBIT is (onnxruntime's reading; a
    softmax over one score is 1)."""
    return t.post_transform if t.n_targets > 1 or t.post_transform == "PROBIT" else "NONE"


def evaluate(x: np.ndarray, t: TreeTables) -> np.ndarray:
    """float64 [rows, targets]: the ensemble's output."""
    return post_transform(scores(x, t), effective_post_transform(t))
