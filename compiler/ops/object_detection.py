"""Object detection: non-maximum suppression and region-of-interest pooling."""

from __future__ import annotations

import numpy as np

from . import contracts as c
from .declare import Family
from .registry import InferContext, Trait

FAMILY = Family("object_detection")
onnx_op = FAMILY.onnx_op


def nms_contract(ctx: InferContext) -> list[str]:
    """boxes [B, N, 4] and scores [B, classes, N] agree on the batch and the box count."""
    boxes, scores = c.shape(ctx, 0), c.shape(ctx, 1)
    if boxes is None or scores is None or len(boxes) != 3 or len(scores) != 3:
        return []  # onnx's inference judges the ranks
    found = []
    for what, a, b in (("batches", boxes[0], scores[0]), ("boxes", boxes[1], scores[2])):
        if c.static(a) and c.static(b) and a != b:
            found.append(f"boxes {c.show(boxes)} and scores {c.show(scores)} differ in their number of {what}")
    if c.static(boxes[2]) and boxes[2] != 4:
        found.append(f"boxes {c.show(boxes)} must have 4 coordinates per box")
    return found


def max_roi_pool(inputs, attrs, ctx):
    x, rois = inputs
    ph, pw = ctx.attr("pooled_shape")
    scale = ctx.attr("spatial_scale")
    out = np.zeros((rois.shape[0], x.shape[1], ph, pw), dtype=x.dtype)
    h, w = x.shape[2:]
    for r, (b, x1, y1, x2, y2) in enumerate(rois):
        x1, y1, x2, y2 = (int(round(v * scale)) for v in (x1, y1, x2, y2))
        rh, rw = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        for i in range(ph):
            for j in range(pw):
                hs = min(max(y1 + int(np.floor(i * rh / ph)), 0), h)
                he = min(max(y1 + int(np.ceil((i + 1) * rh / ph)), 0), h)
                ws = min(max(x1 + int(np.floor(j * rw / pw)), 0), w)
                we = min(max(x1 + int(np.ceil((j + 1) * rw / pw)), 0), w)
                if he > hs and we > ws:
                    out[r, :, i, j] = x[int(b), :, hs:he, ws:we].max(axis=(1, 2))
    return [out]


onnx_op("NonMaxSuppression", contract=nms_contract)
onnx_op("RoiAlign", traits={Trait.LAYOUT_SENSITIVE})
onnx_op("MaxRoiPool", traits={Trait.LAYOUT_SENSITIVE}, kernel=max_roi_pool)
