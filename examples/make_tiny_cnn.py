"""Writes tiny_cnn.onnx: a small image classifier with fixed random weights (seed 0).

Conv-BatchNorm-Relu, MaxPool, a residual Conv pair, GlobalAveragePool, Gemm,
Softmax over 10 classes on a 1x3x32x32 input: small enough to bundle, real
enough to exercise import, optimisation and codegen.
"""

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def build() -> onnx.ModelProto:
    rng = np.random.default_rng(0)

    def weight(name, *shape, scale=0.1):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    inits = [
        weight("conv1.w", 16, 3, 3, 3),
        weight("conv1.b", 16),
        numpy_helper.from_array(rng.uniform(0.5, 1.5, 16).astype(np.float32), "bn.scale"),
        weight("bn.bias", 16),
        weight("bn.mean", 16),
        numpy_helper.from_array(rng.uniform(0.5, 1.5, 16).astype(np.float32), "bn.var"),
        weight("res1.w", 16, 16, 3, 3),
        weight("res2.w", 16, 16, 3, 3),
        weight("fc.w", 10, 16),
        weight("fc.b", 10),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "conv1.w", "conv1.b"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("BatchNormalization", ["c1", "bn.scale", "bn.bias", "bn.mean", "bn.var"], ["b1"], name="bn1"),
        helper.make_node("Relu", ["b1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2], name="pool1"),
        helper.make_node("Conv", ["p1", "res1.w"], ["c2"], pads=[1, 1, 1, 1], name="res1"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "res2.w"], ["c3"], pads=[1, 1, 1, 1], name="res2"),
        helper.make_node("Add", ["c3", "p1"], ["s"], name="residual"),
        helper.make_node("Relu", ["s"], ["r3"], name="relu3"),
        helper.make_node("GlobalAveragePool", ["r3"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["logits"], transB=1, name="fc"),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1, name="softmax"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="ember-examples")
    onnx.checker.check_model(model, full_check=True)
    return model


if __name__ == "__main__":
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny_cnn.onnx")
    onnx.save(build(), out)
    print(f"wrote {out}")
