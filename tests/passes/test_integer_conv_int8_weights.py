"""``integer-conv-int8-weights``: random dense ConvIntegers of uint8 or zero-pointed weights keep their
int32 results exactly (the interpreter before and after), QLinearConvs theirs within the
interpreter's rounding; convs the integer kernel takes as they are, grouped ones and windows too
large for an exact float32 sum are left alone; a compiled uint8-weight QLinearConv (onnxruntime's
``weight_type=QUInt8``) runs the packed integer kernel and equals onnxruntime bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from integer_conv_cases import integer_conv
from onnx import TensorProto, helper, numpy_helper

from compiler.ir.builder import Builder
from compiler.ir.core import Graph
from compiler.ir.interpreter import interpret_list
from compiler.ir.types import DType, TensorType
from compiler.testing import assert_pass_is_idempotent, assert_pass_preserves_semantics
from passes.integer_conv_int8_weights import IntegerConvInt8WeightsPass

U8, I8 = np.dtype(np.uint8), np.dtype(np.int8)


@st.composite
def dense_integer_convs(draw, op: str) -> tuple[Graph, dict]:
    """A group-1 ConvInteger or QLinearConv of random 8-bit types, window, stride, dilation and
    padding, its weight zero point per tensor or per channel (zero or not)."""
    x_type, w_type = draw(st.sampled_from((U8, I8))), draw(st.sampled_from((U8, I8)))
    n, c, k = draw(st.integers(1, 2)), draw(st.integers(1, 5)), draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dilations = [draw(st.integers(1, 2)), draw(st.integers(1, 2))]
    h, w = draw(st.integers((kh - 1) * dilations[0] + 1, 7)), draw(st.integers((kw - 1) * dilations[1] + 1, 7))
    attrs = {"kernel_shape": [kh, kw], "pads": [draw(st.integers(0, 2)) for _ in range(4)], "dilations": dilations}
    attrs["strides"] = [draw(st.integers(1, 2)), draw(st.integers(1, 2))]
    rng = np.random.default_rng(n * 7919 + c * 104729 + k * 31 + kh * 7 + kw + h * 3 + w)
    info_x, info_w = np.iinfo(x_type), np.iinfo(w_type)
    graph = Graph(op.lower())
    b = Builder(graph)
    x = b.param("x", TensorType(DType.from_np(x_type), (n, c, h, w)))
    weight = rng.integers(info_w.min, info_w.max, (k, c, kh, kw), endpoint=True).astype(w_type)
    x_zero = b.constant(np.array(rng.integers(info_x.min, info_x.max), x_type))
    zero_shape = k if draw(st.booleans()) else ()
    w_zero = rng.integers(info_w.min, info_w.max, zero_shape, endpoint=True).astype(w_type)
    if draw(st.booleans()):
        w_zero[...] = 0
    graph.outputs = [integer_conv(b, op, x, weight, x_zero, w_zero, attrs, rng)]
    feeds = {"x": rng.integers(info_x.min, info_x.max, (n, c, h, w), endpoint=True).astype(x_type)}
    return graph, feeds


def _rewritten(graph: Graph, op: str) -> bool:
    """Whether ``op`` was replaced: a ConvInteger of int8 weights without a zero point is left."""
    node = next(node for node in graph.nodes if node.op == op)
    w_index, zero_index = (1, 3) if op == "ConvInteger" else (3, 5)
    weight = np.asarray(node.operands[w_index].const_value)
    return weight.dtype == U8 or np.asarray(node.operands[zero_index].const_value).any()


def _integer_convs_left(graph: Graph) -> list[tuple[np.dtype, int]]:
    """(weight dtype, operand count) of each integer conv in ``graph``."""
    found = []
    for node in graph.nodes:
        if node.op in ("ConvInteger", "QLinearConv"):
            w_index = 1 if node.op == "ConvInteger" else 3
            found.append((np.asarray(node.operands[w_index].const_value).dtype, len(node.operands)))
    return found


SETTINGS = settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(dense_integer_convs("ConvInteger"))
def test_conv_integer_keeps_its_int32_results_exactly(case):
    graph, feeds = case
    rewritten = _rewritten(graph, "ConvInteger")
    after = assert_pass_preserves_semantics(IntegerConvInt8WeightsPass(), graph, feeds)
    assert_pass_is_idempotent(IntegerConvInt8WeightsPass(), after, "integer-conv-int8-weights")
    if rewritten:  # the new ConvInteger: int8 weights, no weight zero point (x, w, zx)
        assert _integer_convs_left(after) == [(I8, 3)]


@SETTINGS
@given(dense_integer_convs("QLinearConv"))
def test_qlinear_conv_keeps_its_results_up_to_the_interpreters_rounding(case):
    """The rewritten form rounds ``acc * (sx * sw / sy)`` in float32 as the integer kernel and
    onnxruntime do; the interpreter (``onnx.reference``) scales in another order, so it may be one
    step off where that product is within a rounding error of a half."""
    graph, feeds = case
    rewritten = _rewritten(graph, "QLinearConv")
    (before,) = interpret_list(graph, feeds)
    IntegerConvInt8WeightsPass().run(graph)
    (after,) = interpret_list(graph, feeds)
    assert after.dtype == before.dtype and after.shape == before.shape
    assert np.abs(after.astype(np.int32) - before).max() <= 1
    assert _integer_convs_left(graph) == ([(I8, 3)] if rewritten else [(I8, 9)])


def _conv_integer(channels: int, weight_dtype, weight_zero: int, group: int = 1) -> Graph:
    graph = Graph("conv")
    b = Builder(graph)
    x = b.param("x", TensorType(DType.UINT8, (1, channels, 5, 5)))
    w = b.constant(np.full((2, channels // group, 3, 3), 3, weight_dtype))
    zero = b.constant(np.array(weight_zero, weight_dtype))
    graph.outputs = [b.op("ConvInteger", [x, w, b.constant(np.array(9, U8)), zero], {"group": group})]
    return graph


def test_what_is_left_alone():
    """An int8 weight without a zero point (the kernel's own case), a grouped conv
    (``integer-conv-as-float``'s), and a window of 8,192 x 9 inputs whose sum float32 may round."""
    assert not IntegerConvInt8WeightsPass().run(_conv_integer(4, I8, 0)).modified
    assert not IntegerConvInt8WeightsPass().run(_conv_integer(4, U8, 128, group=2)).modified
    assert not IntegerConvInt8WeightsPass().run(_conv_integer(8192, U8, 128)).modified
    assert IntegerConvInt8WeightsPass().run(_conv_integer(7000, U8, 128)).modified


def _uint8_weight_qlinear_conv(path: str, channels: int, rng) -> None:
    """A 3x3 padded QLinearConv as ``quantize_static(weight_type=QUInt8, per_channel=True)`` writes
    it: uint8 weights with a zero point per output channel, 256 input channels (deeper than
    ``integer-conv-as-float`` can take exactly)."""
    import onnx

    k = 32
    params = {"sx": np.float32(0.02), "zx": np.array(3, U8), "sw": rng.uniform(0.005, 0.01, k).astype(np.float32)}
    params["w"] = rng.integers(0, 255, (k, channels, 3, 3), endpoint=True).astype(U8)
    params.update({"zw": rng.integers(100, 156, k).astype(U8), "sy": np.float32(60.0), "zy": np.array(128, U8)})
    params["b"] = rng.integers(-3000, 3000, k).astype(np.int32)
    inits = [numpy_helper.from_array(np.asarray(v), name) for name, v in params.items()]
    inputs = ["x", "sx", "zx", "w", "sw", "zw", "sy", "zy", "b"]
    node = helper.make_node("QLinearConv", inputs, ["y"], pads=[1, 1, 1, 1], kernel_shape=[3, 3])
    x_info = helper.make_tensor_value_info("x", TensorProto.UINT8, [1, channels, 9, 11])
    y_info = helper.make_tensor_value_info("y", TensorProto.UINT8, None)
    model = helper.make_model(helper.make_graph([node], "u8", [x_info], [y_info], inits))
    model.opset_import[0].version, model.ir_version = 13, 8
    onnx.save(model, path)


def test_compiled_uint8_weight_conv_runs_the_integer_kernel_and_equals_onnxruntime(tmp_path):
    import onnxruntime as ort

    from compiler import compile_model
    from compiler.runtime import load

    rng = np.random.default_rng(5)
    path, library = str(tmp_path / "u8.onnx"), str(tmp_path / "u8.so")
    _uint8_weight_qlinear_conv(path, 256, rng)
    compile_model(path, library)
    x = rng.integers(0, 255, (1, 256, 9, 11), endpoint=True).astype(U8)
    with load(library, profile=True) as compiled:
        got = compiled.run({"x": x})["y"]
        kernels = [call.op_types for call in compiled.profile().calls]
    want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_array_equal(got, want)
    assert 0 < np.count_nonzero((want > 0) & (want < 255))  # not all saturated
    (product,) = [ops for ops in kernels if "ConvInteger" in ops]
    assert "QuantizeLinear" in product  # the requantization in the integer kernel's epilogue
    # the only float conv left is the window sum's, of one channel
    assert sum(ops.count("Conv") for ops in kernels) == 1


@pytest.mark.parametrize("op", ["ConvInteger", "QLinearConv"])
def test_codegen_prepare_runs_it_before_integer_conv_as_float(op):
    """A uint8 weight within ``integer-conv-as-float``'s bound too: the integer kernel is preferred."""
    from compiler.driver import prepare_for_codegen

    graph = _conv_integer(4, U8, 128)
    if op == "QLinearConv":
        graph = _qlinear(graph)
    prepared = prepare_for_codegen(graph, "O2")
    ops = [node.op for node in prepared.nodes]
    fused = [inner.op for node in prepared.nodes if "body" in node.attrs for inner in node.attrs["body"].nodes]
    assert "ConvInteger" in ops + fused


def _qlinear(graph: Graph) -> Graph:
    """The ConvInteger of ``_conv_integer`` as a QLinearConv."""
    conv = next(node for node in graph.nodes if node.op == "ConvInteger")
    out = Graph("qlinear")
    b = Builder(out)
    x = b.param("x", conv.operands[0].type)
    s = b.constant(np.float32(0.5))
    w, zx, zw = (b.constant(np.asarray(conv.operands[i].const_value)) for i in (1, 2, 3))
    out.outputs = [b.op("QLinearConv", [x, s, zx, w, s, zw, s, zx], dict(conv.attrs))]
    return out
