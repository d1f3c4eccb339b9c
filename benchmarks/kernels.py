"""GFLOP/s of single-op kernels (ConvTranspose, Gemm, MatMul, pools, and the int8 QLinearConv and
MatMulInteger shapes of ResNet-50 and BERT-base: Gop/s there), two builds
alternated run by run so that a loaded machine slows both alike.

    PYTHONPATH=/path/to/old python benchmarks/kernels.py build /tmp/k_old
    PYTHONPATH=$PWD python benchmarks/kernels.py build /tmp/k_new
    PYTHONPATH=$PWD python benchmarks/kernels.py compare /tmp/k_old /tmp/k_new --threads 1 --runs 10

``ort`` times one build against onnxruntime on the same one-node models instead (intra-op threads
as given, spinning off), one run each in turn, and prints Ember / onnxruntime as the median of the
per-round ratios:

    PYTHONPATH=$PWD python benchmarks/kernels.py ort /tmp/k_new --threads 1 --runs 15 --only conv

``build`` compiles one library per case (a one-node ONNX model, weights as initializers) with the
``compiler`` on ``PYTHONPATH``; ``compare`` loads both builds of each case, checks that they agree, and
prints the best latency and GFLOP/s of each (the run least disturbed by other load), the median of
the per-round old/new ratios, and the share of the FMA peak (``--peak`` GFLOP/s per core, by
default measured here by ``compiler.fma_peak``) at the given thread count. ``--only TEXT`` keeps the
cases whose name contains TEXT (for example ``--only conv``).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time

import numpy as np
from onnx import TensorProto, helper, numpy_helper

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # PYTHONPATH picks the build

F = TensorProto.FLOAT


def _model(op, inputs, weights, out_shape, **attrs):
    """One ``op`` node: ``inputs`` (name, shape) are graph inputs, ``weights`` (name, array) initializers."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.1, n) for n, shape in weights]
    node = helper.make_node(op, [n for n, _ in inputs] + [n for n, _ in weights], ["y"], **attrs)
    graph = helper.make_graph(
        [node],
        op.lower(),
        [helper.make_tensor_value_info(n, F, list(s)) for n, s in inputs],
        [helper.make_tensor_value_info("y", F, list(out_shape))],
        initializer=inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _conv_transpose(c, m, hw, k, s, p=0, op=0):
    out = (hw - 1) * s - 2 * p + k + op
    flops = 2 * c * m * k * k * hw * hw
    attrs = dict(strides=[s, s], pads=[p] * 4, output_padding=[op, op])
    return _model(
        "ConvTranspose", [("x", (1, c, hw, hw))], [("w", (c, m, k, k)), ("b", (m,))], (1, m, out, out), **attrs
    ), flops


def _depthwise(c, hw, stride, k=3):
    pad = k // 2
    out = (hw + 2 * pad - k) // stride + 1
    attrs = dict(group=c, pads=[pad] * 4, strides=[stride, stride])
    return _model("Conv", [("x", (1, c, hw, hw))], [("w", (c, 1, k, k)), ("b", (c,))], (1, c, out, out), **attrs), (
        2 * c * k * k * out * out
    )


def _conv(c, m, hw, k, stride=1, group=1):
    pad = k // 2
    out = (hw + 2 * pad - k) // stride + 1
    attrs = dict(pads=[pad] * 4, strides=[stride, stride], group=group)
    weights = [("w", (m, c // group, k, k)), ("b", (m,))]
    model = _model("Conv", [("x", (1, c, hw, hw))], weights, (1, m, out, out), **attrs)
    return model, 2 * c // group * m * k * k * out * out


def _pool(c, hw, k, stride, pad, ceil=0):
    out = -(-(hw + 2 * pad - k) // stride) + 1 if ceil else (hw + 2 * pad - k) // stride + 1
    attrs = dict(kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4, ceil_mode=ceil)
    return _model("MaxPool", [("x", (1, c, hw, hw))], [], (1, c, out, out), **attrs), c * k * k * out * out


def _int8_model(op, operands, inputs, weights, out, **attrs):
    """One integer ``op`` node of ``operands`` (names in order): ``inputs`` (name, elem type, shape)
    graph inputs, ``weights`` (name, array) initializers, ``out`` the output's (elem type, shape).
    Weights are drawn in [-63, 63]: onnxruntime's AVX2 kernels sum pairs of byte products in 16
    bits, exact only below that."""
    node = helper.make_node(op, operands, ["y"], **attrs)
    graph = helper.make_graph(
        [node],
        op.lower(),
        [helper.make_tensor_value_info(n, t, list(s)) for n, t, s in inputs],
        [helper.make_tensor_value_info("y", out[0], list(out[1]))],
        initializer=[numpy_helper.from_array(a, n) for n, a in weights],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _qlinear_conv(c, m, hw, k, stride=1, group=1):
    """QLinearConv as onnxruntime's quantizer writes it: uint8 activations, per-channel int8 weights."""
    pad, rng = k // 2, np.random.default_rng(0)
    out = (hw + 2 * pad - k) // stride + 1
    weights = [
        ("xs", np.array(0.02, np.float32)),
        ("xz", np.array(100, np.uint8)),
        ("w", rng.integers(-63, 63, (m, c // group, k, k), endpoint=True).astype(np.int8)),
        ("ws", rng.uniform(1e-4, 1e-3, m).astype(np.float32)),
        ("wz", np.zeros(m, np.int8)),
        ("ys", np.array(0.5, np.float32)),
        ("yz", np.array(60, np.uint8)),
        ("b", rng.integers(-2000, 2000, m).astype(np.int32)),
    ]
    model = _int8_model(
        "QLinearConv",
        ["x"] + [name for name, _ in weights],
        [("x", TensorProto.UINT8, (1, c, hw, hw))],
        weights,
        (TensorProto.UINT8, (1, m, out, out)),
        pads=[pad] * 4,
        strides=[stride, stride],
        group=group,
    )
    return model, 2 * c // group * m * k * k * out * out


def _qlinear_conv_silu(c, m, hw):
    """A 1x1 QLinearConv followed by SiLU the QDQ way, ``Q(DQ(y) * DQ(Q(Sigmoid(DQ(y)))))``, as a
    static QDQ EfficientNet or YOLOv8 has it after ``fuse-qdq`` (``lookup-8bit`` makes the SiLU one
    table in the conv's epilogue)."""
    model, flops = _qlinear_conv(c, m, hw, 1)
    graph = model.graph
    graph.output[0].name = "conv"
    graph.node[0].output[0] = "conv"
    params = {"gs": np.array(1 / 256, np.float32), "gz": np.array(0, np.uint8)}
    params.update({"os": np.array(0.25, np.float32), "oz": np.array(30, np.uint8)})
    graph.initializer.extend(numpy_helper.from_array(v, name) for name, v in params.items())
    chain = [
        ("DequantizeLinear", ["conv", "ys", "yz"], "d"),
        ("Sigmoid", ["d"], "s"),
        ("QuantizeLinear", ["s", "gs", "gz"], "g"),
        ("DequantizeLinear", ["g", "gs", "gz"], "gd"),
        ("Mul", ["d", "gd"], "m"),
        ("QuantizeLinear", ["m", "os", "oz"], "y"),
    ]
    graph.node.extend(helper.make_node(op, inputs, [out]) for op, inputs, out in chain)
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("y", TensorProto.UINT8, [1, m, hw, hw]))
    return model, flops


def _conv_integer(c, m, hw, k, weight_type=np.int8):
    """ConvInteger as ``quantize_dynamic`` writes it: uint8 activations with a run-time zero point,
    constant weights (int8 with a zero zero point, its default; or uint8 with one, its older one)."""
    pad, rng = k // 2, np.random.default_rng(0)
    low, zero = (-63, 0) if weight_type == np.int8 else (65, 128)
    weights = [("w", rng.integers(low, low + 126, (m, c, k, k), endpoint=True).astype(weight_type))]
    weights.append(("wz", np.array(zero, weight_type)))
    inputs = [("x", TensorProto.UINT8, (1, c, hw, hw)), ("xz", TensorProto.UINT8, ())]
    out = (TensorProto.INT32, (1, m, hw, hw))
    model = _int8_model("ConvInteger", ["x", "w", "xz", "wz"], inputs, weights, out, pads=[pad] * 4)
    return model, 2 * c * m * k * k * hw * hw


def _qlinear_matmul(m, k, n, heads=0, asymmetric=False):
    """QLinearMatMul as ``quantize_static`` writes it: a Linear layer's constant per-column int8 weight,
    or (``heads``) an attention product of two uint8 activations, [heads, m, k] x [heads, k, n];
    ``asymmetric``: uint8 weights with a zero point per column, as tools other than onnxruntime write."""
    rng = np.random.default_rng(0)
    lead = (heads,) if heads else ()
    weights = [("as", np.array(0.02, np.float32)), ("az", np.array(100, np.uint8))]
    if asymmetric:
        b_info = []
        weights += [("b", rng.integers(65, 191, (k, n), endpoint=True).astype(np.uint8))]
        weights += [
            ("bs", rng.uniform(1e-4, 1e-3, n).astype(np.float32)),
            ("bz", rng.integers(110, 146, n).astype(np.uint8)),
        ]
    elif heads:
        b_info = [("b", TensorProto.UINT8, (*lead, k, n))]
        weights += [("bs", np.array(0.03, np.float32)), ("bz", np.array(120, np.uint8))]
    else:
        b_info = []
        weights += [("b", rng.integers(-63, 63, (k, n), endpoint=True).astype(np.int8))]
        weights += [("bs", rng.uniform(1e-4, 1e-3, n).astype(np.float32)), ("bz", np.zeros(n, np.int8))]
    weights += [("ys", np.array(0.5, np.float32)), ("yz", np.array(60, np.uint8))]
    inputs = [("a", TensorProto.UINT8, (*lead, m, k)), *b_info]
    operands = ["a", "as", "az", "b", "bs", "bz", "ys", "yz"]
    model = _int8_model("QLinearMatMul", operands, inputs, weights, (TensorProto.UINT8, (*lead, m, n)))
    return model, 2 * max(heads, 1) * m * k * n


def _matmul_integer(m, k, n):
    """MatMulInteger as onnxruntime's ``quantize_dynamic`` writes it (uint8 activations, a run-time
    zero point, constant int8 weights)."""
    weights = [("w", np.random.default_rng(0).integers(-63, 63, (k, n), endpoint=True).astype(np.int8))]
    weights.append(("wz", np.array(0, np.int8)))
    inputs = [("a", TensorProto.UINT8, (m, k)), ("az", TensorProto.UINT8, ())]
    operands = ["a", "w", "az", "wz"]
    return _int8_model("MatMulInteger", operands, inputs, weights, (TensorProto.INT32, (m, n))), 2 * m * k * n


def _resize(c, hw):
    model = _model(
        "Resize",
        [("x", (1, c, hw, hw))],
        [],
        (1, c, 2 * hw, 2 * hw),
        mode="nearest",
        coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
    )
    model.graph.node[0].input.extend(["", "scales"])
    model.graph.initializer.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"))
    return model, c * 4 * hw * hw  # one "operation" per output value: the table's GFLOP/s is Gvalue/s


def _depth_to_space(c, hw):
    model = _model("DepthToSpace", [("x", (1, c, hw, hw))], [], (1, c // 4, 2 * hw, 2 * hw), blocksize=2, mode="CRD")
    return model, c * hw * hw


def _gemm(m, k, n, trans_b=1):
    w_shape = (n, k) if trans_b else (k, n)
    return _model("Gemm", [("a", (m, k))], [("w", w_shape), ("c", (n,))], (m, n), transB=trans_b), 2 * m * k * n


def _matmul(m, k, n):
    return _model("MatMul", [("a", (m, k))], [("w", (k, n))], (m, n)), 2 * m * k * n


def _batched_matmul(b, m, k, n):
    return _model("MatMul", [("a", (b, m, k)), ("w", (b, k, n))], [], (b, m, n)), 2 * b * m * k * n


CASES = {
    "convT 64->64 160^2 k2s2 (DBNet)": lambda: _conv_transpose(64, 64, 160, 2, 2),
    "convT 64->1 320^2 k2s2 (DBNet)": lambda: _conv_transpose(64, 1, 320, 2, 2),
    "convT 64->32 80^2 k4s2p1": lambda: _conv_transpose(64, 32, 80, 4, 2, 1),
    "convT 64->32 80^2 k3s2p1op1": lambda: _conv_transpose(64, 32, 80, 3, 2, 1, 1),
    "Gemm 80x512x8210 transB (CTC)": lambda: _gemm(80, 512, 8210),
    "Gemm 80x512x8192 transB": lambda: _gemm(80, 512, 8192),
    "MatMul 128x768x768 (BERT)": lambda: _matmul(128, 768, 768),
    "MatMul 128x768x3072 (BERT)": lambda: _matmul(128, 768, 3072),
    "MatMul 12x128x64x128 (attention)": lambda: _batched_matmul(12, 128, 64, 128),
    "MatMul 12x128x128x64 (attention)": lambda: _batched_matmul(12, 128, 128, 64),
    "Gemm 1x2048x1000 transB (GEMV)": lambda: _gemm(1, 2048, 1000),
    "Gemm 64x300x500 (odd N)": lambda: _gemm(64, 300, 500, 0),
    "depthwise 3x3 144ch 56^2 (MobileNetV2)": lambda: _depthwise(144, 56, 1),
    "depthwise 3x3 384ch 14^2 s2": lambda: _depthwise(384, 28, 2),
    "depthwise 7x7 96ch 56^2 (ConvNeXt)": lambda: _depthwise(96, 56, 1, 7),
    "depthwise 7x7 384ch 14^2 (ConvNeXt)": lambda: _depthwise(384, 14, 1, 7),
    "depthwise 7x7 768ch 7^2 (ConvNeXt)": lambda: _depthwise(768, 7, 1, 7),
    "depthwise 5x5 240ch 28^2 (EfficientNet)": lambda: _depthwise(240, 28, 1, 5),
    "depthwise 5x5 96ch 80^2 s2 (DBNet)": lambda: _depthwise(96, 80, 2, 5),
    "grouped 3x3 64ch g4 112^2 s2 (RegNetY)": lambda: _conv(64, 64, 112, 3, 2, group=4),
    "grouped 3x3 144ch g9 56^2 s2 (RegNetY)": lambda: _conv(144, 144, 56, 3, 2, group=9),
    "conv 1x1 64->256 56^2 (ResNet)": lambda: _conv(64, 256, 56, 1),
    "conv 1x1 256->64 56^2 (ResNet)": lambda: _conv(256, 64, 56, 1),
    "conv 1x1 512->2048 7^2 (ResNet)": lambda: _conv(512, 2048, 7, 1),
    "conv 1x1 1024->2048 14^2 s2 (ResNet)": lambda: _conv(1024, 2048, 14, 1, 2),
    "conv 3x3 64->64 56^2 (ResNet)": lambda: _conv(64, 64, 56, 3),
    "conv 3x3 256->256 14^2 (ResNet)": lambda: _conv(256, 256, 14, 3),
    "conv 3x3 512->512 7^2 (ResNet)": lambda: _conv(512, 512, 7, 3),
    "conv 1x1 96->576 14^2 (MobileNetV2)": lambda: _conv(96, 576, 14, 1),
    "conv 1x1 576->160 7^2 (MobileNetV2)": lambda: _conv(576, 160, 7, 1),
    "conv 1x1 16->96 112^2 (EfficientNet)": lambda: _conv(16, 96, 112, 1),
    "depthwise 3x3 144ch 56^2 s2 (MobileNetV2)": lambda: _depthwise(144, 56, 2),
    "conv 1x1 144->24 56^2 (MobileNetV2)": lambda: _conv(144, 24, 56, 1),
    "conv 1x1 1024->256 14^2 (ResNet)": lambda: _conv(1024, 256, 14, 1),
    "conv 3x3 96->24 160^2 (DBNet)": lambda: _conv(96, 24, 160, 3),
    "conv 3x3 3->32 224^2 s2 (stem)": lambda: _conv(3, 32, 224, 3, 2),
    "MatMul 197x768x768 (ViT)": lambda: _matmul(197, 768, 768),
    "MaxPool 5x5 s1 256ch 20^2 (YOLOv8 SPPF)": lambda: _pool(256, 20, 5, 1, 2),
    "MaxPool 3x3 s2 64ch 112^2 (ResNet)": lambda: _pool(64, 112, 3, 2, 1),
    "Resize nearest x2 96ch 80^2 (DBNet)": lambda: _resize(96, 80),
    "DepthToSpace 2 96ch 160^2 (DBNet)": lambda: _depth_to_space(96, 160),
    "MaxPool 3x3 s2 ceil 64ch 111^2 (SqueezeNet)": lambda: _pool(64, 111, 3, 2, 0, ceil=1),
    "int8 conv 3x3 64->64 56^2 (ResNet)": lambda: _qlinear_conv(64, 64, 56, 3),
    "int8 conv 3x3 256->256 14^2 (ResNet)": lambda: _qlinear_conv(256, 256, 14, 3),
    "int8 conv 3x3 512->512 7^2 (ResNet)": lambda: _qlinear_conv(512, 512, 7, 3),
    "int8 conv 3x3 512->512 14^2 s2 (ResNet)": lambda: _qlinear_conv(512, 512, 14, 3, 2),
    "int8 conv 1x1 64->256 56^2 (ResNet)": lambda: _qlinear_conv(64, 256, 56, 1),
    "int8 conv 1x1 512->2048 7^2 (ResNet)": lambda: _qlinear_conv(512, 2048, 7, 1),
    "int8 MatMulInteger 128x768x3072 (BERT)": lambda: _matmul_integer(128, 768, 3072),
    "int8 MatMulInteger 128x3072x768 (BERT)": lambda: _matmul_integer(128, 3072, 768),
    "conv 1x1 2048->512 7^2 (ResNet)": lambda: _conv(2048, 512, 7, 1),
    "conv 1x1 512->1024 28^2 s2 (ResNet)": lambda: _conv(512, 1024, 28, 1, 2),
    "conv 1x1 128->128 28^2 (DenseNet)": lambda: _conv(128, 128, 28, 1),
    "conv 1x1 32->16 112^2 (MobileNetV2)": lambda: _conv(32, 16, 112, 1),
    "depthwise 3x3 576ch 14^2 (MobileNetV2)": lambda: _depthwise(576, 14, 1),
    "depthwise 3x3 64ch 112^2 s2 (MobileNetV3)": lambda: _depthwise(64, 112, 2),
    "depthwise 3x3 200ch 14^2 (MobileNetV3)": lambda: _depthwise(200, 14, 1),
    "depthwise 5x5 960ch 7^2 (MobileNetV3)": lambda: _depthwise(960, 7, 1, 5),
    "depthwise 5x5 672ch 14^2 (EfficientNet)": lambda: _depthwise(672, 14, 1, 5),
    "depthwise 5x5 120ch 28^2 (MobileNetV3)": lambda: _depthwise(120, 28, 1, 5),
    "depthwise 3x3 32ch 112^2 (MobileNetV2)": lambda: _depthwise(32, 112, 1),
    "conv 1x1 24->144 56^2 (MobileNetV2)": lambda: _conv(24, 144, 56, 1),
    "conv 1x1 576->96 14^2 (MobileNetV2)": lambda: _conv(576, 96, 14, 1),
    "conv 1x1 512->1000 13^2 (SqueezeNet)": lambda: _conv(512, 1000, 13, 1),
    "conv 3x3 3->16 640^2 s2 (YOLOv8 stem)": lambda: _conv(3, 16, 640, 3, 2),
    "conv 7x7 3->64 224^2 s2 (ResNet stem)": lambda: _conv(3, 64, 224, 7, 2),
    "int8 conv 7x7 3->64 224^2 s2 (ResNet stem)": lambda: _qlinear_conv(3, 64, 224, 7, 2),
    "int8 conv 3x3 128->128 28^2 (ResNet)": lambda: _qlinear_conv(128, 128, 28, 3),
    "int8 conv 1x1 2048->512 7^2 (ResNet)": lambda: _qlinear_conv(2048, 512, 7, 1),
    # integer ops that took the generic reduction until the eighth session (docs/compression-kernels.md)
    "int8 QLinearMatMul 128x768x768 (static BERT)": lambda: _qlinear_matmul(128, 768, 768),
    "int8 QLinearMatMul 12x128x64x128 run-time b (attention)": lambda: _qlinear_matmul(128, 64, 128, heads=12),
    "int8 QLinearMatMul 128x768x768 uint8 w, zero point per column": lambda: _qlinear_matmul(
        128, 768, 768, asymmetric=True
    ),
    "int8 QLinearMatMul 12x384x384x64 run-time b (attention, seq 384)": lambda: _qlinear_matmul(384, 384, 64, heads=12),
    "int8 ConvInteger 3x3 256->256 14^2 (dynamic)": lambda: _conv_integer(256, 256, 14, 3),
    "int8 ConvInteger 3x3 64->64 56^2 uint8 w (dynamic)": lambda: _conv_integer(64, 64, 56, 3, np.uint8),
    "int8 conv depthwise 3x3 144ch 56^2 (MobileNetV2)": lambda: _qlinear_conv(144, 144, 56, 3, group=144),
    "int8 conv depthwise 3x3 192ch 28^2 (MobileNetV2)": lambda: _qlinear_conv(192, 192, 28, 3, group=192),
    "int8 conv depthwise 3x3 96ch 112^2 s2 (MobileNetV2)": lambda: _qlinear_conv(96, 96, 112, 3, 2, group=96),
    "int8 conv depthwise 5x5 240ch 28^2 (EfficientNet)": lambda: _qlinear_conv(240, 240, 28, 5, group=240),
    # the ninth session's lookup-8bit: the SiLU chain as one table in the conv's epilogue
    "int8 conv 1x1 16->96 112^2 + SiLU (EfficientNet)": lambda: _qlinear_conv_silu(16, 96, 112),
    # the int8 ResNet-50's 1x1 convs that trailed onnxruntime's nodes (thirteenth session)
    "int8 conv 1x1 256->64 56^2 (ResNet)": lambda: _qlinear_conv(256, 64, 56, 1),
    "int8 conv 1x1 256->128 56^2 (ResNet)": lambda: _qlinear_conv(256, 128, 56, 1),
    "int8 conv 1x1 256->512 56^2 s2 (ResNet)": lambda: _qlinear_conv(256, 512, 56, 1, 2),
    "int8 conv 1x1 512->128 28^2 (ResNet)": lambda: _qlinear_conv(512, 128, 28, 1),
    "int8 conv 1x1 1024->256 14^2 (ResNet)": lambda: _qlinear_conv(1024, 256, 14, 1),
}


def _feeds(inputs, rng) -> dict:
    """Random feeds for a library's inputs: standard normal floats, integers over their type's range."""
    feeds = {}
    for i in inputs:
        dtype = np.dtype(i.dtype)
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            feeds[i.name] = rng.integers(info.min, info.max, i.shape, endpoint=True).astype(dtype)
        else:
            feeds[i.name] = rng.standard_normal(i.shape).astype(dtype)
    return feeds


def _tolerance(value) -> float:
    """1e-3, or one step for an integer result (a requantization tie may round either way)."""
    return 1.0 if np.asarray(value).dtype.kind in "iu" else 1e-3


def _file(directory: str, index: int) -> str:
    return os.path.join(directory, f"case{index}.so")


def _selected(only: str):
    """(index, name, make) of the cases whose name contains ``only``; the index names the file."""
    return [(i, name, make) for i, (name, make) in enumerate(CASES.items()) if only in name]


def build(directory: str, only: str = "") -> None:
    from compiler import compile as compile_model

    os.makedirs(directory, exist_ok=True)
    for index, name, make in _selected(only):
        start = time.perf_counter()
        compile_model(make()[0], _file(directory, index))
        print(f"{name}: compiled in {time.perf_counter() - start:.1f} s", flush=True)


def compare(old_dir: str, new_dir: str, threads: int, runs: int, peak: float | None, only: str = "") -> None:
    from compiler.fma_peak import measure_fma_peak
    from compiler.runtime import load

    peak = peak or measure_fma_peak()

    print(f"threads={threads}, peak {peak * threads:.0f} GFLOP/s; best of {runs} alternated runs (ms, GFLOP/s),")
    print("speedup = median over rounds of old/new")
    print(f"{'case':36} {'old ms':>9} {'new ms':>9} {'old GF/s':>9} {'new GF/s':>9} {'new %pk':>8} {'speedup':>8}")
    for index, name, make in _selected(only):
        flops = make()[1]
        old, new = load(_file(old_dir, index), num_threads=threads), load(_file(new_dir, index), num_threads=threads)
        feeds = _feeds(old.inputs, np.random.default_rng(1))
        want, got = old.run(feeds), new.run(feeds)
        for key, value in want.items():
            np.testing.assert_allclose(got[key], value, rtol=1e-3, atol=_tolerance(value))
        times = {"old": [], "new": []}
        for _ in range(runs):
            for key, lib in (("old", old), ("new", new)):
                start = time.perf_counter()
                lib.run(feeds)
                times[key].append(time.perf_counter() - start)
        a, b = (min(times[k]) for k in ("old", "new"))  # the best run: the least disturbed by the load
        ratio = statistics.median(o / n for o, n in zip(times["old"], times["new"]))
        ga, gb = flops / a / 1e9, flops / b / 1e9
        share = 100 * gb / (peak * threads)
        print(f"{name:36} {a * 1e3:9.2f} {b * 1e3:9.2f} {ga:9.1f} {gb:9.1f} {share:7.0f}% {ratio:7.1f}x", flush=True)


def against_onnxruntime(directory: str, threads: int, runs: int, peak: float | None, only: str = "") -> None:
    """Each case's library in ``directory`` against onnxruntime on the same model (module docstring)."""
    import onnxruntime as ort

    from compiler.fma_peak import measure_fma_peak
    from compiler.runtime import load

    peak = peak or measure_fma_peak()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    print(f"threads={threads}, peak {peak * threads:.0f} GFLOP/s; best of {runs} alternated runs (ms, GFLOP/s),")
    print("ratio = median over rounds of Ember / onnxruntime")
    print(f"{'case':42} {'Ember ms':>9} {'ORT ms':>9} {'Ember GF/s':>10} {'ORT GF/s':>9} {'Ember %pk':>9} {'ratio':>7}")
    for index, name, make in _selected(only):
        model, flops = make()
        ember = load(_file(directory, index), num_threads=threads)
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        feeds = _feeds(ember.inputs, np.random.default_rng(1))
        want, got = session.run(None, feeds), ember.run_list(feeds)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-3, atol=_tolerance(w))
        times = {"ember": [], "ort": []}
        calls = {"ember": functools.partial(ember.run, feeds), "ort": functools.partial(session.run, None, feeds)}
        for _ in range(runs):
            for key, run in calls.items():
                start = time.perf_counter()
                run()
                times[key].append(time.perf_counter() - start)
        a, b = min(times["ember"]), min(times["ort"])
        ratio = statistics.median(e / o for e, o in zip(times["ember"], times["ort"]))
        ga, gb = flops / a / 1e9, flops / b / 1e9
        share = 100 * ga / (peak * threads)
        print(f"{name:42} {a * 1e3:9.2f} {b * 1e3:9.2f} {ga:10.1f} {gb:9.1f} {share:8.0f}% {ratio:6.2f}x", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    bld = sub.add_parser("build")
    bld.add_argument("directory")
    bld.add_argument("--only", default="", help="only the cases whose name contains this")
    cmp = sub.add_parser("compare")
    cmp.add_argument("--only", default="", help="only the cases whose name contains this")
    cmp.add_argument("old")
    cmp.add_argument("new")
    cmp.add_argument("--threads", type=int, default=1)
    cmp.add_argument("--runs", type=int, default=10)
    cmp.add_argument("--peak", type=float, default=None, help="FMA peak GFLOP/s per core (default: measured)")
    vs = sub.add_parser("ort")
    vs.add_argument("directory")
    vs.add_argument("--only", default="", help="only the cases whose name contains this")
    vs.add_argument("--threads", type=int, default=1)
    vs.add_argument("--runs", type=int, default=10)
    vs.add_argument("--peak", type=float, default=None, help="FMA peak GFLOP/s per core (default: measured)")
    args = parser.parse_args()
    if args.command == "build":
        build(args.directory, args.only)
    elif args.command == "ort":
        against_onnxruntime(args.directory, args.threads, args.runs, args.peak, args.only)
    else:
        compare(args.old, args.new, args.threads, args.runs, args.peak, args.only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
