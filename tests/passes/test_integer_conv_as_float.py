"""``integer-conv-as-float``: random ConvIntegers keep their int32 results exactly as float32 Convs
(the interpreter before and after), random grouped QLinearConvs within the interpreter's rounding,
a conv whose sums could pass 2^24 and a conv the integer kernel takes are left alone, and the
compiled libraries agree with onnxruntime and run a float Conv kernel."""

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
from passes.integer_conv_as_float import IntegerConvAsFloatPass

U8, I8 = np.dtype(np.uint8), np.dtype(np.int8)


@st.composite
def integer_convs(draw, op: str) -> tuple[Graph, dict]:
    """A ConvInteger or QLinearConv of random 8-bit types, group (1, 2 or depthwise), window and padding."""
    x_type, w_type = draw(st.sampled_from((U8, I8))), draw(st.sampled_from((U8, I8)))
    n, groups, per_group = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    c = groups * per_group
    k = groups * draw(st.integers(1, 2)) if draw(st.booleans()) else c  # depthwise when per_group == 1
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(kh, 6)), draw(st.integers(kw, 6))
    pads = [draw(st.integers(0, 1)) for _ in range(4)]
    strides = [draw(st.integers(1, 2)), draw(st.integers(1, 2))]
    rng = np.random.default_rng(n * 7919 + c * 104729 + k * 31 + kh * 7 + kw + h * 3 + w)
    info_x, info_w = np.iinfo(x_type), np.iinfo(w_type)
    graph = Graph(op.lower())
    b = Builder(graph)
    x = b.param("x", TensorType(DType.from_np(x_type), (n, c, h, w)))
    weight = rng.integers(info_w.min, info_w.max, (k, per_group, kh, kw), endpoint=True).astype(w_type)
    x_zero = b.constant(np.array(rng.integers(info_x.min, info_x.max), x_type))
    per_channel = draw(st.booleans())
    w_zero = rng.integers(info_w.min // 4, info_w.max // 4, k if per_channel else (), endpoint=True).astype(w_type)
    attrs = {"group": groups, "kernel_shape": [kh, kw], "pads": pads, "strides": strides}
    graph.outputs = [integer_conv(b, op, x, weight, x_zero, w_zero, attrs, rng)]
    feeds = {"x": rng.integers(info_x.min, info_x.max, (n, c, h, w), endpoint=True).astype(x_type)}
    return graph, feeds


def _takes_integer_kernel(node) -> bool:
    """Int8 weights with zero weight zero points, of group 1 or depthwise (a one-channel weight per
    output, group = input channels): what the integer kernels take (asked of the node's constants
    here, not of the pass; these small windows' sums are always exact in float32)."""
    w_index, zero_index = (1, 3) if node.op == "ConvInteger" else (3, 5)
    weight = np.asarray(node.operands[w_index].const_value)
    zero = np.asarray(node.operands[zero_index].const_value)
    group, channels = node.attrs["group"], node.operands[0].type.shape[1]
    depthwise = group == channels > 1 and weight.shape[1] == 1
    return (group == 1 or depthwise) and weight.dtype == I8 and not zero.any()


def _ops(graph: Graph) -> list[str]:
    return [node.op for node in graph.nodes if node.op != "Constant"]


SETTINGS = settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(integer_convs("ConvInteger"))
def test_conv_integer_keeps_its_int32_results_exactly(case):
    graph, feeds = case
    integer_kernel = _takes_integer_kernel(next(node for node in graph.nodes if node.op == "ConvInteger"))
    after = assert_pass_preserves_semantics(IntegerConvAsFloatPass(), graph, feeds)
    assert_pass_is_idempotent(IntegerConvAsFloatPass(), after, "integer-conv-as-float")
    assert ("ConvInteger" in _ops(after)) == integer_kernel


@SETTINGS
@given(integer_convs("QLinearConv"))
def test_qlinear_conv_keeps_its_results_up_to_the_interpreters_rounding(case):
    """The rewritten form rounds ``acc * (sx * sw / sy)`` in float32 as the integer kernel and
    onnxruntime do; the interpreter (``onnx.reference``) scales in another order, so it may be one
    step off where that product is within a rounding error of a half."""
    graph, feeds = case
    integer_kernel = _takes_integer_kernel(next(node for node in graph.nodes if node.op == "QLinearConv"))
    (before,) = interpret_list(graph, feeds)
    IntegerConvAsFloatPass().run(graph)
    (after,) = interpret_list(graph, feeds)
    assert after.dtype == before.dtype and after.shape == before.shape
    assert np.abs(after.astype(np.int32) - before).max() <= 1
    assert ("QLinearConv" in _ops(graph)) == integer_kernel


def _dense_qlinear_conv(weight_zero: int) -> Graph:
    graph = Graph("dense")
    b = Builder(graph)
    x = b.param("x", TensorType(DType.UINT8, (1, 4, 3, 3)))
    s, z = b.constant(np.float32(0.5)), b.constant(np.array(128, U8))
    w, zw = b.constant(np.ones((4, 4, 3, 3), I8)), b.constant(np.array(weight_zero, I8))
    graph.outputs = [b.op("QLinearConv", [x, s, z, w, s, zw, s, z])]
    return graph


def test_dense_int8_qlinear_conv_is_left_to_the_integer_kernel():
    assert not IntegerConvAsFloatPass().run(_dense_qlinear_conv(0)).modified
    assert IntegerConvAsFloatPass().run(_dense_qlinear_conv(1)).modified  # a weight zero point: not the kernel's


def _deep_conv_integer(weight: int) -> Graph:
    graph = Graph("deep")
    b = Builder(graph)
    x = b.param("x", TensorType(DType.UINT8, (1, 512, 3, 3)))
    w = b.constant(np.full((2, 512, 3, 3), weight, I8))
    graph.outputs = [b.op("ConvInteger", [x, w, b.constant(np.array(0, U8)), b.constant(np.array(1, I8))])]
    return graph


def test_sums_that_could_pass_two_to_the_24_are_left_alone():
    """512 channels x 3 x 3 taps: |w - zw| = 20 bounds a sum by 255 * 92,160 > 2^24 (float32 could
    round); |w - zw| = 10 by 255 * 46,080 < 2^24 (a weight zero point of 1: not the integer kernel's)."""
    assert not IntegerConvAsFloatPass().run(_deep_conv_integer(-19)).modified
    assert IntegerConvAsFloatPass().run(_deep_conv_integer(-9)).modified


def _onnx_model(op: str, x_shape, weight, group: int, tmp_path):
    """A one-node ConvInteger / QLinearConv (3x3, padded) model with its weight an initializer."""
    k = weight.shape[0]
    u8 = TensorProto.UINT8
    if op == "ConvInteger":
        inits = [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(np.array(3, U8), "zx")]
        inputs, outputs = ["x", "w", "zx"], [helper.make_tensor_value_info("y", TensorProto.INT32, None)]
    else:
        params = {"sx": np.float32(0.02), "zx": np.array(3, U8), "w": weight, "sw": np.full(k, 0.01, np.float32)}
        params.update({"zw": np.zeros(k, I8), "sy": np.float32(0.03), "zy": np.array(9, U8)})
        params["b"] = np.arange(k, dtype=np.int32) * 40 - 300
        inits = [numpy_helper.from_array(np.asarray(v), name) for name, v in params.items()]
        inputs = ["x", "sx", "zx", "w", "sw", "zw", "sy", "zy", "b"]
        outputs = [helper.make_tensor_value_info("y", u8, None)]
    node = helper.make_node(op, inputs, ["y"], group=group, pads=[1, 1, 1, 1], kernel_shape=[3, 3])
    graph = helper.make_graph([node], op, [helper.make_tensor_value_info("x", u8, list(x_shape))], outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = str(tmp_path / f"{op}.onnx")
    import onnx

    onnx.save(model, path)
    return path


# (a group-1 ConvInteger of uint8 weights takes the integer kernel, ``integer-conv-int8-weights``;
# a depthwise QLinearConv of int8 weights with zero zero points the depthwise one)
@pytest.mark.parametrize("op,group", [("ConvInteger", 2), ("ConvInteger", 16), ("QLinearConv", 4)])
def test_compiled_library_runs_a_float_conv_and_agrees_with_onnxruntime(op, group, tmp_path):
    import onnxruntime as ort

    from compiler import compile_model
    from compiler.runtime import load

    rng = np.random.default_rng(group)
    weight = rng.integers(-127, 127, (16, 16 // group, 3, 3), endpoint=True).astype(I8)
    if op == "ConvInteger":
        weight = (weight.astype(np.int32) + 128).astype(U8)  # onnxruntime's ConvInteger takes uint8 weights
    path = _onnx_model(op, (1, 16, 10, 12), weight, group, tmp_path)
    library = str(tmp_path / "m.so")
    compile_model(path, library)
    x = rng.integers(0, 255, (1, 16, 10, 12), endpoint=True).astype(U8)
    with load(library, profile=True) as compiled:
        got = compiled.run({"x": x})["y"]
        ops = [o for call in compiled.profile().calls for o in call.op_types]
    want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_array_equal(got, want)
    assert "Conv" in ops and op not in ops, ops
