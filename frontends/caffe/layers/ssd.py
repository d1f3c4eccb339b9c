"""SSD layers: PriorBox (a constant computed here) and DetectionOutput (``caffe.DetectionOutput``).

PriorBox depends only on shapes, which are static in Caffe nets, so its
output ``[1, 2, H*W*num_priors*4]`` (boxes, then variances) is computed at
import time.  Priors per cell, in order: for each ``min_size`` the square of
that size, the square of ``sqrt(min_size*max_size)`` when max sizes are
given, then one box per extra aspect ratio (flipped ones included).
"""

from __future__ import annotations

import math

import numpy as np

from compiler import Value

from ..context import LayerContext, converter, f32


def aspect_ratios(p) -> list[float]:
    """1, then each distinct given ratio (and its inverse with ``flip``)."""
    ratios = [1.0]
    for r in p.aspect_ratio:
        if any(abs(r - q) < 1e-6 for q in ratios):
            continue
        ratios.append(float(r))
        if p.flip:
            ratios.append(1.0 / float(r))
    return ratios


def _box_sizes(p, ratios: list[float]) -> list[tuple[float, float]]:
    """(width, height) of each prior per cell, in Caffe's order."""
    sizes = []
    for s, min_size in enumerate(p.min_size):
        sizes.append((min_size, min_size))
        if p.max_size:
            side = math.sqrt(min_size * p.max_size[s])
            sizes.append((side, side))
        for r in ratios:
            if abs(r - 1.0) >= 1e-6:
                sizes.append((min_size * math.sqrt(r), min_size / math.sqrt(r)))
    return sizes


def prior_boxes(p, layer_hw: tuple[int, int], image_hw: tuple[int, int]) -> np.ndarray:
    """The PriorBox output [1, 2, H*W*num_priors*4] for a feature map and image size."""
    layer_h, layer_w = layer_hw
    img_h, img_w = image_hw
    if p.HasField("img_size"):
        img_h = img_w = p.img_size
    elif p.HasField("img_h") or p.HasField("img_w"):
        img_h, img_w = p.img_h, p.img_w
    if p.HasField("step"):
        step_h = step_w = p.step
    elif p.HasField("step_h") or p.HasField("step_w"):
        step_h, step_w = p.step_h, p.step_w
    else:
        step_h, step_w = img_h / layer_h, img_w / layer_w
    sizes = np.asarray(_box_sizes(p, aspect_ratios(p)), dtype=np.float64)  # [K, (w, h)]
    ys, xs = np.meshgrid(np.arange(layer_h), np.arange(layer_w), indexing="ij")
    cx = (xs.reshape(-1, 1) + p.offset) * step_w  # [HW, 1]
    cy = (ys.reshape(-1, 1) + p.offset) * step_h
    half_w, half_h = sizes[:, 0] / 2, sizes[:, 1] / 2  # [K]
    boxes = np.stack(
        [(cx - half_w) / img_w, (cy - half_h) / img_h, (cx + half_w) / img_w, (cy + half_h) / img_h], axis=-1
    )  # [HW, K, 4]
    if p.clip:
        boxes = np.clip(boxes, 0.0, 1.0)
    variance = list(p.variance) or [0.1]
    variances = np.broadcast_to(np.asarray(variance, dtype=np.float64), boxes.shape)
    return np.stack([boxes.reshape(-1), variances.reshape(-1)])[None].astype(np.float32)


@converter("PriorBox")
def convert_prior_box(ctx: LayerContext) -> list[Value]:
    """The priors for bottom 0's feature map and bottom 1's image, as a constant."""
    ctx.expect_inputs(2)
    p = ctx.layer.prior_box_param
    if not p.min_size:
        raise ctx.error("prior_box_param needs at least one min_size")
    if p.max_size and len(p.max_size) != len(p.min_size):
        raise ctx.error(f"has {len(p.max_size)} max_size values for {len(p.min_size)} min_size values")
    if len(p.variance) not in (0, 1, 4):
        raise ctx.error(f"variance needs 1 or 4 values, got {len(p.variance)}")
    feature, image = ctx.shape(0), ctx.shape(1)
    boxes = prior_boxes(p, (feature[2], feature[3]), (image[2], image[3]))
    return [ctx.const(boxes)]


@converter("DetectionOutput")
def convert_detection_output(ctx: LayerContext) -> list[Value]:
    """``caffe.DetectionOutput`` of (locations, confidences, priors)."""
    ctx.expect_inputs(3)
    p = ctx.layer.detection_output_param
    nms = p.nms_param
    attrs = {
        "num_classes": int(p.num_classes),
        "share_location": int(p.share_location),
        "background_label_id": int(p.background_label_id),
        "nms_threshold": f32(nms.nms_threshold),
        "top_k": int(nms.top_k) if nms.HasField("top_k") else -1,
        "eta": f32(nms.eta),
        "keep_top_k": int(p.keep_top_k),
        "code_type": p.DESCRIPTOR.fields_by_name["code_type"].enum_type.values_by_number[p.code_type].name,
        "variance_encoded_in_target": int(p.variance_encoded_in_target),
    }
    if p.HasField("confidence_threshold"):
        attrs["confidence_threshold"] = f32(p.confidence_threshold)
    if attrs["num_classes"] < 1:
        raise ctx.error("detection_output_param needs num_classes")
    return [ctx.op("caffe.DetectionOutput", ctx.inputs, attrs)]
