"""Tensor lowerings (codegen/tvm/lower/tensor/: views, movement, creation, indexing) compiled:
Reshape, Squeeze/Unsqueeze, Slice, Pad, Range, Expand, Tile, ConstantOfShape, Trilu, SpaceToDepth,
TensorScatter and CenterCropPad, with their shape parameters at run time.

Each model is one node with declared output shapes, as exported models with static shapes have;
parameters are model inputs where the op allows it. The compiled library must give the
interpreter's answer for every value consistent with those shapes, and fail the run with a message
naming the op, never a wrong result, for a value that is not."""

from __future__ import annotations

import numpy as np
import pytest
from compiled_checks import check, check_against_interpreter, compiled_and_reference, node_model, param_model, refused
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from compiler.runtime import RuntimeLoadError
from frontends.onnx.backend import EmberBackend

F, I64, H, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.FLOAT16, TensorProto.BOOL


X = np.arange(24, dtype=np.float32).reshape(2, 3, 4)


def test_reshape_shape_at_run_time():
    rep, ref = compiled_and_reference(param_model("Reshape", [("x", F, [2, 3, 4]), ("s", I64, [2])], [6, 4]))
    for shape in ([6, 4], [-1, 4], [6, -1], [0 * 6 + 6, 4]):
        check(rep, ref, [X, np.array(shape, np.int64)])
    refused(rep, [X, np.array([4, 6], np.int64)], ["Reshape", "(6, 4)"])
    refused(rep, [X, np.array([-1, -1], np.int64)], ["Reshape"])


def test_squeeze_and_unsqueeze_axes_at_run_time():
    x = np.ones((3, 1, 4), np.float32)
    rep, ref = compiled_and_reference(param_model("Squeeze", [("x", F, [3, 1, 4]), ("a", I64, [1])], [3, 4]))
    check(rep, ref, [x, np.array([1])])
    check(rep, ref, [x, np.array([-2])])
    refused(rep, [x, np.array([0])], ["Squeeze"])
    rep, ref = compiled_and_reference(param_model("Unsqueeze", [("x", F, [3, 4]), ("a", I64, [1])], [3, 1, 4]))
    check(rep, ref, [X[0], np.array([1])])
    refused(rep, [X[0], np.array([0])], ["Unsqueeze"])  # would give (1, 3, 4): same data, other shape


@settings(max_examples=30, deadline=None)
@given(start=st.integers(-12, 12), step=st.sampled_from([-3, -2, -1, 1, 2, 3]), data=st.data())
def test_slice_starts_and_steps_at_run_time(slice_library, start, step, data):
    """Any starts/steps giving the compiled extent run; the result matches NumPy's slicing."""
    rep, x = slice_library
    n = 4
    ends = [e for e in range(-14, 15) if len(range(*slice(start, e, step).indices(12))) == n]
    if not ends:
        return
    end = data.draw(st.sampled_from(ends))
    (got,) = rep.run(
        [x, np.array([start], np.int64), np.array([end], np.int64), np.array([1], np.int64), np.array([step], np.int64)]
    )
    np.testing.assert_array_equal(got, x[:, start:end:step])


@pytest.fixture(scope="module")
def slice_library():
    inputs = [("x", F, [2, 12]), ("starts", I64, [1]), ("ends", I64, [1]), ("axes", I64, [1]), ("steps", I64, [1])]
    rep = EmberBackend.prepare(param_model("Slice", inputs, [2, 4]), compile=True)
    return rep, np.arange(24, dtype=np.float32).reshape(2, 12)


def test_slice_with_another_extent_is_refused(slice_library):
    rep, x = slice_library
    refused(rep, [x, np.array([0]), np.array([5]), np.array([1]), np.array([1])], ["Slice", "(2, 4)"])
    refused(rep, [x, np.array([0]), np.array([4]), np.array([1]), np.array([0])], ["Slice"])  # step 0


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "wrap"])
def test_pad_amounts_at_run_time(mode):
    rep, ref = compiled_and_reference(param_model("Pad", [("x", F, [2, 3, 4]), ("p", I64, [6])], [3, 5, 6], mode=mode))
    for pads in ([1, 0, 1, 0, 2, 1], [0, 2, 0, 1, 0, 2], [1, 1, 2, 0, 1, 0]):
        check(rep, ref, [X, np.array(pads, np.int64)])
    refused(rep, [X, np.array([1, 1, 1, 1, 1, 1], np.int64)], ["Pad"])


def test_pad_with_negative_pads_crops():
    """ONNX allows negative pads (they remove elements); onnx.reference's Pad refuses them, the
    interpreter's Pad kernel does not."""
    rep, ref = compiled_and_reference(param_model("Pad", [("x", F, [2, 3, 4]), ("p", I64, [6])], [2, 2, 5]))
    pads = np.array([0, -1, 0, 0, 0, 1], np.int64)
    (got,) = rep.run([X, pads])
    np.testing.assert_array_equal(got, np.pad(X[:, 1:, :], [(0, 0), (0, 0), (0, 1)]))
    check(rep, ref, [X, pads])


def test_range_bounds_at_run_time():
    inputs = [("s", F, []), ("l", F, []), ("d", F, [])]
    rep, ref = compiled_and_reference(param_model("Range", inputs, [5]))
    for s, lim, d in ((0.0, 5.0, 1.0), (1.5, 4.0, 0.5), (10.0, 0.5, -2.0)):
        check(rep, ref, [np.array(s, np.float32), np.array(lim, np.float32), np.array(d, np.float32)])
    refused(rep, [np.array(0, np.float32), np.array(6, np.float32), np.array(1, np.float32)], ["Range"])


def test_expand_tile_and_constant_of_shape_operands_are_checked():
    x = np.arange(3, dtype=np.float32).reshape(3, 1)
    rep, ref = compiled_and_reference(param_model("Expand", [("x", F, [3, 1]), ("s", I64, [2])], [3, 4]))
    check(rep, ref, [x, np.array([1, 4])])
    check(rep, ref, [x, np.array([3, 4])])
    refused(rep, [x, np.array([3, 5])], ["Expand"])
    rep, ref = compiled_and_reference(param_model("Tile", [("x", F, [3, 1]), ("r", I64, [2])], [6, 2]))
    check(rep, ref, [x, np.array([2, 2])])
    refused(rep, [x, np.array([1, 2])], ["Tile"])
    rep, _ = compiled_and_reference(param_model("ConstantOfShape", [("s", I64, [2])], [2, 3]))
    assert rep.run([np.array([2, 3])])[0].shape == (2, 3)
    refused(rep, [np.array([3, 2])], ["ConstantOfShape"])


def test_trilu_diagonal_at_run_time():
    x = np.arange(16, dtype=np.float32).reshape(4, 4)
    rep, ref = compiled_and_reference(param_model("Trilu", [("x", F, [4, 4]), ("k", I64, [])], [4, 4], upper=0))
    for k in (-5, -1, 0, 2, 9):
        check(rep, ref, [x, np.array(k, np.int64)])


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_space_to_depth_modes(mode):
    x = np.arange(2 * 4 * 6, dtype=np.float32).reshape(1, 2, 4, 6)
    m = node_model(
        "SpaceToDepth",
        [("x", F, [1, 2, 4, 6])],
        [("y", F, [1, 8, 2, 3])],
        opset=28,
        blocksize=2,
        **({"mode": mode} if mode == "CRD" else {}),
    )
    check_against_interpreter(m, {"x": x})


@pytest.mark.parametrize("mode", ["linear", "circular"])
def test_tensor_scatter(mode):
    rng = np.random.default_rng(6)
    m = node_model(
        "TensorScatter",
        [("past", F, [2, 3, 6, 4]), ("upd", F, [2, 3, 3, 4]), ("w", I64, [2])],
        [("present", F, [2, 3, 6, 4])],
        opset=24,
        mode=mode,
    )
    feeds = {
        "past": rng.standard_normal((2, 3, 6, 4)).astype(np.float32),
        "upd": rng.standard_normal((2, 3, 3, 4)).astype(np.float32),
        "w": np.array([3, 1], np.int64),
    }
    if mode == "circular":
        feeds["w"] = np.array([5, 0], np.int64)
    rep = check_against_interpreter(m, feeds)
    if mode == "linear":
        with pytest.raises(RuntimeLoadError, match="within the axis"):
            rep.run({**feeds, "w": np.array([4, 0], np.int64)})


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


def test_center_crop_pad_crops_and_pads_with_a_run_time_shape():
    x = np.arange(2 * 5 * 4, dtype=np.float32).reshape(2, 5, 4)
    rep, ref = compiled_and_reference(
        model("CenterCropPad", [("x", F, [2, 5, 4]), ("s", I64, [2])], [("y", F, [2, 2, 7])], axes=[-2, 2])
    )
    check(rep, ref, [x, np.array([2, 7], np.int64)])
    refused(rep, [x, np.array([3, 7], np.int64)], ["CenterCropPad", "shape"])


def test_center_crop_pad_on_every_axis():
    x = np.arange(3 * 6, dtype=np.int64).reshape(3, 6)
    rep, ref = compiled_and_reference(
        model("CenterCropPad", [("x", I64, [3, 6]), ("s", I64, [2])], [("y", I64, [6, 3])])
    )
    check(rep, ref, [x, np.array([6, 3], np.int64)])
