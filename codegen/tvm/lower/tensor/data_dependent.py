"""Lowerings of ops whose result size depends on the data: NonZero, Compress and Unique, and
Ember's ``ember.CheckCount`` guard.

    NonZero(x)                      (rank, n) coordinates of the nonzero elements, in C order
    Compress(x, condition){axis}    the slices (elements, without axis) whose condition is true
    Unique(x){sorted, axis}         Y, indices, inverse_indices, counts of the distinct elements/slices

A library has static shapes, so the size ``n`` of such a result is the compiled (declared) one.
Each kernel is a ``te.extern`` whose TIR body, written with ``tvm.script.ir_builder``, counts with
the run-time data and writes its outputs only when the count is the compiled size; otherwise the
run fails with an error naming the op (the C API returns it, ``compiler.runtime`` raises it), never
a truncated or padded result. NonZero and Compress assert right after counting; Unique (and NMS)
need heap scratch, which they free before their assertion (see ``checked``).

The TIR-building helpers (``emit``, ``Local``, ``Workspace``, ``checked``, ``merge_sort``) are in
``codegen.tvm.tir_util``.

    ember.CheckCount(x, n){count, what}   x, once the run-time count ``n`` equals the compiled one
"""

from __future__ import annotations

import numpy as np
from tvm import tirx, topi
from tvm.script.ir_builder import tirx as T

from ...registry import lowering
from ...tir_util import (
    I64,
    Local,
    check,
    checked,
    extern,
    grid,
    merge_sort,
    truthy,
    unravel,
    when,
)


def _mismatch(ctx, what: str, size: int) -> str:
    return (
        f"{ctx.op}: the data gives a number of {what} other than {size}, the size this library was "
        f"compiled for (its declared output shape {tuple(ctx.out_shape())})"
    )


# NonZero, Compress ---------------------------------------------------------------------------------


@lowering("NonZero", kind="extern")
def _nonzero(ctx, x):
    """Count the nonzero elements, check the count, then write their coordinates."""
    shape = [int(d) for d in x.shape]
    if not shape:
        raise ctx.fail("a scalar input is not supported")
    n = ctx.out_shape()[1]

    def body(ins, outs):
        data, out = ins[0], outs[0]
        count = Local(0)
        with grid(shape) as index:
            with when(truthy(data[tuple(index)], x.dtype)):
                count.add()
        check(count.value == n, _mismatch(ctx, "nonzero elements", n))
        count.set(0)
        with grid(shape) as index:
            with when(truthy(data[tuple(index)], x.dtype)):
                for d, i in enumerate(index):
                    T.buffer_store(out, i.astype(I64), [d, count.value])
                count.add()

    return extern(ctx, [x], body, "nonzero")


@lowering("Compress", kind="extern")
def _compress(ctx, x, condition):
    """Keep the slices along ``axis`` (the elements of flat ``x`` without it) where condition holds."""
    shape = [int(d) for d in x.shape]
    axis = ctx.attr("axis")
    if len(condition.shape) != 1:
        raise ctx.fail("condition must be 1-D")
    out = ctx.out_shape()
    if axis is None:
        axis_size, n = int(np.prod(shape)), out[0]
    else:
        axis = int(axis) % len(shape)
        axis_size, n = shape[axis], out[axis]
    given = int(condition.shape[0])
    length = min(given, axis_size)

    def body(ins, outs):
        data, cond, result = ins[0], ins[1], outs[0]
        count = Local(0)
        with T.serial(0, given) as j:
            with when(truthy(cond[j], condition.dtype)):
                count.add()
        if given > axis_size:  # like numpy.compress: a true entry past the axis has nothing to select
            past = Local(0)
            with T.serial(axis_size, given) as j:
                with when(truthy(cond[j], condition.dtype)):
                    past.add()
            check(past.value == 0, f"{ctx.op}: condition is true past the end of the axis ({axis_size} long)")
        check(count.value == n, _mismatch(ctx, "true conditions", n))
        count.set(0)
        with T.serial(0, length) as j:
            with when(truthy(cond[j], condition.dtype)):
                if axis is None:
                    T.buffer_store(result, data[tuple(unravel(j, shape))], [count.value])
                else:
                    with grid(shape[:axis] + shape[axis + 1 :]) as rest:
                        src = rest[:axis] + [j] + rest[axis:]
                        dst = rest[:axis] + [count.value] + rest[axis:]
                        T.buffer_store(result, data[tuple(src)], dst)
                count.add()

    return extern(ctx, [x, condition], body, "compress")


# Unique --------------------------------------------------------------------------------------------


def _comparable(value, dtype: str):
    """An element as a value that ``<`` / ``>`` order correctly (half types widened)."""
    return value.astype("float32") if str(dtype) in ("bfloat16", "float16") else value


class _Items:
    """The items Unique distinguishes: flat elements (no axis) or the slices along ``axis``."""

    def __init__(self, data, shape, axis):
        self.data, self.shape, self.axis = data, shape, axis
        self.rest = [] if axis is None else shape[:axis] + shape[axis + 1 :]
        self.count = int(np.prod(shape)) if axis is None else shape[axis]
        self.width = 1 if axis is None else int(np.prod(self.rest))

    def index(self, item, rest_index):
        """Multi-index in ``data`` of element ``rest_index`` (a list over ``rest``) of ``item``."""
        if self.axis is None:
            return unravel(item, self.shape)
        return rest_index[: self.axis] + [item] + rest_index[self.axis :]

    def element(self, item, t):
        """Element ``t`` (C order over the other dims) of ``item``."""
        return self.data[tuple(self.index(item, unravel(t, self.rest)))]

    def compare(self, a, b, dtype):
        """Emit a lexicographic comparison; returns -1, 0 or 1 (item a <, ==, > item b)."""
        result = Local(0)

        def step(t):
            va, vb = _comparable(self.element(a, t), dtype), _comparable(self.element(b, t), dtype)
            result.set(
                tirx.Select(va < vb, tirx.const(-1, I64), tirx.Select(vb < va, tirx.const(1, I64), tirx.const(0, I64)))
            )

        if self.width == 1:
            step(tirx.const(0, I64))
        else:
            t = Local(0)
            with T.While(tirx.And(t.value < self.width, result.value == 0)):
                step(t.value)
                t.add()
        return result.value


def _group_sorted(items, perm, dtype, outputs: int, scratch):
    """Walk the sorted items: (first index, size) per group, and each item's group; returns the count.

    Sizes and item groups are kept only when ``outputs`` includes counts / inverse_indices (TVM drops
    the allocation of a buffer nothing reads, but not the stores into it).
    """
    n = items.count
    first = scratch(n)
    size = scratch(n) if outputs > 3 else None
    group_of = scratch(n) if outputs > 2 else None
    groups = Local(0)
    with T.serial(0, n) as s:
        new = Local(1)
        with when(s > 0):
            new.set(
                tirx.Select(items.compare(perm[s - 1], perm[s], dtype) != 0, tirx.const(1, I64), tirx.const(0, I64))
            )
        with when(new.value == 1):
            T.buffer_store(first, perm[s], [groups.value])  # a stable sort puts the first occurrence first
            if size is not None:
                T.buffer_store(size, tirx.const(0, I64), [groups.value])
            groups.add()
        if size is not None:
            T.buffer_store(size, size[groups.value - 1] + 1, [groups.value - 1])
        if group_of is not None:
            T.buffer_store(group_of, groups.value - 1, [perm[s]])
    return first, size, group_of, groups


def _order_by_first_occurrence(n, count, first, mark, order, rank):
    """Fill ``order`` (output position -> group) and ``rank`` (the inverse; may be None) by first occurrence."""
    with T.serial(0, n) as pos:
        T.buffer_store(mark, tirx.const(-1, I64), [pos])
    with T.serial(0, count) as g:
        T.buffer_store(mark, g.astype(I64), [first[g]])
    r = Local(0)
    with T.serial(0, n) as pos:
        with when(mark[pos] >= 0):
            T.buffer_store(order, mark[pos], [r.value])
            if rank is not None:
                T.buffer_store(rank, r.value, [mark[pos]])
            r.add()


@lowering("Unique", kind="extern")
def _unique(ctx, x):
    """Sort the items (stable merge sort), group equal neighbours, check the group count, write."""
    shape = [int(d) for d in x.shape]
    axis = ctx.attr("axis")
    axis = None if axis is None else int(axis) % len(shape)
    items_shape = shape
    out = ctx.out_shape()
    unique_count = out[0] if axis is None else out[axis]
    sort = bool(ctx.attr("sorted", 1))

    def body(ins, outs):
        items = _Items(ins[0], items_shape, axis)
        n = items.count

        def compute(ok, workspace):
            scratch = workspace.buffer
            perm, tmp = scratch(n), scratch(n)
            with T.serial(0, n) as i:
                T.buffer_store(perm, i.astype(I64), [i])
            merge_sort(perm, tmp, n, lambda a, b: items.compare(a, b, x.dtype) > 0)
            first, size, group_of, groups = _group_sorted(items, perm, x.dtype, len(outs), scratch)
            order = rank = None
            if not sort:  # allocated out here: scratch must be in scope where the workspace frees it
                mark, order, rank = scratch(n), scratch(n), scratch(n) if len(outs) > 2 else None
            with when(groups.value == unique_count):
                ok.set(1)
                if not sort:
                    _order_by_first_occurrence(n, unique_count, first, mark, order, rank)
                _write_unique(items, outs, unique_count, first, size, group_of, order, rank)

        checked(_mismatch(ctx, "distinct values" if axis is None else "distinct slices", unique_count), compute)

    return extern(ctx, [x], body, "unique")


def _write_unique(items, outs, count, first, size, group_of, order, rank):
    """Y, indices, inverse_indices and counts (those the model asks for) in output order."""
    with T.serial(0, count) as r:
        g = order[r] if order is not None else r
        src = first[g]
        if items.axis is None:
            T.buffer_store(outs[0], items.data[tuple(items.index(src, []))], [r])
        else:
            with grid(items.rest) as rest:
                T.buffer_store(outs[0], items.data[tuple(items.index(src, rest))], items.index(r, rest))
        if len(outs) > 1:
            T.buffer_store(outs[1], src, [r])
        if len(outs) > 3:
            T.buffer_store(outs[3], size[g], [r])
    if len(outs) > 2:
        with T.serial(0, items.count) as i:
            g = group_of[i]
            T.buffer_store(outs[2], rank[g] if rank is not None else g, [i])


@lowering("ember.CheckCount", static=(1,), runtime=(1,))
def _check_count(ctx, x, n=None):
    """``x`` copied through, once the run-time count ``n`` is checked against the compiled one."""
    expected = int(ctx.attr("count"))
    what = ctx.attr("what", "count")
    message = f"{what}: the run-time count differs from the {expected} the library was compiled for"
    if ctx.static(1) is not None:
        if int(np.asarray(ctx.static(1)).reshape(-1)[0]) != expected:
            raise ctx.fail(message)
    else:
        ctx.require(lambda read: read(n, *([0] * len(n.shape))).astype(I64) == expected, message)
    return topi.identity(x)
