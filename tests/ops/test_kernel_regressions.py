"""Regression cases for reference-kernel bugs found outside the node suite.

Bugs in code owned elsewhere (the family modules of compiler/ops, reference_onnx.py) run
as xfail with the reason; once fixed they report XPASS: then drop the marker.
"""

import numpy as np
import pytest

from compiler import Builder, DType, Graph, TensorType, interpret


def run_unary(op: str, x: np.ndarray) -> np.ndarray:
    g = Graph()
    b = Builder(g)
    p = b.param("x", TensorType.of(x))
    g.outputs = [b.op(op, [p], names=["y"])]
    return interpret(g, {"x": x})["y"]


@pytest.mark.xfail(
    strict=False,
    reason="onnx.reference's Softsign writes into np.abs(x), which is a numpy scalar "
    "for 0-d input; Ember's kernels need a Softsign that handles 0-d arrays",
)
def test_softsign_on_a_scalar():
    y = run_unary("Softsign", np.array(3.0, np.float32))
    assert y.shape == () and float(y) == 0.75


@pytest.mark.parametrize("dtype", [DType.FLOAT16, DType.FLOAT32, DType.FLOAT64])
def test_softsign_on_tensors(dtype):
    x = np.array([-3.0, 0.0, 1.0], dtype.np)
    np.testing.assert_allclose(run_unary("Softsign", x), x / (1 + np.abs(x)), rtol=1e-3)


def _quantize_graph(x: np.ndarray, scale: np.ndarray, zero: np.ndarray, **attrs) -> Graph:
    g = Graph()
    b = Builder(g)
    ps = [b.param(n, TensorType.of(v)) for n, v in (("x", x), ("s", scale), ("z", zero))]
    g.outputs = [b.op("QuantizeLinear", ps, attrs=attrs, names=["y"])]
    return g


@pytest.mark.parametrize(
    "zero, scale, axis",
    [
        (np.array(0, np.uint8), np.array(1.0, np.float32), 1),
        (np.array(3, np.int8), np.array(0.5, np.float32), 1),
        (np.array([0, 200], np.uint8), np.array([1.0, 1e-3], np.float32), 0),
        (np.array([-5, 7], np.int16), np.array([1.0, 1e-3], np.float32), 0),
    ],
)
def test_quantize_linear_saturates_beyond_int32(zero, scale, axis):
    """|x / scale| >= 2^31 saturates like any other out-of-range value, as onnxruntime does
    (onnx.reference goes through int32 and wrapped 3e9 to 0 for uint8)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    x = np.array([[1e9, -1e9, 3e9, -3e9, 1.4, np.inf], [2.6, -2.5, 5e9, -7e12, 0.5, -np.inf]], np.float32)
    got = interpret(_quantize_graph(x, scale, zero, axis=axis), {"x": x, "s": scale, "z": zero})["y"]
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=axis)
    out_type = helper.np_dtype_to_tensor_dtype(zero.dtype)
    graph = helper.make_graph(
        [node],
        "q",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", out_type, list(x.shape))],
        [numpy_helper.from_array(scale, "s"), numpy_helper.from_array(zero, "z")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "group, attrs",
    [
        (2, {}),
        (4, {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]}),
        (3, {"strides": [2, 1], "dilations": [1, 2], "output_shape": [12, 9]}),
    ],
)
def test_grouped_conv_transpose_matches_onnxruntime(group, attrs):
    """onnx.reference's ConvTranspose ignores ``group``; Ember's kernel runs one group at a time."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(group)
    x = rng.standard_normal((1, 2 * group, 5, 5)).astype(np.float32)
    w = rng.standard_normal((2 * group, 3, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(3 * group).astype(np.float32)
    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], group=group, **attrs)
    graph = helper.make_graph(
        [node],
        "ct",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    from frontends.onnx.importer import import_model

    got = interpret(import_model(model), {"x": x})["y"]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "op, shape, attrs",
    [
        ("MaxPool", [1, 2, 20], {"kernel_shape": [3], "pads": [1, 1]}),
        ("MaxPool", [1, 2, 4, 5, 6], {"kernel_shape": [3, 3, 3], "pads": [1] * 6}),
        (
            "MaxPool",
            [1, 3, 9, 10],
            {"kernel_shape": [3, 2], "pads": [1, 0, 1, 1], "strides": [2, 1], "dilations": [1, 2]},
        ),
        # ceil_mode: onnx.reference gave 10 x 9 rows for 7 x 6 here (onnxruntime 8 x 7) and failed on
        # integer inputs; the last window that would start in the end padding is dropped
        ("MaxPool", [1, 3, 7, 6], {"kernel_shape": [2, 2], "pads": [1] * 4, "ceil_mode": 1}),
        ("MaxPool", [1, 2, 9, 8], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1] * 4, "ceil_mode": 1}),
        ("MaxPool", [1, 2, 10, 7], {"kernel_shape": [2, 3], "strides": [3, 2], "ceil_mode": 1}),
        ("AveragePool", [1, 2, 20], {"kernel_shape": [3], "pads": [1, 2], "strides": [2]}),
        ("AveragePool", [1, 2, 4, 5, 6], {"kernel_shape": [2, 3, 3], "pads": [1] * 6, "count_include_pad": 1}),
        ("AveragePool", [1, 2, 7, 8, 9], {"kernel_shape": [2, 3, 3], "pads": [0, 1, 1, 1, 0, 1]}),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.int8])
def test_padded_pools_at_every_rank_match_onnxruntime(op, shape, attrs, dtype):
    """onnx.reference's MaxPool raised IndexError on padded 1-D and 3-D inputs; Ember's pool windows
    work at any spatial rank, with ``ceil_mode``, on float and (MaxPool) int8 inputs."""
    if dtype != np.float32 and op != "MaxPool":
        pytest.skip("AveragePool is float only")
    import onnxruntime as ort
    from onnx import TensorProto, helper

    elem = TensorProto.FLOAT if dtype == np.float32 else TensorProto.INT8
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    graph = helper.make_graph(
        [node],
        "pool",
        [helper.make_tensor_value_info("x", elem, shape)],
        [helper.make_tensor_value_info("y", elem, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = np.random.default_rng(len(shape)).standard_normal(shape)
    x = x.astype(np.float32) if dtype == np.float32 else (x * 40).astype(dtype)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    from frontends.onnx.importer import import_model

    got = interpret(import_model(model), {"x": x})["y"]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "attrs, scales, roi",
    [
        ({"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}, [1, 1, 2, 2], None),
        ({"coordinate_transformation_mode": "half_pixel", "nearest_mode": "round_prefer_ceil"}, [1, 1, 1.5, 2.5], None),
        ({"coordinate_transformation_mode": "align_corners"}, [1, 1, 0.6, 1.7], None),
        (
            {"coordinate_transformation_mode": "tf_crop_and_resize", "extrapolation_value": 7.0},
            [1, 1, 2, 2],
            [0, 0, -0.2, 0.1, 1, 1, 0.9, 1.3],
        ),
    ],
)
def test_nearest_resize_keeps_a_nan_in_its_windows(attrs, scales, roi):
    """onnx.reference's nearest Resize weights a window's neighbour by 0, so a NaN spread to the
    windows beside its own; Ember's kernel gathers, as onnxruntime does (extrapolated positions of
    tf_crop_and_resize included)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    x = np.random.default_rng(4).standard_normal((1, 2, 5, 6)).astype(np.float32)
    x[0, 1, 2, 3] = np.nan
    inits = [numpy_helper.from_array(np.array(scales, np.float32), "scales")]
    inits.append(numpy_helper.from_array(np.array(roi if roi else [], np.float32), "roi"))
    node = helper.make_node("Resize", ["x", "roi", "scales"], ["y"], mode="nearest", **attrs)
    graph = helper.make_graph(
        [node],
        "resize",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    from frontends.onnx.importer import import_model

    got = interpret(import_model(model), {"x": x})["y"]
    assert np.isnan(got).sum() == np.isnan(want).sum() > 0
    np.testing.assert_array_equal(got, want)


def _interpret_op(op: str, feeds: dict) -> np.ndarray:
    g = Graph()
    b = Builder(g)
    ps = [b.param(name, TensorType.of(value)) for name, value in feeds.items()]
    g.outputs = [b.op(op, ps, names=["y"])]
    return interpret(g, feeds)["y"]


@pytest.mark.parametrize("m", [6, 40])  # M = K = 40: onnx.reference's broadcast ran, and was wrong
def test_matmul_integer_per_row_zero_point_of_a(m):
    """The spec makes a 1-D zero point (and QLinearMatMul's scale) of ``a`` one per row;
    onnx.reference subtracted it along the last axis."""
    rng = np.random.default_rng(m)
    a = rng.integers(0, 255, (m, 40), endpoint=True).astype(np.uint8)
    b = rng.integers(0, 255, (40, 8), endpoint=True).astype(np.uint8)
    za, zb = rng.integers(0, 255, m).astype(np.uint8), np.array(7, np.uint8)
    got = _interpret_op("MatMulInteger", {"a": a, "b": b, "za": za, "zb": zb})
    want = (a.astype(np.int64) - za[:, None].astype(np.int64)) @ (b.astype(np.int64) - 7)
    np.testing.assert_array_equal(got, want)

    scale_a = rng.uniform(0.01, 0.02, m).astype(np.float32)
    params = {"sa": scale_a, "za": za, "b": b, "sb": np.array(0.02, np.float32), "zb": zb}
    params.update({"sy": np.array(40.0, np.float32), "zy": np.array(128, np.uint8)})
    y = _interpret_op("QLinearMatMul", {"a": a, **params})
    real = want * (scale_a[:, None].astype(np.float64) * 0.02 / 40.0) + 128
    assert np.abs(y.astype(np.float64) - np.clip(np.rint(real), 0, 255)).max() <= 1
