"""fuse-qdq (passes/fuse_qdq.py) against the interpreter: QDQ graphs as onnxruntime's quantizer writes
them (per-channel int8 weights, uint8 or int8 activations, int32 or float biases), built here with
random scales, give the same outputs within one quantization step of the output after fusion."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from compiler import interpret
from compiler.pipeline import run_pipeline
from frontends.onnx.importer import import_model


class _QdqNet:
    """A small QDQ network: every float op reads DequantizeLinear and feeds QuantizeLinear."""

    def __init__(self, rng, act_dtype):
        self.rng, self.act, self.nodes, self.inits, self.n = rng, act_dtype, [], [], 0

    def const(self, array) -> str:
        self.n += 1
        name = f"c{self.n}"
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op, inputs, **attrs) -> str:
        self.n += 1
        out = f"v{self.n}"
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def requantize(self, x: str) -> str:
        """QuantizeLinear -> DequantizeLinear with a random activation scale and zero point."""
        lo = np.iinfo(self.act).min
        scale, zero = (
            self.const(np.float32(self.rng.uniform(0.02, 0.06))),
            self.const(np.dtype(self.act).type(lo + 100)),
        )
        self.last = (scale, zero)
        return self.node("DequantizeLinear", [self.node("QuantizeLinear", [x, scale, zero]), scale, zero])

    def max_pool(self, x: str) -> str:
        """MaxPool between DequantizeLinear and QuantizeLinear of one scale (as the quantizer writes it)."""
        scale, zero = self.last
        pooled = self.node("MaxPool", [x], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
        return self.node("DequantizeLinear", [self.node("QuantizeLinear", [pooled, scale, zero]), scale, zero])

    def weight(self, shape, axis: int) -> tuple[str, np.ndarray]:
        wq = self.rng.integers(-127, 127, shape, endpoint=True).astype(np.int8)
        scale = self.rng.uniform(0.002, 0.01, shape[axis]).astype(np.float32)
        deq = self.node(
            "DequantizeLinear",
            [self.const(wq), self.const(scale), self.const(np.zeros_like(scale, np.int8))],
            axis=axis,
        )
        return deq, scale

    def bias(self, step: np.ndarray, int32: bool) -> str:
        if not int32:
            return self.const(self.rng.normal(0, 0.05, step.shape).astype(np.float32))
        bq = self.rng.integers(-500, 500, step.shape).astype(np.int32)
        return self.node("DequantizeLinear", [self.const(bq), self.const(step.astype(np.float32))], axis=0)


def qdq_net(seed: int, act_dtype=np.uint8, int32_bias=True):
    rng = np.random.default_rng(seed)
    net = _QdqNet(rng, act_dtype)
    x = net.requantize("x")
    sx = np.float32(0.04)  # not the requantize scale: the int32 bias then goes through the float path
    for cin, cout, stride in ((3, 8, 1), (8, 16, 2)):
        w, sw = net.weight((cout, cin, 3, 3), 0)
        x = net.requantize(
            net.node("Conv", [x, w, net.bias(sx * sw, int32_bias)], pads=[1, 1, 1, 1], strides=[stride] * 2)
        )
        x = net.max_pool(x)
    flat = net.requantize(net.node("Flatten", [net.node("GlobalAveragePool", [x])]))
    w, sw = net.weight((10, 16), 0)
    y = net.requantize(net.node("Gemm", [flat, w, net.bias(sx * sw, False)], transB=1))
    w, sw = net.weight((10, 4), 1)
    out = net.node(
        "QuantizeLinear",
        [
            net.node("MatMul", [y, w]),
            net.const(np.float32(0.05)),
            net.const(np.dtype(act_dtype).type(np.iinfo(act_dtype).min + 90)),
        ],
    )
    graph = helper.make_graph(
        net.nodes,
        "qdq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info(out, TensorProto.UINT8 if act_dtype == np.uint8 else TensorProto.INT8, [1, 4])],
        net.inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("act_dtype,int32_bias", [(np.uint8, True), (np.int8, False)])
def test_fused_graph_matches_interpreter_within_one_step(seed, act_dtype, int32_bias):
    graph = import_model(qdq_net(seed, act_dtype, int32_bias))
    x = np.random.default_rng(100 + seed).normal(0, 1, (1, 3, 8, 8)).astype(np.float32)
    before = list(interpret(graph, {"x": x}).values())[0]
    result = run_pipeline(graph, "fuse-qdq,dce")
    assert result.modified
    ops = [n.op for n in graph.nodes]
    assert ops.count("QLinearConv") == 3 and ops.count("QLinearMatMul") == 1  # two convs and the Gemm, the MatMul
    assert not {"Conv", "Gemm", "MatMul"} & set(ops)
    after = list(interpret(graph, {"x": x}).values())[0]
    assert np.abs(after.astype(np.int32) - before.astype(np.int32)).max() <= 1


def test_conv_feeding_two_quantizers_is_left_alone():
    model = qdq_net(0)
    graph = import_model(model)
    conv = next(n for n in graph.nodes if n.op == "Conv")
    q = conv.result.users[0]
    from compiler.rewrite import Rewriter

    rw = Rewriter(graph)
    rw.set_insertion_point_after(q)
    rw.op("QuantizeLinear", list(q.operands))  # a second reader of the float conv result
    run_pipeline(graph, "fuse-qdq")
    assert conv.graph is not None and conv.op == "Conv"


def test_relu_between_conv_and_quantize_moves_into_the_integer_op():
    """A quantizer that keeps Relu between a Conv and its QuantizeLinear: fuse-qdq moves it after the
    quantization (``Max(Q(y), z)``, exact), so the Conv still becomes a QLinearConv."""
    rng = np.random.default_rng(5)
    wq = rng.integers(-127, 127, (8, 3, 3, 3)).astype(np.int8)
    inits = [
        numpy_helper.from_array(a, n)
        for a, n in (
            (np.float32(0.02), "sx"),
            (np.uint8(128), "zx"),
            (wq, "wq"),
            (np.full(8, 0.01, np.float32), "sw"),
            (np.float32(0.05), "sy"),
            (np.uint8(30), "zy"),
        )
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"]),
        helper.make_node("DequantizeLinear", ["wq", "sw"], ["wd"], axis=0),
        helper.make_node("Conv", ["xd", "wd"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("QuantizeLinear", ["r", "sy", "zy"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "qdq_relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, 8, 6, 6])],
        inits,
    )
    graph = import_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]))
    feeds = [{"x": rng.normal(0, 1, (1, 3, 6, 6)).astype(np.float32)} for _ in range(5)]
    before = [interpret(graph, f)["y"] for f in feeds]
    run_pipeline(graph, "fuse-qdq,dce")
    ops = [n.op for n in graph.nodes if n.op != "Constant"]
    assert ops == ["QuantizeLinear", "QLinearConv", "Max"], ops
    for f, want in zip(feeds, before):
        # QLinearConv requantizes the exact integer sum, Conv on dequantized floats rounds: one step
        assert np.abs(interpret(graph, f)["y"].astype(np.int32) - want.astype(np.int32)).max() <= 1


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_quantized_relu_equals_max_of_the_quantized_value(dtype):
    """The identity the rewrite rests on, through the interpreter, over many values, ties, saturation
    and zero points at both ends."""
    rng = np.random.default_rng(3)
    y = np.concatenate([rng.normal(0, 3, 5000), np.arange(-300, 300) * 0.05, [0.0, -0.0, 1e3, -1e3]]).astype(
        np.float32
    )  # 1e9 overflows the reference kernel
    elem = TensorProto.UINT8 if dtype == np.uint8 else TensorProto.INT8
    for zero in (np.iinfo(dtype).min + 7, 0, np.iinfo(dtype).max - 9):
        inits = [numpy_helper.from_array(np.float32(0.05), "s"), numpy_helper.from_array(np.array(zero, dtype), "z")]
        nodes = [
            helper.make_node("Relu", ["y"], ["r"]),
            helper.make_node("QuantizeLinear", ["r", "s", "z"], ["relu_q"]),
            helper.make_node("QuantizeLinear", ["y", "s", "z"], ["q"]),
            helper.make_node("Max", ["q", "z"], ["max_q"]),
        ]
        graph = helper.make_graph(
            nodes,
            "identity",
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [y.size])],
            [helper.make_tensor_value_info(n, elem, [y.size]) for n in ("relu_q", "max_q")],
            inits,
        )
        out = interpret(import_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])), {"y": y})
        np.testing.assert_array_equal(out["relu_q"], out["max_q"])


@settings(max_examples=25, deadline=None)
@given(
    dtype=st.sampled_from([np.uint8, np.int8]),
    kernel=st.integers(1, 4),
    stride=st.integers(1, 3),
    pad=st.integers(0, 1),
    ceil=st.booleans(),
    scale=st.floats(0.001953125, 16.0, width=32),
    zero=st.integers(-128, 255),
    seed=st.integers(0, 2**16),
)
def test_integer_max_pool_equals_the_float_island(dtype, kernel, stride, pad, ceil, scale, zero, seed):
    """``Q(MaxPool(DQ(xq, s, z)), s, z)`` -> ``MaxPool(xq)``: the interpreter gives the same integers
    before and after, for both 8-bit types, any positive scale and zero point, pads and ceil mode."""
    info = np.iinfo(dtype)
    zero = int(np.clip(zero, info.min, info.max))
    pad = min(pad, kernel - 1)
    elem = TensorProto.UINT8 if dtype == np.uint8 else TensorProto.INT8
    x = np.random.default_rng(seed).integers(info.min, info.max, (1, 3, 7, 6), endpoint=True).astype(dtype)
    inits = [numpy_helper.from_array(np.float32(scale), "s"), numpy_helper.from_array(np.array(zero, dtype), "z")]
    pool = dict(kernel_shape=[kernel, kernel], strides=[stride, stride], pads=[pad] * 4, ceil_mode=int(ceil))
    nodes = [
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["x"]),
        helper.make_node("MaxPool", ["x"], ["p"], **pool),
        helper.make_node("QuantizeLinear", ["p", "s", "z"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "pool",
        [helper.make_tensor_value_info("xq", elem, x.shape)],
        [helper.make_tensor_value_info("y", elem, None)],
        inits,
    )
    ir = import_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]))
    want = interpret(ir, {"xq": x})["y"]
    run_pipeline(ir, "fuse-qdq,infer-shapes,dce")
    assert [n.op for n in ir.nodes if n.op != "Constant"] == ["MaxPool"]
    np.testing.assert_array_equal(interpret(ir, {"xq": x})["y"], want)
