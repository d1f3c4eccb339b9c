"""Ops whose result depends on the data (codegen/tvm/lower/tensor/data_dependent.py, sorting.py)
compiled: NonZero, Compress, Unique and TopK; the real result, or a clean error when the data give
another size than the declared one.

Each model is one node with declared output shapes, as exported models with static shapes have;
parameters are model inputs where the op allows it. The compiled library must give the
interpreter's answer for every value consistent with those shapes, and fail the run with a message
naming the op, never a wrong result, for a value that is not."""

from __future__ import annotations

import os

import numpy as np
import pytest
from compiled_checks import check, check_against_interpreter, compiled_and_reference, node_model, refused
from onnx import TensorProto, helper

from compiler.runtime import RuntimeLoadError
from frontends.onnx.backend import EmberBackend

F, I64, B, H = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL, TensorProto.FLOAT16


def model(op, inputs, outputs, opset=21, **attrs):
    """A one-node model: ``inputs`` / ``outputs`` are (name, elem type, shape), outputs declared."""
    node = helper.make_node(op, [name for name, _, _ in inputs], [name for name, _, _ in outputs], **attrs)
    graph = helper.make_graph(
        [node],
        op.lower(),
        [helper.make_tensor_value_info(*i) for i in inputs],
        [helper.make_tensor_value_info(*o) for o in outputs],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def with_count(shape, count, seed, dtype=np.float32):
    """A random array of ``shape`` with exactly ``count`` nonzero elements."""
    rng = np.random.default_rng(seed)
    x = np.zeros(int(np.prod(shape)), dtype)
    x[rng.choice(x.size, count, replace=False)] = rng.integers(1, 9, count)
    return x.reshape(shape)


# NonZero, Compress ---------------------------------------------------------------------------------


def test_nonzero_coordinates_and_a_count_mismatch():
    rep, ref = compiled_and_reference(model("NonZero", [("x", F, [2, 3, 4])], [("y", I64, [3, 7])]))
    for seed in range(3):
        check(rep, ref, [with_count((2, 3, 4), 7, seed)])
    refused(rep, [with_count((2, 3, 4), 6, 0)], ["NonZero", "(3, 7)"])
    refused(rep, [with_count((2, 3, 4), 8, 0)], ["NonZero"])


def test_nonzero_of_bools():
    rep, ref = compiled_and_reference(model("NonZero", [("x", B, [5])], [("y", I64, [1, 2])]))
    check(rep, ref, [np.array([0, 1, 0, 0, 1], bool)])


def test_compress_along_an_axis():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    rep, ref = compiled_and_reference(
        model("Compress", [("x", F, [2, 3, 4]), ("c", B, [3])], [("y", F, [2, 2, 4])], axis=1)
    )
    check(rep, ref, [x, np.array([1, 0, 1], bool)])
    check(rep, ref, [x, np.array([0, 1, 1], bool)])
    refused(rep, [x, np.array([1, 1, 1], bool)], ["Compress", "(2, 2, 4)"])


def test_compress_a_short_condition_and_a_negative_axis():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    rep, ref = compiled_and_reference(
        model("Compress", [("x", F, [2, 3, 4]), ("c", B, [2])], [("y", F, [2, 3, 1])], axis=-1)
    )
    check(rep, ref, [x, np.array([0, 1], bool)])
    refused(rep, [x, np.array([0, 0], bool)], ["Compress"])


def test_compress_without_axis_flattens():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    rep, ref = compiled_and_reference(model("Compress", [("x", F, [3, 4]), ("c", B, [12])], [("y", F, [5])]))
    check(rep, ref, [x, with_count((12,), 5, 1, bool)])
    refused(rep, [x, with_count((12,), 4, 1, bool)], ["Compress", "(5,)"])


# Unique --------------------------------------------------------------------------------------------


def unique_model(shape, count, dtype=F, **attrs):
    """Unique with all four outputs declared for ``count`` distinct items."""
    axis = attrs.get("axis")
    items = int(np.prod(shape)) if axis is None else shape[axis]
    y_shape = [count] if axis is None else [count if d == axis % len(shape) else s for d, s in enumerate(shape)]
    return model(
        "Unique",
        [("x", dtype, shape)],
        [("y", dtype, y_shape), ("indices", I64, [count]), ("inverse", I64, [items]), ("counts", I64, [count])],
        **attrs,
    )


def numpy_unique(x, axis=None, sort=True):
    """ONNX Unique from NumPy; sorted=0 lists the items by first occurrence (along ``axis``)."""
    flat = x.reshape(-1) if axis is None else x
    y, first, inverse, counts = np.unique(flat, True, True, True, axis=axis)
    inverse = inverse.reshape(-1)
    if not sort:
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        y = np.take(flat, first[order], axis=0 if axis is None else axis)
        first, counts, inverse = first[order], counts[order], rank[inverse]
    return [y, first.astype(np.int64), inverse.astype(np.int64), counts.astype(np.int64)]


@pytest.mark.parametrize("sort", [1, 0])
def test_unique_of_elements(sort):
    x = np.array([[2.5, 1, 1, 3], [4, 3, 1, -2]], np.float32)
    rep, ref = compiled_and_reference(unique_model([2, 4], 5, sorted=sort))
    got = rep.run([x])
    for g, w in zip(got, numpy_unique(x, sort=bool(sort))):
        np.testing.assert_array_equal(g, w)
    if sort:
        check(rep, ref, [x])
    refused(rep, [np.ones((2, 4), np.float32)], ["Unique", "(5,)"])


@pytest.mark.parametrize("sort", [1, 0])
def test_unique_of_slices_along_an_axis(sort):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 2, (2, 6, 2)).astype(np.int64)
    x[:, 4], x[:, 5] = x[:, 1], x[:, 0]  # repeated slices
    axis_items = np.unique(x, axis=1).shape[1]
    rep, ref = compiled_and_reference(unique_model([2, 6, 2], axis_items, I64, axis=1, sorted=sort))
    for g, w in zip(rep.run([x]), numpy_unique(x, axis=1, sort=bool(sort))):
        np.testing.assert_array_equal(g, w)
    if sort:
        check(rep, ref, [x])
    refused(rep, [np.zeros((2, 6, 2), np.int64)], ["Unique", "distinct slices"])


@pytest.mark.parametrize("outputs", [1, 2, 3])
def test_unique_with_fewer_outputs(outputs):
    x = np.array([2, 1, 1, 3, 4, 3, 1], np.float32)
    for sort in (0, 1):
        declared = [("y", F, [4]), ("indices", I64, [4]), ("inverse", I64, [7])][:outputs]
        rep = EmberBackend.prepare(model("Unique", [("x", F, [7])], declared, sorted=sort), compile=True)
        got = rep.run([x])
        assert len(got) == outputs
        for g, w in zip(got, numpy_unique(x, sort=bool(sort))):
            np.testing.assert_array_equal(g, w)


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads the resident size from /proc")
def test_failing_runs_free_their_scratch_memory():
    """The kernel frees its heap scratch before the size check fails: repeated failures do not leak."""
    n = 50_000
    rep = EmberBackend.prepare(unique_model([n], 10), compile=True)
    bad = (np.arange(n) % 11).astype(np.float32)

    def resident_mib():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    refused(rep, [bad], ["Unique"])
    before = resident_mib()
    for _ in range(60):  # about 2 MB of scratch each: a leak would add over 100 MiB
        with pytest.raises(RuntimeLoadError):
            rep.run([bad])
    assert resident_mib() - before < 30


def test_unique_of_many_elements_sorts_in_n_log_n():
    rng = np.random.default_rng(4)
    x = rng.permutation(np.repeat(np.arange(500, dtype=np.float32), 8))
    rep, ref = compiled_and_reference(unique_model([4000], 500))
    check(rep, ref, [x])


def test_compress_a_long_condition_must_not_select_past_the_axis():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    rep, ref = compiled_and_reference(model("Compress", [("x", F, [2, 3]), ("c", B, [5])], [("y", F, [2, 1])], axis=1))
    check(rep, ref, [x, np.array([0, 0, 1, 0, 0], bool)])
    refused(rep, [x, np.array([0, 0, 1, 0, 1], bool)], ["Compress", "past the end"])


# TopK ------------------------------------------------------------------------------------------------


def top_k_model(shape, k, axis, largest, elem=F):
    out = list(shape)
    out[axis] = k
    return node_model(
        "TopK",
        [("x", elem, list(shape)), ("k", I64, [1])],
        [("v", elem, out), ("i", I64, out)],
        axis=axis,
        largest=largest,
    )


@pytest.mark.parametrize(
    "shape,k,axis,largest",
    [((3, 11), 4, 1, 1), ((4, 5, 6), 2, 1, 0), ((2, 9), 9, -1, 1), ((6, 3), 1, 0, 0), ((5,), 5, 0, 0)],
)
def test_top_k_matches_interpreter_with_ties(shape, k, axis, largest):
    x = np.random.default_rng(k).integers(0, 3, shape).astype(np.float32)  # many ties: lower index first
    check_against_interpreter(top_k_model(shape, k, axis, largest), {"x": x, "k": np.array([k], np.int64)})


@pytest.mark.parametrize(
    "elem,dtype", [(TensorProto.INT32, np.int32), (TensorProto.UINT64, np.uint64), (H, np.float16)]
)
def test_top_k_other_element_types(elem, dtype):
    x = np.random.default_rng(1).integers(0, 50, (3, 8)).astype(dtype)
    check_against_interpreter(top_k_model((3, 8), 3, 1, 1, elem), {"x": x, "k": np.array([3], np.int64)})


def test_top_k_long_axis_is_fast_and_checks_k(tmp_path):
    """A 40000-long axis (heap, not a quadratic scan) matches a stable argsort; another K is refused."""
    shape, k = (3, 40000), 7
    rep = EmberBackend.prepare(top_k_model(shape, k, 1, 1), compile=True)
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    x[:, 100:200] = x[:, :1]  # some exact ties
    values, indices = rep.run({"x": x, "k": np.array([k], np.int64)})
    want = np.argsort(-x, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(indices, want)
    np.testing.assert_array_equal(values, np.take_along_axis(x, want, 1))
    with pytest.raises(RuntimeLoadError, match="K must be 7"):
        rep.run({"x": x, "k": np.array([3], np.int64)})


def test_top_k_nan_ranks_above_numbers():
    x = np.array([[1.0, np.nan, 3.0, -1.0, np.nan]], np.float32)
    rep = EmberBackend.prepare(top_k_model((1, 5), 3, 1, 1), compile=True)
    values, indices = rep.run({"x": x, "k": np.array([3], np.int64)})
    np.testing.assert_array_equal(indices, [[1, 4, 2]])
