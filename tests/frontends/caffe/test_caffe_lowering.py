"""What each Caffe layer becomes in Ember's IR (op sequences), so conversion choices stay
visible and deliberate: Caffe-specific rounding, in-place SSA, constants for PriorBox."""

from __future__ import annotations

import numpy as np
import pytest
from caffe_harness import randn, save, single_layer

from frontends.caffe import import_model

S = (1, 4, 9, 9)

CASES = [
    (
        "max_pool_ceil",
        single_layer("Pooling", S, pooling_param={"pool": "MAX", "kernel_size": 3, "stride": 2}),
        ["MaxPool"],
    ),
    (
        "ave_pool_pad",
        single_layer("Pooling", S, pooling_param={"pool": "AVE", "kernel_size": 3, "stride": 2, "pad": 1}),
        ["Pad", "AveragePool"],
    ),
    (
        "max_pool_all_padding_window",
        single_layer("Pooling", S, pooling_param={"pool": "MAX", "kernel_size": 2, "stride": 3}),
        ["MaxPool", "Pad"],
    ),
    (
        "global_ave",
        single_layer("Pooling", S, pooling_param={"pool": "AVE", "global_pooling": True}),
        ["GlobalAveragePool"],
    ),
    ("leaky_relu", single_layer("ReLU", S, relu_param={"negative_slope": 0.1}), ["LeakyRelu"]),
    ("power", single_layer("Power", S, power_param={"power": 2.0, "shift": 1.0}), ["Add", "Pow"]),
    ("bnll", single_layer("BNLL", S), ["Softplus"]),
    ("threshold", single_layer("Threshold", S), ["Greater", "Cast"]),
    ("lrn_across", single_layer("LRN", S, lrn_param={"local_size": 3}), ["LRN"]),
    (
        "lrn_within",
        single_layer("LRN", S, lrn_param={"local_size": 3, "norm_region": "WITHIN_CHANNEL"}),
        ["Mul", "Pad", "AveragePool", "Mul", "Add", "Pow", "Mul"],
    ),
    (
        "batch_norm",
        single_layer("BatchNorm", S, blobs=[randn(4), np.ones(4, np.float32), np.ones(1, np.float32)]),
        ["BatchNormalization"],
    ),
    ("flatten", single_layer("Flatten", S), ["Reshape"]),
    ("permute", single_layer("Permute", S, permute_param={"order": [0, 2, 3, 1]}), ["Transpose"]),
    ("dropout", single_layer("Dropout", S), ["Identity"]),
    (
        "prior_box",
        single_layer(
            "PriorBox",
            {"data": S, "data2": (1, 3, 36, 36)},
            bottoms=2,
            prior_box_param={"min_size": [4.0], "variance": [0.1]},
        ),
        [],
    ),
]


@pytest.mark.parametrize("name,net,ops", CASES, ids=[c[0] for c in CASES])
def test_layer_lowering(name, net, ops):
    proto, model = save(net)
    graph = import_model(proto, model)
    assert [n.op for n in graph.nodes if n.op != "Constant"] == ops
    assert [v.name for v in graph.outputs] == ["out"]


def test_prior_box_is_a_constant():
    net = single_layer(
        "PriorBox",
        {"data": S, "data2": (1, 3, 36, 36)},
        bottoms=2,
        prior_box_param={"min_size": [4.0], "variance": [0.1]},
    )
    proto, model = save(net)
    out = import_model(proto, model).outputs[0]
    assert out.producer.op == "Constant" and out.type.shape == (1, 2, 9 * 9 * 4)
