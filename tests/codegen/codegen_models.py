"""Small ONNX models (fixed random weights) used by the codegen tests."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT


def _init(rng, name, *shape, scale=0.2):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def _model(nodes, inputs, outputs, inits, name):
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def convnet() -> onnx.ModelProto:
    """Conv+BN+Relu, depthwise conv, strided conv, residual add, pools, Gemm, Softmax."""
    rng = np.random.default_rng(0)
    inits = [
        _init(rng, "w1", 16, 3, 3, 3),
        _init(rng, "b1", 16),
        numpy_helper.from_array(np.abs(rng.standard_normal(16)).astype(np.float32) + 0.5, "bn_s"),
        _init(rng, "bn_b", 16),
        _init(rng, "bn_m", 16),
        numpy_helper.from_array(np.abs(rng.standard_normal(16)).astype(np.float32) + 0.5, "bn_v"),
        _init(rng, "wd", 16, 1, 3, 3),
        _init(rng, "w2", 24, 16, 1, 1),
        _init(rng, "w3", 24, 24, 3, 3),
        _init(rng, "fc_w", 10, 24),
        _init(rng, "fc_b", 10),
        numpy_helper.from_array(np.array([0.0], np.float32), "zero"),
        numpy_helper.from_array(np.array([6.0], np.float32), "six"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("BatchNormalization", ["c1", "bn_s", "bn_b", "bn_m", "bn_v"], ["bn"], epsilon=1e-5),
        helper.make_node("Relu", ["bn"], ["r1"]),
        helper.make_node("Conv", ["r1", "wd"], ["dw"], pads=[1, 1, 1, 1], group=16),
        helper.make_node("Clip", ["dw", "zero", "six"], ["dwc"]),
        helper.make_node("Conv", ["dwc", "w2"], ["c2"]),
        helper.make_node("Conv", ["c2", "w3"], ["c3"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c3", "c2"], ["res"]),
        helper.make_node("Relu", ["res"], ["r3"]),
        helper.make_node("MaxPool", ["r3"], ["mp"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("AveragePool", ["mp"], ["ap"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["ap"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", F, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("probs", F, [1, 10])],
        inits,
        "convnet",
    )


def encoder_block(seq: int = 16, hidden: int = 32, heads: int = 2) -> onnx.ModelProto:
    """A transformer block: MatMul+bias, attention with Transpose/Softmax, LayerNorm, Gelu (erf)."""
    rng = np.random.default_rng(1)
    d = hidden // heads
    inits = [
        _init(rng, "wqkv", hidden, 3 * hidden),
        _init(rng, "bqkv", 3 * hidden),
        _init(rng, "wo", hidden, hidden),
        _init(rng, "w_up", hidden, 4 * hidden),
        _init(rng, "w_dn", 4 * hidden, hidden),
        _init(rng, "gamma", hidden),
        _init(rng, "beta", hidden),
        numpy_helper.from_array(np.array([1, seq, 3, heads, d], np.int64), "qkv_shape"),
        numpy_helper.from_array(np.array([1, seq, hidden], np.int64), "out_shape"),
        numpy_helper.from_array(np.array([1.0 / np.sqrt(d)], np.float32), "scale"),
        numpy_helper.from_array(np.array([0.5], np.float32), "half"),
        numpy_helper.from_array(np.array([1.0], np.float32), "one"),
        numpy_helper.from_array(np.array([1 / np.sqrt(2)], np.float32), "rsqrt2"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "wqkv"], ["qkv0"]),
        helper.make_node("Add", ["qkv0", "bqkv"], ["qkv1"]),
        helper.make_node("Reshape", ["qkv1", "qkv_shape"], ["qkv2"]),
        helper.make_node("Transpose", ["qkv2"], ["qkv"], perm=[2, 0, 3, 1, 4]),
        helper.make_node("Split", ["qkv"], ["q5", "k5", "v5"], axis=0, num_outputs=3),
        helper.make_node("Squeeze", ["q5", "axis0"], ["q"]),
        helper.make_node("Squeeze", ["k5", "axis0"], ["k"]),
        helper.make_node("Squeeze", ["v5", "axis0"], ["v"]),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["q", "kt"], ["s0"]),
        helper.make_node("Mul", ["s0", "scale"], ["s1"]),
        helper.make_node("Softmax", ["s1"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["ctx0"]),
        helper.make_node("Transpose", ["ctx0"], ["ctx1"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["ctx1", "out_shape"], ["ctx"]),
        helper.make_node("MatMul", ["ctx", "wo"], ["attn"]),
        helper.make_node("Add", ["attn", "x"], ["h0"]),
        helper.make_node("LayerNormalization", ["h0", "gamma", "beta"], ["h1"], axis=-1),
        helper.make_node("MatMul", ["h1", "w_up"], ["u0"]),
        helper.make_node("Mul", ["u0", "rsqrt2"], ["u1"]),
        helper.make_node("Erf", ["u1"], ["u2"]),
        helper.make_node("Add", ["u2", "one"], ["u3"]),
        helper.make_node("Mul", ["u0", "u3"], ["u4"]),
        helper.make_node("Mul", ["u4", "half"], ["u5"]),
        helper.make_node("MatMul", ["u5", "w_dn"], ["dn"]),
        helper.make_node("Add", ["dn", "h1"], ["y0"]),
        helper.make_node("ReduceMean", ["y0", "axes_last"], ["y"], keepdims=1),
        helper.make_node("Sub", ["y0", "y"], ["out"]),
    ]
    inits += [
        numpy_helper.from_array(np.array([0], np.int64), "axis0"),
        numpy_helper.from_array(np.array([-1], np.int64), "axes_last"),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", F, [1, seq, hidden])],
        [helper.make_tensor_value_info("out", F, [1, seq, hidden])],
        inits,
        "encoder",
    )


def grouped_convs() -> onnx.ModelProto:
    """Grouped conv (blocked path: 16 output channels per group block), a group conv that is not,
    and a strided 1x1 conv, with bias and a fused residual."""
    rng = np.random.default_rng(2)
    inits = [
        _init(rng, "wg", 32, 8, 3, 3),
        _init(rng, "bg", 32),
        _init(rng, "wo", 12, 16, 3, 3),
        _init(rng, "w1", 12, 32, 1, 1),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "wg", "bg"], ["g"], pads=[1, 1, 1, 1], group=2),
        helper.make_node("Conv", ["g", "wo"], ["o"], pads=[1, 1, 1, 1], strides=[2, 2], group=2),
        helper.make_node("Conv", ["g", "w1"], ["p"], strides=[2, 2]),
        helper.make_node("Add", ["o", "p"], ["y"]),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", F, [1, 16, 15, 15])],
        [helper.make_tensor_value_info("y", F, [1, 12, 8, 8])],
        inits,
        "grouped",
    )
