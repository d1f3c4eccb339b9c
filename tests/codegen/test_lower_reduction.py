"""Reduction lowerings (codegen/tvm/lower/reduction.py) compiled: run-time reduction axes and
CumSum axis, and ReduceMax/ReduceMin of infinite slices.

Each model is one node with declared output shapes, as exported models with static shapes have;
parameters are model inputs where the op allows it. The compiled library must give the
interpreter's answer for every value consistent with those shapes, and fail the run with a message
naming the op, never a wrong result, for a value that is not."""

from __future__ import annotations

import numpy as np
from compiled_checks import check, check_against_interpreter, compiled_and_reference, param_model, refused
from onnx import TensorProto, helper

F, I64, H = TensorProto.FLOAT, TensorProto.INT64, TensorProto.FLOAT16


X = np.arange(24, dtype=np.float32).reshape(2, 3, 4)


def test_cumsum_axis_at_run_time():
    rep, ref = compiled_and_reference(param_model("CumSum", [("x", F, [2, 3, 4]), ("a", I64, [])], [2, 3, 4]))
    for axis in (0, 1, 2, -1, -3):
        check(rep, ref, [X, np.array(axis, np.int64)])
    refused(rep, [X, np.array(3, np.int64)], ["CumSum", "axis"])


def test_reduce_axes_at_run_time_pick_among_the_shapes_candidates():
    """(3, 3, 2) -> (3, 2) with keepdims=0 may reduce axis 0 or 1: the run-time value decides."""
    x = np.random.default_rng(0).standard_normal((3, 3, 2)).astype(np.float32)
    rep, ref = compiled_and_reference(
        param_model("ReduceSum", [("x", F, [3, 3, 2]), ("a", I64, [1])], [3, 2], keepdims=0)
    )
    for axes in ([0], [1], [-2], [-3]):
        check(rep, ref, [x, np.array(axes, np.int64)])
    refused(rep, [x, np.array([2], np.int64)], ["ReduceSum"])


def test_float_reduce_max_min_of_infinite_slices():
    """ReduceMax of an all -inf slice is -inf (not the lowest finite float), as attention masks need."""
    x = np.array([[-np.inf, -np.inf, -np.inf], [1.0, -np.inf, 2.0]], np.float32)
    for op, values in (("ReduceMax", x), ("ReduceMin", -x)):
        check_against_interpreter(_reduce_model(op), {"x": values})


def _reduce_model(op):
    node = helper.make_node(op, ["x"], ["y"], keepdims=1, axes=[1])
    graph = helper.make_graph(
        [node], "r", [helper.make_tensor_value_info("x", F, [2, 3])], [helper.make_tensor_value_info("y", F, [2, 1])]
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
