"""Quantised convolutions (codegen/tvm/lower/quantization.py) compiled: ConvInteger and QLinearConv.
Quantize/DequantizeLinear of the low-precision types are in test_dtypes.py.

Each model is one node with declared output shapes, as exported models with static shapes have;
parameters are model inputs where the op allows it. The compiled library must give the
interpreter's answer for every value consistent with those shapes, and fail the run with a message
naming the op, never a wrong result, for a value that is not."""

from __future__ import annotations

import numpy as np
import pytest
from compiled_checks import check_against_interpreter, node_model
from onnx import TensorProto

F, I64, H = TensorProto.FLOAT, TensorProto.INT64, TensorProto.FLOAT16


# ConvInteger, QLinearConv ------------------------------------------------------------------------------

U8, I8 = TensorProto.UINT8, TensorProto.INT8


@pytest.mark.parametrize("attrs", [dict(pads=[1, 1, 1, 1]), dict(group=2, strides=[2, 1], dilations=[1, 2])])
def test_conv_integer(attrs):
    rng = np.random.default_rng(9)
    x = rng.integers(0, 255, (1, 4, 6, 7)).astype(np.uint8)
    w = rng.integers(0, 255, (4, 4 // attrs.get("group", 1), 3, 3)).astype(np.uint8)
    m = node_model(
        "ConvInteger",
        [("x", U8, [1, 4, 6, 7]), ("w", U8, list(w.shape)), ("zx", U8, []), ("zw", U8, [])],
        [("y", TensorProto.INT32, None)],
        opset=10,
        **attrs,
    )
    check_against_interpreter(m, {"x": x, "w": w, "zx": np.array(12, np.uint8), "zw": np.array(130, np.uint8)})


def test_qlinear_conv_per_channel_with_bias():
    rng = np.random.default_rng(10)
    x = rng.integers(-128, 127, (1, 2, 5, 5)).astype(np.int8)
    w = rng.integers(-128, 127, (3, 2, 2, 2)).astype(np.int8)
    ins = [
        ("x", I8, [1, 2, 5, 5]),
        ("xs", F, []),
        ("xz", I8, []),
        ("w", I8, [3, 2, 2, 2]),
        ("ws", F, [3]),
        ("wz", I8, []),
        ("ys", F, []),
        ("yz", I8, []),
        ("b", TensorProto.INT32, [3]),
    ]
    m = node_model("QLinearConv", ins, [("y", I8, None)], opset=10, pads=[0, 1, 0, 1])
    feeds = {
        "x": x,
        "xs": np.array(0.02, np.float32),
        "xz": np.array(3, np.int8),
        "w": w,
        "ws": np.array([0.01, 0.02, 0.005], np.float32),
        "wz": np.array(0, np.int8),
        "ys": np.array(0.5, np.float32),
        "yz": np.array(-4, np.int8),
        "b": np.array([100, -50, 7], np.int32),
    }
    check_against_interpreter(m, feeds, rtol=0, atol=0)


def test_quantize_linear_saturates_quotients_beyond_int32():
    """x / scale past 2^31 saturates, compiled as interpreted (both as onnxruntime does)."""
    m = node_model("QuantizeLinear", [("x", F, [2, 6]), ("s", F, []), ("z", U8, [])], [("y", U8, [2, 6])], opset=19)
    x = np.array([[1e9, -1e9, 3e9, -3e9, 1.4, np.inf], [2.6, -2.5, 5e9, -7e12, 0.5, -np.inf]], np.float32)
    check_against_interpreter(m, {"x": x, "s": np.array(1.0, np.float32), "z": np.array(3, np.uint8)})


# QuantizeLinear as an epilogue ---------------------------------------------------------------------------


def _relu_quantize_model(fused: bool):
    """x -> [Relu ->] QuantizeLinear(scale 0.37, zero point 9) -> uint8 y."""
    from onnx import helper, numpy_helper

    nodes = [helper.make_node("QuantizeLinear", ["r" if fused else "x", "s", "z"], ["y"])]
    if fused:
        nodes.insert(0, helper.make_node("Relu", ["x"], ["r"]))
    graph = helper.make_graph(
        nodes,
        "q",
        [helper.make_tensor_value_info("x", F, [2, 300])],
        [helper.make_tensor_value_info("y", U8, [2, 300])],
        initializer=[
            numpy_helper.from_array(np.array(0.37, np.float32), "s"),
            numpy_helper.from_array(np.array(9, np.uint8), "z"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("fused", [False, True])
def test_quantize_in_an_epilogue_multiplies_by_the_reciprocal(fused):
    """QuantizeLinear of a value computed in the same kernel (here a fused Relu) multiplies by
    1 / scale, as onnxruntime's fused kernels do (one step at most from the division, on the ties
    where they differ); a QuantizeLinear of a kernel input divides, as the ONNX spec writes it."""
    from compiled_checks import only_kernel

    from codegen.tvm.kernel import build_kernel_module

    model = _relu_quantize_model(fused)
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((2, 300)) * 40).astype(np.float32)
    check_against_interpreter(model, {"x": x}, rtol=0, atol=1 if fused else 0)
    spec, target = only_kernel(model)
    lib, _ = build_kernel_module(spec, "k", target.to_tvm(), target.schedule_params())
    ll = lib.inspect_source("ll")
    assert ("fdiv <" not in ll) == fused  # a vector division per element only where it is not fused
