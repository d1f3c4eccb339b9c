"""Whole networks in Ember vs OpenCV: LeNet, a small VGG, a ResNet block with
BatchNorm+Scale, a GoogLeNet-style inception block with LRN; plus the legacy
V1 ``layers`` form and the three ways of declaring inputs."""

from __future__ import annotations

import cv2  # noqa: F401  (the OpenCV reference these tests compare with; a test dependency)
import numpy as np
import pytest
from caffe_harness import check_against_opencv, randn

from frontends.caffe.writer import NetSpec


def conv(net, name, bottom, out, cin, k=3, pad=1, stride=1, relu=True, bias=True, group=1):
    blobs = [randn(out, cin // group, k, k) * (1.0 / np.sqrt(cin * k * k))] + ([randn(out) * 0.1] if bias else [])
    net.layer(
        name,
        "Convolution",
        [bottom],
        [name],
        blobs=blobs,
        convolution_param={
            "num_output": out,
            "kernel_size": [k],
            "pad": [pad],
            "stride": [stride],
            "bias_term": bias,
            "group": group,
        },
    )
    if relu:
        net.layer(f"{name}_relu", "ReLU", [name], [name])
    return name


def lenet(legacy_types: bool = False) -> NetSpec:
    net = NetSpec("lenet", inputs={"data": (2, 1, 28, 28)})
    net.layer("scale", "Power", ["data"], ["scaled"], power_param={"scale": 0.00390625})
    conv(net, "conv1", "scaled", 20, 1, k=5, pad=0, relu=False)
    net.layer("pool1", "Pooling", ["conv1"], ["pool1"], pooling_param={"pool": "MAX", "kernel_size": 2, "stride": 2})
    conv(net, "conv2", "pool1", 50, 20, k=5, pad=0, relu=False)
    net.layer("pool2", "Pooling", ["conv2"], ["pool2"], pooling_param={"pool": "MAX", "kernel_size": 2, "stride": 2})
    net.layer(
        "ip1",
        "InnerProduct",
        ["pool2"],
        ["ip1"],
        blobs=[randn(500, 800) * 0.03, randn(500) * 0.1],
        inner_product_param={"num_output": 500},
    )
    net.layer("relu1", "ReLU", ["ip1"], ["ip1"])
    net.layer("drop1", "Dropout", ["ip1"], ["ip1"], dropout_param={"dropout_ratio": 0.5})
    net.layer(
        "ip2",
        "InnerProduct",
        ["ip1"],
        ["ip2"],
        blobs=[randn(10, 500) * 0.05, randn(10) * 0.1],
        inner_product_param={"num_output": 10},
    )
    net.layer("prob", "Softmax", ["ip2"], ["prob"])
    return net


@pytest.mark.parametrize("input_form", ["input_shape", "input_dim", "layer"])
def test_lenet(input_form):
    check_against_opencv(lenet(), {"data": randn(2, 1, 28, 28) * 255}, input_form=input_form, atol=1e-5)


def test_lenet_legacy_v1_layers_and_blob_shapes():
    check_against_opencv(lenet(), {"data": randn(2, 1, 28, 28) * 255}, input_form="input_dim", legacy=True, atol=1e-5)


def test_small_vgg_with_odd_sizes():
    net = NetSpec("vgg", inputs={"data": (1, 3, 35, 35)})
    c = conv(net, "conv1_1", "data", 8, 3)
    c = conv(net, "conv1_2", c, 8, 8)
    net.layer("pool1", "Pooling", [c], ["pool1"], pooling_param={"pool": "MAX", "kernel_size": 2, "stride": 2})
    c = conv(net, "conv2_1", "pool1", 16, 8)
    c = conv(net, "conv2_2", c, 16, 16)
    net.layer("pool2", "Pooling", [c], ["pool2"], pooling_param={"pool": "MAX", "kernel_size": 3, "stride": 2})
    net.layer(
        "fc6",
        "InnerProduct",
        ["pool2"],
        ["fc6"],
        blobs=[randn(32, 16 * 9 * 9) * 0.03, randn(32)],
        inner_product_param={"num_output": 32},
    )
    net.layer("relu6", "ReLU", ["fc6"], ["fc6"])
    net.layer("drop6", "Dropout", ["fc6"], ["fc6"])
    net.layer(
        "fc7",
        "InnerProduct",
        ["fc6"],
        ["fc7"],
        blobs=[randn(10, 32) * 0.2, randn(10)],
        inner_product_param={"num_output": 10},
    )
    net.layer("prob", "Softmax", ["fc7"], ["prob"])
    check_against_opencv(net, {"data": randn(1, 3, 35, 35)}, atol=1e-5)


def batch_norm_scale(net, name, bottom, channels):
    factor = np.array([0.5], np.float32)
    net.layer(
        f"{name}_bn",
        "BatchNorm",
        [bottom],
        [bottom],
        blobs=[randn(channels) * factor, (np.abs(randn(channels)) + 0.5) * factor, factor],
    )
    net.layer(
        f"{name}_scale",
        "Scale",
        [bottom],
        [bottom],
        blobs=[randn(channels), randn(channels)],
        scale_param={"bias_term": True},
    )


def test_resnet_block_with_batchnorm_and_scale():
    net = NetSpec("resnet_block", inputs={"data": (1, 8, 15, 15)})
    conv(net, "branch2a", "data", 8, 8, relu=False, bias=False)
    batch_norm_scale(net, "branch2a", "branch2a", 8)
    net.layer("branch2a_relu", "ReLU", ["branch2a"], ["branch2a"])
    conv(net, "branch2b", "branch2a", 8, 8, relu=False, bias=False)
    batch_norm_scale(net, "branch2b", "branch2b", 8)
    net.layer("sum", "Eltwise", ["data", "branch2b"], ["sum"])
    net.layer("sum_relu", "ReLU", ["sum"], ["sum"])
    conv(net, "down", "sum", 16, 8, k=1, pad=0, stride=2, relu=False, bias=False)
    batch_norm_scale(net, "down", "down", 16)
    net.layer("pool", "Pooling", ["down"], ["pool"], pooling_param={"pool": "AVE", "global_pooling": True})
    check_against_opencv(net, {"data": randn(1, 8, 15, 15)}, atol=1e-4)


def test_inception_block_with_lrn():
    net = NetSpec("inception", inputs={"data": (1, 3, 31, 31)})
    conv(net, "conv1", "data", 16, 3, k=7, pad=3, stride=2)
    net.layer("pool1", "Pooling", ["conv1"], ["pool1"], pooling_param={"pool": "MAX", "kernel_size": 3, "stride": 2})
    net.layer("norm1", "LRN", ["pool1"], ["norm1"], lrn_param={"local_size": 5, "alpha": 1e-4, "beta": 0.75})
    b1 = conv(net, "inc_1x1", "norm1", 8, 16, k=1, pad=0)
    r3 = conv(net, "inc_3x3_reduce", "norm1", 6, 16, k=1, pad=0)
    b3 = conv(net, "inc_3x3", r3, 8, 6)
    r5 = conv(net, "inc_5x5_reduce", "norm1", 4, 16, k=1, pad=0)
    b5 = conv(net, "inc_5x5", r5, 4, 4, k=5, pad=2)
    net.layer(
        "inc_pool",
        "Pooling",
        ["norm1"],
        ["inc_pool"],
        pooling_param={"pool": "MAX", "kernel_size": 3, "stride": 1, "pad": 1},
    )
    bp = conv(net, "inc_pool_proj", "inc_pool", 4, 16, k=1, pad=0)
    net.layer("inc_output", "Concat", [b1, b3, b5, bp], ["inc_output"])
    net.layer(
        "pool2",
        "Pooling",
        ["inc_output"],
        ["pool2"],
        pooling_param={"pool": "AVE", "kernel_size": 3, "stride": 2, "pad": 1},
    )
    check_against_opencv(net, {"data": randn(1, 3, 31, 31)}, atol=1e-4)
