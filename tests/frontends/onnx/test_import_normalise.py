"""Older op versions import with newest-opset semantics: each normaliser vs onnxruntime.

Every case is a one- or two-node model written at an old opset; onnxruntime
runs the original, Ember's interpreter runs the import, and the outputs must
agree.  The imported graph must also verify and hold only newest-opset ops.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler import interpret, verify
from frontends.onnx import import_model

F32 = TensorProto.FLOAT


def make_model(nodes, inputs, outputs, opset, initializers=()):
    """A model from (name, elem_type, shape) specs; output shapes are left to inference."""
    graph = helper.make_graph(
        nodes,
        "case",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, None) for n, t in outputs],
        initializer=list(initializers),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 8 if opset < 19 else model.ir_version)
    return model


def random_inputs(model, seed=0):
    rng = np.random.default_rng(seed)
    feeds = {}
    inits = {t.name for t in model.graph.initializer}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        dtype = helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)
        feeds[vi.name] = (rng.standard_normal(shape) * 3).astype(dtype)
    return feeds


def assert_matches_ort(model, feeds=None):
    """Import, verify, interpret and compare every output with onnxruntime."""
    feeds = feeds if feeds is not None else random_inputs(model)
    graph = import_model(model)
    verify(graph)
    ours = interpret(graph, feeds)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in model.graph.output]
    theirs = dict(zip(names, sess.run(names, feeds)))
    for name in names:
        expected, got = np.asarray(theirs[name]), np.asarray(ours[name])
        assert got.shape == expected.shape, name
        scale = max(1.0, float(np.abs(expected).max(initial=0)))
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * scale, err_msg=name)
    return graph


def ops_of(graph):
    return [n.op for n in graph.walk()]


def i64(name, values):
    return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)


# ------------------------------------------------------------------ cases

CASES = {
    "slice_v1": (
        9,
        [helper.make_node("Slice", ["x"], ["y"], starts=[1, 0], ends=[3, -1], axes=[0, 2])],
        [("x", F32, [4, 3, 5])],
    ),
    "pad_v2_constant": (
        10,
        [helper.make_node("Pad", ["x"], ["y"], pads=[0, 1, 2, 0, 2, 1], value=1.5)],
        [("x", F32, [2, 3, 4])],
    ),
    "pad_v2_reflect": (
        10,
        [helper.make_node("Pad", ["x"], ["y"], mode="reflect", pads=[0, 0, 1, 2, 0, 0, 1, 1])],
        [("x", F32, [1, 2, 4, 5])],
    ),
    "clip_v6": (10, [helper.make_node("Clip", ["x"], ["y"], min=-0.5, max=2.0)], [("x", F32, [3, 4])]),
    "clip_v6_min_only": (9, [helper.make_node("Clip", ["x"], ["y"], min=0.25)], [("x", F32, [6])]),
    "squeeze_v11": (11, [helper.make_node("Squeeze", ["x"], ["y"], axes=[1, -1])], [("x", F32, [3, 1, 4, 1])]),
    "unsqueeze_v11": (11, [helper.make_node("Unsqueeze", ["x"], ["y"], axes=[0, 3])], [("x", F32, [3, 4])]),
    "reducesum_v11": (11, [helper.make_node("ReduceSum", ["x"], ["y"], axes=[1], keepdims=0)], [("x", F32, [2, 3, 4])]),
    "reducemean_v13": (13, [helper.make_node("ReduceMean", ["x"], ["y"], axes=[0, 2])], [("x", F32, [2, 3, 4])]),
    "reducemax_all_v12": (12, [helper.make_node("ReduceMax", ["x"], ["y"], keepdims=0)], [("x", F32, [2, 3])]),
    "softmax_v11_axis1": (11, [helper.make_node("Softmax", ["x"], ["y"])], [("x", F32, [2, 3, 4, 5])]),
    "logsoftmax_v9_axis2": (9, [helper.make_node("LogSoftmax", ["x"], ["y"], axis=2)], [("x", F32, [2, 3, 4])]),
    "hardmax_v11_last": (11, [helper.make_node("Hardmax", ["x"], ["y"], axis=-1)], [("x", F32, [3, 5])]),
    "dropout_v7": (8, [helper.make_node("Dropout", ["x"], ["y"], ratio=0.3)], [("x", F32, [3, 4])]),
    "dropout_v10": (10, [helper.make_node("Dropout", ["x"], ["y"], ratio=0.3)], [("x", F32, [3, 4])]),
    "upsample_v7": (
        8,
        [helper.make_node("Upsample", ["x"], ["y"], scales=[1.0, 1.0, 2.0, 3.0])],
        [("x", F32, [1, 2, 3, 4])],
    ),
    "resize_v10_nearest": (
        10,
        [helper.make_node("Resize", ["x", "s"], ["y"], mode="nearest")],
        [("x", F32, [1, 2, 3, 4])],
    ),
    "resize_v10_linear": (
        10,
        [helper.make_node("Resize", ["x", "s"], ["y"], mode="linear")],
        [("x", F32, [1, 2, 3, 4])],
    ),
    "upsample_v9": (9, [helper.make_node("Upsample", ["x", "s"], ["y"], mode="nearest")], [("x", F32, [1, 2, 3, 4])]),
}
SCALES = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "s")


@pytest.mark.parametrize("case", sorted(CASES))
def test_normalised_op_matches_onnxruntime(case):
    opset, nodes, inputs = CASES[case]
    inits = [SCALES] if any("s" in n.input for n in nodes) else []
    model = make_model(nodes, inputs, [("y", F32)], opset, inits)
    graph = assert_matches_ort(model)
    assert "Upsample" not in ops_of(graph)


def test_split_v2_attribute_becomes_input():
    node = helper.make_node("Split", ["x"], ["a", "b"], axis=1, split=[1, 3])
    graph = assert_matches_ort(make_model([node], [("x", F32, [2, 4])], [("a", F32), ("b", F32)], 10))
    split = next(n for n in graph.nodes if n.op == "Split")
    np.testing.assert_array_equal(split.operands[1].const_value, [1, 3])


def test_split_v13_without_sizes_gets_num_outputs():
    node = helper.make_node("Split", ["x"], ["a", "b", "c"], axis=0)
    graph = assert_matches_ort(make_model([node], [("x", F32, [6, 2])], [("a", F32), ("b", F32), ("c", F32)], 13))
    split = next(n for n in graph.nodes if n.op == "Split")
    assert split.attrs["num_outputs"] == 3


def test_topk_v1_k_attribute():
    node = helper.make_node("TopK", ["x"], ["v", "i"], k=2, axis=1)
    model = make_model([node], [("x", F32, [3, 5])], [("v", F32), ("i", TensorProto.INT64)], 9)
    graph = assert_matches_ort(model)
    topk = next(n for n in graph.nodes if n.op == "TopK")
    np.testing.assert_array_equal(topk.operands[1].const_value, [2])


@pytest.mark.parametrize("opset", [8, 9])
def test_batchnorm_old_forms(opset):
    rng = np.random.default_rng(1)
    params = [
        numpy_helper.from_array(a.astype(np.float32), n)
        for n, a in [
            ("s", rng.random(3) + 0.5),
            ("b", rng.standard_normal(3)),
            ("m", rng.standard_normal(3)),
            ("v", rng.random(3) + 0.5),
        ]
    ]
    extra = {"spatial": 1} if opset < 9 else {}
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3, momentum=0.8, **extra)
    graph = assert_matches_ort(make_model([node], [("x", F32, [2, 3, 4, 4])], [("y", F32)], opset, params))
    bn = next(n for n in graph.nodes if n.op == "BatchNormalization")
    assert "spatial" not in bn.attrs and len(bn.results) == 1


def test_batchnorm_training_outputs_read_the_statistics():
    params = [
        numpy_helper.from_array(np.full(2, v, np.float32), n)
        for n, v in [("s", 1.0), ("b", 0.0), ("m", 0.5), ("v", 2.0)]
    ]
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "rm", "rv"], epsilon=1e-5)
    model = make_model([node], [("x", F32, [1, 2, 3])], [("y", F32), ("rm", F32), ("rv", F32)], 9, params)
    graph = import_model(model)
    verify(graph)
    out = interpret(graph, {"x": np.ones((1, 2, 3), np.float32)})
    np.testing.assert_allclose(out["rm"], [0.5, 0.5])
    np.testing.assert_allclose(out["rv"], [2.0, 2.0])


def test_scatter_becomes_scatter_elements():
    idx = np.array([[1, 0], [0, 1]], np.int64)
    node = helper.make_node("Scatter", ["x", "idx", "u"], ["y"], axis=1)
    model = make_model(
        [node], [("x", F32, [2, 2]), ("u", F32, [2, 2])], [("y", F32)], 10, [numpy_helper.from_array(idx, "idx")]
    )
    feeds = {"x": np.zeros((2, 2), np.float32), "u": np.arange(1, 5, dtype=np.float32).reshape(2, 2)}
    graph = import_model(model)
    verify(graph)
    assert "ScatterElements" in ops_of(graph) and "Scatter" not in ops_of(graph)
    expected = feeds["x"].copy()
    np.put_along_axis(expected, idx, feeds["u"], axis=1)  # Scatter's documented semantics
    np.testing.assert_array_equal(interpret(graph, feeds)["y"], expected)


def test_resize_v11_empty_placeholders_dropped():
    roi = numpy_helper.from_array(np.zeros(0, np.float32), "roi")
    scales = numpy_helper.from_array(np.zeros(0, np.float32), "sc")
    sizes = i64("sz", [1, 2, 6, 5])
    node = helper.make_node("Resize", ["x", "roi", "sc", "sz"], ["y"], mode="nearest")
    graph = assert_matches_ort(make_model([node], [("x", F32, [1, 2, 3, 4])], [("y", F32)], 11, [roi, scales, sizes]))
    resize = next(n for n in graph.nodes if n.op == "Resize")
    assert resize.operands[1] is None and resize.operands[2] is None


def test_constant_scalar_forms():
    nodes = [
        helper.make_node("Constant", [], ["c"], value_floats=[1.0, 2.0, 3.0]),
        helper.make_node("Constant", [], ["k"], value_int=2),
        helper.make_node("Cast", ["k"], ["kf"], to=F32),
        helper.make_node("Mul", ["c", "kf"], ["m"]),
        helper.make_node("Add", ["x", "m"], ["y"]),
    ]
    graph = assert_matches_ort(make_model(nodes, [("x", F32, [3])], [("y", F32)], 13))
    consts = [n for n in graph.nodes if n.op == "Constant"]
    assert all(set(n.attrs) == {"value"} for n in consts)


def test_group_norm_v18_scale_per_group_becomes_per_channel():
    scale = numpy_helper.from_array(np.array([0.5, 2.0], np.float32), "gs")
    bias = numpy_helper.from_array(np.array([1.0, -1.0], np.float32), "gb")
    node = helper.make_node("GroupNormalization", ["x", "gs", "gb"], ["y"], num_groups=2, epsilon=1e-5)
    model = make_model([node], [("x", F32, [2, 4, 3])], [("y", F32)], 18, [scale, bias])
    x = np.random.default_rng(2).standard_normal((2, 4, 3)).astype(np.float32)
    graph = import_model(model)
    verify(graph)
    got = interpret(graph, {"x": x})["y"]
    groups = x.reshape(2, 2, -1)
    norm = (groups - groups.mean(-1, keepdims=True)) / np.sqrt(groups.var(-1, keepdims=True) + 1e-5)
    per_channel_scale = np.repeat([0.5, 2.0], 2)[None, :, None]
    per_channel_bias = np.repeat([1.0, -1.0], 2)[None, :, None]
    expected = norm.reshape(2, 4, 3) * per_channel_scale + per_channel_bias
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_roi_align_v10_keeps_output_half_pixel():
    rois = numpy_helper.from_array(np.array([[0, 0, 3, 3], [1, 1, 4, 5]], np.float32), "rois")
    idx = numpy_helper.from_array(np.array([0, 0], np.int64), "bi")
    node = helper.make_node(
        "RoiAlign", ["x", "rois", "bi"], ["y"], output_height=2, output_width=2, sampling_ratio=2, spatial_scale=1.0
    )
    graph = assert_matches_ort(make_model([node], [("x", F32, [1, 2, 6, 6])], [("y", F32)], 10, [rois, idx]))
    roi = next(n for n in graph.nodes if n.op == "RoiAlign")
    assert roi.attrs["coordinate_transformation_mode"] == "output_half_pixel"


def test_grid_sample_v16_mode_names():
    grid = numpy_helper.from_array(np.random.default_rng(5).uniform(-1, 1, (1, 3, 3, 2)).astype(np.float32), "grid")
    node = helper.make_node("GridSample", ["x", "grid"], ["y"], mode="bilinear", align_corners=1)
    graph = assert_matches_ort(make_model([node], [("x", F32, [1, 2, 4, 4])], [("y", F32)], 16, [grid]))
    assert next(n for n in graph.nodes if n.op == "GridSample").attrs["mode"] == "linear"


def test_dft_v17_axis_attribute_becomes_input():
    node = helper.make_node("DFT", ["x"], ["y"], axis=1, onesided=0)
    graph = assert_matches_ort(make_model([node], [("x", F32, [2, 8, 1])], [("y", F32)], 17))
    dft = next(n for n in graph.nodes if n.op == "DFT")
    assert "axis" not in dft.attrs and int(dft.operands[2].const_value) == 1


def test_legacy_image_scaler():
    node = helper.make_node("ImageScaler", ["x"], ["y"], scale=0.5, bias=[1.0, 2.0, 3.0])
    model = make_model([node], [("x", F32, [1, 3, 2, 2])], [("y", F32)], 8)
    x = np.random.default_rng(6).standard_normal((1, 3, 2, 2)).astype(np.float32)
    graph = import_model(model)
    verify(graph)
    assert "ImageScaler" not in ops_of(graph)
    expected = x * 0.5 + np.array([1, 2, 3], np.float32).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(interpret(graph, {"x": x})["y"], expected, rtol=1e-6)


def test_legacy_crop():
    node = helper.make_node("Crop", ["x"], ["y"], border=[1, 2, 0, 1])
    graph = import_model(make_model([node], [("x", F32, [1, 1, 5, 6])], [("y", F32)], 8))
    x = np.arange(30, dtype=np.float32).reshape(1, 1, 5, 6)
    np.testing.assert_array_equal(interpret(graph, {"x": x})["y"], x[:, :, 2:4, 1:6])


def test_version_converter_is_the_fallback_without_a_normaliser(monkeypatch):
    from frontends.onnx import converters

    monkeypatch.setitem(converters._TABLE, "Slice", [])
    node = helper.make_node("Slice", ["x"], ["y"], starts=[1], ends=[3], axes=[0])
    graph = assert_matches_ort(make_model([node], [("x", F32, [4, 2])], [("y", F32)], 9))
    assert graph.metadata["opset"] == onnx.defs.onnx_opset_version()


def test_dropout_v7_mask_has_input_dtype():
    node = helper.make_node("Dropout", ["x"], ["y", "mask"], ratio=0.2)
    model = make_model([node], [("x", F32, [2, 3])], [("y", F32), ("mask", F32)], 8)
    model.graph.output[1].type.tensor_type.shape.dim.add().dim_value = 2
    model.graph.output[1].type.tensor_type.shape.dim.add().dim_value = 3
    graph = import_model(model)
    verify(graph)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = interpret(graph, {"x": x})
    np.testing.assert_array_equal(out["y"], x)
    assert out["mask"].dtype == np.float32 and np.all(out["mask"] == 1)
