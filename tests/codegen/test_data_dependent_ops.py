"""Ops whose result size depends on the data, compiled: the real result, or a clean error.

Each model declares its output shapes, as exported models with static shapes do. The compiled
library computes the result with the run-time data and must match the interpreter whenever the
data yields the declared size, and fail with a message naming the op (never a truncated or padded
result) when it does not.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

pytest.importorskip("tvm")

from compiler.runtime import RuntimeLoadError  # noqa: E402
from frontends.onnx.backend import EmberBackend  # noqa: E402

F, I, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def model(op, inputs, outputs, opset=21, **attrs):
    """A one-node model: ``inputs`` / ``outputs`` are (name, elem type, shape), outputs declared."""
    node = helper.make_node(op, [name for name, _, _ in inputs], [name for name, _, _ in outputs], **attrs)
    graph = helper.make_graph([node], op.lower(), [helper.make_tensor_value_info(*i) for i in inputs],
                              [helper.make_tensor_value_info(*o) for o in outputs])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def compiled_and_reference(onnx_model):
    return EmberBackend.prepare(onnx_model, compile=True), EmberBackend.prepare(onnx_model)


def check(rep, ref, feeds):
    got, want = rep.run(feeds), ref.run(feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)


def refused(rep, feeds, words):
    with pytest.raises(RuntimeLoadError) as info:
        rep.run(feeds)
    for word in words:
        assert word in str(info.value)


def with_count(shape, count, seed, dtype=np.float32):
    """A random array of ``shape`` with exactly ``count`` nonzero elements."""
    rng = np.random.default_rng(seed)
    x = np.zeros(int(np.prod(shape)), dtype)
    x[rng.choice(x.size, count, replace=False)] = rng.integers(1, 9, count)
    return x.reshape(shape)


# NonZero, Compress ---------------------------------------------------------------------------------

def test_nonzero_coordinates_and_a_count_mismatch():
    rep, ref = compiled_and_reference(model("NonZero", [("x", F, [2, 3, 4])], [("y", I, [3, 7])]))
    for seed in range(3):
        check(rep, ref, [with_count((2, 3, 4), 7, seed)])
    refused(rep, [with_count((2, 3, 4), 6, 0)], ["NonZero", "(3, 7)"])
    refused(rep, [with_count((2, 3, 4), 8, 0)], ["NonZero"])


def test_nonzero_of_bools():
    rep, ref = compiled_and_reference(model("NonZero", [("x", B, [5])], [("y", I, [1, 2])]))
    check(rep, ref, [np.array([0, 1, 0, 0, 1], bool)])


def test_compress_along_an_axis():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    rep, ref = compiled_and_reference(model("Compress", [("x", F, [2, 3, 4]), ("c", B, [3])],
                                            [("y", F, [2, 2, 4])], axis=1))
    check(rep, ref, [x, np.array([1, 0, 1], bool)])
    check(rep, ref, [x, np.array([0, 1, 1], bool)])
    refused(rep, [x, np.array([1, 1, 1], bool)], ["Compress", "(2, 2, 4)"])


def test_compress_a_short_condition_and_a_negative_axis():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    rep, ref = compiled_and_reference(model("Compress", [("x", F, [2, 3, 4]), ("c", B, [2])],
                                            [("y", F, [2, 3, 1])], axis=-1))
    check(rep, ref, [x, np.array([0, 1], bool)])
    refused(rep, [x, np.array([0, 0], bool)], ["Compress"])


def test_compress_without_axis_flattens():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    rep, ref = compiled_and_reference(model("Compress", [("x", F, [3, 4]), ("c", B, [12])], [("y", F, [5])]))
    check(rep, ref, [x, with_count((12,), 5, 1, bool)])
    refused(rep, [x, with_count((12,), 4, 1, bool)], ["Compress", "(5,)"])
