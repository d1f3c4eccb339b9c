"""The interpreter's tree ensembles (compiler/ops/trees.py) against onnxruntime.

Random forests in both encodings: ``TreeEnsemble`` (opset 5; membership tests, degenerate
single-leaf trees, every aggregate) and ``TreeEnsembleRegressor`` (opset 3; multi-target leaves,
base values, every post transform). Where onnxruntime departs from the ONNX text, the tests say so:
it numbers TreeEnsemble's SOFTMAX and LOGISTIC the other way round, and tests membership on the
feature cast to an integer (so membership cases use whole-number features).
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto

from compiler.diagnostics import EmberError
from compiler.testing.tree_models import leaves_of, random_features, random_forest, regressor_model, tree_ensemble_model
from frontends.onnx.backend import EmberBackend

AGGREGATES = ("AVERAGE", "SUM", "MIN", "MAX")


def onnxruntime_run(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"X": x})[0]


def interpreted(model, x):
    return EmberBackend.prepare(model).run([x])[0]


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    trees=st.integers(1, 5),
    depth=st.integers(1, 5),
    targets=st.integers(1, 3),
    aggregate=st.integers(0, 3),
    post=st.sampled_from([0, 3]),
    members=st.booleans(),
    double=st.booleans(),
)
def test_tree_ensemble_matches_onnxruntime(seed, trees, depth, targets, aggregate, post, members, double):
    rng = np.random.default_rng(seed)
    forest = random_forest(rng, trees, depth, 3, targets, members)
    dtype = TensorProto.DOUBLE if double else TensorProto.FLOAT
    x = random_features(rng, 12, 3, np.float64 if double else np.float32, integers=members)
    model = tree_ensemble_model(forest, 3, targets, aggregate, post, dtype=dtype)
    got = interpreted(model, x)
    assert got.dtype == x.dtype
    np.testing.assert_allclose(got, onnxruntime_run(model, x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("ours,theirs", [(1, 2), (2, 1)])
def test_softmax_and_logistic_follow_the_onnx_numbering(ours, theirs):
    """ONNX: 1 SOFTMAX, 2 LOGISTIC; onnxruntime reads 1 as LOGISTIC and 2 as SOFTMAX."""
    rng = np.random.default_rng(7)
    forest = random_forest(rng, 3, 3, 3, 3, members=False)
    x = random_features(rng, 10, 3)
    got = interpreted(tree_ensemble_model(forest, 3, 3, 1, ours), x)
    want = onnxruntime_run(tree_ensemble_model(forest, 3, 3, 1, theirs), x)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    if ours == 1:
        np.testing.assert_allclose(got.sum(axis=1), 1, rtol=1e-6)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    trees=st.integers(1, 5),
    depth=st.integers(1, 5),
    targets=st.integers(1, 3),
    aggregate=st.sampled_from(AGGREGATES),
    post=st.sampled_from(["NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO"]),
    base=st.booleans(),
)
def test_regressor_matches_onnxruntime(seed, trees, depth, targets, aggregate, post, base):
    """With one target onnxruntime applies no post transform but PROBIT; Ember reads it the same way."""
    rng = np.random.default_rng(seed)
    forest = random_forest(rng, trees, depth, 3, targets, members=False)
    x = random_features(rng, 12, 3)
    base_values = np.round(rng.normal(size=targets), 2) if base else None
    model = regressor_model(forest, 3, targets, aggregate, post, base_values)
    got = interpreted(model, x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, onnxruntime_run(model, x), rtol=1e-5, atol=1e-6)


def test_probit_matches_onnxruntime():
    """PROBIT = sqrt(2) erfinv(2 s - 1), on scores inside (0, 1)."""
    rng = np.random.default_rng(3)
    forest = random_forest(rng, 4, 3, 3, 2, members=False)
    for leaf in (leaf for tree in forest for leaf in leaves_of(tree)):
        leaf.weights = 0.05 + 0.9 / (1 + np.exp(-leaf.weights))
    x = random_features(rng, 12, 3)
    model = regressor_model(forest, 3, 2, "AVERAGE", "PROBIT")
    got = interpreted(model, x)
    assert np.isfinite(got).all()
    # onnxruntime's erfinv is a float32 approximation
    np.testing.assert_allclose(got, onnxruntime_run(model, x), rtol=1e-3, atol=1e-3)


def test_min_with_no_tree_reaching_a_target_is_zero():
    """onnx.reference leaves float max there; onnxruntime (and Ember) give 0."""
    rng = np.random.default_rng(11)
    forest = random_forest(rng, 2, 2, 2, 3, members=False)
    for leaf in (leaf for tree in forest for leaf in leaves_of(tree)):
        leaf.target = 0
    x = random_features(rng, 6, 2)
    model = tree_ensemble_model(forest, 2, 3, aggregate=2)
    got = interpreted(model, x)
    np.testing.assert_array_equal(got[:, 1:], 0)
    np.testing.assert_allclose(got, onnxruntime_run(model, x), rtol=1e-6)


def test_a_looping_tree_is_refused_by_name():
    forest = random_forest(np.random.default_rng(0), 1, 2, 2, 1, members=False)
    model = tree_ensemble_model(forest, 2, 1)
    attrs = {a.name: a for a in model.graph.node[0].attribute}
    attrs["nodes_truenodeids"].ints[0] = 0  # the root's true branch is the root again
    attrs["nodes_trueleafs"].ints[0] = 0
    with pytest.raises(EmberError, match="TreeEnsemble.*loops back to node 0"):
        interpreted(model, np.zeros((2, 2), np.float32))
