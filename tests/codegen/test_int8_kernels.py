"""The integer kernels (codegen/tvm/lower/quantization_gemm.py) compiled against the interpreter, and
QDQ models (passes/fuse_qdq.py) compiled to integer kernels that agree with onnxruntime.

The VNNI path needs constant int8 weights with zero weight zero points; the weights are
initializers here so the planner prepacks them."""

from __future__ import annotations

import numpy as np
import pytest
from compiled_checks import check_against_interpreter, node_model
from onnx import TensorProto, numpy_helper

F, U8, I8, I32 = TensorProto.FLOAT, TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32


def _qlinear_conv_model(x_type, x_shape, w, bias, w_zero, **attrs):
    k = w.shape[0]
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(w_zero, "wz")]
    ins = [
        ("x", x_type, list(x_shape)),
        ("xs", F, []),
        ("xz", x_type, []),
        ("w", I8, list(w.shape)),
        ("ws", F, [k]),
        ("wz", I8, list(w_zero.shape)),
        ("ys", F, []),
        ("yz", x_type, []),
    ]
    if bias is not None:
        inits.append(numpy_helper.from_array(bias, "b"))
        ins.append(("b", I32, [k]))
    return node_model("QLinearConv", ins, [("y", x_type, None)], opset=10, initializers=inits, **attrs)


CASES = [
    # (x dtype, x shape, K, kernel, attrs): channel counts off the 4 x 16 blocks, strides, pads
    (np.uint8, (1, 3, 9, 10), 20, 3, dict(pads=[1, 1, 1, 1])),
    (np.uint8, (2, 8, 7, 7), 32, 1, dict(strides=[2, 2])),
    (np.int8, (1, 6, 8, 8), 16, 3, dict(pads=[1, 0, 2, 1], dilations=[2, 1])),
]


@pytest.mark.parametrize("x_dtype,x_shape,k,kernel,attrs", CASES)
def test_vnni_qlinear_conv_matches_interpreter(x_dtype, x_shape, k, kernel, attrs):
    rng = np.random.default_rng(k + kernel)
    info = np.iinfo(x_dtype)
    x = rng.integers(info.min, info.max, x_shape, endpoint=True).astype(x_dtype)
    w = rng.integers(-127, 127, (k, x_shape[1], kernel, kernel), endpoint=True).astype(np.int8)
    bias = rng.integers(-2000, 2000, k).astype(np.int32)
    x_type = U8 if x_dtype == np.uint8 else I8
    m = _qlinear_conv_model(x_type, x_shape, w, bias, np.zeros(k, np.int8), **attrs)
    feeds = {
        "x": x,
        "xs": np.array(0.02, np.float32),
        "xz": np.array(info.min + 100, x_dtype),
        "ws": rng.uniform(0.001, 0.01, k).astype(np.float32),
        "ys": np.array(0.3, np.float32),
        "yz": np.array(info.min + 60, x_dtype),
    }
    # the kernel requantizes in float32 as onnxruntime does, the interpreter in float64: a tie may differ by one
    check_against_interpreter(m, feeds, rtol=0, atol=1)


def test_nonzero_weight_zero_point_takes_the_generic_kernel():
    rng = np.random.default_rng(3)
    w = rng.integers(-100, 100, (4, 4, 3, 3)).astype(np.int8)
    m = _qlinear_conv_model(U8, (1, 4, 6, 6), w, None, np.array([0, 3, -2, 1], np.int8), pads=[1, 1, 1, 1])
    feeds = {
        "x": rng.integers(0, 255, (1, 4, 6, 6)).astype(np.uint8),
        "xs": np.array(0.05, np.float32),
        "xz": np.array(128, np.uint8),
        "ws": np.full(4, 0.01, np.float32),
        "ys": np.array(0.2, np.float32),
        "yz": np.array(10, np.uint8),
    }
    check_against_interpreter(m, feeds, rtol=0, atol=0)
