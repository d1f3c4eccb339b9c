"""Layers that combine or rearrange blobs: Eltwise, Concat, Slice, Split, Flatten,
Reshape, Permute, Softmax, Crop, ArgMax.

Shapes are static in Caffe nets, so Flatten/Reshape/Crop compute their
target shapes here and emit ONNX ops with constant shape/start inputs.
"""

from __future__ import annotations

import numpy as np

from compiler import Value

from ..context import LayerContext, converter


@converter("Eltwise")
def convert_eltwise(ctx: LayerContext) -> list[Value]:
    """SUM (with optional per-input coefficients), PROD or MAX of all bottoms."""
    if len(ctx.inputs) < 2:
        raise ctx.error(f"takes at least 2 bottom blobs, got {len(ctx.inputs)}")
    shapes = {ctx.shape(i) for i in range(len(ctx.inputs))}
    if len(shapes) > 1:
        raise ctx.error(f"bottoms must have one shape, got {sorted(list(s) for s in shapes)}")
    p = ctx.layer.eltwise_param
    operation = p.EltwiseOp.Name(p.operation)
    if operation == "MAX":
        return [ctx.op("Max", ctx.inputs)]
    if operation == "PROD":
        y = ctx.inputs[0]
        for x in ctx.inputs[1:]:
            y = ctx.op("Mul", [y, x])
        return [y]
    coeffs = list(p.coeff) or [1.0] * len(ctx.inputs)
    if len(coeffs) != len(ctx.inputs):
        raise ctx.error(f"has {len(coeffs)} coefficients for {len(ctx.inputs)} bottoms")
    terms = [x if c == 1 else ctx.op("Mul", [x, ctx.const(c)]) for x, c in zip(ctx.inputs, coeffs)]
    y = terms[0]
    for t in terms[1:]:
        y = ctx.op("Add", [y, t])
    return [y]


def _legacy_axis(ctx: LayerContext, p, legacy_field: str) -> int:
    """``axis``, or the older ``concat_dim``/``slice_dim`` when only that is set."""
    rank = len(ctx.shape())
    if not p.HasField("axis") and p.HasField(legacy_field):
        return int(getattr(p, legacy_field))
    return ctx.axis(p.axis, rank)


@converter("Concat")
def convert_concat(ctx: LayerContext) -> list[Value]:
    """Concat along ``axis`` (or legacy ``concat_dim``)."""
    axis = _legacy_axis(ctx, ctx.layer.concat_param, "concat_dim")
    if len(ctx.inputs) == 1:
        return [ctx.inputs[0]]
    return [ctx.op("Concat", ctx.inputs, {"axis": axis})]


@converter("Slice")
def convert_slice(ctx: LayerContext) -> list[Value]:
    """Cut along ``axis`` at ``slice_point``s, or into equal parts (one per top)."""
    ctx.expect_inputs(1)
    p = ctx.layer.slice_param
    axis = _legacy_axis(ctx, p, "slice_dim")
    size, tops = ctx.shape()[axis], len(ctx.layer.top)
    points = [int(v) for v in p.slice_point]
    if points:
        if len(points) != tops - 1 or points != sorted(points) or points[-1] >= size or points[0] <= 0:
            raise ctx.error(f"slice points {points} do not cut a dim of {size} into {tops} parts")
        bounds = [0] + points + [size]
        sizes = [b - a for a, b in zip(bounds, bounds[1:])]
    else:
        if size % tops:
            raise ctx.error(f"cannot split a dim of {size} into {tops} equal parts")
        sizes = [size // tops] * tops
    if tops == 1:
        return [ctx.inputs[0]]
    outs = ctx.op("Split", [ctx.inputs[0], ctx.ints(sizes)], {"axis": axis}, num_results=tops)
    return list(outs)


@converter("Split")
def convert_split(ctx: LayerContext) -> list[Value]:
    """Caffe's Split copies its bottom to every top: in SSA they are all the same value."""
    ctx.expect_inputs(1)
    return [ctx.inputs[0]] * len(ctx.layer.top)


@converter("Flatten")
def convert_flatten(ctx: LayerContext) -> list[Value]:
    """Merge axes ``axis..end_axis`` into one (a Reshape)."""
    ctx.expect_inputs(1)
    p = ctx.layer.flatten_param
    shape = ctx.shape()
    start, end = ctx.axis(p.axis, len(shape)), ctx.axis(p.end_axis, len(shape))
    new = list(shape[:start]) + [int(np.prod(shape[start : end + 1]))] + list(shape[end + 1 :])
    return [ctx.op("Reshape", [ctx.inputs[0], ctx.ints(new)])]


def reshape_target(ctx: LayerContext, shape, p) -> list[int]:
    """Caffe's Reshape target: dims ``0`` copy, one ``-1`` is inferred, within ``[axis, axis+num_axes)``."""
    rank = len(shape)
    axis = p.axis + rank + 1 if p.axis < 0 else p.axis
    end = rank if p.num_axes == -1 else axis + p.num_axes
    if not 0 <= axis <= end <= rank:
        raise ctx.error(f"axis {p.axis} / num_axes {p.num_axes} do not fit a rank-{rank} input")
    dims = [int(d) for d in p.shape.dim]
    if any(d == 0 and axis + i >= rank for i, d in enumerate(dims)):
        raise ctx.error(f"a 0 (copy) dim in {dims} has no input dim to copy")
    middle = [shape[axis + i] if d == 0 else d for i, d in enumerate(dims)]
    new = list(shape[:axis]) + middle + list(shape[end:])
    if new.count(-1) > 1:
        raise ctx.error("at most one reshape dim may be -1")
    total, known = int(np.prod(shape)), int(np.prod([d for d in new if d != -1]))
    if -1 in new:
        if known == 0 or total % known:
            raise ctx.error(f"cannot infer the -1 dim reshaping {list(shape)} to {new}")
        new[new.index(-1)] = total // known
    if int(np.prod(new)) != total:
        raise ctx.error(f"cannot reshape {list(shape)} ({total} values) to {new}")
    return new


@converter("Reshape")
def convert_reshape(ctx: LayerContext) -> list[Value]:
    """Reshape to Caffe's target shape, computed statically."""
    ctx.expect_inputs(1)
    new = reshape_target(ctx, ctx.shape(), ctx.layer.reshape_param)
    return [ctx.op("Reshape", [ctx.inputs[0], ctx.ints(new)])]


@converter("Permute")
def convert_permute(ctx: LayerContext) -> list[Value]:
    """Transpose; axes left out of ``order`` follow in their original order."""
    ctx.expect_inputs(1)
    rank = len(ctx.shape())
    order = [int(o) for o in ctx.layer.permute_param.order]
    if len(set(order)) != len(order) or any(o >= rank for o in order):
        raise ctx.error(f"order {order} is not a permutation of {rank} axes")
    perm = order + [a for a in range(rank) if a not in order]
    if perm == list(range(rank)):
        return [ctx.inputs[0]]
    return [ctx.op("Transpose", ctx.inputs, {"perm": perm})]


@converter("Softmax")
def convert_softmax(ctx: LayerContext) -> list[Value]:
    """Softmax along ``axis``."""
    ctx.expect_inputs(1)
    axis = ctx.axis(ctx.layer.softmax_param.axis, len(ctx.shape()))
    return [ctx.op("Softmax", ctx.inputs, {"axis": axis})]


@converter("Crop")
def convert_crop(ctx: LayerContext) -> list[Value]:
    """Cut bottom 0 to bottom 1's shape from ``axis`` on, starting at ``offset``."""
    ctx.expect_inputs(2)
    p = ctx.layer.crop_param
    shape, ref = ctx.shape(0), ctx.shape(1)
    axis = ctx.axis(p.axis, len(shape))
    axes = list(range(axis, len(shape)))
    offsets = [int(o) for o in p.offset]
    offsets = offsets * len(axes) if len(offsets) == 1 else (offsets or [0] * len(axes))
    if len(offsets) != len(axes):
        raise ctx.error(f"has {len(offsets)} offsets for {len(axes)} cropped axes")
    ends = [o + ref[a] for o, a in zip(offsets, axes)]
    if any(e > shape[a] for e, a in zip(ends, axes)):
        raise ctx.error(f"crop of {list(ref)} at offsets {offsets} exceeds the input {list(shape)}")
    return [ctx.op("Slice", [ctx.inputs[0], ctx.ints(offsets), ctx.ints(ends), ctx.ints(axes)])]


@converter("ArgMax")
def convert_argmax(ctx: LayerContext) -> list[Value]:
    """Top-k indices as floats (with ``out_max_val``: the values, or both when no axis)."""
    ctx.expect_inputs(1)
    p = ctx.layer.argmax_param
    shape = ctx.shape()
    k = ctx.ints([int(p.top_k)])
    if p.HasField("axis"):
        axis = ctx.axis(p.axis, len(shape))
        values, indices = ctx.op("TopK", [ctx.inputs[0], k], {"axis": axis}, num_results=2)
        return [values if p.out_max_val else ctx.op("Cast", [indices], {"to": 1})]
    flat = ctx.op("Reshape", [ctx.inputs[0], ctx.ints([shape[0], -1])])
    values, indices = ctx.op("TopK", [flat, k], {"axis": 1}, num_results=2)
    parts = [ctx.op("Cast", [indices], {"to": 1})] + ([values] if p.out_max_val else [])
    y = parts[0] if len(parts) == 1 else ctx.op("Concat", parts, {"axis": 1})
    return [ctx.op("Reshape", [y, ctx.ints([shape[0], len(parts), int(p.top_k)])])]
