"""Lowerings of ops whose result size depends on the data: NonZero, Compress and Unique.

    NonZero(x)                      (rank, n) coordinates of the nonzero elements, in C order
    Compress(x, condition){axis}    the slices (elements, without axis) whose condition is true
    Unique(x){sorted, axis}         Y, indices, inverse_indices, counts of the distinct elements/slices

A library has static shapes, so the size ``n`` of such a result is the compiled (declared) one.
Each kernel is a ``te.extern`` whose TIR body, written with ``tvm.script.ir_builder``, counts with
the run-time data and writes its outputs only when the count is the compiled size; otherwise the
run fails with an error naming the op (the C API returns it, ``compiler.runtime`` raises it), never
a truncated or padded result. NonZero and Compress assert right after counting; Unique (and NMS)
need heap scratch, which they free before their assertion (see ``checked``).

The small TIR-building helpers here (``emit``, ``Local``, ``Workspace``, ``checked``, ``merge_sort``) also
serve ``ops_more_nms``.
"""

from __future__ import annotations

import contextlib

import numpy as np
from tvm import te, tirx
from tvm.script.ir_builder import IRBuilder
from tvm.script.ir_builder import tirx as T

from .ops_more_common import lowering_if_missing

I64 = "int64"


# TIR building helpers ------------------------------------------------------------------------------

def emit(build) -> tirx.Stmt:
    """The statement that ``build()`` emits through the IR builder (several statements allowed)."""
    with IRBuilder() as ib:
        with T.seq_scope():
            build()
    stmt = ib.get()
    # seq_scope wraps the statements in a placeholder pragma that LLVM codegen warns about
    return stmt.body if isinstance(stmt, tirx.AttrStmt) else stmt


class Local:
    """A scalar variable of the kernel body (a one-element local buffer)."""

    def __init__(self, init, dtype: str = I64):
        self.buffer = T.alloc_buffer((1,), dtype, scope="local")
        self.dtype = dtype
        self.set(init)

    @property
    def value(self):
        return self.buffer[0]

    def set(self, value) -> None:
        T.buffer_store(self.buffer, tirx.const(value, self.dtype) if isinstance(value, (int, float))
                       else value.astype(self.dtype), [0])

    def add(self, value=1) -> None:
        self.set(self.value + value)


class Workspace:
    """Heap scratch buffers that the kernel frees itself, before its final size check.

    TVM hoists its own allocations to the top of the function and frees them at its end, after any
    assertion: a failing check would leak them. These are taken with TVMBackendAllocWorkspace and
    given back by ``free_all`` (see ``checked``), so a failing run leaks nothing.
    """

    def __init__(self):
        self.pointers: list = []

    def buffer(self, n, dtype: str = I64):
        """A fresh buffer of ``n`` elements (at least one)."""
        elements = max(int(n), 1)
        bits = np.dtype(dtype).itemsize * 8
        pointer = T.Bind(T.TVMBackendAllocWorkspace(1, 0, elements * bits // 8, 0, bits))
        check(tirx.Not(T.isnullptr(pointer)), "out of memory for a kernel's scratch buffers")
        self.pointers.append(pointer)
        return T.decl_buffer((elements,), dtype, data=pointer)

    def free_all(self) -> None:
        for pointer in reversed(self.pointers):
            T.evaluate(T.TVMBackendFreeWorkspace(1, 0, pointer))
        self.pointers.clear()


@contextlib.contextmanager
def grid(shape):
    """Nested serial loops over ``shape``; yields the list of loop variables ([] for a scalar)."""
    if not shape:
        yield []
        return
    with T.grid(*[int(d) for d in shape]) as loop_vars:
        yield [loop_vars] if isinstance(loop_vars, tirx.Var) else list(loop_vars)


@contextlib.contextmanager
def when(condition):
    """``if condition:`` in the kernel body."""
    with T.If(condition):
        with T.Then():
            yield


def check(condition, message: str) -> None:
    """Fail the run with ``message`` unless ``condition`` holds at this point of the kernel."""
    with T.Assert(condition, [message], "ValueError"):
        pass


def checked(message: str, compute) -> None:
    """Run ``compute(ok, workspace)``, free its scratch, then fail with ``message`` unless ``ok``.

    ``compute`` counts, and writes the outputs only when the count is the compiled one (then sets
    ``ok`` to 1); it takes scratch buffers from ``workspace``, all freed before the check.
    """
    ok, workspace = Local(0), Workspace()
    compute(ok, workspace)
    workspace.free_all()
    check(ok.value == 1, message)


def unravel(flat, shape) -> list:
    """C-order multi-index of the flat position ``flat`` in a tensor of static ``shape``."""
    index = []
    for d in reversed([int(s) for s in shape]):
        index.append(tirx.floormod(flat, d))
        flat = tirx.floordiv(flat, d)
    return index[::-1]


def truthy(value, dtype: str):
    """``value != 0`` as a bool expression, for an element of type ``dtype``."""
    dtype = str(dtype)
    if dtype == "bool":
        return value
    if dtype in ("bfloat16", "float16"):
        value, dtype = value.astype("float32"), "float32"
    return value != tirx.const(0, dtype)


def merge_sort(perm, tmp, n, right_first) -> None:
    """Stable bottom-up merge sort of ``perm[0:n]`` (O(n log n)).

    ``right_first(a, b)`` emits whatever statements it needs and returns a bool expression: true when
    item ``b`` (from the right run) must come before item ``a`` (from the left run).
    """
    width = Local(1)
    with T.While(width.value < n):
        lo = Local(0)
        with T.While(lo.value < n):
            mid = tirx.min(lo.value + width.value, n)
            hi = tirx.min(lo.value + 2 * width.value, n)
            i, j, k = Local(lo.value), Local(mid), Local(lo.value)
            with T.While(k.value < hi):
                take_right = Local(0)
                with when(j.value < hi):
                    with T.If(i.value >= mid):
                        with T.Then():
                            take_right.set(1)
                        with T.Else():
                            with when(right_first(perm[i.value], perm[j.value])):
                                take_right.set(1)
                with T.If(take_right.value == 1):
                    with T.Then():
                        T.buffer_store(tmp, perm[j.value], [k.value])
                        j.add()
                    with T.Else():
                        T.buffer_store(tmp, perm[i.value], [k.value])
                        i.add()
                k.add()
            with T.serial(lo.value, hi) as q:
                T.buffer_store(perm, tmp[q], [q])
            lo.set(lo.value + 2 * width.value)
        width.set(width.value * 2)


def extern(ctx, inputs, body, name: str):
    """A ``te.extern`` producing every result of ``ctx`` (shapes and dtypes as compiled)."""
    shapes = [list(shape) for shape, _ in ctx.out_types]
    dtypes = [ctx.out_dtype(k) for k in range(len(ctx.out_types))]
    outs = te.extern(shapes, list(inputs), lambda ins, outs: emit(lambda: body(ins, outs)),
                     name=name, dtype=dtypes)
    return list(outs) if isinstance(outs, (list, tuple)) else [outs]


def _mismatch(ctx, what: str, size: int) -> str:
    return (f"{ctx.op}: the data gives a number of {what} other than {size}, the size this library was "
            f"compiled for (its declared output shape {tuple(ctx.out_shape())})")


# NonZero, Compress ---------------------------------------------------------------------------------

@lowering_if_missing("NonZero", kind="extern")
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


@lowering_if_missing("Compress", kind="extern")
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
                    with grid(shape[:axis] + shape[axis + 1:]) as rest:
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
        self.rest = [] if axis is None else shape[:axis] + shape[axis + 1:]
        self.count = int(np.prod(shape)) if axis is None else shape[axis]
        self.width = 1 if axis is None else int(np.prod(self.rest))

    def index(self, item, rest_index):
        """Multi-index in ``data`` of element ``rest_index`` (a list over ``rest``) of ``item``."""
        if self.axis is None:
            return unravel(item, self.shape)
        return rest_index[:self.axis] + [item] + rest_index[self.axis:]

    def element(self, item, t):
        """Element ``t`` (C order over the other dims) of ``item``."""
        return self.data[tuple(self.index(item, unravel(t, self.rest)))]

    def compare(self, a, b, dtype):
        """Emit a lexicographic comparison; returns -1, 0 or 1 (item a <, ==, > item b)."""
        result = Local(0)

        def step(t):
            va, vb = _comparable(self.element(a, t), dtype), _comparable(self.element(b, t), dtype)
            result.set(tirx.Select(va < vb, tirx.const(-1, I64),
                                   tirx.Select(vb < va, tirx.const(1, I64), tirx.const(0, I64))))

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
            new.set(tirx.Select(items.compare(perm[s - 1], perm[s], dtype) != 0,
                                tirx.const(1, I64), tirx.const(0, I64)))
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


@lowering_if_missing("Unique", kind="extern")
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
