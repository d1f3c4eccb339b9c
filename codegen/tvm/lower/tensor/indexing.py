"""Lowerings of indexing: Gather, GatherElements, GatherND, ScatterElements, ScatterND, TensorScatter.

    GatherND(data, indices)        data[b..., indices[b..., i..., :], rest...] with ``batch_dims`` b
    TensorScatter(past, update, write_indices){mode, axis}
                                   past with ``update`` written along ``axis`` from write_indices[b] on
                                   (``circular``: modulo the axis length)

Run-time write indices are checked when the kernel starts.
"""

from __future__ import annotations

from tvm import te, tirx, topi

from ...registry import lowering
from ...te_util import require_each
from ...tir_util import I64


@lowering("Gather")
def _gather(ctx, data, indices):
    axis = int(ctx.attr("axis", 0)) % len(data.shape)
    dim = int(data.shape[axis])
    out_shape = ctx.out_shape()
    q = len(indices.shape)

    def body(*i):
        idx = indices(*i[axis : axis + q]) if q else indices()
        idx = idx.astype("int64")
        idx = tirx.Select(idx < 0, idx + dim, idx)
        return data(*i[:axis], idx, *i[axis + q :])

    return te.compute(out_shape, body, name="gather")


@lowering("GatherElements")
def _gather_elements(ctx, data, indices):
    axis = int(ctx.attr("axis", 0)) % len(data.shape)
    dim = int(data.shape[axis])

    def body(*i):
        idx = indices(*i).astype("int64")
        idx = tirx.Select(idx < 0, idx + dim, idx)
        return data(*i[:axis], idx, *i[axis + 1 :])

    return te.compute(ctx.out_shape(), body, name="gather_elements")


@lowering("ScatterElements")
def _scatter_elements(ctx, data, indices, updates):
    axis = int(ctx.attr("axis", 0)) % len(data.shape)
    reduction = {"none": "update", "add": "add", "mul": "mul", "max": "max", "min": "min"}[
        ctx.attr("reduction", "none")
    ]
    return topi.scatter_elements(data, indices, updates, axis, reduction)


@lowering("ScatterND")
def _scatter_nd(ctx, data, indices, updates):
    mode = {"none": "update", "add": "add", "mul": "mul", "max": "max", "min": "min"}[ctx.attr("reduction", "none")]
    rank_i = len(indices.shape)
    perm = [rank_i - 1] + list(range(rank_i - 1))  # topi wants the index tuple first
    return topi.scatter_nd(data, topi.transpose(indices, perm), updates, mode)


@lowering("GatherND")
def _gather_nd(ctx, data, indices):
    b = int(ctx.attr("batch_dims", 0))
    q = len(indices.shape)
    m = int(indices.shape[-1])
    dims = [int(d) for d in data.shape]

    def body(*o):
        lead = o[: q - 1]
        at = list(o[:b])
        for t in range(m):
            i = indices(*lead, t).astype("int64")
            at.append(tirx.Select(i < 0, i + dims[b + t], i))
        return data(*at, *o[q - 1 :])

    return te.compute(ctx.out_shape(), body, name="gather_nd")


# TensorScatter ---------------------------------------------------------------------------------------


@lowering("TensorScatter")
def _tensor_scatter(ctx, past, update, write_indices=None):
    shape = [int(d) for d in past.shape]
    rank = len(shape)
    axis = int(ctx.attr("axis", -2)) % rank
    if axis == 0:
        raise ctx.fail("axis 0 leaves no batch axis for write_indices")
    length, count = shape[axis], int(update.shape[axis])
    circular = ctx.attr("mode", "linear") == "circular"
    if write_indices is not None:
        if circular:
            require_each(ctx, write_indices, lambda v, j: v >= 0, "write_indices must not be negative")
        else:
            require_each(
                ctx,
                write_indices,
                lambda v, j: tirx.And(v >= 0, v + count <= length),
                f"write_indices[b] + {count} updates must stay within the axis ({length} long)",
            )

    def body(*i):
        start = write_indices(i[0]).astype(I64) if write_indices is not None else tirx.const(0, I64)
        rel = i[axis].astype(I64) - start
        if circular:
            rel = tirx.floormod(rel, length)
        inside = tirx.And(rel >= 0, rel < count)
        at = list(i)
        at[axis] = tirx.max(tirx.const(0, I64), tirx.min(rel, tirx.const(max(count - 1, 0), I64)))
        return tirx.Select(inside, update(*at), past(*i)) if count else past(*i)

    return te.compute(shape, body, name="tensor_scatter")
