"""Lowerings of object detection: NonMaxSuppression and RoiAlign.

NonMaxSuppression is a counting kernel: greedy selection, a size check, then the rows.

    NonMaxSuppression(boxes[B,N,4], scores[B,C,N], max_output_boxes_per_class?, iou_threshold?,
                      score_threshold?){center_point_box} -> selected_indices[K,3]

For each batch and class: keep the boxes scoring above ``score_threshold`` (all boxes when it is
absent), sort them by score, highest first (a stable merge sort, so equal scores keep box order),
then walk them greedily, selecting a box unless its IoU with a box already selected for this class
exceeds ``iou_threshold``, until ``max_output_boxes_per_class`` are selected. The cost is
O(N log N + N * S) per class for S selected boxes: no pairwise IoU matrix.

The three scalar operands are read at run time, whether they are model inputs or constants. The
number of selected rows must equal the compiled K (the declared output shape); otherwise the run
fails with a message, never a truncated or padded result.

    RoiAlign(x[N,C,H,W], rois[R,4], batch_indices[R]){mode, output_height, output_width,
             sampling_ratio, spatial_scale, coordinate_transformation_mode}  -> y[R,C,oh,ow]

Each output bin averages (``avg``) or takes the maximum (``max``) of bilinear samples on a regular
grid inside the bin. With ``sampling_ratio=0`` the grid size comes from each ROI's size, a run-time
value, so the kernel is a TIR loop nest (``te.extern``) whose inner loop extents are computed per
ROI. The arithmetic follows ONNX's reference: float32 coordinates, samples more than one pixel
outside the image count as zero, ``max`` mode keeps the largest of the four weighted corner values.
A batch index outside ``[0, N)`` fails the run with a message.
"""

from __future__ import annotations

import numpy as np
from tvm import tirx
from tvm.script.ir_builder import tirx as T

from ..registry import lowering
from ..tir_util import I64, Local, check, checked, extern, merge_sort, when


def _first(buffer, shape):
    """The first element of a scalar or one-element operand."""
    return tirx.BufferLoad(buffer, [tirx.const(0, I64)] * len(shape)) if len(shape) else tirx.BufferLoad(buffer, [])


def _extent(box, center_point_box: int, lo_hi: int, dtype: str):
    """(min, max) of a box along y (``lo_hi`` = 0) or x (1) from its four coordinates."""
    if center_point_box:
        centre, half = box(1 - lo_hi), box(3 - lo_hi) / tirx.const(2, dtype)
        return centre - half, centre + half
    a, b = box(lo_hi), box(lo_hi + 2)
    return tirx.min(a, b), tirx.max(a, b)


def _suppresses(box1, box2, center_point_box: int, threshold, dtype: str):
    """True when the IoU of the two boxes exceeds ``threshold`` (degenerate boxes never suppress)."""
    (y1a, y1b), (x1a, x1b) = (_extent(box1, center_point_box, k, dtype) for k in (0, 1))
    (y2a, y2b), (x2a, x2b) = (_extent(box2, center_point_box, k, dtype) for k in (0, 1))
    width = tirx.min(x1b, x2b) - tirx.max(x1a, x2a)
    height = tirx.min(y1b, y2b) - tirx.max(y1a, y2a)
    zero = tirx.const(0, dtype)
    inter = width * height
    area1, area2 = (x1b - x1a) * (y1b - y1a), (x2b - x2a) * (y2b - y2a)
    union = area1 + area2 - inter
    safe_union = tirx.Select(union > zero, union, tirx.const(1, dtype))
    conditions = [
        width > zero,
        height > zero,
        inter > zero,
        area1 > zero,
        area2 > zero,
        union > zero,
        inter / safe_union > threshold,
    ]
    out = conditions[0]
    for c in conditions[1:]:
        out = tirx.And(out, c)
    return out


def _present(ctx, k: int) -> bool:
    """Whether optional operand ``k`` is given (an empty tensor counts as absent)."""
    return k < len(ctx.in_types) and ctx.in_types[k] is not None and int(np.prod(ctx.in_types[k][0])) > 0


@lowering("NonMaxSuppression", kind="extern")
def _non_max_suppression(ctx, boxes, scores, max_output=None, iou_threshold=None, score_threshold=None):
    """Select per batch and class, check the total against the compiled row count, write the rows."""
    batches, num_boxes = int(boxes.shape[0]), int(boxes.shape[1])
    classes = int(scores.shape[1])
    rows = ctx.out_shape()[0]
    operand = dict(zip((2, 3, 4), (max_output, iou_threshold, score_threshold)))
    given = [k for k, t in operand.items() if t is not None and _present(ctx, k)]

    def body(ins, outs):
        extra = {k: _first(buf, ctx.in_types[k][0]) for k, buf in zip(given, ins[2:])}
        params = _Params(ctx, str(boxes.dtype), str(scores.dtype), extra)

        def compute(ok, workspace):
            scratch = workspace.buffer
            selected, counts = scratch(batches * classes * num_boxes), scratch(batches * classes)
            candidates, tmp = scratch(num_boxes), scratch(num_boxes)
            with T.serial(0, batches) as b, T.serial(0, classes) as c:
                chosen = _select_class(
                    params,
                    ins[0],
                    ins[1],
                    b,
                    c,
                    num_boxes,
                    (candidates, tmp),
                    (selected, (b * classes + c) * num_boxes),
                )
                T.buffer_store(counts, chosen, [b * classes + c])
            _write_rows(ok, outs[0], selected, counts, batches, classes, num_boxes, rows)

        checked(
            f"{ctx.op}: the data selects a number of boxes other than {rows}, the row count this "
            f"library was compiled for (its declared output shape {tuple(ctx.out_shape())})",
            compute,
        )

    return extern(ctx, [boxes, scores] + [operand[k] for k in given], body, "non_max_suppression")


class _Params:
    """The run-time parameters: box format, selection limit and the two thresholds (None: absent)."""

    def __init__(self, ctx, box_dtype: str, score_dtype: str, extra: dict):
        self.center_point_box = int(ctx.attr("center_point_box", 0))
        self.box_dtype = box_dtype
        self.limit = tirx.max(extra[2].astype(I64), tirx.const(0, I64)) if 2 in extra else tirx.const(0, I64)
        self.iou = extra[3].astype(box_dtype) if 3 in extra else tirx.const(0, box_dtype)
        self.min_score = extra[4].astype(score_dtype) if 4 in extra else None


def _select_class(params, box_data, score_data, b, c, num_boxes, work, out):
    """Greedy NMS for batch ``b``, class ``c`` into ``out`` = (buffer, offset); returns the count."""
    candidates, tmp = work
    selected, base = out

    def score(i):
        return score_data[b, c, i]

    def box(i):
        return lambda q: box_data[b, i, q]

    found = Local(0)
    with T.serial(0, num_boxes) as i:
        with when(score(i) > params.min_score if params.min_score is not None else tirx.const(True, "bool")):
            T.buffer_store(candidates, i.astype(I64), [found.value])
            found.add()
    merge_sort(candidates, tmp, found.value, lambda left, right: score(right) > score(left))
    chosen, k = Local(0), Local(0)
    with T.While(tirx.And(k.value < found.value, chosen.value < params.limit)):
        this, clear, t = candidates[k.value], Local(1), Local(0)
        with T.While(tirx.And(t.value < chosen.value, clear.value == 1)):
            with when(
                _suppresses(
                    box(this), box(selected[base + t.value]), params.center_point_box, params.iou, params.box_dtype
                )
            ):
                clear.set(0)
            t.add()
        with when(clear.value == 1):
            T.buffer_store(selected, this, [base + chosen.value])
            chosen.add()
        k.add()
    return chosen.value


def _write_rows(ok, out, selected, counts, batches, classes, num_boxes, rows):
    """When the selections add up to the compiled rows, write the (batch, class, box) rows."""
    total = Local(0)
    with T.serial(0, batches * classes) as bc:
        total.add(counts[bc])
    with when(total.value == rows):
        ok.set(1)
        _write_selected(out, selected, counts, batches, classes, num_boxes)


def _write_selected(out, selected, counts, batches, classes, num_boxes):
    row = Local(0)
    with T.serial(0, batches) as b, T.serial(0, classes) as c:
        with T.serial(0, counts[b * classes + c]) as t:
            T.buffer_store(out, b.astype(I64), [row.value, 0])
            T.buffer_store(out, c.astype(I64), [row.value, 1])
            T.buffer_store(out, selected[(b * classes + c) * num_boxes + t], [row.value, 2])
            row.add()


F32 = "float32"


def _f(value):
    return tirx.const(float(value), F32)


class _Bilinear:
    """The four corner positions and weights of one sample at (y, x) on an H x W plane."""

    def __init__(self, y, x, height: int, width: int):
        outside = tirx.Or(tirx.Or(y < _f(-1), y > _f(height)), tirx.Or(x < _f(-1), x > _f(width)))
        y, x = tirx.max(y, _f(0)), tirx.max(x, _f(0))
        y_low, x_low = tirx.floor(y).astype("int32"), tirx.floor(x).astype("int32")
        y_edge, x_edge = y_low >= height - 1, x_low >= width - 1
        self.y_low = tirx.Select(y_edge, tirx.const(height - 1, "int32"), y_low)
        self.x_low = tirx.Select(x_edge, tirx.const(width - 1, "int32"), x_low)
        self.y_high = tirx.Select(y_edge, tirx.const(height - 1, "int32"), y_low + 1)
        self.x_high = tirx.Select(x_edge, tirx.const(width - 1, "int32"), x_low + 1)
        ly = tirx.Select(y_edge, _f(0), y - y_low.astype(F32))
        lx = tirx.Select(x_edge, _f(0), x - x_low.astype(F32))
        hy, hx = _f(1) - ly, _f(1) - lx
        keep = lambda w: tirx.Select(outside, _f(0), w)  # noqa: E731
        self.weights = [keep(hy * hx), keep(hy * lx), keep(ly * hx), keep(ly * lx)]

    def terms(self, read):
        """The four weighted corner values; ``read(row, column)`` loads a pixel as float32."""
        corners = [
            (self.y_low, self.x_low),
            (self.y_low, self.x_high),
            (self.y_high, self.x_low),
            (self.y_high, self.x_high),
        ]
        return [w * read(r, c) for w, (r, c) in zip(self.weights, corners)]


@lowering("RoiAlign", kind="extern")
def _roi_align(ctx, x, rois, batch_indices):
    n, channels, height, width = (int(d) for d in x.shape)
    count, _, out_h, out_w = ctx.out_shape()
    mode = ctx.attr("mode", "avg")
    if mode not in ("avg", "max"):
        raise ctx.fail(f"unknown mode {mode!r}")
    half_pixel = ctx.attr("coordinate_transformation_mode", "half_pixel") == "half_pixel"
    ratio = int(ctx.attr("sampling_ratio", 0))
    scale = float(ctx.attr("spatial_scale", 1.0))
    out_dtype = ctx.out_dtype()
    message = f"{ctx.op}: a batch index is outside [0, {n})"

    def body(ins, outs):
        data, boxes, batches, result = ins[0], ins[1], ins[2], outs[0]
        with T.serial(0, count) as r:
            batch = Local(batches[r].astype("int64"))
            check(tirx.And(batch.value >= 0, batch.value < n), message)
            offset = _f(0.5 if half_pixel else 0.0)
            corner = [Local(boxes[r, k].astype(F32) * _f(scale) - offset, F32) for k in range(4)]
            start_w, start_h, end_w, end_h = corner
            roi_w, roi_h = Local(end_w.value - start_w.value, F32), Local(end_h.value - start_h.value, F32)
            if not half_pixel:  # malformed ROIs become 1x1
                roi_w.set(tirx.max(roi_w.value, _f(1)))
                roi_h.set(tirx.max(roi_h.value, _f(1)))
            bin_h, bin_w = Local(roi_h.value / _f(out_h), F32), Local(roi_w.value / _f(out_w), F32)
            if ratio > 0:
                grid_h, grid_w = Local(ratio, "int32"), Local(ratio, "int32")
            else:
                grid_h = Local(tirx.ceil(roi_h.value / _f(out_h)).astype("int32"), "int32")
                grid_w = Local(tirx.ceil(roi_w.value / _f(out_w)).astype("int32"), "int32")
            samples = tirx.max(grid_h.value * grid_w.value, 1).astype(F32)
            with T.grid(channels, out_h, out_w) as (c, ph, pw):
                total = Local(0.0, F32)
                seen = Local(0, "int32")
                with T.serial(0, grid_h.value) as iy:
                    y = (
                        start_h.value
                        + ph.astype(F32) * bin_h.value
                        + (iy.astype(F32) + _f(0.5)) * bin_h.value / grid_h.value.astype(F32)
                    )
                    with T.serial(0, grid_w.value) as ix:
                        xx = (
                            start_w.value
                            + pw.astype(F32) * bin_w.value
                            + (ix.astype(F32) + _f(0.5)) * bin_w.value / grid_w.value.astype(F32)
                        )
                        sample = _Bilinear(y, xx, height, width)
                        terms = sample.terms(lambda row, col: data[batch.value, c, row, col].astype(F32))
                        if mode == "avg":
                            total.set(total.value + terms[0] + terms[1] + terms[2] + terms[3])
                        else:
                            best = tirx.max(tirx.max(terms[0], terms[1]), tirx.max(terms[2], terms[3]))
                            with T.If(seen.value == 0):
                                with T.Then():
                                    total.set(best)
                                    seen.set(1)
                                with T.Else():
                                    total.set(tirx.max(total.value, best))
                value = total.value / samples if mode == "avg" else total.value
                T.buffer_store(result, value.astype(out_dtype), [r, c, ph, pw])

    return extern(ctx, [x, rois, batch_indices], body, "roi_align")[0]
