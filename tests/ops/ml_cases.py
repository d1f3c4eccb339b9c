"""Hand cases for ai.onnx.ml ops that onnx's node suite does not exercise.

The expected values come from an independent implementation: onnxruntime
runs the same one-node model (its ML ops are separate C++ kernels), and most
cases also carry a NumPy formula.  Ops over maps (CastMap, DictVectorizer,
ZipMap) need map types, which Ember's type system does not have; their cases
check that building the node fails with a clear error rather than silently.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

from compiler import Builder, Graph, SequenceType, TensorType, interpret, verify
from compiler import onnx_bridge as bridge
from compiler.ops import InferenceError

ML = "ai.onnx.ml"
ML_CASES = {}
# Known bugs in code owned outside tests/: op -> reason (the case runs as xfail).
ML_KNOWN_BUGS = {
    f"{ML}.CategoryMapper": "onnx.reference has no CategoryMapper kernel and compiler/ops/reference_onnx.py then "
    "looks the op up in the default domain; Ember needs its own kernel",
    f"{ML}.ZipMap": "onnx.reference has no ZipMap kernel (as for CategoryMapper); Ember needs its own kernel",
}


def ml_case(name):
    def deco(fn):
        ML_CASES[f"{ML}.{name}"] = fn
        return fn

    return deco


def run_both(op: str, inputs: dict[str, np.ndarray], attrs: dict, n_out: int = 1) -> tuple[list, list]:
    """Outputs of Ember's interpreter and of onnxruntime for one ai.onnx.ml node."""
    import onnxruntime as ort

    g = Graph(op)
    b = Builder(g)
    params = [b.param(name, TensorType.of(value)) for name, value in inputs.items()]
    outs = b.op(f"{ML}.{op}", params, attrs, num_results=n_out, names=[f"y{i}" for i in range(n_out)])
    g.outputs = list(outs) if n_out > 1 else [outs]
    verify(g)
    got = interpret(g, inputs)
    ours = [got[v.name] for v in g.outputs]
    for v, value in zip(g.outputs, ours):
        assert TensorType.of(value).is_compatible(v.type), f"{op}: {v.type} vs data {TensorType.of(value)}"
    node = helper.make_node(op, list(inputs), [f"y{i}" for i in range(n_out)], domain=ML, **attrs)
    graph = helper.make_graph(
        [node],
        op,
        [helper.make_tensor_value_info(k, bridge.DType.from_np(v.dtype).onnx, v.shape) for k, v in inputs.items()],
        [onnx.ValueInfoProto(name=f"y{i}") for i in range(n_out)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid(ML, 3)])
    model.ir_version = 8
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return ours, session.run(None, inputs)


def assert_close_all(ours: list, theirs: list, rtol=1e-5, atol=1e-6) -> None:
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        b = np.asarray(b)
        assert a.shape == b.shape, (a.shape, b.shape)
        if b.dtype.kind in "OUS":
            np.testing.assert_array_equal(a.astype(object), b.astype(object))
        else:
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


X = np.array([[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]], np.float32)


@ml_case("Scaler")
def scaler():
    ours, theirs = run_both("Scaler", {"x": X}, {"offset": [1.0, 0.0, -1.0], "scale": [2.0, 0.5, 1.0]})
    np.testing.assert_allclose(ours[0], (X - [1, 0, -1]) * [2, 0.5, 1])
    assert_close_all(ours, theirs)


@ml_case("Normalizer")
def normalizer():
    for norm in ("MAX", "L1", "L2"):
        ours, theirs = run_both("Normalizer", {"x": X}, {"norm": norm})
        assert_close_all(ours, theirs)
    np.testing.assert_allclose(ours[0], X / np.linalg.norm(X, axis=1, keepdims=True), rtol=1e-6)


@ml_case("LinearRegressor")
def linear_regressor():
    coef = [0.5, -1.0, 2.0, 1.0, 1.0, 1.0]
    ours, theirs = run_both(
        "LinearRegressor", {"x": X}, {"coefficients": coef, "intercepts": [1.0, -1.0], "targets": 2}
    )
    np.testing.assert_allclose(ours[0], X @ np.array(coef).reshape(2, 3).T + [1, -1], rtol=1e-6)
    assert_close_all(ours, theirs)


@ml_case("LinearClassifier")
def linear_classifier():
    coef = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    ours, theirs = run_both(
        "LinearClassifier",
        {"x": X},
        {"coefficients": coef, "intercepts": [0.0, 0.0, 0.1], "classlabels_ints": [7, 8, 9]},
        n_out=2,
    )
    np.testing.assert_array_equal(ours[0], [9, 8])
    assert_close_all(ours, theirs)


@ml_case("Imputer")
def imputer():
    x = np.array([[1.0, np.nan, 3.0], [np.nan, 5.0, 6.0]], np.float32)
    ours, theirs = run_both(
        "Imputer", {"x": x}, {"imputed_value_floats": [0.0, -1.0, 0.0], "replaced_value_float": float("nan")}
    )
    np.testing.assert_array_equal(ours[0], [[1, -1, 3], [0, 5, 6]])
    assert_close_all(ours, theirs)


@ml_case("FeatureVectorizer")
def feature_vectorizer():
    a, b = X, np.array([[10.0], [20.0]], np.float32)
    ours, theirs = run_both("FeatureVectorizer", {"a": a, "b": b}, {"inputdimensions": [3, 1]})
    np.testing.assert_array_equal(ours[0], np.concatenate([a, b], axis=1))
    assert_close_all(ours, theirs)


@ml_case("CategoryMapper")
def category_mapper():
    x = np.array(["cat", "dog", "eel"], dtype=object)
    ours, theirs = run_both(
        "CategoryMapper", {"x": x}, {"cats_strings": ["cat", "dog"], "cats_int64s": [1, 2], "default_int64": -1}
    )
    np.testing.assert_array_equal(ours[0], [1, 2, -1])
    assert_close_all(ours, theirs)


@ml_case("OneHotEncoder")
def one_hot_encoder():
    x = np.array([[3], [1], [5]], np.int64)
    ours, theirs = run_both("OneHotEncoder", {"x": x}, {"cats_int64s": [1, 3, 5], "zeros": 1})
    assert ours[0].shape[-1] == 3 and ours[0].reshape(3, 3).argmax(-1).tolist() == [1, 0, 2]
    assert_close_all(ours, theirs)


SV = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]  # two support vectors of length 3


@ml_case("SVMRegressor")
def svm_regressor():
    ours, theirs = run_both(
        "SVMRegressor",
        {"x": X},
        {
            "support_vectors": SV,
            "coefficients": [0.5, -1.0],
            "rho": [0.25],
            "kernel_type": "LINEAR",
            "n_supports": 2,
            "kernel_params": [1.0, 0.0, 1.0],
        },
    )
    np.testing.assert_allclose(ours[0].reshape(-1), 0.5 * X[:, 0] - X[:, 1] + 0.25, rtol=1e-6)
    assert_close_all(ours, theirs)


@ml_case("SVMClassifier")
def svm_classifier():
    ours, theirs = run_both(
        "SVMClassifier",
        {"x": X},
        {
            "support_vectors": SV,
            "coefficients": [1.0, -1.0],
            "rho": [0.0],
            "kernel_type": "LINEAR",
            "kernel_params": [1.0, 0.0, 1.0],
            "vectors_per_class": [1, 1],
            "classlabels_ints": [0, 1],
        },
        n_out=2,
    )
    assert_close_all(ours, theirs)


def _map_input_is_refused(op: str, attrs: dict) -> None:
    """Ops that read maps: Ember has no map type, so a tensor operand must fail type inference."""
    g = Graph(op)
    b = Builder(g)
    x = b.param("x", TensorType.of(X))
    with pytest.raises(InferenceError, match="unsupported type: tensor"):
        b.node(f"{ML}.{op}", [x], attrs)


@ml_case("ZipMap")
def zip_map():
    """A sequence of maps (typed ``seq<?>``, maps being opaque): one {label: score} dict per row."""
    g = Graph("zipmap")
    b = Builder(g)
    x = b.param("x", TensorType.of(X))
    y = b.op(f"{ML}.ZipMap", [x], {"classlabels_int64s": [0, 1, 2]}, names=["y"])
    assert isinstance(y.type, SequenceType)
    g.outputs = [y]
    got = interpret(g, {"x": X})["y"]
    assert got == [{0: 1.0, 1: -2.0, 2: 3.0}, {0: 0.5, 1: 4.0, 2: -1.0}]


@ml_case("TreeEnsembleRegressor")
def tree_ensemble_regressor():
    """Two stumps, two targets, AVERAGE plus base values (the legacy encoding scikit-learn exports)."""
    attrs = dict(
        nodes_treeids=[0, 0, 0, 1, 1, 1],
        nodes_nodeids=[0, 1, 2, 0, 1, 2],
        nodes_featureids=[0, 0, 0, 2, 0, 0],
        nodes_values=[0.75, 0, 0, 0.0, 0, 0],
        nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF", "BRANCH_GT", "LEAF", "LEAF"],
        nodes_truenodeids=[1, 0, 0, 1, 0, 0],
        nodes_falsenodeids=[2, 0, 0, 2, 0, 0],
        target_treeids=[0, 0, 0, 0, 1, 1, 1, 1],
        target_nodeids=[1, 1, 2, 2, 1, 1, 2, 2],
        target_ids=[0, 1, 0, 1, 0, 1, 0, 1],
        target_weights=[1.0, 2.0, 3.0, 4.0, 0.5, 0.25, -1.0, -2.0],
        n_targets=2,
        aggregate_function="AVERAGE",
        base_values=[10.0, 20.0],
    )
    ours, theirs = run_both("TreeEnsembleRegressor", {"x": X}, attrs)
    first = np.where(X[:, :1] <= 0.75, [1.0, 2.0], [3.0, 4.0])
    second = np.where(X[:, 2:] > 0.0, [0.5, 0.25], [-1.0, -2.0])
    np.testing.assert_allclose(ours[0], (first + second) / 2 + [10.0, 20.0])
    assert_close_all(ours, theirs)


@ml_case("CastMap")
def cast_map():
    _map_input_is_refused("CastMap", {})


@ml_case("DictVectorizer")
def dict_vectorizer():
    _map_input_is_refused("DictVectorizer", {"int64_vocabulary": [1, 2]})
