"""SSD layers against OpenCV: PriorBox variants, and a whole SSD-style head
(Normalize, loc/conf convolutions, Permute, Flatten, PriorBox, Softmax, DetectionOutput)."""

from __future__ import annotations

import cv2  # noqa: F401  (the OpenCV reference these tests compare with; a test dependency)
import numpy as np
import pytest
from caffe_harness import check_against_opencv, randn, run_ember, run_opencv, save

from frontends.caffe.writer import NetSpec

# OpenCV's schema defaults ``clip`` to true (the first SSD release), later SSD and Ember to false:
# the cases spell it out.  OpenCV also reads a single min_size/max_size only and takes the image size
# from the image input even when img_size/img_h/img_w are given: ``test_prior_box_explicit_image_size``
# checks those by hand.
PRIOR_CASES = {
    "min_only": {"min_size": [8.0], "variance": [0.1], "clip": False},
    "min_max_ratios_flip": {
        "min_size": [6.0],
        "max_size": [14.0],
        "aspect_ratio": [2.0, 3.0],
        "clip": False,
        "variance": [0.1, 0.1, 0.2, 0.2],
    },
    "no_flip_clip_step": {
        "min_size": [10.0],
        "aspect_ratio": [2.0],
        "flip": False,
        "clip": True,
        "step": 5.0,
        "variance": [0.2],
    },
    "offset": {"min_size": [9.0], "max_size": [15.0], "variance": [0.1], "offset": 0.25, "clip": False},
    "step_hw": {"min_size": [5.0], "step_h": 6.0, "step_w": 7.0, "variance": [0.1], "clip": True},
}


@pytest.mark.parametrize("case", sorted(PRIOR_CASES))
def test_prior_box(case):
    net = NetSpec("priors", inputs={"feat": (1, 2, 5, 7), "data": (1, 3, 30, 42)})
    net.layer("priors", "PriorBox", ["feat", "data"], ["priors"], prior_box_param=PRIOR_CASES[case])
    check_against_opencv(net, {"feat": randn(1, 2, 5, 7), "data": randn(1, 3, 30, 42)}, atol=1e-5)


def test_prior_box_explicit_image_size_and_two_min_sizes():
    from frontends.caffe.layers.ssd import prior_boxes
    from frontends.caffe.schema import CLASSES

    p = CLASSES["PriorBoxParameter"](min_size=[4.0, 9.0], max_size=[9.0, 16.0], img_h=40, img_w=50, variance=[0.1])
    out = prior_boxes(p, (2, 5), (999, 999))
    assert out.shape == (1, 2, 2 * 5 * 4 * 4)
    step_h, step_w = 40 / 2, 50 / 5
    cx, cy = 0.5 * step_w, 0.5 * step_h
    first_cell = out[0, 0, :16].reshape(4, 4)
    sides = [4.0, 6.0, 9.0, 12.0]  # min, sqrt(min*max) for each min size
    expect = [[(cx - s / 2) / 50, (cy - s / 2) / 40, (cx + s / 2) / 50, (cy + s / 2) / 40] for s in sides]
    np.testing.assert_allclose(first_cell, expect, rtol=1e-6)
    np.testing.assert_allclose(out[0, 1], 0.1)


def ssd_head(num_classes: int = 3, share_location: bool = True, code_type: str = "CENTER_SIZE") -> NetSpec:
    priors = {
        "min_size": [8.0],
        "max_size": [16.0],
        "aspect_ratio": [2.0],
        "flip": True,
        "clip": False,
        "variance": [0.1, 0.1, 0.2, 0.2],
    }
    num_priors = 4  # 1 + max + 2 ratios (2, 1/2)
    num_loc = 1 if share_location else num_classes
    net = NetSpec("ssd_head", inputs={"data": (1, 3, 32, 32)})
    net.layer(
        "conv1",
        "Convolution",
        ["data"],
        ["conv1"],
        blobs=[randn(8, 3, 3, 3) * 0.3, randn(8)],
        convolution_param={"num_output": 8, "kernel_size": [3], "pad": [1], "stride": [4]},
    )
    net.layer("relu1", "ReLU", ["conv1"], ["conv1"])
    net.layer(
        "norm",
        "Normalize",
        ["conv1"],
        ["conv1_norm"],
        blobs=[np.full(8, 4.0, np.float32)],
        norm_param={"across_spatial": False, "channel_shared": False},
    )
    heads = {"loc": num_priors * 4 * num_loc, "conf": num_priors * num_classes}
    for head, channels in heads.items():
        net.layer(
            f"{head}_conv",
            "Convolution",
            ["conv1_norm"],
            [f"{head}_conv"],
            blobs=[randn(channels, 8, 3, 3) * 0.1, randn(channels) * 0.1],
            convolution_param={"num_output": channels, "kernel_size": [3], "pad": [1]},
        )
        net.layer(f"{head}_perm", "Permute", [f"{head}_conv"], [f"{head}_perm"], permute_param={"order": [0, 2, 3, 1]})
        net.layer(f"{head}_flat", "Flatten", [f"{head}_perm"], [f"{head}_flat"], flatten_param={"axis": 1})
    net.layer("priorbox", "PriorBox", ["conv1_norm", "data"], ["priorbox"], prior_box_param=priors)
    net.layer(
        "conf_reshape",
        "Reshape",
        ["conf_flat"],
        ["conf_reshape"],
        reshape_param={"shape": {"dim": [0, -1, num_classes]}},
    )
    net.layer("conf_softmax", "Softmax", ["conf_reshape"], ["conf_softmax"], softmax_param={"axis": 2})
    net.layer("conf_out", "Flatten", ["conf_softmax"], ["conf_out"])
    net.layer(
        "detection_out",
        "DetectionOutput",
        ["loc_flat", "conf_out", "priorbox"],
        ["detection_out"],
        detection_output_param={
            "num_classes": num_classes,
            "share_location": share_location,
            "background_label_id": 0,
            "nms_param": {"nms_threshold": 0.45, "top_k": 40},
            "code_type": code_type,
            "keep_top_k": 15,
            "confidence_threshold": 0.3,
        },
    )
    return net


def _rows(detections: np.ndarray) -> np.ndarray:
    """Detection rows in a canonical order: image, label, score (descending), then the box (ties)."""
    rows = detections.reshape(-1, 7)
    keys = [np.round(rows[:, c], 4) for c in (6, 5, 4, 3)] + [-rows[:, 2], rows[:, 1], rows[:, 0]]
    return rows[np.lexsort(keys)]


@pytest.mark.parametrize("code_type,share_location", [("CENTER_SIZE", True), ("CORNER", True), ("CENTER_SIZE", False)])
def test_ssd_head_detection_output(code_type, share_location):
    net = ssd_head(code_type=code_type, share_location=share_location)
    proto, model = save(net)
    x = randn(1, 3, 32, 32)
    ours = run_ember(proto, model, {"data": x})["detection_out"]
    theirs = run_opencv(proto, model, {"data": x}, "detection_out")
    assert ours.shape[-1] == 7 and ours.shape[2] > 1, ours.shape
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(_rows(ours), _rows(theirs), rtol=1e-4, atol=1e-4)


def test_ssd_head_intermediate_blobs():
    net = ssd_head()
    x = randn(1, 3, 32, 32)
    for blob in ("conv1_norm", "loc_flat", "conf_out", "priorbox"):
        proto, model = save(net)
        ours = run_ember(proto, model, {"data": x})
        assert "detection_out" in ours
        # intermediate blobs are checked through single-output nets cut at that blob
        cut = NetSpec("cut", inputs=net.inputs)
        for layer in net.layers:
            cut.layers.append(layer)
            if blob in layer.top:
                break
        check_against_opencv(cut, {"data": x}, blob, atol=1e-4)


def test_detection_output_nothing_detected_gives_minus_ones():
    net = ssd_head()
    net.layers[-1].params["detection_output_param"]["confidence_threshold"] = 1.5
    proto, model = save(net)
    ours = run_ember(proto, model, {"data": randn(1, 3, 32, 32)})["detection_out"]
    np.testing.assert_array_equal(ours, -np.ones((1, 1, 1, 7), np.float32))


def test_ssd_graph_round_trips_through_the_ir_files(tmp_path):
    """The saved IR (caffe.DetectionOutput and its attributes included) reloads and runs the same."""
    from compiler import interpret, load_ir, print_ir, save_ir
    from frontends.caffe import import_model

    proto, model = save(ssd_head())
    graph = import_model(proto, model)
    path = str(tmp_path / "ssd.ir")
    save_ir(graph, path)
    again = load_ir(path)
    detection_line = [line for line in print_ir(graph).splitlines() if "caffe.DetectionOutput" in line]
    assert detection_line and detection_line == [
        line for line in print_ir(again).splitlines() if "caffe.DetectionOutput" in line
    ]
    x = randn(1, 3, 32, 32)
    np.testing.assert_array_equal(
        interpret(again, {"data": x})["detection_out"], interpret(graph, {"data": x})["detection_out"]
    )
