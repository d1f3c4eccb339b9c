"""Quantised convolutions (codegen/tvm/lower/quantization.py) compiled: ConvInteger and QLinearConv.
Quantize/DequantizeLinear of the low-precision types are in test_dtypes.py.

Each model is one node with declared output shapes, as exported models with static shapes have;
parameters are model inputs where the op allows it. The compiled library must give the
interpreter's answer for every value consistent with those shapes, and fail the run with a message
naming the op, never a wrong result, for a value that is not."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from frontends.onnx.backend import EmberBackend

F, I64, H = TensorProto.FLOAT, TensorProto.INT64, TensorProto.FLOAT16


def node_model(op, inputs, outputs, opset=21, domain="", initializers=(), **attrs):
    """A one-node node_model: ``inputs`` / ``outputs`` are (name, elem type, shape); "" skips an operand."""
    node = helper.make_node(
        op, [i[0] if i else "" for i in inputs], [name for name, _, _ in outputs], domain=domain, **attrs
    )
    graph = helper.make_graph(
        [node],
        op.lower(),
        [helper.make_tensor_value_info(*i) for i in inputs if i],
        [helper.make_tensor_value_info(*o) for o in outputs],
        initializer=list(initializers),
    )
    opsets = [helper.make_opsetid("", opset)]
    if domain:
        opsets.append(helper.make_opsetid(domain, 1))
    return helper.make_model(graph, opset_imports=opsets)


def check_against_interpreter(onnx_model, feeds, rtol=1e-5, atol=1e-5):
    """The compiled library's results equal the interpreter's."""
    rep, ref = EmberBackend.prepare(onnx_model, compile=True), EmberBackend.prepare(onnx_model)
    got, want = rep.run(feeds), ref.run(feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol, atol=atol)
    return rep


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
