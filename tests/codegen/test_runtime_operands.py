"""Shape parameters given as model inputs: computed with at run time, checked against the compiled shapes.

Each model here takes a parameter (Reshape's shape, Slice's starts, Pad's pads, ...) as a graph
input and declares its output shape, as exported models with static shapes do. The compiled
library must give the interpreter's answer for every value consistent with that shape, and fail
with a message, never a wrong result, for a value that is not.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from compiled_checks import check, compiled_and_reference, refused
from frontends.onnx.backend import EmberBackend

F, I = TensorProto.FLOAT, TensorProto.INT64


def model(op, inputs, out_shape, out_type=F, **attrs):
    """A one-node model: ``inputs`` are (name, elem type, shape); the output 'y' is declared."""
    node = helper.make_node(op, [name for name, _, _ in inputs], ["y"], **attrs)
    graph = helper.make_graph([node], op.lower(), [helper.make_tensor_value_info(*i) for i in inputs],
                              [helper.make_tensor_value_info("y", out_type, out_shape)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


X = np.arange(24, dtype=np.float32).reshape(2, 3, 4)


def test_reshape_shape_at_run_time():
    rep, ref = compiled_and_reference(model("Reshape", [("x", F, [2, 3, 4]), ("s", I, [2])], [6, 4]))
    for shape in ([6, 4], [-1, 4], [6, -1], [0 * 6 + 6, 4]):
        check(rep, ref, [X, np.array(shape, np.int64)])
    refused(rep, [X, np.array([4, 6], np.int64)], ["Reshape", "(6, 4)"])
    refused(rep, [X, np.array([-1, -1], np.int64)], ["Reshape"])


def test_squeeze_and_unsqueeze_axes_at_run_time():
    x = np.ones((3, 1, 4), np.float32)
    rep, ref = compiled_and_reference(model("Squeeze", [("x", F, [3, 1, 4]), ("a", I, [1])], [3, 4]))
    check(rep, ref, [x, np.array([1])])
    check(rep, ref, [x, np.array([-2])])
    refused(rep, [x, np.array([0])], ["Squeeze"])
    rep, ref = compiled_and_reference(model("Unsqueeze", [("x", F, [3, 4]), ("a", I, [1])], [3, 1, 4]))
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
    (got,) = rep.run([x, np.array([start], np.int64), np.array([end], np.int64), np.array([1], np.int64),
                      np.array([step], np.int64)])
    np.testing.assert_array_equal(got, x[:, start:end:step])


@pytest.fixture(scope="module")
def slice_library():
    inputs = [("x", F, [2, 12]), ("starts", I, [1]), ("ends", I, [1]), ("axes", I, [1]), ("steps", I, [1])]
    rep = EmberBackend.prepare(model("Slice", inputs, [2, 4]), compile=True)
    return rep, np.arange(24, dtype=np.float32).reshape(2, 12)


def test_slice_with_another_extent_is_refused(slice_library):
    rep, x = slice_library
    refused(rep, [x, np.array([0]), np.array([5]), np.array([1]), np.array([1])], ["Slice", "(2, 4)"])
    refused(rep, [x, np.array([0]), np.array([4]), np.array([1]), np.array([0])], ["Slice"])  # step 0


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "wrap"])
def test_pad_amounts_at_run_time(mode):
    rep, ref = compiled_and_reference(model("Pad", [("x", F, [2, 3, 4]), ("p", I, [6])], [3, 5, 6], mode=mode))
    for pads in ([1, 0, 1, 0, 2, 1], [0, 2, 0, 1, 0, 2], [1, 1, 2, 0, 1, 0]):
        check(rep, ref, [X, np.array(pads, np.int64)])
    refused(rep, [X, np.array([1, 1, 1, 1, 1, 1], np.int64)], ["Pad"])


def test_pad_with_negative_pads_crops():
    """ONNX allows negative pads (they remove elements); onnx.reference's Pad refuses them, the
    interpreter's Pad kernel does not."""
    rep, ref = compiled_and_reference(model("Pad", [("x", F, [2, 3, 4]), ("p", I, [6])], [2, 2, 5]))
    pads = np.array([0, -1, 0, 0, 0, 1], np.int64)
    (got,) = rep.run([X, pads])
    np.testing.assert_array_equal(got, np.pad(X[:, 1:, :], [(0, 0), (0, 0), (0, 1)]))
    check(rep, ref, [X, pads])


def test_range_bounds_at_run_time():
    inputs = [("s", F, []), ("l", F, []), ("d", F, [])]
    rep, ref = compiled_and_reference(model("Range", inputs, [5]))
    for s, lim, d in ((0.0, 5.0, 1.0), (1.5, 4.0, 0.5), (10.0, 0.5, -2.0)):
        check(rep, ref, [np.array(s, np.float32), np.array(lim, np.float32), np.array(d, np.float32)])
    refused(rep, [np.array(0, np.float32), np.array(6, np.float32), np.array(1, np.float32)], ["Range"])


def test_expand_tile_and_constant_of_shape_operands_are_checked():
    x = np.arange(3, dtype=np.float32).reshape(3, 1)
    rep, ref = compiled_and_reference(model("Expand", [("x", F, [3, 1]), ("s", I, [2])], [3, 4]))
    check(rep, ref, [x, np.array([1, 4])])
    check(rep, ref, [x, np.array([3, 4])])
    refused(rep, [x, np.array([3, 5])], ["Expand"])
    rep, ref = compiled_and_reference(model("Tile", [("x", F, [3, 1]), ("r", I, [2])], [6, 2]))
    check(rep, ref, [x, np.array([2, 2])])
    refused(rep, [x, np.array([1, 2])], ["Tile"])
    rep, _ = compiled_and_reference(model("ConstantOfShape", [("s", I, [2])], [2, 3]))
    assert rep.run([np.array([2, 3])])[0].shape == (2, 3)
    refused(rep, [np.array([3, 2])], ["ConstantOfShape"])


def test_cumsum_axis_at_run_time():
    rep, ref = compiled_and_reference(model("CumSum", [("x", F, [2, 3, 4]), ("a", I, [])], [2, 3, 4]))
    for axis in (0, 1, 2, -1, -3):
        check(rep, ref, [X, np.array(axis, np.int64)])
    refused(rep, [X, np.array(3, np.int64)], ["CumSum", "axis"])


def test_reduce_axes_at_run_time_pick_among_the_shapes_candidates():
    """(3, 3, 2) -> (3, 2) with keepdims=0 may reduce axis 0 or 1: the run-time value decides."""
    x = np.random.default_rng(0).standard_normal((3, 3, 2)).astype(np.float32)
    rep, ref = compiled_and_reference(model("ReduceSum", [("x", F, [3, 3, 2]), ("a", I, [1])], [3, 2], keepdims=0))
    for axes in ([0], [1], [-2], [-3]):
        check(rep, ref, [x, np.array(axes, np.int64)])
    refused(rep, [x, np.array([2], np.int64)], ["ReduceSum"])


def test_trilu_diagonal_at_run_time():
    x = np.arange(16, dtype=np.float32).reshape(4, 4)
    rep, ref = compiled_and_reference(model("Trilu", [("x", F, [4, 4]), ("k", I, [])], [4, 4], upper=0))
    for k in (-5, -1, 0, 2, 9):
        check(rep, ref, [x, np.array(k, np.int64)])


def test_dropout_training_mode_and_ratio_at_run_time():
    """Training with ratio 0 is the identity; a nonzero ratio in training mode fails the run."""
    inputs = [("x", F, [2, 3, 4]), ("r", F, []), ("t", TensorProto.BOOL, [])]
    rep, ref = compiled_and_reference(model("Dropout", inputs, [2, 3, 4]))
    for ratio, training in ((0.0, True), (0.7, False), (0.0, False)):
        check(rep, ref, [X, np.array(ratio, np.float32), np.array(training)])
    refused(rep, [X, np.array(0.5, np.float32), np.array(True)], ["Dropout", "training mode"])


def test_dropout_constant_training_mode_with_a_ratio_refused_at_compile_time():
    from codegen import CodegenError

    training = helper.make_tensor("t", TensorProto.BOOL, [], [True])
    node = helper.make_node("Dropout", ["x", "", "t"], ["y"])
    graph = helper.make_graph([node], "dropout", [helper.make_tensor_value_info("x", F, [2, 3, 4])],
                              [helper.make_tensor_value_info("y", F, [2, 3, 4])], initializer=[training])
    with pytest.raises(CodegenError, match="Dropout: training mode"):
        EmberBackend.prepare(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), compile=True)
