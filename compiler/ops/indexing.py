"""Tensor ops indexed by run-time values: gathers, scatters, and data-dependent shapes.

All may trap (an index out of bounds fails), so they are never computed
speculatively.  NonZero, Compress, Unique and TopK have shapes that depend on
the data or on a run-time count.
"""

from __future__ import annotations

import numpy as np

from . import contracts as c
from .declare import Family
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


# ---------------------------------------------------------------- gathers and scatters
onnx_op("Gather", may_trap=True, cheap_fold=True, **INJECTIVE)
onnx_op("GatherElements", contract=gather_elements_contract, may_trap=True, **INJECTIVE)
onnx_op("GatherND", contract=gather_nd_contract, may_trap=True, **INJECTIVE)
onnx_op("ScatterElements", contract=scatter_elements_contract, may_trap=True, **INJECTIVE)
onnx_op("ScatterND", contract=scatter_nd_contract, may_trap=True, **INJECTIVE)
onnx_op("TensorScatter", **INJECTIVE)
onnx_op("OneHot", may_trap=True, **INJECTIVE)

# ---------------------------------------------------------------- data-dependent shapes
onnx_op("Compress", may_trap=True)  # a condition longer than the axis is fine while its tail is false
onnx_op("NonZero", may_trap=True)
onnx_op("Unique", kernel=unique)
onnx_op("TopK", may_trap=True)
