"""Layers (or settings) OpenCV's Caffe runtime lacks or ignores, checked against NumPy
transcriptions of Caffe's definitions: Log with base/scale/shift, InnerProduct
``transpose`` and ``axis``, Bias, Scale with a second bottom, Threshold, Clip,
ArgMax, Embed, and Deconvolution's dilated output size."""

from __future__ import annotations

import numpy as np
import pytest
from caffe_harness import randn, run_ember, save, single_layer

S = (2, 4, 7, 9)


def ember(net, **inputs):
    proto, model = save(net)
    return run_ember(proto, model, inputs)


def test_log_with_base_scale_shift():
    x = randn(*S, low=0.1)
    out = ember(single_layer("Log", S, log_param={"base": 10.0, "scale": 2.0, "shift": 0.5}), data=x)["out"]
    np.testing.assert_allclose(out, np.log10(0.5 + 2 * x), rtol=1e-5, atol=1e-6)


def test_exp_natural_base():
    x = randn(*S)
    out = ember(single_layer("Exp", S, exp_param={"scale": 0.5, "shift": 0.2}), data=x)["out"]
    np.testing.assert_allclose(out, np.exp(0.2 + 0.5 * x), rtol=1e-5)


def test_inner_product_transpose():
    k = 4 * 7 * 9
    weights, bias, x = randn(k, 5), randn(5), randn(*S)
    net = single_layer(
        "InnerProduct", S, blobs=[weights, bias], inner_product_param={"num_output": 5, "transpose": True}
    )
    np.testing.assert_allclose(ember(net, data=x)["out"], x.reshape(2, k) @ weights + bias, rtol=1e-4, atol=1e-4)


def test_inner_product_axis_2():
    weights, x = randn(3, 7 * 9), randn(*S)
    net = single_layer(
        "InnerProduct", S, blobs=[weights], inner_product_param={"num_output": 3, "axis": 2, "bias_term": False}
    )
    out = ember(net, data=x)["out"]
    assert out.shape == (2, 4, 3)
    np.testing.assert_allclose(out, x.reshape(2, 4, 63) @ weights.T, rtol=1e-4, atol=1e-4)


def test_bias_learned_and_second_bottom():
    b, x = randn(4), randn(*S)
    out = ember(single_layer("Bias", S, blobs=[b]), data=x)["out"]
    np.testing.assert_allclose(out, x + b[:, None, None], rtol=1e-6)
    net = single_layer("Bias", {"data": S, "data2": (4, 7)}, bottoms=2)
    y = randn(4, 7)
    np.testing.assert_allclose(ember(net, data=x, data2=y)["out"], x + y[:, :, None], rtol=1e-6)


def test_scale_second_bottom_with_bias_and_num_axes():
    x, factor, bias = randn(*S), randn(4, 7), randn(4, 7)
    net = single_layer("Scale", {"data": S, "data2": (4, 7)}, bottoms=2, blobs=[bias], scale_param={"bias_term": True})
    out = ember(net, data=x, data2=factor)["out"]
    np.testing.assert_allclose(out, x * factor[:, :, None] + bias[:, :, None], rtol=1e-5, atol=1e-6)
    gamma = randn(7, 9)
    net = single_layer("Scale", S, blobs=[gamma], scale_param={"axis": 2, "num_axes": -1})
    np.testing.assert_allclose(ember(net, data=x)["out"], x * gamma, rtol=1e-6)


def test_threshold():
    x = randn(*S)
    out = ember(single_layer("Threshold", S, threshold_param={"threshold": 0.3}), data=x)["out"]
    np.testing.assert_array_equal(out, (x > 0.3).astype(np.float32))


def test_clip():
    x = randn(*S)
    out = ember(single_layer("Clip", S, clip_param={"min": -0.5, "max": 0.7}), data=x)["out"]
    np.testing.assert_array_equal(out, np.clip(x, -0.5, 0.7))


def test_argmax_along_axis():
    x = randn(*S)
    out = ember(single_layer("ArgMax", S, argmax_param={"axis": 1}), data=x)["out"]
    np.testing.assert_array_equal(out, np.argmax(x, axis=1)[:, None].astype(np.float32))


def test_argmax_flattened_top_k_with_values():
    x = randn(*S)
    out = ember(single_layer("ArgMax", S, argmax_param={"top_k": 3, "out_max_val": True}), data=x)["out"]
    flat = x.reshape(2, -1)
    idx = np.argsort(-flat, axis=1)[:, :3]
    assert out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out[:, 0], idx.astype(np.float32))
    np.testing.assert_array_equal(out[:, 1], np.take_along_axis(flat, idx, axis=1))


def test_embed():
    table, bias = randn(10, 3), randn(3)
    ids = np.array([[1, 2, 3, 4, 9], [0, 0, 5, 6, 7]], np.float32)
    net = single_layer("Embed", (2, 5), blobs=[table, bias], embed_param={"num_output": 3, "input_dim": 10})
    np.testing.assert_allclose(ember(net, data=ids)["out"], table[ids.astype(int)] + bias, rtol=1e-6)


@pytest.mark.parametrize("size,kernel,stride,pad,dilation", [(7, 3, 2, 0, 2), (9, 4, 3, 1, 1), (5, 3, 1, 1, 3)])
def test_deconvolution_output_size_formula(size, kernel, stride, pad, dilation):
    """Caffe: out = stride * (in - 1) + dilation * (kernel - 1) + 1 - 2 * pad (OpenCV ignores dilation)."""
    params = {
        "num_output": 2,
        "kernel_size": [kernel],
        "stride": [stride],
        "pad": [pad],
        "dilation": [dilation],
        "bias_term": False,
    }
    shape = (1, 3, size, size + 2)
    out = ember(
        single_layer("Deconvolution", shape, blobs=[randn(3, 2, kernel, kernel)], convolution_param=params),
        data=randn(*shape),
    )["out"]
    expect = [stride * (s - 1) + dilation * (kernel - 1) + 1 - 2 * pad for s in shape[2:]]
    assert list(out.shape) == [1, 2] + expect


def test_pooling_round_mode_floor():
    """BVLC's ``round_mode: FLOOR`` (OpenCV does not read it): floor((in + 2p - k) / s) + 1."""
    net = single_layer(
        "Pooling", (1, 1, 8, 8), pooling_param={"pool": "MAX", "kernel_size": 3, "stride": 2, "round_mode": "FLOOR"}
    )
    x = randn(1, 1, 8, 8)
    out = ember(net, data=x)["out"]
    assert out.shape == (1, 1, 3, 3)
    expect = np.array([[x[0, 0, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3].max() for j in range(3)] for i in range(3)])
    np.testing.assert_array_equal(out[0, 0], expect)


def test_max_pool_window_over_padding_only_gives_minus_flt_max():
    """size 9, kernel 2, stride 3: ceil rounding makes a 4th window starting at 9, past the input."""
    net = single_layer("Pooling", (1, 1, 9, 9), pooling_param={"pool": "MAX", "kernel_size": 2, "stride": 3})
    out = ember(net, data=randn(1, 1, 9, 9))["out"]
    assert out.shape == (1, 1, 4, 4)
    assert np.all(out[0, 0, 3, :] == -np.finfo(np.float32).max) and np.all(np.isfinite(out))
