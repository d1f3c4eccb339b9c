"""Tensor ops indexed by run-time values: gathers, scatters, and data-dependent shapes.

All may trap (an index out of bounds fails), so they are never computed
speculatively.  NonZero, Compress, Unique and TopK have shapes that depend on
the data or on a run-time count.
"""

from __future__ import annotations

import numpy as np

from . import contracts as c
from .declare import Family
from .reference_onnx import onnx_reference
from .registry import Fusion, InferContext

FAMILY = Family("indexing")
onnx_op = FAMILY.onnx_op

INJECTIVE = dict(fusion=Fusion.INJECTIVE)


# ---------------------------------------------------------------- contracts


def _axis_problem(ctx: InferContext, data) -> str | None:
    axis = int(c.attr(ctx, "axis") or 0)
    if data is not None and not -len(data) <= axis < len(data):
        return f"axis {axis} is out of range for data {c.show(data)}"
    return None


def gather_elements_contract(ctx: InferContext) -> list[str]:
    """indices has data's rank; axis names a dim of data."""
    data, indices = c.shape(ctx, 0), c.shape(ctx, 1)
    found = [r for r in [_axis_problem(ctx, data)] if r]
    if data is not None and indices is not None and len(data) != len(indices):
        found.append(f"indices {c.show(indices)} has rank {len(indices)} but data {c.show(data)} has rank {len(data)}")
    return found


def scatter_elements_contract(ctx: InferContext) -> list[str]:
    """indices and updates have one shape, of data's rank; axis names a dim of data."""
    data, indices, updates = c.shape(ctx, 0), c.shape(ctx, 1), c.shape(ctx, 2)
    found = [r for r in [_axis_problem(ctx, data)] if r]
    if data is not None and indices is not None and len(data) != len(indices):
        found.append(f"indices {c.show(indices)} has rank {len(indices)} but data {c.show(data)} has rank {len(data)}")
    if (
        indices is not None
        and updates is not None
        and (
            len(indices) != len(updates)
            or any(c.static(a) and c.static(b) and a != b for a, b in zip(indices, updates))
        )
    ):
        found.append(f"updates {c.show(updates)} and indices {c.show(indices)} differ in shape")
    return found


def scatter_nd_contract(ctx: InferContext) -> str | None:
    """updates has shape indices.shape[:-1] + data.shape[indices.shape[-1]:]."""
    data, indices, updates = c.shape(ctx, 0), c.shape(ctx, 1), c.shape(ctx, 2)
    if data is None or indices is None or updates is None or not indices or not c.static(indices[-1]):
        return None
    k = int(indices[-1])
    if k > len(data):
        return f"indices {c.show(indices)} index {k} dims but data {c.show(data)} has {len(data)}"
    want = tuple(indices[:-1]) + tuple(data[k:])
    if len(want) != len(updates) or any(c.static(a) and c.static(b) and a != b for a, b in zip(want, updates)):
        return (
            f"updates {c.show(updates)} must have shape {c.show(want)} (indices {c.show(indices)}, data {c.show(data)})"
        )
    return None


def gather_nd_contract(ctx: InferContext) -> str | None:
    """The first ``batch_dims`` dims of indices and data agree."""
    data, indices = c.shape(ctx, 0), c.shape(ctx, 1)
    b = int(c.attr(ctx, "batch_dims") or 0)
    if data is None or indices is None or b == 0 or b >= min(len(data), len(indices)):
        return None  # onnx's inference judges the ranks
    if any(c.static(x) and c.static(y) and x != y for x, y in zip(data[:b], indices[:b])):
        return f"batch_dims {b}: indices {c.show(indices)} and data {c.show(data)} differ in their first {b} dims"
    return None


# ---------------------------------------------------------------- reference kernels


def unique(inputs, attrs, ctx):
    """numpy.unique, in first-occurrence order when ``sorted=0``.

    onnx.reference's kernel takes the unsorted values along axis 0 whatever the axis (and from
    the unflattened input when there is none), and ignores ``sorted=0`` when only Y is asked for.
    """
    (x,) = inputs
    axis = ctx.attr("axis")
    data = x.reshape(-1) if axis is None else x
    axis = 0 if axis is None else int(axis) % x.ndim
    y, indices, inverse, counts = np.unique(data, return_index=True, return_inverse=True, return_counts=True, axis=axis)
    inverse = inverse.reshape(-1)
    if not (1 if ctx.attr("sorted") is None else ctx.attr("sorted")):
        order = np.argsort(indices, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        indices, counts, inverse = indices[order], counts[order], rank[inverse]
        y = np.take(data, indices, axis=axis)
    outs = [y, indices.astype(np.int64), inverse.astype(np.int64), counts.astype(np.int64)]
    return outs[: ctx.num_outputs]


def _wrap(indices: np.ndarray, n, op: str) -> np.ndarray:
    """ONNX indices in ``[-n, n)`` (``n`` broadcast against them) as positions in ``[0, n)``."""
    indices = indices.astype(np.int64)
    n = np.asarray(n, np.int64)
    bad = (indices < -n) | (indices >= n)
    if bad.any():
        raise ValueError(f"{op}: index {int(indices[bad][0])} is out of range")
    return np.where(indices < 0, indices + n, indices)


def _scatter_extreme(data, targets, updates, reduction: str):
    """``data`` with each update applied in order, as onnxruntime does: for max, ``a = u < a ? a : u``
    (for min ``a < u ? a : u``), so a NaN update replaces the value and a later update replaces a NaN."""
    out = np.array(data, copy=True).reshape(-1)
    updates = np.asarray(updates).reshape(-1)
    ufunc = np.maximum if reduction == "max" else np.minimum
    if out.dtype.kind != "f" or not (np.isnan(out[targets]).any() or np.isnan(updates).any()):
        ufunc.at(out, targets, updates)  # ordered, and the same answer without NaN
        return out.reshape(np.shape(data))
    for t, u in zip(targets.tolist(), updates.tolist()):
        a = out[t]
        keep = u < a if reduction == "max" else a < u
        out[t] = a if keep else u
    return out.reshape(np.shape(data))


def scatter_elements(inputs, attrs, ctx):
    """max and min reductions in onnxruntime's order (``_scatter_extreme``); the rest by onnx.reference."""
    data, indices, updates = inputs
    reduction = ctx.attr("reduction")
    if reduction not in ("max", "min"):
        return onnx_reference(inputs, attrs, ctx)
    axis = int(ctx.attr("axis") or 0) % data.ndim
    where = list(np.indices(indices.shape, sparse=True))
    where[axis] = _wrap(indices, data.shape[axis], "ScatterElements")
    targets = np.ravel_multi_index(tuple(np.broadcast_arrays(*where)), data.shape).reshape(-1)
    return [_scatter_extreme(data, targets, updates, reduction)]


def scatter_nd(inputs, attrs, ctx):
    """max and min reductions in onnxruntime's order (``_scatter_extreme``); the rest by onnx.reference."""
    data, indices, updates = inputs
    reduction = ctx.attr("reduction")
    if reduction not in ("max", "min"):
        return onnx_reference(inputs, attrs, ctx)
    k = indices.shape[-1]
    tuples = _wrap(indices.reshape(-1, k), data.shape[:k], "ScatterND")
    base = np.ravel_multi_index(tuple(tuples.T), data.shape[:k]) if k else np.zeros(len(tuples), np.int64)
    inner = int(np.prod(data.shape[k:], dtype=np.int64))
    targets = (base[:, None] * inner + np.arange(inner)[None, :]).reshape(-1)
    return [_scatter_extreme(data, targets, updates, reduction)]


# ---------------------------------------------------------------- gathers and scatters
onnx_op("Gather", may_trap=True, cheap_fold=True, **INJECTIVE)
onnx_op("GatherElements", contract=gather_elements_contract, may_trap=True, **INJECTIVE)
onnx_op("GatherND", contract=gather_nd_contract, may_trap=True, **INJECTIVE)
onnx_op("ScatterElements", kernel=scatter_elements, contract=scatter_elements_contract, may_trap=True, **INJECTIVE)
onnx_op("ScatterND", kernel=scatter_nd, contract=scatter_nd_contract, may_trap=True, **INJECTIVE)
onnx_op("TensorScatter", **INJECTIVE)
onnx_op("OneHot", may_trap=True, **INJECTIVE)

# ---------------------------------------------------------------- data-dependent shapes
onnx_op("Compress", may_trap=True)  # a condition longer than the axis is fine while its tail is false
onnx_op("NonZero", may_trap=True)
onnx_op("Unique", kernel=unique)
onnx_op("TopK", may_trap=True)
