"""Object-detection lowerings (codegen/tvm/lower/object_detection.py) compiled: NonMaxSuppression
with run-time, constant and absent thresholds, and RoiAlign.

Each model is one node with declared output shapes, as exported models with static shapes have;
parameters are model inputs where the op allows it. The compiled library must give the
interpreter's answer for every value consistent with those shapes, and fail the run with a message
naming the op, never a wrong result, for a value that is not."""

from __future__ import annotations

import numpy as np
import pytest
from compiled_checks import check, check_against_interpreter, compiled_and_reference, node_model, refused
from onnx import TensorProto, helper

from compiler.runtime import RuntimeLoadError
from frontends.onnx.backend import EmberBackend

F, I64, B, H = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL, TensorProto.FLOAT16


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
    node = helper.make_node(
        "NonMaxSuppression", ["boxes", "scores"] + names, ["selected"], center_point_box=center_point_box
    )
    feeds = {"boxes": boxes, "scores": scores, **constants, **runtime}
    rows = ReferenceEvaluator(node).run(None, feeds)[0].shape[0]
    kinds = {"max_output": I64, "iou": F, "score_threshold": F}
    inputs = [
        helper.make_tensor_value_info("boxes", F, boxes.shape),
        helper.make_tensor_value_info("scores", F, scores.shape),
    ]
    inputs += [helper.make_tensor_value_info(n, kinds[n], runtime[n].shape) for n in names if n in runtime]
    graph = helper.make_graph(
        [node],
        "nms",
        inputs,
        [helper.make_tensor_value_info("selected", I64, [rows, 3])],
        [numpy_helper.from_array(v, n) for n, v in constants.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def scalars(max_output, iou, score_threshold):
    return {
        "max_output": np.array([max_output], np.int64),
        "iou": np.array([iou], np.float32),
        "score_threshold": np.array([score_threshold], np.float32),
    }


@pytest.mark.parametrize("center_point_box", [0, 1])
def test_nms_with_run_time_thresholds(center_point_box):
    boxes, scores = random_boxes(2, 300, 3, seed=center_point_box, center=bool(center_point_box))
    runtime = scalars(40, 0.3, 0.2)
    rep, ref = compiled_and_reference(nms_model(boxes, scores, {}, runtime, center_point_box))
    feeds = [boxes, scores, runtime["max_output"], runtime["iou"], runtime["score_threshold"]]
    check(rep, ref, feeds)
    refused(
        rep,
        [boxes, scores, np.array([39], np.int64), runtime["iou"], runtime["score_threshold"]],
        ["NonMaxSuppression", "boxes"],
    )


def test_nms_with_constant_thresholds_and_tied_scores():
    boxes, _ = random_boxes(1, 50, 2, seed=7)
    scores = np.round(np.random.default_rng(7).uniform(0, 1, (1, 2, 50)), 1).astype(np.float32)  # many ties
    rep, ref = compiled_and_reference(nms_model(boxes, scores, scalars(10, 0.5, 0.0), {}))
    check(rep, ref, [boxes, scores])


def test_nms_with_absent_optional_operands():
    """No iou_threshold (0) and, in the second model, no max_output_boxes_per_class (no rows)."""
    from onnx.reference import ReferenceEvaluator

    boxes, scores = random_boxes(1, 30, 2, seed=2)
    limit, threshold = np.array([3], np.int64), np.array([0.5], np.float32)
    full = helper.make_node("NonMaxSuppression", ["boxes", "scores", "m", "i", "s"], ["sel"])
    want = ReferenceEvaluator(full).run(
        None, {"boxes": boxes, "scores": scores, "m": limit, "i": np.array([], np.float32), "s": threshold}
    )[0]
    inputs = [("boxes", F, list(boxes.shape)), ("scores", F, list(scores.shape))]
    node = helper.make_node("NonMaxSuppression", ["boxes", "scores", "m", "", "s"], ["sel"])
    graph = helper.make_graph(
        [node],
        "nms",
        [helper.make_tensor_value_info(*i) for i in inputs]
        + [helper.make_tensor_value_info("m", I64, [1]), helper.make_tensor_value_info("s", F, [1])],
        [helper.make_tensor_value_info("sel", I64, [len(want), 3])],
    )
    rep = EmberBackend.prepare(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), compile=True)
    np.testing.assert_array_equal(rep.run([boxes, scores, limit, threshold])[0], want)
    none = EmberBackend.prepare(model("NonMaxSuppression", inputs, [("sel", I64, [0, 3])]), compile=True)
    assert none.run([boxes, scores])[0].shape == (0, 3)


# RoiAlign --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "attrs",
    [
        dict(mode="avg"),
        dict(mode="max", sampling_ratio=2),
        dict(coordinate_transformation_mode="output_half_pixel", spatial_scale=0.5),
    ],
)
def test_roi_align(attrs):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3, 8, 9)).astype(np.float32)
    rois = np.array([[0, 0, 7, 7], [1.5, 2.2, 8.5, 6.1], [-2, -1, 3, 12], [4, 4, 4.2, 4.1]], np.float32)
    m = node_model(
        "RoiAlign",
        [("x", F, [2, 3, 8, 9]), ("rois", F, [4, 4]), ("b", I64, [4])],
        [("y", F, [4, 3, 3, 2])],
        opset=16,
        output_height=3,
        output_width=2,
        **attrs,
    )
    feeds = {"x": x, "rois": rois, "b": np.array([0, 1, 1, 0], np.int64)}
    rep = check_against_interpreter(m, feeds, rtol=1e-4, atol=1e-5)
    with pytest.raises(RuntimeLoadError, match="batch index"):
        rep.run({**feeds, "b": np.array([0, 2, 1, 0], np.int64)})
