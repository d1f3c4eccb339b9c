"""Lowerings of data-movement ops: Transpose, Concat, Slice, Gather, Pad, Expand, Tile, Split, ..."""

from __future__ import annotations

import numpy as np
from tvm import te, tirx, topi

from .registry import lowering


@lowering("Transpose")
def _transpose(ctx, x):
    perm = ctx.attr("perm")
    return topi.transpose(x, [int(p) for p in perm] if perm is not None else None)


@lowering("Concat")
def _concat(ctx, *xs):
    return topi.concatenate(list(xs), int(ctx.attr("axis")) % len(xs[0].shape))


@lowering("Gather")
def _gather(ctx, data, indices):
    axis = int(ctx.attr("axis", 0)) % len(data.shape)
    dim = int(data.shape[axis])
    out_shape = ctx.out_shape()
    q = len(indices.shape)

    def body(*i):
        idx = indices(*i[axis:axis + q]) if q else indices()
        idx = idx.astype("int64")
        idx = tirx.Select(idx < 0, idx + dim, idx)
        return data(*i[:axis], idx, *i[axis + q:])

    return te.compute(out_shape, body, name="gather")


@lowering("GatherElements")
def _gather_elements(ctx, data, indices):
    axis = int(ctx.attr("axis", 0)) % len(data.shape)
    dim = int(data.shape[axis])

    def body(*i):
        idx = indices(*i).astype("int64")
        idx = tirx.Select(idx < 0, idx + dim, idx)
        return data(*i[:axis], idx, *i[axis + 1:])

    return te.compute(ctx.out_shape(), body, name="gather_elements")


@lowering("DepthToSpace")
def _depth_to_space(ctx, x):
    b = int(ctx.attr("blocksize"))
    n, c, h, w = (int(d) for d in x.shape)
    oc = c // (b * b)
    crd = ctx.attr("mode", "DCR") == "CRD"

    def body(i, k, y, xx):
        by, bx = y % b, xx % b
        ch = k * b * b + by * b + bx if crd else (by * b + bx) * oc + k
        return x[i, ch, y // b, xx // b]

    return te.compute((n, oc, h * b, w * b), body, name="depth_to_space")


@lowering("SpaceToDepth")
def _space_to_depth(ctx, x):
    b = int(ctx.attr("blocksize"))
    n, c, h, w = (int(d) for d in x.shape)

    crd = ctx.attr("mode", "DCR") == "CRD"  # opset 28: channel-major output blocks

    def body(i, k, y, xx):
        blk, ch = (k % (b * b), k // (b * b)) if crd else (k // c, k % c)
        return x[i, ch, y * b + blk // b, xx * b + blk % b]

    return te.compute((n, c * b * b, h // b, w // b), body, name="space_to_depth")


def scalar_of(tensor, dtype: str = "int64"):
    """The single element of a run-time operand (0-d or one element) as a TE expression."""
    return tensor(*([0] * len(tensor.shape))).astype(dtype)


@lowering("Trilu", static=(1,), runtime=(1,))
def _trilu(ctx, x, k_tensor=None):
    if ctx.static(1) is not None:
        k = int(np.asarray(ctx.static(1)).reshape(-1)[0])
    elif k_tensor is not None:
        k = scalar_of(k_tensor)  # any value works: k only moves the diagonal
    else:
        k = 0
    upper = bool(ctx.attr("upper", 1))

    def body(*i):
        keep = (i[-1] - i[-2] >= k) if upper else (i[-1] - i[-2] <= k)
        return tirx.Select(keep, x(*i), tirx.const(0, x.dtype))

    return te.compute(x.shape, body, name="trilu")


@lowering("Einsum")
def _einsum(ctx, *xs):
    return topi.einsum(ctx.attr("equation").replace(" ", ""), *xs)


@lowering("ScatterElements")
def _scatter_elements(ctx, data, indices, updates):
    axis = int(ctx.attr("axis", 0)) % len(data.shape)
    reduction = {"none": "update", "add": "add", "mul": "mul", "max": "max", "min": "min"}[
        ctx.attr("reduction", "none")]
    return topi.scatter_elements(data, indices, updates, axis, reduction)


@lowering("ScatterND")
def _scatter_nd(ctx, data, indices, updates):
    mode = {"none": "update", "add": "add", "mul": "mul", "max": "max", "min": "min"}[ctx.attr("reduction", "none")]
    rank_i = len(indices.shape)
    perm = [rank_i - 1] + list(range(rank_i - 1))  # topi wants the index tuple first
    return topi.scatter_nd(data, topi.transpose(indices, perm), updates, mode)
