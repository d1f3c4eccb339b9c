"""Random tree ensembles as one-node ONNX models, in both encodings Ember reads.

``random_forest`` draws trees (features, comparison modes, splits from a small grid so that the
equality modes and ties matter, NaN routing); ``tree_ensemble_model`` writes them as
``ai.onnx.ml.TreeEnsemble`` (opset 5: one target per leaf) and ``regressor_model`` as the older
``TreeEnsembleRegressor`` (opset 3: every leaf writes every target, as scikit-learn's converter does).
Used by the interpreter's and the compiled path's tests and the conformance docs' examples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import TensorProto, helper

GRID = (-1.0, -0.5, 0.0, 0.5, 1.0)  # splits and features are drawn from here
MEMBERS = (-1.0, 0.0, 1.0)  # onnxruntime accepts only integer members
MODE_NAMES = ("BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ", "BRANCH_MEMBER")


@dataclass
class Branch:
    feature: int
    mode: int
    split: float
    members: tuple[float, ...]
    missing_true: int
    true: object = None  # Branch or Leaf
    false: object = None


@dataclass
class Leaf:
    weights: np.ndarray  # [n_targets]
    target: int  # the one target of the TreeEnsemble encoding


def random_forest(
    rng: np.random.Generator, n_trees: int, depth: int, n_features: int, n_targets: int, members: bool
) -> list:
    """``n_trees`` trees of depth at most ``depth`` (a tree may be a single leaf)."""

    def grow(level: int):
        if level == depth or (level > 0 and rng.random() < 0.25):
            return Leaf(np.round(rng.normal(size=n_targets), 2), int(rng.integers(n_targets)))
        mode = int(rng.integers(7 if members else 6))
        chosen = tuple(float(v) for v in rng.choice(MEMBERS, size=int(rng.integers(1, 3)), replace=False))
        return Branch(
            int(rng.integers(n_features)),
            mode,
            float(rng.choice(GRID)),
            chosen if mode == 6 else (),
            int(rng.integers(2)),
            grow(level + 1),
            grow(level + 1),
        )

    return [grow(0) for _ in range(n_trees)]


def random_features(
    rng: np.random.Generator, rows: int, n_features: int, dtype=np.float32, integers: bool = False
) -> np.ndarray:
    """Values from the grid, some between grid points and some NaN; with ``integers`` only whole
    numbers and NaN (onnxruntime tests membership on the feature cast to an integer)."""
    x = rng.choice(MEMBERS + (2.0, np.nan) if integers else GRID + (0.25, -0.75, np.nan), size=(rows, n_features))
    return x.astype(dtype)


def leaves_of(tree) -> list:
    """The leaves of ``tree`` (a Branch or a Leaf), left to right."""
    return [node for node in _nodes(tree) if isinstance(node, Leaf)]


def _nodes(tree) -> list:
    out, stack = [], [tree]
    while stack:
        at = stack.pop()
        out.append(at)
        if isinstance(at, Branch):
            stack += [at.false, at.true]
    return out


def tree_ensemble_model(
    trees: list,
    n_features: int,
    n_targets: int,
    aggregate: int = 1,
    post_transform: int = 0,
    rows=None,
    dtype=TensorProto.FLOAT,
):
    """``ai.onnx.ml.TreeEnsemble`` (opset 5); a single-leaf tree is a node whose branches both name the leaf."""
    branches, leaves, roots, index = [], [], [], {}
    for tree in trees:
        if isinstance(tree, Leaf):  # degenerate: a node with both branches on the leaf
            tree = Branch(0, 0, 0.0, (), 0, tree, tree)
        roots.append(len(branches))
        for node in _nodes(tree):
            if id(node) in index:
                continue
            group = branches if isinstance(node, Branch) else leaves
            index[id(node)] = len(group)
            group.append(node)
    np_type = {TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64}[dtype]
    membership = [v for b in branches if b.mode == 6 for v in b.members + (np.nan,)]
    attrs = dict(
        n_targets=n_targets,
        aggregate_function=aggregate,
        post_transform=post_transform,
        tree_roots=roots,
        nodes_featureids=[b.feature for b in branches],
        nodes_modes=helper.make_tensor("modes", TensorProto.UINT8, [len(branches)], [b.mode for b in branches]),
        nodes_splits=helper.make_tensor("splits", dtype, [len(branches)], [b.split for b in branches]),
        nodes_truenodeids=[index[id(b.true)] for b in branches],
        nodes_trueleafs=[int(isinstance(b.true, Leaf)) for b in branches],
        nodes_falsenodeids=[index[id(b.false)] for b in branches],
        nodes_falseleafs=[int(isinstance(b.false, Leaf)) for b in branches],
        nodes_missing_value_tracks_true=[b.missing_true for b in branches],
        leaf_targetids=[leaf.target for leaf in leaves],
        leaf_weights=helper.make_tensor(
            "weights", dtype, [len(leaves)], [float(leaf.weights[leaf.target]) for leaf in leaves]
        ),
    )
    if membership:
        attrs["membership_values"] = helper.make_tensor(
            "members", dtype, [len(membership)], np.asarray(membership, np_type).tolist()
        )
    node = helper.make_node("TreeEnsemble", ["X"], ["Y"], domain="ai.onnx.ml", **attrs)
    graph = helper.make_graph(
        [node],
        "forest",
        [helper.make_tensor_value_info("X", dtype, [rows, n_features])],
        [helper.make_tensor_value_info("Y", dtype, [rows, n_targets])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", 5)])


def regressor_model(
    trees: list,
    n_features: int,
    n_targets: int,
    aggregate: str = "SUM",
    post_transform: str = "NONE",
    base_values=None,
    rows=None,
    dtype=TensorProto.FLOAT,
):
    """``ai.onnx.ml.TreeEnsembleRegressor`` (opset 3); node ids number each tree's nodes in preorder."""
    cols = {
        k: []
        for k in (
            "treeids",
            "nodeids",
            "featureids",
            "values",
            "modes",
            "truenodeids",
            "falsenodeids",
            "missing_value_tracks_true",
        )
    }
    targets = {k: [] for k in ("treeids", "nodeids", "ids", "weights")}
    for t, tree in enumerate(trees):
        nodes = _nodes(tree)
        ids = {id(n): i for i, n in enumerate(nodes)}
        for i, node in enumerate(nodes):
            branch = isinstance(node, Branch)
            row = dict(
                treeids=t,
                nodeids=i,
                featureids=node.feature if branch else 0,
                values=node.split if branch else 0.0,
                modes=MODE_NAMES[node.mode] if branch else "LEAF",
                truenodeids=ids[id(node.true)] if branch else 0,
                falsenodeids=ids[id(node.false)] if branch else 0,
                missing_value_tracks_true=node.missing_true if branch else 0,
            )
            for k, v in row.items():
                cols[k].append(v)
            if not branch:
                for target, w in enumerate(node.weights):
                    for k, v in zip(("treeids", "nodeids", "ids", "weights"), (t, i, target, float(w))):
                        targets[k].append(v)
    attrs = {f"nodes_{k}": v for k, v in cols.items()} | {f"target_{k}": v for k, v in targets.items()}
    attrs |= dict(n_targets=n_targets, aggregate_function=aggregate, post_transform=post_transform)
    if base_values is not None:
        attrs["base_values"] = list(base_values)
    node = helper.make_node("TreeEnsembleRegressor", ["X"], ["Y"], domain="ai.onnx.ml", **attrs)
    graph = helper.make_graph(
        [node],
        "regressor",
        [helper.make_tensor_value_info("X", dtype, [rows, n_features])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [rows, n_targets])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
    model.ir_version = 8
    return model
