"""Each Caffe layer, alone, in Ember's interpreter vs OpenCV's Caffe runtime."""

from __future__ import annotations

import cv2  # noqa: F401  (the OpenCV reference these tests compare with; a test dependency)
import numpy as np
import pytest
from caffe_harness import check_against_opencv, randn, single_layer

from frontends.caffe.layers.conv import caffe_pooled_size, has_empty_window

S = (2, 4, 7, 9)  # odd spatial sizes everywhere


def w(*shape):
    return randn(*shape)


CONV_CASES = {
    "basic": ({"num_output": 6, "kernel_size": [3]}, (6, 4, 3, 3)),
    "pad_stride": ({"num_output": 5, "kernel_size": [3], "pad": [1], "stride": [2]}, (5, 4, 3, 3)),
    "hw_forms": (
        {"num_output": 3, "kernel_h": 3, "kernel_w": 2, "stride_h": 2, "stride_w": 1, "pad_h": 1, "pad_w": 0},
        (3, 4, 3, 2),
    ),
    "two_values": ({"num_output": 3, "kernel_size": [1, 3], "pad": [0, 1], "stride": [1, 2]}, (3, 4, 1, 3)),
    "group": ({"num_output": 6, "kernel_size": [3], "group": 2}, (6, 2, 3, 3)),
    "dilation": ({"num_output": 4, "kernel_size": [3], "dilation": [2], "pad": [2]}, (4, 4, 3, 3)),
    "no_bias": ({"num_output": 4, "kernel_size": [3], "bias_term": False}, (4, 4, 3, 3)),
}


@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_convolution(case):
    params, w_shape = CONV_CASES[case]
    blobs = [w(*w_shape)] + ([w(params["num_output"])] if params.get("bias_term", True) else [])
    net = single_layer("Convolution", S, blobs=blobs, convolution_param=params)
    check_against_opencv(net, {"data": randn(*S)})


DECONV_CASES = {
    "stride2_odd": ({"num_output": 3, "kernel_size": [3], "stride": [2]}, (4, 3, 3, 3)),
    "pad": ({"num_output": 3, "kernel_size": [4], "stride": [2], "pad": [1]}, (4, 3, 4, 4)),
    "group": ({"num_output": 4, "kernel_size": [3], "group": 2, "stride": [3]}, (4, 2, 3, 3)),
    "no_bias": ({"num_output": 2, "kernel_size": [3], "pad": [1], "bias_term": False}, (4, 2, 3, 3)),
}


@pytest.mark.parametrize("case", sorted(DECONV_CASES))
def test_deconvolution_output_size(case):
    params, w_shape = DECONV_CASES[case]
    blobs = [w(*w_shape)] + ([w(params["num_output"])] if params.get("bias_term", True) else [])
    net = single_layer("Deconvolution", S, blobs=blobs, convolution_param=params)
    check_against_opencv(net, {"data": randn(*S)})


def test_inner_product():
    net = single_layer("InnerProduct", S, blobs=[w(5, 4 * 7 * 9), w(5)], inner_product_param={"num_output": 5})
    check_against_opencv(net, {"data": randn(*S)})


POOL_CASES = {
    "max_ceil": {"pool": "MAX", "kernel_size": 3, "stride": 2},
    "ave_ceil": {"pool": "AVE", "kernel_size": 3, "stride": 2},
    "max_pad_ceil": {"pool": "MAX", "kernel_size": 3, "stride": 2, "pad": 1},
    "ave_pad_ceil": {"pool": "AVE", "kernel_size": 3, "stride": 2, "pad": 1},
    "ave_pad_drop_last": {"pool": "AVE", "kernel_size": 2, "stride": 2, "pad": 1},
    "max_hw": {"pool": "MAX", "kernel_h": 2, "kernel_w": 3, "stride_h": 1, "stride_w": 2},
    "ave_stride3": {"pool": "AVE", "kernel_size": 2, "stride": 3, "pad": 1},
    "global_max": {"pool": "MAX", "global_pooling": True},
    "global_ave": {"pool": "AVE", "global_pooling": True},
}


@pytest.mark.parametrize("case", sorted(POOL_CASES))
def test_pooling_rounding(case):
    net = single_layer("Pooling", S, pooling_param=POOL_CASES[case])
    check_against_opencv(net, {"data": randn(*S)})


UNARY_CASES = {
    "ReLU": {},
    "Sigmoid": {},
    "TanH": {},
    "AbsVal": {},
    "BNLL": {},
    "Dropout": {},
    "ELU": {"elu_param": {"alpha": 0.7}},
    "Power": {"power_param": {"power": 2.0, "scale": 0.5, "shift": 3.0}},
    "Exp": {"exp_param": {"base": 2.0, "scale": 0.5, "shift": 0.1}},
}


@pytest.mark.parametrize("layer_type", sorted(UNARY_CASES))
def test_elementwise(layer_type):
    net = single_layer(layer_type, S, **UNARY_CASES[layer_type])
    check_against_opencv(net, {"data": randn(*S)})


def test_leaky_relu():
    net = single_layer("ReLU", S, relu_param={"negative_slope": 0.1})
    check_against_opencv(net, {"data": randn(*S)})


def test_log_positive_inputs():
    """OpenCV's Log ignores base/scale/shift (see test_caffe_layers_numpy.py for those)."""
    net = single_layer("Log", S)
    check_against_opencv(net, {"data": randn(*S, low=0.1)})


@pytest.mark.parametrize("shared", [False, True])
def test_prelu(shared):
    net = single_layer("PReLU", S, blobs=[w(1 if shared else 4)], prelu_param={"channel_shared": shared})
    check_against_opencv(net, {"data": randn(*S)})


def test_batch_norm_with_moving_average_factor():
    mean, var = w(4), np.abs(w(4)) + 0.5
    factor = np.array([2.5], np.float32)
    net = single_layer("BatchNorm", S, blobs=[mean * factor, var * factor, factor], batch_norm_param={"eps": 1e-3})
    check_against_opencv(net, {"data": randn(*S)})


@pytest.mark.parametrize("bias", [False, True])
def test_scale(bias):
    blobs = [w(4)] + ([w(4)] if bias else [])
    net = single_layer("Scale", S, blobs=blobs, scale_param={"bias_term": bias})
    check_against_opencv(net, {"data": randn(*S)})


@pytest.mark.parametrize(
    "params",
    [{"operation": "SUM"}, {"operation": "SUM", "coeff": [0.5, -2.0]}, {"operation": "PROD"}, {"operation": "MAX"}],
    ids=str,
)
def test_eltwise(params):
    net = single_layer("Eltwise", S, bottoms=2, eltwise_param=params)
    check_against_opencv(net, {"data": randn(*S), "data2": randn(*S)[::-1].copy()})


def test_concat_axis():
    shapes = {"data": (2, 3, 5, 5), "data2": (2, 4, 5, 5)}
    net = single_layer("Concat", shapes, bottoms=2, concat_param={"axis": 1})
    check_against_opencv(net, {"data": randn(2, 3, 5, 5), "data2": randn(2, 4, 5, 5) + 1})


@pytest.mark.parametrize("params", [{"axis": 1, "slice_point": [1, 3]}, {"axis": 3}], ids=str)
def test_slice(params):
    net = single_layer("Slice", (2, 6, 5, 9), tops=3, slice_param=params)
    net.layer("join", "Concat", ["out2", "out0", "out1"], ["joined"], concat_param={"axis": params["axis"]})
    check_against_opencv(net, {"data": randn(2, 6, 5, 9)})


def test_split_then_sum():
    net = single_layer("Split", S, tops=2)
    net.layer("sum", "Eltwise", ["out0", "out1"], ["sum"])
    check_against_opencv(net, {"data": randn(*S)})


@pytest.mark.parametrize("params", [{}, {"axis": 2}, {"axis": 1, "end_axis": 2}], ids=str)
def test_flatten(params):
    net = single_layer("Flatten", S, flatten_param=params)
    check_against_opencv(net, {"data": randn(*S)})


@pytest.mark.parametrize(
    "params", [{"shape": {"dim": [0, -1, 9]}}, {"shape": {"dim": [2, 14]}, "axis": 1, "num_axes": 2}], ids=str
)
def test_reshape(params):
    net = single_layer("Reshape", S, reshape_param=params)
    check_against_opencv(net, {"data": randn(*S)})


def test_permute():
    net = single_layer("Permute", S, permute_param={"order": [0, 2, 3, 1]})
    check_against_opencv(net, {"data": randn(*S)})


@pytest.mark.parametrize("axis", [1, 3])
def test_softmax(axis):
    net = single_layer("Softmax", S, softmax_param={"axis": axis})
    check_against_opencv(net, {"data": randn(*S)})


@pytest.mark.parametrize("region", ["ACROSS_CHANNELS", "WITHIN_CHANNEL"])
def test_lrn(region):
    net = single_layer(
        "LRN", (1, 6, 7, 9), lrn_param={"local_size": 3, "alpha": 0.5, "beta": 0.75, "norm_region": region}
    )
    check_against_opencv(net, {"data": randn(1, 6, 7, 9)})


def test_crop():
    shapes = {"data": (1, 3, 9, 11), "data2": (1, 3, 5, 6)}
    net = single_layer("Crop", shapes, bottoms=2, crop_param={"axis": 2, "offset": [1, 3]})
    check_against_opencv(net, {"data": randn(1, 3, 9, 11), "data2": randn(1, 3, 5, 6)})


@pytest.mark.parametrize(
    "params",
    [{"across_spatial": False, "channel_shared": False}, {"across_spatial": True, "channel_shared": True}],
    ids=str,
)
def test_normalize(params):
    scale = w(1 if params["channel_shared"] else 4)
    net = single_layer("Normalize", S, blobs=[scale], norm_param={**params, "eps": 1e-6})
    check_against_opencv(net, {"data": randn(*S)})


def test_pooling_rounding_sweep():
    """Seeded sweep of odd sizes, kernels, strides and pads: Caffe's ceil-then-drop rule, MAX and AVE.

    MAX windows that cover padding only are left to test_caffe_layers_numpy (OpenCV gives 0, Caffe -FLT_MAX).
    """
    rng = np.random.default_rng(7)
    for trial in range(30):
        kernel = int(rng.integers(2, 5))
        stride = int(rng.integers(1, 4))
        pad = int(rng.integers(0, kernel))
        size = int(rng.integers(kernel, 12)) | 1
        method = ["MAX", "AVE"][trial % 2]
        shape = (1, 2, size, size + 2)
        if method == "MAX" and any(
            has_empty_window(s, kernel, stride, pad, caffe_pooled_size(s, kernel, stride, pad)) for s in shape[2:]
        ):
            continue
        net = single_layer(
            "Pooling", shape, pooling_param={"pool": method, "kernel_size": kernel, "stride": stride, "pad": pad}
        )
        check_against_opencv(net, {"data": randn(*shape)})


def test_eltwise_three_inputs_with_coefficients():
    net = single_layer("Eltwise", S, bottoms=3, eltwise_param={"coeff": [1.0, -1.0, 0.25]})
    check_against_opencv(net, {"data": randn(*S), "data2": randn(*S) * 2, "data3": randn(*S) + 1})


def test_legacy_concat_dim_and_slice_dim():
    net = single_layer("Slice", (2, 6, 5, 9), tops=2, slice_param={"slice_dim": 1, "slice_point": [2]})
    net.layer("join", "Concat", ["out1", "out0"], ["joined"], concat_param={"concat_dim": 1})
    check_against_opencv(net, {"data": randn(2, 6, 5, 9)})


def test_split_feeding_two_branches_in_v1_form():
    net = single_layer("Split", S, tops=2)
    net.layer("relu", "ReLU", ["out0"], ["r"])
    net.layer("tanh", "TanH", ["out1"], ["t"])
    net.layer("prod", "Eltwise", ["r", "t"], ["prod"], eltwise_param={"operation": "PROD"})
    check_against_opencv(net, {"data": randn(*S)}, legacy=True, input_form="input_dim")
