"""Resize/Upsample with ``scales``/``sizes``/``roi`` as model inputs (and DFT with a run-time axis).

The library keeps the compiled (declared) output shape; the parameter values are read at run time.
Every value consistent with that shape must give the interpreter's answer (so the coordinate
mapping uses the run-time scale, not output/input), and any other value must fail the run with a
message naming the op, never a wrong result.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import compiled_checks
from compiled_checks import compiled_and_reference, refused

F, I = TensorProto.FLOAT, TensorProto.INT64
X = (np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4) * 0.37) ** 1.3


def resize_model(inputs, out_shape, **attrs):
    """One Resize node reading X plus the named parameter inputs ('' skips an operand)."""
    names = ["x"] + [name for name, _, _ in inputs]
    node = helper.make_node("Resize", names, ["y"], **attrs)
    graph_inputs = [helper.make_tensor_value_info("x", F, list(X.shape))]
    graph_inputs += [helper.make_tensor_value_info(*i) for i in inputs if i[0]]
    graph = helper.make_graph([node], "resize", graph_inputs,
                              [helper.make_tensor_value_info("y", F, out_shape)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])


def check(rep, ref, feeds, tol=1e-5):
    """The first output, after checking every output against the interpreter (interpolation: 1e-5)."""
    return compiled_checks.check(rep, ref, feeds, tol)[0]


def scales(*values):
    return np.array(values, np.float32)


SCALED = [  # (attributes, scales giving out (1, 2, 5, 7) from (1, 2, 3, 4): floor(3 s) = 5, floor(4 s) = 7)
    dict(mode="nearest"),
    dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="ceil"),
    dict(mode="linear"),
    dict(mode="linear", coordinate_transformation_mode="half_pixel_symmetric"),
    dict(mode="linear", coordinate_transformation_mode="align_corners"),
    dict(mode="cubic", coordinate_transformation_mode="pytorch_half_pixel"),
    dict(mode="cubic", cubic_coeff_a=-0.5, exclude_outside=1),
]


@pytest.mark.parametrize("attrs", SCALED, ids=lambda a: "-".join(str(v) for v in a.values()))
def test_run_time_scales_drive_the_coordinates(attrs):
    rep, ref = compiled_and_reference(resize_model([("", None, None), ("s", F, [4])], [1, 2, 5, 7], **attrs))
    first = check(rep, ref, [X, scales(1, 1, 1.7, 1.76)])
    second = check(rep, ref, [X, scales(1, 1, 1.99, 1.9)])
    if attrs["mode"] != "nearest":  # nearest may pick the same pixels for both scales
        assert not np.allclose(first, second)  # same shape, other scale: the scale value matters
    refused(rep, [X, scales(1, 1, 2.0, 1.76)], ["Resize", "(1, 2, 5, 7)"])  # floor(3 * 2) = 6
    refused(rep, [X, scales(1, 2, 1.7, 1.76)], ["Resize"])  # would double the channels


@pytest.mark.parametrize("mode", ["linear", "cubic"])
def test_antialias_filter_widens_with_the_run_time_scale(mode):
    """(3, 4) -> (1, 2): scales in [1/3, 2/3) x [1/2, 3/4) need 2-6 taps per axis, read at run time."""
    model = resize_model([("", None, None), ("s", F, [4])], [1, 2, 1, 2], mode=mode, antialias=1)
    rep, ref = compiled_and_reference(model)
    for s in (scales(1, 1, 0.34, 0.5), scales(1, 1, 0.6, 0.7), scales(1, 1, 0.5, 0.74)):
        check(rep, ref, [X, s])
    refused(rep, [X, scales(1, 1, 0.3, 0.5)], ["Resize"])


def test_run_time_scale_on_an_axis_whose_length_does_not_change():
    """floor(4 * 1.1) = 4: the axis keeps its length yet is resampled with scale 1.1."""
    rep, ref = compiled_and_reference(resize_model([("", None, None), ("s", F, [2])], [1, 2, 6, 4],
                                                   mode="linear", axes=[2, 3]))
    check(rep, ref, [X, scales(2, 1.1)])
    check(rep, ref, [X, scales(2, 1)])
    refused(rep, [X, scales(2, 1.3)], ["Resize"])


def test_run_time_sizes_with_axes_and_aspect_ratio_policy():
    model = resize_model([("", None, None), ("", None, None), ("n", I, [2])], [1, 2, 6, 8],
                         mode="linear", axes=[3, 2], keep_aspect_ratio_policy="not_larger")
    rep, ref = compiled_and_reference(model)
    check(rep, ref, [X, np.array([8, 7], np.int64)])  # min(8/4, 7/3) = 2 -> (6, 8)
    check(rep, ref, [X, np.array([9, 6], np.int64)])  # min(9/4, 6/3) = 2
    check(rep, ref, [X, np.array([8, 9], np.int64)])  # min(8/4, 9/3) = 2
    refused(rep, [X, np.array([10, 9], np.int64)], ["Resize", "(1, 2, 6, 8)"])  # 2.5 -> (8, 10)


def test_run_time_sizes_stretch_nearest():
    rep, ref = compiled_and_reference(resize_model([("", None, None), ("", None, None), ("n", I, [4])],
                                                   [1, 2, 2, 9], mode="nearest",
                                                   coordinate_transformation_mode="half_pixel_symmetric"))
    check(rep, ref, [X, np.array([1, 2, 2, 9], np.int64)])
    refused(rep, [X, np.array([1, 2, 2, 8], np.int64)], ["Resize"])


def test_run_time_roi_for_tf_crop_and_resize():
    model = resize_model([("r", F, [4]), ("", None, None), ("n", I, [2])], [1, 2, 4, 3], mode="linear",
                         axes=[2, 3], coordinate_transformation_mode="tf_crop_and_resize",
                         extrapolation_value=-3.0)
    rep, ref = compiled_and_reference(model)
    sizes = np.array([4, 3], np.int64)
    check(rep, ref, [X, scales(0.2, 0.1, 0.9, 0.7), sizes])
    check(rep, ref, [X, scales(-0.5, 0.4, 1.3, 1.6), sizes])  # partly outside: extrapolation value
    refused(rep, [X, scales(0, 0, 1, 1), np.array([4, 4], np.int64)], ["Resize"])


def test_upsample_with_run_time_scales():
    node = helper.make_node("Upsample", ["x", "s"], ["y"], mode="nearest")
    graph = helper.make_graph([node], "upsample",
                              [helper.make_tensor_value_info("x", F, list(X.shape)),
                               helper.make_tensor_value_info("s", F, [4])],
                              [helper.make_tensor_value_info("y", F, [1, 2, 6, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    rep, ref = compiled_and_reference(model)
    check(rep, ref, [X, scales(1, 1, 2, 2)])
    refused(rep, [X, scales(1, 1, 3, 2)], ["(1, 2, 6, 8)"])  # imported as Resize


def test_constant_scales_and_roi_still_compile_to_the_interpreters_answer():
    """Constant parameters (initializers) take the compile-time path of the same formulas."""
    from onnx import numpy_helper

    node = helper.make_node("Resize", ["x", "r", "s"], ["y"], mode="cubic",
                            coordinate_transformation_mode="tf_crop_and_resize")
    graph = helper.make_graph([node], "resize", [helper.make_tensor_value_info("x", F, list(X.shape))],
                              [helper.make_tensor_value_info("y", F, [1, 2, 5, 7])],
                              [numpy_helper.from_array(scales(0, 0, 0.1, -0.2, 1, 1, 0.8, 1.1), "r"),
                               numpy_helper.from_array(scales(1, 1, 1.7, 1.9), "s")])
    rep, ref = compiled_and_reference(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]))
    check(rep, ref, [X])


def dft_model(x_shape, out_shape, inputs, **attrs):
    node = helper.make_node("DFT", ["x"] + [name for name, _, _ in inputs], ["y"], **attrs)
    graph = helper.make_graph([node], "dft", [helper.make_tensor_value_info("x", F, x_shape)]
                              + [helper.make_tensor_value_info(*i) for i in inputs if i[0]],
                              [helper.make_tensor_value_info("y", F, out_shape)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def test_dft_axis_at_run_time_transforms_along_the_axis_read():
    """(1, 5, 5, 2) -> (1, 5, 5, 2) fits axes 1 and 2 (and the length-1 axis 0): each is computed."""
    x = np.random.default_rng(0).standard_normal((1, 5, 5, 2)).astype(np.float32)
    rep, ref = compiled_and_reference(dft_model([1, 5, 5, 2], [1, 5, 5, 2], [("", None, None), ("a", I, [])]))
    results = [check(rep, ref, [x, np.array(a, np.int64)], tol=1e-4) for a in (1, 2, -2, 0)]
    assert not np.allclose(results[0], results[1])
    np.testing.assert_allclose(results[1], results[2])
    refused(rep, [x, np.array(3, np.int64)], ["DFT", "(1, 5, 5, 2)"])


def test_onesided_dft_with_run_time_length_and_axis():
    x = np.random.default_rng(1).standard_normal((1, 6, 4, 1)).astype(np.float32)
    model = dft_model([1, 6, 4, 1], [1, 4, 4, 2], [("n", I, []), ("a", I, [])], onesided=1)
    rep, ref = compiled_and_reference(model)
    for n, a in ((6, 1), (7, 1), (6, -3)):  # N = 7 pads the signal with a zero
        check(rep, ref, [x, np.array(n, np.int64), np.array(a, np.int64)], tol=1e-4)
    refused(rep, [x, np.array(6, np.int64), np.array(2, np.int64)], ["DFT"])  # would keep dim 1 at 6
    refused(rep, [x, np.array(8, np.int64), np.array(1, np.int64)], ["DFT"])  # 5 bins, not 4


def signal_model(op, inputs, out_shape, opset=17, **attrs):
    node = helper.make_node(op, [name for name, _, _ in inputs], ["y"], **attrs)
    graph = helper.make_graph([node], op.lower(), [helper.make_tensor_value_info(*i) for i in inputs if i[0]],
                              [helper.make_tensor_value_info("y", F, out_shape)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("op,periodic", [("HannWindow", 1), ("HammingWindow", 0), ("BlackmanWindow", 0)])
def test_window_with_run_time_size(op, periodic):
    rep, ref = compiled_and_reference(signal_model(op, [("n", TensorProto.INT32, [])], [7], periodic=periodic))
    check(rep, ref, [np.array(7, np.int32)])
    refused(rep, [np.array(8, np.int32)], [op, "7"])


def test_mel_weight_matrix_reads_rate_and_edges_at_run_time():
    i32 = TensorProto.INT32
    model = signal_model("MelWeightMatrix", [("m", i32, []), ("n", i32, []), ("r", i32, []), ("lo", F, []),
                                             ("hi", F, [])], [9, 5])
    rep, ref = compiled_and_reference(model)

    def feeds(bins, dft_length, rate, low, high):
        return [np.array(v, np.int32) for v in (bins, dft_length, rate)] + \
            [np.array(v, np.float32) for v in (low, high)]

    first = check(rep, ref, feeds(5, 16, 8000, 0.0, 4000.0))
    second = check(rep, ref, feeds(5, 17, 16000, 300.0, 7000.0))
    assert not np.array_equal(first, second)
    refused(rep, feeds(6, 16, 8000, 0.0, 4000.0), ["MelWeightMatrix", "(9, 5)"])
    refused(rep, feeds(5, 16, 4000, 0.0, 4000.0), ["MelWeightMatrix"])  # edges past the spectrogram


def test_stft_with_run_time_step_and_length():
    x = np.random.default_rng(2).standard_normal((1, 40, 1)).astype(np.float32)
    model = signal_model("STFT", [("x", F, [1, 40, 1]), ("s", I, []), ("", None, None), ("n", I, [])],
                         [1, 4, 5, 2])
    rep, ref = compiled_and_reference(model)
    for step, n in ((10, 8), (10, 9), (8, 9)):  # 1 + (40 - n) // step frames = 4, n // 2 + 1 bins = 5
        check(rep, ref, [x, np.array(step, np.int64), np.array(n, np.int64)], tol=1e-4)
    refused(rep, [x, np.array(5, np.int64), np.array(8, np.int64)], ["STFT", "(1, 4, 5, 2)"])
    window = np.hanning(8).astype(np.float32)
    model = signal_model("STFT", [("x", F, [1, 40, 1]), ("s", I, []), ("w", F, [8])], [1, 4, 5, 2])
    rep, ref = compiled_and_reference(model)
    check(rep, ref, [x, np.array(9, np.int64), window], tol=1e-4)
    refused(rep, [x, np.array(3, np.int64), window], ["STFT"])
