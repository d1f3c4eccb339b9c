"""Small random-weight models for the compression tests: a residual CNN (Conv, BatchNormalization,
Relu, a residual Add, a Concat, GlobalAveragePool, Gemm, Softmax) and a two-layer MLP (MatMul)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from frontends.onnx import import_model


def _init(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def _conv_bn_relu(nodes, inits, rng, name, x, cin, cout, k=3, relu=True):
    inits += [
        _init(f"{name}_w", rng.normal(0, (2.0 / (cin * k * k)) ** 0.5, (cout, cin, k, k))),
        _init(f"{name}_b", rng.normal(0, 0.1, cout)),
        _init(f"{name}_scale", rng.uniform(0.5, 1.5, cout)),
        _init(f"{name}_shift", rng.normal(0, 0.1, cout)),
        _init(f"{name}_mean", rng.normal(0, 0.1, cout)),
        _init(f"{name}_var", rng.uniform(0.5, 1.5, cout)),
    ]
    pad = k // 2
    nodes.append(helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [f"{name}_c"], pads=[pad] * 4, name=name))
    bn = [f"{name}_c", f"{name}_scale", f"{name}_shift", f"{name}_mean", f"{name}_var"]
    nodes.append(helper.make_node("BatchNormalization", bn, [f"{name}_bn"], name=f"{name}_bn"))
    if not relu:
        return f"{name}_bn"
    nodes.append(helper.make_node("Relu", [f"{name}_bn"], [f"{name}_r"], name=f"{name}_relu"))
    return f"{name}_r"


def residual_cnn(seed: int = 0, channels: int = 8, classes: int = 5, size: int = 8) -> onnx.ModelProto:
    """stem -> [conv, conv] + stem (Add) -> relu -> concat(branch a, branch b) -> conv -> GAP -> Gemm -> Softmax."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    stem = _conv_bn_relu(nodes, inits, rng, "stem", "x", 3, channels)
    a = _conv_bn_relu(nodes, inits, rng, "block1", stem, channels, channels)
    b = _conv_bn_relu(nodes, inits, rng, "block2", a, channels, channels, relu=False)
    nodes.append(helper.make_node("Add", [b, stem], ["res"], name="res_add"))
    nodes.append(helper.make_node("Relu", ["res"], ["res_r"], name="res_relu"))
    left = _conv_bn_relu(nodes, inits, rng, "left", "res_r", channels, channels, k=1)
    right = _conv_bn_relu(nodes, inits, rng, "right", "res_r", channels, channels)
    nodes.append(helper.make_node("Concat", [left, right], ["cat"], axis=1, name="cat"))
    head = _conv_bn_relu(nodes, inits, rng, "head", "cat", 2 * channels, 2 * channels, k=1)
    nodes.append(helper.make_node("GlobalAveragePool", [head], ["gap"], name="gap"))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], name="flat"))
    inits += [_init("fc_w", rng.normal(0, 0.3, (classes, 2 * channels))), _init("fc_b", rng.normal(0, 0.1, classes))]
    nodes.append(helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1, name="fc"))
    nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=1, name="softmax"))
    graph = helper.make_graph(
        nodes,
        "residual_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, classes])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def mlp(seed: int = 0, features: int = 16, hidden: int = 32, classes: int = 4) -> onnx.ModelProto:
    """x[2, features] -> MatMul -> Add -> Relu -> MatMul -> Add."""
    rng = np.random.default_rng(seed)
    inits = [
        _init("w1", rng.normal(0, 0.3, (features, hidden))),
        _init("b1", rng.normal(0, 0.1, hidden)),
        _init("w2", rng.normal(0, 0.3, (hidden, classes))),
        _init("b2", rng.normal(0, 0.1, classes)),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
        helper.make_node("Add", ["h", "b1"], ["hb"], name="fc1_bias"),
        helper.make_node("Relu", ["hb"], ["hr"], name="relu"),
        helper.make_node("MatMul", ["hr", "w2"], ["o"], name="fc2"),
        helper.make_node("Add", ["o", "b2"], ["y"], name="fc2_bias"),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, features])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, classes])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def as_graph(model: onnx.ModelProto):
    return import_model(model)


def samples(count: int, shape, seed: int = 1, name: str = "x") -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{name: rng.normal(0, 1, shape).astype(np.float32)} for _ in range(count)]
