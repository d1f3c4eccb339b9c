"""Tree ensembles through the compiled path (``lower-tree-ensembles`` in codegen-prepare).

Random forests in both encodings compile into a table-walking kernel whose output equals the
interpreter's (which walks the same tables, and is itself checked against onnxruntime in
tests/ops/test_kernel_trees.py); NaN features, equality and membership tests, single-leaf trees and
every aggregate and compiled post transform are drawn.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest
import tvm  # noqa: F401  (a hard dependency: a broken install fails here)
from compiled_checks import check, compiled_and_reference  # noqa: E402
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto

from compiler.diagnostics import EmberError  # noqa: E402
from compiler.testing.tree_models import Leaf, random_features, random_forest, regressor_model, tree_ensemble_model  # noqa: E402
from frontends.onnx.backend import EmberBackend  # noqa: E402


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    trees=st.integers(1, 6),
    depth=st.integers(1, 6),
    targets=st.integers(1, 3),
    aggregate=st.integers(0, 3),
    post=st.integers(0, 3),
    double=st.booleans(),
)
def test_tree_ensemble_compiles_to_the_interpreters_answer(seed, trees, depth, targets, aggregate, post, double):
    rng = np.random.default_rng(seed)
    forest = random_forest(rng, trees, depth, 4, targets, members=True)
    x = random_features(rng, 9, 4, np.float64 if double else np.float32)
    model = tree_ensemble_model(
        forest, 4, targets, aggregate, post, rows=9, dtype=TensorProto.DOUBLE if double else TensorProto.FLOAT
    )
    rep, ref = compiled_and_reference(model)
    (got,) = check(rep, ref, [x], tol=1e-6)
    assert got.dtype == x.dtype


@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    trees=st.integers(1, 6),
    depth=st.integers(1, 6),
    targets=st.integers(1, 3),
    aggregate=st.sampled_from(["SUM", "AVERAGE", "MIN", "MAX"]),
    post=st.sampled_from(["NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO"]),
)
def test_regressor_compiles_and_matches_onnxruntime(seed, trees, depth, targets, aggregate, post):
    import onnxruntime as ort

    rng = np.random.default_rng(seed)
    forest = random_forest(rng, trees, depth, 3, targets, members=False)
    x = random_features(rng, 7, 3)
    model = regressor_model(forest, 3, targets, aggregate, post, np.round(rng.normal(size=targets), 2), rows=7)
    rep, ref = compiled_and_reference(model)
    (got,) = check(rep, ref, [x], tol=1e-6)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"X": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_a_forest_of_single_leaves():
    """No branch node at all: the kernel gets one unreachable node and walks no step."""
    forest = [Leaf(np.array([1.5, -0.5]), 0), Leaf(np.array([0.25, 2.0]), 1)]
    model = regressor_model(forest, 2, 2, "SUM", "NONE", rows=3)
    rep, ref = compiled_and_reference(model)
    (got,) = check(rep, ref, [np.zeros((3, 2), np.float32)])
    np.testing.assert_array_equal(got, [[1.75, 1.5]] * 3)


def test_a_scikit_learn_sized_forest():
    """100 trees of depth 8 over 20 features: the walk is 8 materialised steps, not one expression."""
    rng = np.random.default_rng(5)
    forest = random_forest(rng, 100, 8, 20, 1, members=False)
    x = rng.normal(size=(64, 20)).astype(np.float32)
    rep, ref = compiled_and_reference(regressor_model(forest, 20, 1, "AVERAGE", "NONE", [0.5], rows=64))
    check(rep, ref, [x], tol=1e-6)


def test_probit_compiles():
    """sqrt(2) erfinv(2 s - 1) as graph ops: the normal quantile inside (0, 1), inf at 1, NaN outside."""
    forest = [Leaf(np.array([0.3, 1.0]), 0), Leaf(np.array([0.5, 1.0]), 1), Leaf(np.array([0.05, 0.2]), 0)]
    x = np.zeros((2, 2), np.float32)
    rep, ref = compiled_and_reference(regressor_model(forest, 2, 2, "SUM", "PROBIT", rows=2))
    (got,) = check(rep, ref, [x], tol=1e-6)  # sums 0.85 and 2.2
    np.testing.assert_allclose(got[:, 0], NormalDist().inv_cdf(0.85), rtol=1e-6)
    assert np.isnan(got[:, 1]).all()
    rep, ref = compiled_and_reference(regressor_model(forest[:2], 2, 2, "AVERAGE", "PROBIT", rows=2))
    (got,) = check(rep, ref, [x], tol=1e-6)  # averages 0.4 and 1.0
    np.testing.assert_allclose(got[:, 0], NormalDist().inv_cdf(0.4), rtol=1e-6)
    assert np.isposinf(got[:, 1]).all()


def test_a_feature_outside_x_is_refused_by_node():
    forest = random_forest(np.random.default_rng(4), 2, 3, 5, 1, members=False)
    model = tree_ensemble_model(forest, 5, 1, rows=2)
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 2
    with pytest.raises(EmberError, match=r"node 'Y'.*TreeEnsemble.*reads feature [2-4], but X has 2"):
        EmberBackend.prepare(model, compile=True)
