"""Image lowerings (codegen/tvm/lower/image/) compiled: Resize/Upsample with ``scales``/``sizes``/``roi``
as model inputs (the coordinate mapping uses the run-time scale, not output/input), and AffineGrid.

Each model is one node with declared output shapes, as exported models with static shapes have;
parameters are model inputs where the op allows it. The compiled library must give the
interpreter's answer for every value consistent with those shapes, and fail the run with a message
naming the op, never a wrong result, for a value that is not."""

from __future__ import annotations

import compiled_checks
import numpy as np
import pytest
from compiled_checks import check, compiled_and_reference, refused
from onnx import TensorProto, helper

F, I64, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


X = (np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4) * 0.37) ** 1.3


def resize_model(inputs, out_shape, **attrs):
    """One Resize node reading X plus the named parameter inputs ('' skips an operand)."""
    names = ["x"] + [name for name, _, _ in inputs]
    node = helper.make_node("Resize", names, ["y"], **attrs)
    graph_inputs = [helper.make_tensor_value_info("x", F, list(X.shape))]
    graph_inputs += [helper.make_tensor_value_info(*i) for i in inputs if i[0]]
    graph = helper.make_graph([node], "resize", graph_inputs, [helper.make_tensor_value_info("y", F, out_shape)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])


def check_first(rep, ref, feeds, tol=1e-5):
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
    first = check_first(rep, ref, [X, scales(1, 1, 1.7, 1.76)])
    second = check_first(rep, ref, [X, scales(1, 1, 1.99, 1.9)])
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
        check_first(rep, ref, [X, s])
    refused(rep, [X, scales(1, 1, 0.3, 0.5)], ["Resize"])


def test_run_time_scale_on_an_axis_whose_length_does_not_change():
    """floor(4 * 1.1) = 4: the axis keeps its length yet is resampled with scale 1.1."""
    rep, ref = compiled_and_reference(
        resize_model([("", None, None), ("s", F, [2])], [1, 2, 6, 4], mode="linear", axes=[2, 3])
    )
    check_first(rep, ref, [X, scales(2, 1.1)])
    check_first(rep, ref, [X, scales(2, 1)])
    refused(rep, [X, scales(2, 1.3)], ["Resize"])


def test_run_time_sizes_with_axes_and_aspect_ratio_policy():
    model = resize_model(
        [("", None, None), ("", None, None), ("n", I64, [2])],
        [1, 2, 6, 8],
        mode="linear",
        axes=[3, 2],
        keep_aspect_ratio_policy="not_larger",
    )
    rep, ref = compiled_and_reference(model)
    check_first(rep, ref, [X, np.array([8, 7], np.int64)])  # min(8/4, 7/3) = 2 -> (6, 8)
    check_first(rep, ref, [X, np.array([9, 6], np.int64)])  # min(9/4, 6/3) = 2
    check_first(rep, ref, [X, np.array([8, 9], np.int64)])  # min(8/4, 9/3) = 2
    refused(rep, [X, np.array([10, 9], np.int64)], ["Resize", "(1, 2, 6, 8)"])  # 2.5 -> (8, 10)


def test_run_time_sizes_stretch_nearest():
    rep, ref = compiled_and_reference(
        resize_model(
            [("", None, None), ("", None, None), ("n", I64, [4])],
            [1, 2, 2, 9],
            mode="nearest",
            coordinate_transformation_mode="half_pixel_symmetric",
        )
    )
    check_first(rep, ref, [X, np.array([1, 2, 2, 9], np.int64)])
    refused(rep, [X, np.array([1, 2, 2, 8], np.int64)], ["Resize"])


def test_run_time_roi_for_tf_crop_and_resize():
    model = resize_model(
        [("r", F, [4]), ("", None, None), ("n", I64, [2])],
        [1, 2, 4, 3],
        mode="linear",
        axes=[2, 3],
        coordinate_transformation_mode="tf_crop_and_resize",
        extrapolation_value=-3.0,
    )
    rep, ref = compiled_and_reference(model)
    sizes = np.array([4, 3], np.int64)
    check_first(rep, ref, [X, scales(0.2, 0.1, 0.9, 0.7), sizes])
    check_first(rep, ref, [X, scales(-0.5, 0.4, 1.3, 1.6), sizes])  # partly outside: extrapolation value
    refused(rep, [X, scales(0, 0, 1, 1), np.array([4, 4], np.int64)], ["Resize"])


def test_upsample_with_run_time_scales():
    node = helper.make_node("Upsample", ["x", "s"], ["y"], mode="nearest")
    graph = helper.make_graph(
        [node],
        "upsample",
        [helper.make_tensor_value_info("x", F, list(X.shape)), helper.make_tensor_value_info("s", F, [4])],
        [helper.make_tensor_value_info("y", F, [1, 2, 6, 8])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    rep, ref = compiled_and_reference(model)
    check_first(rep, ref, [X, scales(1, 1, 2, 2)])
    refused(rep, [X, scales(1, 1, 3, 2)], ["(1, 2, 6, 8)"])  # imported as Resize


def test_constant_scales_and_roi_still_compile_to_the_interpreters_answer():
    """Constant parameters (initializers) take the compile-time path of the same formulas."""
    from onnx import numpy_helper

    node = helper.make_node(
        "Resize", ["x", "r", "s"], ["y"], mode="cubic", coordinate_transformation_mode="tf_crop_and_resize"
    )
    graph = helper.make_graph(
        [node],
        "resize",
        [helper.make_tensor_value_info("x", F, list(X.shape))],
        [helper.make_tensor_value_info("y", F, [1, 2, 5, 7])],
        [
            numpy_helper.from_array(scales(0, 0, 0.1, -0.2, 1, 1, 0.8, 1.1), "r"),
            numpy_helper.from_array(scales(1, 1, 1.7, 1.9), "s"),
        ],
    )
    rep, ref = compiled_and_reference(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]))
    check_first(rep, ref, [X])


@pytest.mark.parametrize(
    "ctm,nearest_mode",
    [
        ("asymmetric", "floor"),  # PyTorch's nearest export: the integer o // s path
        ("half_pixel", "round_prefer_floor"),  # ONNX's defaults: the integer path as well
        ("pytorch_half_pixel", "round_prefer_ceil"),
        ("asymmetric", "round_prefer_floor"),  # at s = 3 not o // s: the float coordinates
        ("half_pixel", "floor"),
    ],
)
@pytest.mark.parametrize("factor", [2, 3])
def test_integer_nearest_upsampling_copies_the_interpreters_answer(ctm, nearest_mode, factor):
    """Constant integer upscales in nearest mode: where the mode makes every output read input
    ``o // s`` the kernel indexes so (``_integer_upsampling``), elsewhere it keeps the coordinates."""
    from onnx import numpy_helper

    from codegen.tvm.lower.image.resize import _integer_upsampling

    node = helper.make_node(
        "Resize", ["x", "", "s"], ["y"], mode="nearest", coordinate_transformation_mode=ctm, nearest_mode=nearest_mode
    )
    out_shape = [1, 2, 3 * factor, 4 * factor]
    graph = helper.make_graph(
        [node],
        "resize",
        [helper.make_tensor_value_info("x", F, list(X.shape))],
        [helper.make_tensor_value_info("y", F, out_shape)],
        [numpy_helper.from_array(scales(1, 1, factor, factor), "s")],
    )
    rep, ref = compiled_and_reference(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]))
    check_first(rep, ref, [X], tol=0)
    taken = _integer_upsampling("nearest", ctm, nearest_mode, [2, 3], X.shape, out_shape, [1, 1, factor, factor])
    integer = (ctm, nearest_mode) not in (("asymmetric", "round_prefer_floor"), ("half_pixel", "floor"))
    assert (taken == {2: factor, 3: factor}) if integer else taken is None


def model(op, inputs, outputs, opset=21, **attrs):
    """A one-node model: ``inputs`` / ``outputs`` are (name, elem type, shape), outputs declared."""
    node = helper.make_node(op, [name for name, _, _ in inputs], [name for name, _, _ in outputs], **attrs)
    graph = helper.make_graph(
        [node],
        op.lower(),
        [helper.make_tensor_value_info(*i) for i in inputs],
        [helper.make_tensor_value_info(*o) for o in outputs],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


# AffineGrid, CenterCropPad -------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:divide by zero")  # the reference's step for a length-1 dim
@pytest.mark.parametrize("align_corners", [0, 1])
@pytest.mark.parametrize("spatial", [[3, 5], [2, 1, 4]])
def test_affine_grid_with_a_run_time_size(spatial, align_corners):
    dims = len(spatial)
    theta = np.random.default_rng(dims).normal(size=(2, dims, dims + 1)).astype(np.float32)
    size = np.array([2, 3, *spatial], np.int64)
    rep, ref = compiled_and_reference(
        model(
            "AffineGrid",
            [("theta", F, [2, dims, dims + 1]), ("size", I64, [dims + 2])],
            [("grid", F, [2, *spatial, dims])],
            align_corners=align_corners,
        )
    )
    check(rep, ref, [theta, size])
    check(rep, ref, [theta, np.array([2, 7, *spatial], np.int64)])  # channels do not matter
    refused(rep, [theta, np.array([2, 3, *spatial[:-1], spatial[-1] + 1], np.int64)], ["AffineGrid", "size"])


def test_affine_grid_with_a_constant_size():
    from onnx import numpy_helper

    node = helper.make_node("AffineGrid", ["theta", "size"], ["grid"], align_corners=1)
    graph = helper.make_graph(
        [node],
        "ag",
        [helper.make_tensor_value_info("theta", F, [1, 2, 3])],
        [helper.make_tensor_value_info("grid", F, [1, 4, 3, 2])],
        [numpy_helper.from_array(np.array([1, 1, 4, 3], np.int64), "size")],
    )
    rep, ref = compiled_and_reference(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]))
    check(rep, ref, [np.array([[[0.5, -1, 0.25], [2, 0.1, -0.3]]], np.float32)])
