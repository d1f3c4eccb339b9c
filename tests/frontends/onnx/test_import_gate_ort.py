"""Models onnxruntime refuses (when loading them, or on the first run) are refused by Ember at
import, naming the node and the op; the cases it accepts on purpose are documented extensions.

These are the classes that mutation fuzzing (``benchmarks/fuzz.py --ort``) found accepted by
Ember and refused by onnxruntime 1.32: Resize enums, a Conv ``kernel_shape`` that is not its
weight's, a pooling window wider than the padded input, a graph output of element type 0 and a
Loop body whose iteration or condition has the wrong type.  Each test checks onnxruntime's side
too, so a test fails if onnxruntime changes its mind.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler import EmberError
from frontends.onnx import import_model
from frontends.onnx.backend import EmberBackend

F32, I64, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def model_of(nodes, inputs, outputs, initializers=(), opset=19, ir=8):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir
    return model


def ort_outputs(model, feeds: dict):
    """onnxruntime's outputs, or raises when it refuses to load or to run the model."""
    options = ort.SessionOptions()
    options.log_severity_level = 4
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def refused_by_both(model, feeds: dict, node: str | None, op: str | None, words: list[str]) -> EmberError:
    with pytest.raises(Exception):  # noqa: B017 - onnxruntime's own error types
        ort_outputs(model, feeds)
    with pytest.raises(EmberError) as info:
        import_model(model)
    error = info.value
    text = str(error)
    assert error.node == node and error.op == op, text
    for word in words:
        assert word in text, text
    return error


def resize_model(**attrs):
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "s")
    node = helper.make_node("Resize", ["x", "", "s"], ["y"], name="up", **attrs)
    return model_of([node], [vi("x", F32, [1, 1, 2, 2])], [vi("y", F32, [1, 1, 4, 4])], [scales])


X4 = {"x": np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2)}


@pytest.mark.parametrize(
    "attrs, words",
    [
        ({"mode": "bogus"}, ["'mode' is 'bogus'", "nearest, linear, cubic"]),
        ({"mode": ""}, ["'mode' is ''"]),
        ({"coordinate_transformation_mode": "half"}, ["'coordinate_transformation_mode' is 'half'", "align_corners"]),
        ({"nearest_mode": "round"}, ["'nearest_mode' is 'round'", "round_prefer_floor"]),
        ({"keep_aspect_ratio_policy": "fit"}, ["keep_aspect_ratio_policy", "fit"]),
    ],
)
def test_resize_enums(attrs, words):
    refused_by_both(resize_model(**attrs), X4, "up", "Resize", words)


@pytest.mark.parametrize("attrs", [{"mode": "linear", "nearest_mode": "round"}, {"mode": "cubic"}])
def test_resize_values_onnxruntime_runs_are_accepted(attrs):
    """``nearest_mode`` is read in nearest mode only (onnxruntime ignores it otherwise): the same answer."""
    model = resize_model(**attrs)
    want = ort_outputs(model, X4)[0]
    got = EmberBackend.prepare(model).run([X4["x"]])[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def conv_model(w_shape, **attrs):
    w = numpy_helper.from_array(np.ones(w_shape, np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", **attrs)
    return model_of([node], [vi("x", F32, [1, 2, 6, 6])], [vi("y", F32, None)], [w])


X6 = {"x": np.ones((1, 2, 6, 6), np.float32)}


def test_op_used_before_its_first_opset():
    shape = numpy_helper.from_array(np.array([2, 2], np.int64), "shape")
    node = helper.make_node("Expand", ["x", "shape"], ["y"], name="expand")
    model = model_of([node], [vi("x", F32, [1, 2])], [vi("y", F32, [2, 2])], [shape], opset=7)
    refused_by_both(model, {"x": np.ones((1, 2), np.float32)}, "expand", "Expand", ["from opset 8", "opset 7"])


def test_conv_kernel_shape_must_be_the_weights():
    """onnxruntime loads it and fails the first run ("kernel_shape is not compatible with W shape")."""
    refused_by_both(
        conv_model((4, 2, 3, 3), kernel_shape=[3, 2]), X6, "conv", "Conv", ["kernel_shape [3, 2]", "[3, 3]"]
    )
    refused_by_both(conv_model((4, 2, 3, 3), kernel_shape=[3]), X6, "conv", "Conv", ["kernel_shape"])


def test_conv_window_wider_than_the_padded_input():
    refused_by_both(conv_model((4, 2, 9, 3)), X6, "conv", "Conv", ["window of 9", "spatial dim 0", "(6)"])
    refused_by_both(conv_model((4, 2, 3, 3), dilations=[4, 1]), X6, "conv", "Conv", ["window of 9", "dilation 4"])
    model = conv_model((4, 2, 8, 3), pads=[1, 0, 1, 0])  # 6 + 2 pads: the window just fits
    assert ort_outputs(model, X6)[0].shape == (1, 4, 1, 4)
    assert import_model(model) is not None


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool", "LpPool"])
def test_pool_window_wider_than_the_padded_input(op):
    node = helper.make_node(op, ["x"], ["y"], name="pool", kernel_shape=[2, 64])
    model = model_of([node], [vi("x", F32, [1, 2, 6, 6])], [vi("y", F32, None)])
    refused_by_both(model, X6, "pool", op, ["window of 64", "spatial dim 1"])
    node = helper.make_node(op, ["x"], ["y"], name="pool", kernel_shape=[2, 2, 2])
    model = model_of([node], [vi("x", F32, [1, 2, 6, 6])], [vi("y", F32, None)])
    refused_by_both(model, X6, "pool", op, ["kernel_shape"])


def test_same_padding_lets_a_window_be_wider_than_the_input():
    node = helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[8, 8], auto_pad="SAME_UPPER")
    model = model_of([node], [vi("x", F32, [1, 2, 6, 6])], [vi("y", F32, None)])
    want = ort_outputs(model, X6)[0]
    np.testing.assert_array_equal(EmberBackend.prepare(model).run([X6["x"]])[0], want)


def relu_model(out_type):
    return model_of([helper.make_node("Relu", ["x"], ["y"], name="r")], [vi("x", F32, [2])], [vi("y", out_type, [2])])


def test_graph_output_of_element_type_undefined():
    error = refused_by_both(relu_model(0), {"x": np.ones(2, np.float32)}, None, None, ["output 'y' of graph 'g'"])
    assert "element type 0 (UNDEFINED)" in error.message
    refused_by_both(
        loop_model(condition_type=0), {"x": np.ones(2, np.float32)}, None, None, ["'c_out' of graph 'body'"]
    )


def test_undefined_output_typed_by_another_entry_is_accepted():
    """onnxruntime takes the type from the output's first listing (or from the input passed
    through): so does Ember."""
    model = relu_model(F32)
    model.graph.output.append(vi("y", 0, [2]))
    feeds = {"x": np.array([-1, 2], np.float32)}
    want = ort_outputs(model, feeds)
    got = EmberBackend.prepare(model).run([feeds["x"]])
    assert len(got) == len(want) == 2
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def loop_model(iteration_type=I64, condition_type=BOOL, carried_out=F32):
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["c"], ["c_out"], name="keep"),
            helper.make_node("Add", ["acc", "acc"], ["acc_out"], name="double"),
        ],
        "body",
        [vi("i", iteration_type, []), vi("c", BOOL, []), vi("acc", F32, [2])],
        [vi("c_out", condition_type, []), vi("acc_out", carried_out, [2])],
    )
    trips = numpy_helper.from_array(np.array(3, np.int64), "trips")
    node = helper.make_node("Loop", ["trips", "", "x"], ["y"], name="loop", body=body)
    return model_of([node], [vi("x", F32, [2])], [vi("y", F32, [2])], [trips])


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"iteration_type": F32}, ["body input 0 (the iteration) is float; a Loop gives int64"]),
        ({"condition_type": F32}, ["body output 0 (the condition) is float, not bool"]),
        ({"carried_out": I64}, ["carried value 0 comes into the body as float but leaves it as int64"]),
    ],
)
def test_loop_body_types(kw, words):
    refused_by_both(loop_model(**kw), {"x": np.ones(2, np.float32)}, "loop", "Loop", words)


def test_loop_carried_value_of_another_type_than_the_body_takes():
    model = loop_model()
    model.graph.node[0].input[2] = "flag"
    model.graph.input.append(vi("flag", BOOL, []))
    feeds = {"x": np.ones(2, np.float32), "flag": np.array(True)}
    refused_by_both(model, feeds, "loop", "Loop", ["carried value 0 starts as bool", "takes it as float32 ('acc')"])


def test_loop_body_of_the_right_types_runs():
    x = np.array([1, -2], np.float32)
    want = ort_outputs(loop_model(), {"x": x})[0]
    np.testing.assert_array_equal(EmberBackend.prepare(loop_model()).run([x])[0], want)


def test_ir3_initializer_outside_the_inputs_is_an_intended_extension():
    """IR < 4 wants every initializer listed as a graph input; onnxruntime refuses one that only a
    subgraph reads ("initializer_arg was false").  Ember reads the initializer as the constant it
    is (an intended extension, docs/robustness.md)."""
    one = numpy_helper.from_array(np.array([1, 2], np.float32), "one")
    then = helper.make_graph([helper.make_node("Add", ["x", "one"], ["a"])], "t", [], [vi("a", F32, [2])])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["b"])], "e", [], [vi("b", F32, [2])])
    node = helper.make_node("If", ["cond"], ["y"], name="branch", then_branch=then, else_branch=other)
    model = model_of([node], [vi("cond", BOOL, []), vi("x", F32, [2])], [vi("y", F32, [2])], [one], opset=11, ir=3)
    x = np.array([3, 4], np.float32)
    with pytest.raises(Exception, match="initializer_arg"):
        ort_outputs(model, {"cond": np.array(True), "x": x})
    rep = EmberBackend.prepare(model)
    np.testing.assert_array_equal(rep.run([np.array(True), x])[0], [4, 6])
    np.testing.assert_array_equal(rep.run([np.array(False), x])[0], [-3, -4])
