"""Object detection: non-maximum suppression and region-of-interest pooling."""

from __future__ import annotations

import numpy as np

from .declare import Family
from .registry import Trait

FAMILY = Family("object_detection")
onnx_op = FAMILY.onnx_op


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


onnx_op("NonMaxSuppression")
onnx_op("RoiAlign", traits={Trait.LAYOUT_SENSITIVE})
onnx_op("MaxRoiPool", traits={Trait.LAYOUT_SENSITIVE}, kernel=max_roi_pool)
