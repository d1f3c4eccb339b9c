"""Ops whose result size depends on the data, compiled: the real result, or a clean error.

Each model declares its output shapes, as exported models with static shapes do. The compiled
library computes the result with the run-time data and must match the interpreter whenever the
data yields the declared size, and fail with a message naming the op (never a truncated or padded
result) when it does not.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from onnx import TensorProto, helper

from compiled_checks import check, compiled_and_reference, refused
from compiler.runtime import RuntimeLoadError
from frontends.onnx.backend import EmberBackend

F, I, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def model(op, inputs, outputs, opset=21, **attrs):
    """A one-node model: ``inputs`` / ``outputs`` are (name, elem type, shape), outputs declared."""
    node = helper.make_node(op, [name for name, _, _ in inputs], [name for name, _, _ in outputs], **attrs)
    graph = helper.make_graph([node], op.lower(), [helper.make_tensor_value_info(*i) for i in inputs],
                              [helper.make_tensor_value_info(*o) for o in outputs])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def with_count(shape, count, seed, dtype=np.float32):
    """A random array of ``shape`` with exactly ``count`` nonzero elements."""
    rng = np.random.default_rng(seed)
    x = np.zeros(int(np.prod(shape)), dtype)
    x[rng.choice(x.size, count, replace=False)] = rng.integers(1, 9, count)
    return x.reshape(shape)


# NonZero, Compress ---------------------------------------------------------------------------------

def test_nonzero_coordinates_and_a_count_mismatch():
    rep, ref = compiled_and_reference(model("NonZero", [("x", F, [2, 3, 4])], [("y", I, [3, 7])]))
    for seed in range(3):
        check(rep, ref, [with_count((2, 3, 4), 7, seed)])
    refused(rep, [with_count((2, 3, 4), 6, 0)], ["NonZero", "(3, 7)"])
    refused(rep, [with_count((2, 3, 4), 8, 0)], ["NonZero"])


def test_nonzero_of_bools():
    rep, ref = compiled_and_reference(model("NonZero", [("x", B, [5])], [("y", I, [1, 2])]))
    check(rep, ref, [np.array([0, 1, 0, 0, 1], bool)])


def test_compress_along_an_axis():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    rep, ref = compiled_and_reference(model("Compress", [("x", F, [2, 3, 4]), ("c", B, [3])],
                                            [("y", F, [2, 2, 4])], axis=1))
    check(rep, ref, [x, np.array([1, 0, 1], bool)])
    check(rep, ref, [x, np.array([0, 1, 1], bool)])
    refused(rep, [x, np.array([1, 1, 1], bool)], ["Compress", "(2, 2, 4)"])


def test_compress_a_short_condition_and_a_negative_axis():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    rep, ref = compiled_and_reference(model("Compress", [("x", F, [2, 3, 4]), ("c", B, [2])],
                                            [("y", F, [2, 3, 1])], axis=-1))
    check(rep, ref, [x, np.array([0, 1], bool)])
    refused(rep, [x, np.array([0, 0], bool)], ["Compress"])


def test_compress_without_axis_flattens():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    rep, ref = compiled_and_reference(model("Compress", [("x", F, [3, 4]), ("c", B, [12])], [("y", F, [5])]))
    check(rep, ref, [x, with_count((12,), 5, 1, bool)])
    refused(rep, [x, with_count((12,), 4, 1, bool)], ["Compress", "(5,)"])


# Unique --------------------------------------------------------------------------------------------

def unique_model(shape, count, dtype=F, **attrs):
    """Unique with all four outputs declared for ``count`` distinct items."""
    axis = attrs.get("axis")
    items = int(np.prod(shape)) if axis is None else shape[axis]
    y_shape = [count] if axis is None else [count if d == axis % len(shape) else s for d, s in enumerate(shape)]
    return model("Unique", [("x", dtype, shape)], [("y", dtype, y_shape), ("indices", I, [count]),
                                                   ("inverse", I, [items]), ("counts", I, [count])], **attrs)


def numpy_unique(x, axis=None, sort=True):
    """ONNX Unique from NumPy; sorted=0 lists the items by first occurrence (along ``axis``)."""
    flat = x.reshape(-1) if axis is None else x
    y, first, inverse, counts = np.unique(flat, True, True, True, axis=axis)
    inverse = inverse.reshape(-1)
    if not sort:
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        y = np.take(flat, first[order], axis=0 if axis is None else axis)
        first, counts, inverse = first[order], counts[order], rank[inverse]
    return [y, first.astype(np.int64), inverse.astype(np.int64), counts.astype(np.int64)]


@pytest.mark.parametrize("sort", [1, 0])
def test_unique_of_elements(sort):
    x = np.array([[2.5, 1, 1, 3], [4, 3, 1, -2]], np.float32)
    rep, ref = compiled_and_reference(unique_model([2, 4], 5, sorted=sort))
    got = rep.run([x])
    for g, w in zip(got, numpy_unique(x, sort=bool(sort))):
        np.testing.assert_array_equal(g, w)
    if sort:
        check(rep, ref, [x])
    refused(rep, [np.ones((2, 4), np.float32)], ["Unique", "(5,)"])


@pytest.mark.parametrize("sort", [1, 0])
def test_unique_of_slices_along_an_axis(sort):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 2, (2, 6, 2)).astype(np.int64)
    x[:, 4], x[:, 5] = x[:, 1], x[:, 0]  # repeated slices
    axis_items = np.unique(x, axis=1).shape[1]
    rep, ref = compiled_and_reference(unique_model([2, 6, 2], axis_items, I, axis=1, sorted=sort))
    for g, w in zip(rep.run([x]), numpy_unique(x, axis=1, sort=bool(sort))):
        np.testing.assert_array_equal(g, w)
    if sort:
        check(rep, ref, [x])
    refused(rep, [np.zeros((2, 6, 2), np.int64)], ["Unique", "distinct slices"])


@pytest.mark.parametrize("outputs", [1, 2, 3])
def test_unique_with_fewer_outputs(outputs):
    x = np.array([2, 1, 1, 3, 4, 3, 1], np.float32)
    for sort in (0, 1):
        declared = [("y", F, [4]), ("indices", I, [4]), ("inverse", I, [7])][:outputs]
        rep = EmberBackend.prepare(model("Unique", [("x", F, [7])], declared, sorted=sort), compile=True)
        got = rep.run([x])
        assert len(got) == outputs
        for g, w in zip(got, numpy_unique(x, sort=bool(sort))):
            np.testing.assert_array_equal(g, w)


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads the resident size from /proc")
def test_failing_runs_free_their_scratch_memory():
    """The kernel frees its heap scratch before the size check fails: repeated failures do not leak."""
    n = 50_000
    rep = EmberBackend.prepare(unique_model([n], 10), compile=True)
    bad = (np.arange(n) % 11).astype(np.float32)

    def resident_mib():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    refused(rep, [bad], ["Unique"])
    before = resident_mib()
    for _ in range(60):  # about 2 MB of scratch each: a leak would add over 100 MiB
        with pytest.raises(RuntimeLoadError):
            rep.run([bad])
    assert resident_mib() - before < 30


def test_unique_of_many_elements_sorts_in_n_log_n():
    rng = np.random.default_rng(4)
    x = rng.permutation(np.repeat(np.arange(500, dtype=np.float32), 8))
    rep, ref = compiled_and_reference(unique_model([4000], 500))
    check(rep, ref, [x])


# NonMaxSuppression ---------------------------------------------------------------------------------

def random_boxes(batches, boxes, classes, seed, center=False):
    """Clustered boxes (so IoU suppression matters) and their per-class scores."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 10, (batches, boxes, 2)) // 2 * 2 + rng.normal(0, 0.3, (batches, boxes, 2))
    sizes = rng.uniform(0.5, 3, (batches, boxes, 2))
    if center:
        data = np.concatenate([centres, sizes], -1)
    else:  # [y1, x1, y2, x2], corners in either order
        data = np.concatenate([centres - sizes / 2, centres + sizes / 2], -1)
        data[:, ::2] = data[:, ::2][..., [2, 3, 0, 1]]
    scores = rng.permutation(batches * classes * boxes).reshape(batches, classes, boxes) / (batches * classes * boxes)
    return data.astype(np.float32), scores.astype(np.float32)


def nms_model(boxes, scores, constants, runtime, center_point_box=0):
    """NMS whose output rows are declared from the reference; thresholds as constants or inputs."""
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    names = ["max_output", "iou", "score_threshold"]
    node = helper.make_node("NonMaxSuppression", ["boxes", "scores"] + names, ["selected"],
                            center_point_box=center_point_box)
    feeds = {"boxes": boxes, "scores": scores, **constants, **runtime}
    rows = ReferenceEvaluator(node).run(None, feeds)[0].shape[0]
    kinds = {"max_output": I, "iou": F, "score_threshold": F}
    inputs = [helper.make_tensor_value_info("boxes", F, boxes.shape),
              helper.make_tensor_value_info("scores", F, scores.shape)]
    inputs += [helper.make_tensor_value_info(n, kinds[n], runtime[n].shape) for n in names if n in runtime]
    graph = helper.make_graph([node], "nms", inputs, [helper.make_tensor_value_info("selected", I, [rows, 3])],
                              [numpy_helper.from_array(v, n) for n, v in constants.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def scalars(max_output, iou, score_threshold):
    return {"max_output": np.array([max_output], np.int64), "iou": np.array([iou], np.float32),
            "score_threshold": np.array([score_threshold], np.float32)}


@pytest.mark.parametrize("center_point_box", [0, 1])
def test_nms_with_run_time_thresholds(center_point_box):
    boxes, scores = random_boxes(2, 300, 3, seed=center_point_box, center=bool(center_point_box))
    runtime = scalars(40, 0.3, 0.2)
    rep, ref = compiled_and_reference(nms_model(boxes, scores, {}, runtime, center_point_box))
    feeds = [boxes, scores, runtime["max_output"], runtime["iou"], runtime["score_threshold"]]
    check(rep, ref, feeds)
    refused(rep, [boxes, scores, np.array([39], np.int64), runtime["iou"], runtime["score_threshold"]],
            ["NonMaxSuppression", "boxes"])


def test_nms_with_constant_thresholds_and_tied_scores():
    boxes, _ = random_boxes(1, 50, 2, seed=7)
    scores = np.round(np.random.default_rng(7).uniform(0, 1, (1, 2, 50)), 1).astype(np.float32)  # many ties
    rep, ref = compiled_and_reference(nms_model(boxes, scores, scalars(10, 0.5, 0.0), {}))
    check(rep, ref, [boxes, scores])


# AffineGrid, CenterCropPad -------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:divide by zero")  # the reference's step for a length-1 dim
@pytest.mark.parametrize("align_corners", [0, 1])
@pytest.mark.parametrize("spatial", [[3, 5], [2, 1, 4]])
def test_affine_grid_with_a_run_time_size(spatial, align_corners):
    dims = len(spatial)
    theta = np.random.default_rng(dims).normal(size=(2, dims, dims + 1)).astype(np.float32)
    size = np.array([2, 3, *spatial], np.int64)
    rep, ref = compiled_and_reference(model(
        "AffineGrid", [("theta", F, [2, dims, dims + 1]), ("size", I, [dims + 2])],
        [("grid", F, [2, *spatial, dims])], align_corners=align_corners))
    check(rep, ref, [theta, size])
    check(rep, ref, [theta, np.array([2, 7, *spatial], np.int64)])  # channels do not matter
    refused(rep, [theta, np.array([2, 3, *spatial[:-1], spatial[-1] + 1], np.int64)], ["AffineGrid", "size"])


def test_affine_grid_with_a_constant_size():
    from onnx import numpy_helper

    node = helper.make_node("AffineGrid", ["theta", "size"], ["grid"], align_corners=1)
    graph = helper.make_graph([node], "ag", [helper.make_tensor_value_info("theta", F, [1, 2, 3])],
                              [helper.make_tensor_value_info("grid", F, [1, 4, 3, 2])],
                              [numpy_helper.from_array(np.array([1, 1, 4, 3], np.int64), "size")])
    rep, ref = compiled_and_reference(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]))
    check(rep, ref, [np.array([[[0.5, -1, 0.25], [2, 0.1, -0.3]]], np.float32)])


def test_center_crop_pad_crops_and_pads_with_a_run_time_shape():
    x = np.arange(2 * 5 * 4, dtype=np.float32).reshape(2, 5, 4)
    rep, ref = compiled_and_reference(model("CenterCropPad", [("x", F, [2, 5, 4]), ("s", I, [2])],
                                            [("y", F, [2, 2, 7])], axes=[-2, 2]))
    check(rep, ref, [x, np.array([2, 7], np.int64)])
    refused(rep, [x, np.array([3, 7], np.int64)], ["CenterCropPad", "shape"])


def test_center_crop_pad_on_every_axis():
    x = np.arange(3 * 6, dtype=np.int64).reshape(3, 6)
    rep, ref = compiled_and_reference(model("CenterCropPad", [("x", I, [3, 6]), ("s", I, [2])],
                                            [("y", I, [6, 3])]))
    check(rep, ref, [x, np.array([6, 3], np.int64)])


def test_compress_a_long_condition_must_not_select_past_the_axis():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    rep, ref = compiled_and_reference(model("Compress", [("x", F, [2, 3]), ("c", B, [5])],
                                            [("y", F, [2, 1])], axis=1))
    check(rep, ref, [x, np.array([0, 0, 1, 0, 0], bool)])
    refused(rep, [x, np.array([0, 0, 1, 0, 1], bool)], ["Compress", "past the end"])


def test_nms_with_absent_optional_operands():
    """No iou_threshold (0) and, in the second model, no max_output_boxes_per_class (no rows)."""
    from onnx.reference import ReferenceEvaluator

    boxes, scores = random_boxes(1, 30, 2, seed=2)
    limit, threshold = np.array([3], np.int64), np.array([0.5], np.float32)
    full = helper.make_node("NonMaxSuppression", ["boxes", "scores", "m", "i", "s"], ["sel"])
    want = ReferenceEvaluator(full).run(None, {"boxes": boxes, "scores": scores, "m": limit,
                                               "i": np.array([], np.float32), "s": threshold})[0]
    inputs = [("boxes", F, list(boxes.shape)), ("scores", F, list(scores.shape))]
    node = helper.make_node("NonMaxSuppression", ["boxes", "scores", "m", "", "s"], ["sel"])
    graph = helper.make_graph([node], "nms", [helper.make_tensor_value_info(*i) for i in inputs] +
                              [helper.make_tensor_value_info("m", I, [1]), helper.make_tensor_value_info("s", F, [1])],
                              [helper.make_tensor_value_info("sel", I, [len(want), 3])])
    rep = EmberBackend.prepare(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), compile=True)
    np.testing.assert_array_equal(rep.run([boxes, scores, limit, threshold])[0], want)
    none = EmberBackend.prepare(model("NonMaxSuppression", inputs, [("sel", I, [0, 3])]), compile=True)
    assert none.run([boxes, scores])[0].shape == (0, 3)
