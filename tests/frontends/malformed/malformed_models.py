"""Malformed ONNX models, built with onnx.helper, and what the error about each must name.

Each ``Malformed`` is a model that onnx's checker may accept but that no
runtime can run: a Conv whose weight has 5 input channels for a 3-channel
input, a MatMul whose inner dims differ, a dangling input name, an attribute of
the wrong type...  ``node`` and ``op`` are what the error must name, ``shows``
the shapes (or names) it must quote.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
F = TensorProto.FLOAT


@dataclass
class Malformed:
    name: str
    model: onnx.ModelProto
    node: str  # the node the error names
    op: str  # the op it names
    shows: list[str] = field(default_factory=list)  # further text it quotes (shapes, names)


def _model(nodes, inputs, outputs, weights=None, opset=OPSET) -> onnx.ModelProto:
    ins = [helper.make_tensor_value_info(n, F, s) for n, s in inputs.items()]
    outs = [helper.make_tensor_value_info(n, F, None) for n in outputs]
    inits = [numpy_helper.from_array(np.asarray(a), n) for n, a in (weights or {}).items()]
    graph = helper.make_graph(nodes, "malformed", ins, outs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _ones(*shape, dtype=np.float32):
    return np.ones(shape, dtype)


def conv_bad_channels() -> Malformed:
    """The issue's example: a weight with 5 input channels for a 3-channel input."""
    model = _model(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv1")],
        {"x": [1, 3, 8, 8]},
        ["y"],
        {"w": _ones(4, 5, 3, 3)},
    )
    return Malformed("conv_bad_channels", model, "conv1", "Conv", ["[4, 5, 3, 3]", "[1, 3, 8, 8]"])


def conv_group_channels() -> Malformed:
    """group=3 with a weight of 3 input channels per group needs 9 input channels, not 6."""
    model = _model(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="grouped", group=3)],
        {"x": [1, 6, 8, 8]},
        ["y"],
        {"w": _ones(6, 3, 3, 3)},
    )
    return Malformed("conv_group_channels", model, "grouped", "Conv", ["[6, 3, 3, 3]", "[1, 6, 8, 8]", "group 3"])


def conv_bias_length() -> Malformed:
    model = _model(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], name="biased")],
        {"x": [1, 3, 8, 8]},
        ["y"],
        {"w": _ones(4, 3, 3, 3), "b": _ones(5)},
    )
    return Malformed("conv_bias_length", model, "biased", "Conv", ["B [5]", "4"])


def conv_weight_rank() -> Malformed:
    model = _model(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="flat_w")], {"x": [1, 3, 8, 8]}, ["y"], {"w": _ones(4, 3, 3)}
    )
    return Malformed("conv_weight_rank", model, "flat_w", "Conv", ["f32[4,3,3]", "f32[1,3,8,8]"])


def conv_transpose_channels() -> Malformed:
    model = _model(
        [helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up")],
        {"x": [1, 3, 8, 8]},
        ["y"],
        {"w": _ones(4, 2, 3, 3)},
    )
    return Malformed("conv_transpose_channels", model, "up", "ConvTranspose", ["[4, 2, 3, 3]", "[1, 3, 8, 8]"])


def matmul_inner_dims() -> Malformed:
    model = _model([helper.make_node("MatMul", ["a", "b"], ["y"], name="mm")], {"a": [2, 3]}, ["y"], {"b": _ones(4, 5)})
    return Malformed("matmul_inner_dims", model, "mm", "MatMul", ["f32[2,3]", "f32[4,5]"])


def gemm_transposed_inner_dims() -> Malformed:
    model = _model(
        [helper.make_node("Gemm", ["a", "b"], ["y"], name="fc", transA=1)], {"a": [2, 3]}, ["y"], {"b": _ones(3, 5)}
    )
    return Malformed("gemm_transposed_inner_dims", model, "fc", "Gemm", ["f32[2,3]", "f32[3,5]"])


def gemm_bias_length() -> Malformed:
    model = _model(
        [helper.make_node("Gemm", ["a", "b", "c"], ["y"], name="fc_bias")],
        {"a": [2, 3]},
        ["y"],
        {"b": _ones(3, 5), "c": _ones(4)},
    )
    return Malformed("gemm_bias_length", model, "fc_bias", "Gemm", ["C [4]", "[2, 5]"])


def concat_mismatch() -> Malformed:
    model = _model(
        [helper.make_node("Concat", ["a", "b"], ["y"], name="cat", axis=0)], {"a": [2, 3], "b": [2, 4]}, ["y"]
    )
    return Malformed("concat_mismatch", model, "cat", "Concat", ["f32[2,3]", "f32[2,4]"])


def concat_rank() -> Malformed:
    model = _model(
        [helper.make_node("Concat", ["a", "b"], ["y"], name="cat3", axis=0)], {"a": [2, 3], "b": [2, 3, 1]}, ["y"]
    )
    return Malformed("concat_rank", model, "cat3", "Concat", ["f32[2,3]", "f32[2,3,1]"])


def reshape_element_count() -> Malformed:
    model = _model(
        [helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape")],
        {"x": [2, 3]},
        ["y"],
        {"shape": np.array([4, 2], np.int64)},
    )
    return Malformed("reshape_element_count", model, "reshape", "Reshape", ["[4, 2]", "[2, 3]", "8", "6"])


def gather_elements_rank() -> Malformed:
    model = _model(
        [helper.make_node("GatherElements", ["x", "i"], ["y"], name="pick")],
        {"x": [3, 4]},
        ["y"],
        {"i": np.zeros(2, np.int64)},
    )
    return Malformed("gather_elements_rank", model, "pick", "GatherElements", ["[2]", "[3, 4]"])


def layer_norm_scale() -> Malformed:
    model = _model(
        [helper.make_node("LayerNormalization", ["x", "s"], ["y"], name="ln")], {"x": [2, 3, 8]}, ["y"], {"s": _ones(5)}
    )
    return Malformed("layer_norm_scale", model, "ln", "LayerNormalization", ["Scale [5]", "[2, 3, 8]"])


def batch_norm_params() -> Malformed:
    model = _model(
        [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="bn")],
        {"x": [1, 3, 4, 4]},
        ["y"],
        {"s": _ones(3), "b": _ones(4), "m": _ones(3), "v": _ones(3)},
    )
    return Malformed("batch_norm_params", model, "bn", "BatchNormalization", ["f32[4]", "f32[1,3,4,4]"])


def broadcast_mismatch() -> Malformed:
    model = _model([helper.make_node("Add", ["a", "b"], ["y"], name="add")], {"a": [2, 3], "b": [4, 3]}, ["y"])
    return Malformed("broadcast_mismatch", model, "add", "Add", ["f32[2,3]", "f32[4,3]"])


def prelu_slope() -> Malformed:
    model = _model(
        [helper.make_node("PRelu", ["x", "slope"], ["y"], name="prelu")],
        {"x": [1, 3, 4, 4]},
        ["y"],
        {"slope": _ones(5, 1, 1)},
    )
    return Malformed("prelu_slope", model, "prelu", "PRelu", ["[5, 1, 1]", "[1, 3, 4, 4]"])


def split_sizes() -> Malformed:
    model = _model(
        [helper.make_node("Split", ["x", "sizes"], ["y0", "y1"], name="split", axis=0)],
        {"x": [6, 4]},
        ["y0", "y1"],
        {"sizes": np.array([2, 3], np.int64)},
    )
    return Malformed("split_sizes", model, "split", "Split", ["f32[6,4]"])


def dangling_name() -> Malformed:
    model = _model([helper.make_node("Relu", ["nowhere"], ["y"], name="relu")], {"x": [2]}, ["y"])
    return Malformed("dangling_name", model, "relu", "Relu", ["'nowhere'"])


def wrong_attribute_type() -> Malformed:
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv_attr")
    node.attribute.append(helper.make_attribute("group", 1.5))
    model = _model([node], {"x": [1, 3, 8, 8]}, ["y"], {"w": _ones(4, 3, 3, 3)})
    return Malformed("wrong_attribute_type", model, "conv_attr", "Conv", ["'group'", "int", "float"])


CASES = [
    conv_bad_channels,
    conv_group_channels,
    conv_bias_length,
    conv_weight_rank,
    conv_transpose_channels,
    matmul_inner_dims,
    gemm_transposed_inner_dims,
    gemm_bias_length,
    concat_mismatch,
    concat_rank,
    reshape_element_count,
    gather_elements_rank,
    layer_norm_scale,
    batch_norm_params,
    broadcast_mismatch,
    prelu_slope,
    split_sizes,
    dangling_name,
    wrong_attribute_type,
]


def two_bad_convs() -> onnx.ModelProto:
    """Two nodes breaking contracts, and a good one between them: the error lists both."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["h"], name="first"),
        helper.make_node("Relu", ["h"], ["r"], name="fine"),
        helper.make_node("Conv", ["r", "w2"], ["y"], name="second"),
    ]
    return _model(nodes, {"x": [1, 3, 8, 8]}, ["y"], {"w1": _ones(4, 5, 3, 3), "w2": _ones(2, 7, 1, 1)})
