"""ResNet-50, MobileNetV2 and a BERT-base-style encoder as ONNX models with fixed random weights.

Built with ``onnx.helper`` (no downloads). Weights are He-scaled so activations stay finite.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class _Net:
    """Accumulates nodes and initializers; names values uniquely."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.count = [], [], 0

    def name(self, base: str) -> str:
        self.count += 1
        return f"{base}_{self.count}"

    def const(self, array: np.ndarray, base: str = "c") -> str:
        name = self.name(base)
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def weight(self, *shape, fan_in: int) -> str:
        return self.const((self.rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32), "w")

    def op(self, op_type: str, inputs: list[str], **attrs) -> str:
        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def model(self, name, inputs, output, out_shape) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, name, inputs, [helper.make_tensor_value_info(output, TensorProto.FLOAT, out_shape)], self.inits
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        return model

    # layers ------------------------------------------------------------------
    def conv_bn(self, x, cin, cout, k, stride=1, group=1, relu=True, relu6=False):
        w = self.weight(cout, cin // group, k, k, fan_in=cin // group * k * k)
        y = self.op("Conv", [x, w], kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4, group=group)
        scale = self.const((1.0 + 0.1 * self.rng.standard_normal(cout)).astype(np.float32))
        bias = self.const((0.1 * self.rng.standard_normal(cout)).astype(np.float32))
        mean = self.const((0.1 * self.rng.standard_normal(cout)).astype(np.float32))
        var = self.const((1.0 + 0.1 * np.abs(self.rng.standard_normal(cout))).astype(np.float32))
        y = self.op("BatchNormalization", [y, scale, bias, mean, var], epsilon=1e-5)
        if relu6:
            return self.op("Clip", [y, self.const(np.array(0, np.float32)), self.const(np.array(6, np.float32))])
        return self.op("Relu", [y]) if relu else y


def resnet50(resolution: int = 224) -> onnx.ModelProto:
    """Input [1, 3, resolution, resolution] (224 for the benchmark; tests use a small one)."""
    net = _Net(50)
    x = net.conv_bn("input", 3, 64, 7, 2)
    x = net.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for stage, (mid, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)]):
        for b in range(blocks):
            stride = 2 if b == 0 and stage > 0 else 1
            y = net.conv_bn(x, cin, mid, 1)
            y = net.conv_bn(y, mid, mid, 3, stride)
            y = net.conv_bn(y, mid, mid * 4, 1, relu=False)
            short = net.conv_bn(x, cin, mid * 4, 1, stride, relu=False) if b == 0 else x
            x = net.op("Relu", [net.op("Add", [y, short])])
            cin = mid * 4
    x = net.op("Flatten", [net.op("GlobalAveragePool", [x])])
    x = net.op("Gemm", [x, net.weight(1000, 2048, fan_in=2048), net.const(np.zeros(1000, np.float32))], transB=1)
    image = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, resolution, resolution])
    return net.model("resnet50", [image], x, [1, 1000])


def mobilenet_v2(resolution: int = 224) -> onnx.ModelProto:
    """Input [1, 3, resolution, resolution] (224 for the benchmark; tests use a small one)."""
    net = _Net(2)
    x = net.conv_bn("input", 3, 32, 3, 2, relu6=True)
    cin = 32
    for t, c, n, s in [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            y = net.conv_bn(x, cin, hidden, 1, relu6=True) if t != 1 else x
            y = net.conv_bn(y, hidden, hidden, 3, stride, group=hidden, relu6=True)
            y = net.conv_bn(y, hidden, c, 1, relu=False)
            x = net.op("Add", [x, y]) if stride == 1 and cin == c else y
            cin = c
    x = net.conv_bn(x, cin, 1280, 1, relu6=True)
    x = net.op("Flatten", [net.op("GlobalAveragePool", [x])])
    x = net.op("Gemm", [x, net.weight(1000, 1280, fan_in=1280), net.const(np.zeros(1000, np.float32))], transB=1)
    image = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, resolution, resolution])
    return net.model("mobilenet_v2", [image], x, [1, 1000])


def bert_base(seq: int = 128, hidden: int = 768, heads: int = 12, layers: int = 12) -> onnx.ModelProto:
    """Encoder stack on precomputed embeddings (input: [1, seq, hidden])."""
    net = _Net(7)
    d = hidden // heads

    def linear(x, n_in, n_out):
        return net.op(
            "Add",
            [
                net.op("MatMul", [x, net.weight(n_in, n_out, fan_in=n_in)]),
                net.const((0.02 * net.rng.standard_normal(n_out)).astype(np.float32)),
            ],
        )

    def layer_norm(x):
        return net.op(
            "LayerNormalization",
            [x, net.const(np.ones(hidden, np.float32)), net.const(np.zeros(hidden, np.float32))],
            axis=-1,
            epsilon=1e-12,
        )

    heads_shape = net.const(np.array([1, seq, heads, d], np.int64))
    flat_shape = net.const(np.array([1, seq, hidden], np.int64))
    scale = net.const(np.array(1.0 / np.sqrt(d), np.float32))
    x = "input"
    for _ in range(layers):
        q, k, v = (
            net.op("Transpose", [net.op("Reshape", [linear(x, hidden, hidden), heads_shape])], perm=perm)
            for perm in ([0, 2, 1, 3], [0, 2, 3, 1], [0, 2, 1, 3])
        )
        scores = net.op("Mul", [net.op("MatMul", [q, k]), scale])
        ctx = net.op("MatMul", [net.op("Softmax", [scores], axis=-1), v])
        ctx = net.op("Reshape", [net.op("Transpose", [ctx], perm=[0, 2, 1, 3]), flat_shape])
        x = layer_norm(net.op("Add", [linear(ctx, hidden, hidden), x]))
        up = linear(x, hidden, 4 * hidden)
        gelu = net.op(
            "Mul",
            [
                net.op(
                    "Mul",
                    [
                        up,
                        net.op(
                            "Add",
                            [
                                net.op("Erf", [net.op("Mul", [up, net.const(np.array(1 / np.sqrt(2), np.float32))])]),
                                net.const(np.array(1, np.float32)),
                            ],
                        ),
                    ],
                ),
                net.const(np.array(0.5, np.float32)),
            ],
        )
        x = layer_norm(net.op("Add", [linear(gelu, 4 * hidden, hidden), x]))
    return net.model(
        "bert_base", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, seq, hidden])], x, [1, seq, hidden]
    )


MODELS = {"resnet50": resnet50, "mobilenet_v2": mobilenet_v2, "bert_base": bert_base}
