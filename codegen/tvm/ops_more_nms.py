"""NonMaxSuppression lowered as a counting kernel: greedy selection, a size check, then the rows.

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
"""

from __future__ import annotations

import numpy as np
from tvm import tirx
from tvm.script.ir_builder import tirx as T

from .ops_more_common import lowering_if_missing
from .ops_more_select import I64, Local, checked, extern, merge_sort, when


def _first(buffer, shape):
    """The first element of a scalar or one-element operand."""
    return tirx.BufferLoad(buffer, [tirx.const(0, I64)] * len(shape)) if len(shape) else \
        tirx.BufferLoad(buffer, [])


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
    conditions = [width > zero, height > zero, inter > zero, area1 > zero, area2 > zero, union > zero,
                  inter / safe_union > threshold]
    out = conditions[0]
    for c in conditions[1:]:
        out = tirx.And(out, c)
    return out


def _present(ctx, k: int) -> bool:
    """Whether optional operand ``k`` is given (an empty tensor counts as absent)."""
    return k < len(ctx.in_types) and ctx.in_types[k] is not None and \
        int(np.prod(ctx.in_types[k][0])) > 0


@lowering_if_missing("NonMaxSuppression", kind="extern")
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
                chosen = _select_class(params, ins[0], ins[1], b, c, num_boxes, (candidates, tmp),
                                       (selected, (b * classes + c) * num_boxes))
                T.buffer_store(counts, chosen, [b * classes + c])
            _write_rows(ok, outs[0], selected, counts, batches, classes, num_boxes, rows)

        checked(f"{ctx.op}: the data selects a number of boxes other than {rows}, the row count this "
                f"library was compiled for (its declared output shape {tuple(ctx.out_shape())})", compute)

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
            with when(_suppresses(box(this), box(selected[base + t.value]), params.center_point_box, params.iou,
                                  params.box_dtype)):
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
