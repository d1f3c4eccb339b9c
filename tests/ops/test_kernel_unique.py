"""The interpreter's own Unique kernel, where onnx.reference's departs from the ONNX spec."""

import numpy as np
from onnx import helper

from frontends.onnx.backend import EmberBackend


def _unique(x, outputs, **attrs):
    node = helper.make_node("Unique", ["x"], outputs, **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", 1, list(x.shape))],
        [helper.make_tensor_value_info(o, 1 if o == "y" else 7, None) for o in outputs],
    )
    return EmberBackend.prepare(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])).run([x])


def test_unsorted_unique_keeps_first_occurrence_order_even_with_one_output():
    (y,) = _unique(np.array([2, 1, 1, 3, 4, 3], np.float32), ["y"], sorted=0)
    np.testing.assert_array_equal(y, [2, 1, 3, 4])


def test_unsorted_unique_along_an_axis_takes_slices_along_that_axis():
    x = np.array([[3, 1, 3], [4, 2, 4]], np.float32)
    y, first, inverse, counts = _unique(x, ["y", "i", "inv", "c"], sorted=0, axis=1)
    np.testing.assert_array_equal(y, [[3, 1], [4, 2]])
    np.testing.assert_array_equal(first, [0, 1])
    np.testing.assert_array_equal(inverse, [0, 1, 0])
    np.testing.assert_array_equal(counts, [2, 1])
    np.testing.assert_array_equal(np.take(y, inverse, axis=1), x)


def test_unique_without_axis_flattens():
    x = np.array([[2, 1], [1, 3]], np.float32)
    y, first, inverse, counts = _unique(x, ["y", "i", "inv", "c"], sorted=0)
    np.testing.assert_array_equal(y, [2, 1, 3])
    np.testing.assert_array_equal(x.reshape(-1)[first], y)
    np.testing.assert_array_equal(y[inverse], x.reshape(-1))
    np.testing.assert_array_equal(counts, [1, 2, 1])
