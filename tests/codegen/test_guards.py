"""Guarded kernels: a compiled library fed out-of-range indices, zero integer divisors, NaN and Inf
gives onnxruntime's answer or fails the run with a message naming the op and the node, never a
wrong result with rc 0, and never reads or writes outside a buffer.

Each model is one named node with declared output shapes; onnxruntime is the arbiter of in-range
answers. Where onnxruntime's NaN handling depends on the element order (ReduceMax, MaxPool), the
answer is NumPy's and the interpreter's: a NaN in a slice or window gives NaN.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from compiled_checks import compiled_and_reference, refused
from onnx import TensorProto, helper, numpy_helper

from codegen.tvm.te_util import checked_indices
from frontends.onnx.backend import EmberBackend

F, I32, I64 = TensorProto.FLOAT, TensorProto.INT32, TensorProto.INT64
TYPES = {
    np.dtype(np.float32): F,
    np.dtype(np.int32): I32,
    np.dtype(np.int64): I64,
    np.dtype(np.uint32): TensorProto.UINT32,
}
NAN, INF = np.nan, np.inf


def one_node(op, inputs, out_shape, out_type=F, initializers=(), opset=18, domain="", **attrs):
    """A model of one node named ``node_<op>``: ``inputs`` maps names to example arrays (their type
    and shape are declared), ``initializers`` to constant arrays."""
    node = helper.make_node(
        op, [*inputs, *dict(initializers)], ["y"], name=f"node_{op.lower()}", domain=domain, **attrs
    )
    graph = helper.make_graph(
        [node],
        op.lower(),
        [helper.make_tensor_value_info(n, TYPES[v.dtype], list(v.shape)) for n, v in inputs.items()],
        [helper.make_tensor_value_info("y", out_type, out_shape)],
        initializer=[numpy_helper.from_array(v, n) for n, v in dict(initializers).items()],
    )
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(graph, opset_imports=opsets)


def like_onnxruntime(model, rep, feeds: list):
    """The compiled run gives onnxruntime's outputs (NaN where it has NaN)."""
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    want = session.run(None, dict(zip(names, feeds)))
    got = rep.run(feeds)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_array_equal(g, w)


def refused_by_both(model, rep, feeds: list, words: list):
    """onnxruntime refuses the run, and so does the compiled library, naming the op and the node."""
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    with pytest.raises(Exception):  # noqa: B017 - onnxruntime's own error types
        session.run(None, dict(zip([i.name for i in session.get_inputs()], feeds)))
    refused(rep, feeds, words)


X = np.arange(15, dtype=np.float32).reshape(5, 3)
U = -np.ones((2, 3), np.float32)

# (op, inputs, out shape, attrs, in-range index feeds, out-of-range index feeds); the index operand
# is the second input, the others are the example values
INDEX_CASES = [
    ("Gather", {"x": X, "i": np.zeros(4, np.int64)}, [4, 3], {}, [[0, -1, 4, -5]], [[0, 5, 1, 1], [0, -6, 1, 1]]),
    (
        "Gather",  # long enough for the checking loop (te_util.CHECK_LOOP_FROM)
        {"x": X, "i": np.zeros(40, np.int64)},
        [40, 3],
        {},
        [np.arange(40) % 10 - 5],
        [np.arange(40) % 6, -(np.arange(40) % 7)],
    ),
    (
        "Gather",
        {"x": X, "i": np.zeros((2, 2), np.int32)},
        [5, 2, 2],
        {"axis": 1},
        [[[0, 2], [-3, -1]]],
        [[[0, 3], [1, 1]]],
    ),
    (
        "GatherElements",
        {"x": X, "i": np.zeros((2, 3), np.int64)},
        [2, 3],
        {"axis": 1},
        [[[0, -1, 2], [1, 1, -3]]],
        [[[0, 3, 2], [1, 1, 1]], [[0, 0, 0], [-4, 1, 1]]],
    ),
    (
        "GatherND",
        {"x": X, "i": np.zeros((2, 2), np.int64)},
        [2],
        {},
        [[[4, -1], [-5, 2]]],
        [[[4, 3], [1, 1]], [[5, 0], [1, 1]], [[0, 0], [-6, 0]]],
    ),
    (
        "ScatterElements",
        {"x": X, "i": np.zeros((2, 3), np.int64), "u": U},
        [5, 3],
        {"axis": 0},
        [[[0, -1, 2], [1, 3, -3]]],
        [[[0, 5, 2], [1, 1, 1]], [[0, 1, 2], [1, -6, 1]]],
    ),
    (
        "ScatterND",
        {"x": X, "i": np.zeros((2, 1), np.int64), "u": U},
        [5, 3],
        {},
        [[[-1], [2]]],
        [[[7], [1]], [[-6], [1]]],
    ),
]


@pytest.mark.parametrize("op, inputs, out_shape, attrs, good, bad", INDEX_CASES, ids=lambda c: None)
def test_indices_are_checked(op, inputs, out_shape, attrs, good, bad):
    model = one_node(op, inputs, out_shape, **attrs)
    rep, _ = compiled_and_reference(model)
    values = list(inputs.values())
    dtype = values[1].dtype
    for index in good:
        like_onnxruntime(model, rep, [values[0], np.asarray(index, dtype), *values[2:]])
    for index in bad:
        refused_by_both(model, rep, [values[0], np.asarray(index, dtype), *values[2:]], [op, f"node_{op.lower()}"])


def test_constant_indices_are_checked_when_compiling():
    hook = checked_indices(lambda attrs, in_types: in_types[0][0][0])
    types = [((5, 3), np.float32), ((4,), np.int64)]
    wrapped = hook({}, types, np.array([0, -1, 4, -5]))
    assert wrapped.tolist() == [0, 4, 4, 0]  # a copy: the lowering drops the run-time check
    outside = np.array([0, 5])
    assert hook({}, types, outside) is outside  # left for the run-time check to refuse
    model = one_node("Gather", {"x": X}, [4, 3], initializers={"i": np.array([0, -1, 4, -5])})
    rep, _ = compiled_and_reference(model)
    like_onnxruntime(model, rep, [X])
    model = one_node("Gather", {"x": X}, [2, 3], initializers={"i": np.array([0, 5])})
    refused(compiled_and_reference(model)[0], [X], ["Gather", "node_gather"])


def test_reverse_sequence_lengths_are_checked():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    model = one_node("ReverseSequence", {"x": x, "lens": np.zeros(3, np.int64)}, [4, 3], batch_axis=1, time_axis=0)
    rep, _ = compiled_and_reference(model)
    like_onnxruntime(model, rep, [x, np.array([4, 0, 2])])
    refused_by_both(model, rep, [x, np.array([5, 1, 1])], ["ReverseSequence", "node_reversesequence"])
    refused(rep, [x, np.array([1, -1, 1])], ["ReverseSequence"])


def test_array_feature_extractor_indices_are_checked():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    model = one_node("ArrayFeatureExtractor", {"x": x, "i": np.zeros(20, np.int64)}, [2, 20], domain="ai.onnx.ml")
    rep, _ = compiled_and_reference(model)
    like_onnxruntime(model, rep, [x, np.arange(20) % 3])
    refused(rep, [x, np.arange(20) % 4], ["ArrayFeatureExtractor", "node_arrayfeatureextractor"])


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("op, attrs", [("Div", {}), ("Mod", {}), ("Mod", {"fmod": 1})])
def test_integer_division_by_zero_fails_the_run(op, attrs, dtype):
    a = np.array([7, -7, 5, -5, 0, np.iinfo(dtype).min], dtype)
    model = one_node(op, {"a": a, "b": a}, [6], TYPES[np.dtype(dtype)], **attrs)
    rep, _ = compiled_and_reference(model)
    like_onnxruntime(model, rep, [a, np.array([2, 2, -3, 3, 7, 3], dtype)])
    refused_by_both(model, rep, [a, np.array([2, 2, 0, 3, 7, 3], dtype)], [op, f"node_{op.lower()}", "by zero"])
    # the lowest value over -1 traps an x86 division (onnxruntime dies of SIGFPE): NumPy's answer
    got = rep.run([a, np.full(6, -1, dtype)])[0]
    want = -a if op == "Div" else np.zeros(6, dtype)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("op", ["Div", "Mod"])
def test_unsigned_division_by_zero_fails_the_run(op):
    a = np.array([7, 0, 4294967295, 9], np.uint32)
    model = one_node(op, {"a": a, "b": a}, [4], TensorProto.UINT32)
    rep, _ = compiled_and_reference(model)
    like_onnxruntime(model, rep, [a, np.array([2, 5, 4294967295, 1], np.uint32)])
    refused_by_both(model, rep, [a, np.array([2, 0, 1, 1], np.uint32)], [op, "by zero"])


def test_constant_integer_divisors():
    a = np.arange(-6, 6, dtype=np.int64)
    model = one_node("Div", {"a": a}, [12], I64, initializers={"b": np.array([3, -1, -4, 5] * 3, np.int64)})
    like_onnxruntime(model, compiled_and_reference(model)[0], [a])
    model = one_node("Div", {"a": a}, [12], I64, initializers={"b": np.array([3, 0, 4, 5] * 3, np.int64)})
    refused(compiled_and_reference(model)[0], [a], ["Div", "by zero"])


V = np.array([NAN, -1, 2, NAN, INF, -INF, 0.5, -0.0], np.float32)
W = np.array([1, NAN, NAN, 1, NAN, 1, -INF, INF], np.float32)
NAN_CASES = [
    ("Relu", {"x": V}, {}, {}),
    ("HardSigmoid", {"x": V}, {}, {}),
    ("HardSwish", {"x": V}, {}, {}),
    ("Clip", {"x": V}, {"lo": np.array(0, np.float32), "hi": np.array(1, np.float32)}, {}),
    ("Clip", {"x": V, "lo": np.array(0, np.float32), "hi": np.array(1, np.float32)}, {}, {}),
    ("Max", {"x": V, "w": W}, {}, {}),
    ("Min", {"x": V, "w": W}, {}, {}),
    ("Max", {"x": V, "w": W, "z": np.zeros(1, np.float32)}, {}, {}),
    ("Min", {"x": V, "w": W[::-1].copy(), "z": np.zeros(1, np.float32)}, {}, {}),
]


@pytest.mark.parametrize("op, inputs, initializers, attrs", NAN_CASES, ids=lambda c: None)
def test_nan_and_inf_like_onnxruntime(op, inputs, initializers, attrs):
    model = one_node(op, inputs, [8], initializers=initializers, **attrs)
    like_onnxruntime(model, compiled_and_reference(model)[0], list(inputs.values()))


def nan_rows():
    x = np.arange(1, 49, dtype=np.float32).reshape(6, 8)
    x[0, 0], x[1, 5], x[2, 7], x[3, :] = NAN, NAN, NAN, NAN
    x[4, 2], x[5, 1] = INF, -INF
    return x


@pytest.mark.parametrize("op", ["ReduceMax", "ReduceMin"])
def test_reductions_keep_nan(op):
    x = nan_rows()
    model = one_node(op, {"x": x}, [6], initializers={"axes": np.array([1])}, keepdims=0)
    got = compiled_and_reference(model)[0].run([x])[0]
    np.testing.assert_array_equal(got, np.max(x, axis=1) if op == "ReduceMax" else np.min(x, axis=1))


def test_max_pools_keep_nan():
    x = nan_rows()[None, None]
    model = one_node("MaxPool", {"x": x}, [1, 1, 3, 4], kernel_shape=[2, 2], strides=[2, 2])
    rep, ref = compiled_and_reference(model)
    want = x.reshape(3, 2, 4, 2).max(axis=(1, 3))[None, None]
    np.testing.assert_array_equal(rep.run([x])[0], want)
    np.testing.assert_array_equal(ref.run([x])[0], want)
    model = one_node("GlobalMaxPool", {"x": x[:, :, 4:]}, [1, 1, 1, 1])
    np.testing.assert_array_equal(compiled_and_reference(model)[0].run([x[:, :, 4:]])[0], [[[[INF]]]])
    model = one_node("GlobalMaxPool", {"x": x}, [1, 1, 1, 1])
    assert np.isnan(compiled_and_reference(model)[0].run([x])[0]).all()


@pytest.mark.parametrize("activation", ["Relu", "Clip"])
def test_fused_conv_epilogues_keep_nan(activation):
    x = np.random.default_rng(0).standard_normal((1, 2, 6, 6)).astype(np.float32)
    x[0, 0, 2, 3], x[0, 1, 4, 4] = NAN, INF
    w = np.random.default_rng(1).standard_normal((4, 2, 3, 3)).astype(np.float32)
    bounds = [numpy_helper.from_array(np.array(v, np.float32), n) for n, v in (("lo", 0.0), ("hi", 6.0))]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node(activation, ["c"] + (["lo", "hi"] if activation == "Clip" else []), ["y"], name="act"),
    ]
    graph = helper.make_graph(
        nodes,
        "conv_act",
        [helper.make_tensor_value_info("x", F, [1, 2, 6, 6])],
        [helper.make_tensor_value_info("y", F, [1, 4, 6, 6])],
        initializer=[numpy_helper.from_array(w, "w"), *bounds],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    rep = compiled_and_reference(model)[0]
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = session.run(None, {"x": x})[0]
    got = rep.run([x])[0]
    assert np.isnan(want).sum() > 0
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("last", [0, 1])
@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
def test_arg_extremes_take_the_nan(op, last):
    """A NaN is the largest and the smallest element (NumPy, the interpreter); ties and rows without
    NaN as onnxruntime."""
    x = np.array([[NAN, 1, 2, 2], [3, NAN, 1, NAN], [1, 2, 2, 0], [-INF, INF, 0, INF]], np.float32)
    model = one_node(op, {"x": x}, [4], I64, axis=1, keepdims=0, select_last_index=last)
    rep, ref = compiled_and_reference(model)
    got = rep.run([x])[0]
    np.testing.assert_array_equal(got, ref.run([x])[0])
    first = np.argmax(x, axis=1) if op == "ArgMax" else np.argmin(x, axis=1)
    assert got[:2].tolist() == ([0, 3] if last else first[:2].tolist())
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(got[2:], session.run(None, {"x": x})[0][2:])


def test_grid_sample_with_non_finite_coordinates_stays_defined():
    """NaN and infinite grid coordinates reach no integer cast (LLVM makes those poison): the run
    succeeds, and finite coordinates give onnxruntime's answer."""
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    grid = np.array([[[[NAN, 0.1], [0.2, INF], [-1e30, 0.3], [0.5, 0.5], [-0.9, 0.7]]]], np.float32)
    model = one_node("GridSample", {"x": x, "g": grid}, [1, 1, 1, 5], opset=20, padding_mode="zeros")
    got = compiled_and_reference(model)[0].run([x, grid])[0].ravel()
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = session.run(None, {"x": x, "g": grid})[0].ravel()
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got[3:], want[3:], rtol=1e-5)


def test_constant_indices_shared_by_gathers_of_other_axis_lengths():
    """One constant index tensor, wrapped for each Gather's own axis (-2 is row 3 of 5, row 0 of 2)."""
    x1, x2 = X, X[:2].copy()
    nodes = [
        helper.make_node("Gather", ["x1", "i"], ["y1"], name="g1"),
        helper.make_node("Gather", ["x2", "i"], ["y2"], name="g2"),
    ]
    graph = helper.make_graph(
        nodes,
        "shared",
        [helper.make_tensor_value_info("x1", F, [5, 3]), helper.make_tensor_value_info("x2", F, [2, 3])],
        [helper.make_tensor_value_info("y1", F, [2, 3]), helper.make_tensor_value_info("y2", F, [2, 3])],
        initializer=[numpy_helper.from_array(np.array([-2, 0], np.int64), "i")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    like_onnxruntime(model, compiled_and_reference(model)[0], [x1, x2])


def test_a_scalar_constant_index_keeps_its_rank():
    """A 0-d constant index (X[t] in written-out recurrent ops) is wrapped at compile time and stays 0-d."""
    x = np.random.default_rng(0).random((2, 16, 4), dtype=np.float32)
    for index in (1, -1):
        model = helper.make_model(
            helper.make_graph(
                [helper.make_node("Gather", ["x", "i"], ["y"], axis=0)],
                "g",
                [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 16, 4])],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, [16, 4])],
                [helper.make_tensor("i", TensorProto.INT64, [], [index])],
            ),
            opset_imports=[helper.make_opsetid("", 21)],
        )
        (got,) = EmberBackend.prepare(model, compile=True).run([x])
        np.testing.assert_array_equal(got, x[index])
