"""Lowerings of indexing: Gather, GatherElements, GatherND, ScatterElements, ScatterND, TensorScatter.

    GatherND(data, indices)        data[b..., indices[b..., i..., :], rest...] with ``batch_dims`` b
    TensorScatter(past, update, write_indices){mode, axis}
                                   past with ``update`` written along ``axis`` from write_indices[b] on
                                   (``circular``: modulo the axis length)

Every index operand is checked once per element when the kernel starts (``te_util.require_all``):
an index outside ``[-n, n)`` fails the run with a message naming the op; the loads and stores clamp
it into the axis as well, so nothing is touched outside a buffer. Constant indices are checked and
wrapped at compile time instead (``te_util.checked_indices``).
"""

from __future__ import annotations

from tvm import te, tirx, topi

from ...registry import lowering
from ...te_util import checked_indices, index_in_range, read_if, require_all, wrapped_index
from ...tir_util import I64


def _axis_length(attrs, in_types):
    """The data axis a Gather/GatherElements/ScatterElements index runs along."""
    shape = in_types[0][0]
    return int(shape[int(attrs.get("axis", 0)) % len(shape)])


def _nd_lengths(attrs, in_types):
    """The data axes the last axis of a GatherND/ScatterND index tuple runs along."""
    shape, b, m = in_types[0][0], int(attrs.get("batch_dims", 0)), int(in_types[1][0][-1])
    return [int(d) for d in shape[b : b + m]]


def _guard_indices(ctx, indices, n: int, axis: int) -> bool:
    """Check a run-time index operand against ``[-n, n)``; False when the indices are a constant the
    compiler has already checked and wrapped (``checked_indices``)."""
    if 1 in ctx.packed:
        return False
    require_all(ctx, indices, lambda v, j: index_in_range(v, n), f"an index is outside [-{n}, {n}) for axis {axis}")
    return True


def _guard_nd(ctx, indices, lengths: list[int], first_axis: int) -> bool:
    """GatherND/ScatterND: entry ``t`` of each index tuple must lie in ``[-lengths[t], lengths[t])``."""
    if 1 in ctx.packed:
        return False
    m = len(lengths)

    def ok(v, j):
        if len(set(lengths)) == 1 or isinstance(j, int):
            return index_in_range(v, lengths[0] if len(set(lengths)) == 1 else lengths[j % m])
        t = tirx.floormod(j, m)
        n = tirx.const(lengths[-1], I64)
        for k in range(m - 2, -1, -1):
            n = tirx.Select(t == k, tirx.const(lengths[k], I64), n)
        return tirx.And(v >= -n, v < n)

    if m == 1:
        what = f"an index is outside [-{lengths[0]}, {lengths[0]}) for data axis {first_axis}"
    else:
        what = f"an index tuple entry t is outside [-n_t, n_t) for data axes {first_axis}.. (n = {tuple(lengths)})"
    require_all(ctx, indices, ok, what)
    return True


def _position(v, n: int):
    """An index value as a position in ``[0, n)``, wrapped and clamped, checked or not (two compares
    on an index loaded once per output row: nothing is read outside the axis, whatever the check)."""
    return wrapped_index(v, n)


@lowering("Gather", prepack={1: checked_indices(_axis_length)})
def _gather(ctx, data, indices):
    axis = int(ctx.attr("axis", 0)) % len(data.shape)
    dim = int(data.shape[axis])
    out_shape = ctx.out_shape()
    q = len(indices.shape)
    _guard_indices(ctx, indices, dim, axis)

    def body(*i):
        idx = indices(*i[axis : axis + q]) if q else indices()
        return data(*i[:axis], _position(idx, dim), *i[axis + q :])

    return te.compute(out_shape, body, name="gather")


@lowering("GatherElements", prepack={1: checked_indices(_axis_length)})
def _gather_elements(ctx, data, indices):
    axis = int(ctx.attr("axis", 0)) % len(data.shape)
    dim = int(data.shape[axis])
    _guard_indices(ctx, indices, dim, axis)

    def body(*i):
        return data(*i[:axis], _position(indices(*i), dim), *i[axis + 1 :])

    return te.compute(ctx.out_shape(), body, name="gather_elements")


def _wrapped(indices, n):
    """Indices wrapped and clamped into ``[0, n)`` (``n`` an int, or a list over the last axis)."""

    def body(*i):
        length = n if isinstance(n, int) else n[0]
        if not isinstance(n, int) and len(set(n)) > 1:
            last = i[-1]
            value = wrapped_index(indices(*i), n[-1])
            for k in range(len(n) - 2, -1, -1):
                value = tirx.Select(last == k, wrapped_index(indices(*i), n[k]), value)
            return value.astype(indices.dtype)
        return wrapped_index(indices(*i), length).astype(indices.dtype)

    return te.compute(indices.shape, body, name="wrapped_indices")


@lowering("ScatterElements", prepack={1: checked_indices(_axis_length)})
def _scatter_elements(ctx, data, indices, updates):
    axis = int(ctx.attr("axis", 0)) % len(data.shape)
    reduction = {"none": "update", "add": "add", "mul": "mul", "max": "max", "min": "min"}[
        ctx.attr("reduction", "none")
    ]
    dim = int(data.shape[axis])
    _guard_indices(ctx, indices, dim, axis)
    indices = _wrapped(indices, dim)
    return topi.scatter_elements(data, indices, updates, axis, reduction)


@lowering("ScatterND", prepack={1: checked_indices(_nd_lengths)})
def _scatter_nd(ctx, data, indices, updates):
    mode = {"none": "update", "add": "add", "mul": "mul", "max": "max", "min": "min"}[ctx.attr("reduction", "none")]
    lengths = [int(d) for d in data.shape[: int(indices.shape[-1])]]
    _guard_nd(ctx, indices, lengths, 0)
    indices = _wrapped(indices, lengths)
    rank_i = len(indices.shape)
    perm = [rank_i - 1] + list(range(rank_i - 1))  # topi wants the index tuple first
    return topi.scatter_nd(data, topi.transpose(indices, perm), updates, mode)


@lowering("GatherND", prepack={1: checked_indices(_nd_lengths)})
def _gather_nd(ctx, data, indices):
    b = int(ctx.attr("batch_dims", 0))
    q = len(indices.shape)
    m = int(indices.shape[-1])
    dims = [int(d) for d in data.shape]
    _guard_nd(ctx, indices, dims[b : b + m], b)

    def body(*o):
        lead = o[: q - 1]
        at = list(o[:b])
        for t in range(m):
            at.append(_position(indices(*lead, t), dims[b + t]))
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
            require_all(ctx, write_indices, lambda v, j: v >= 0, "write_indices must not be negative")
        else:
            require_all(
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
        return read_if(inside, update(*at), past(*i)) if count else past(*i)

    return te.compute(shape, body, name="tensor_scatter")
