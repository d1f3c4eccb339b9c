"""Helpers for hand-written TIR kernels (``te.extern`` stages built with ``tvm.script.ir_builder``).

Ops whose work depends on the data (NonZero, Compress, Unique, TopK, NonMaxSuppression, RoiAlign,
MaxUnpool, Det, ...) are written as TIR loop nests instead of TE computes:

* ``extern(ctx, inputs, body, name)`` makes the ``te.extern`` stage and ``emit`` the TIR of ``body``;
* ``Local`` (a scalar or small local array), ``Workspace`` (heap scratch, freed before any
  assertion: see ``checked``), ``grid`` (nested loops), ``when`` (an if), ``unravel`` (flat index ->
  coordinates), ``truthy``, ``merge_sort`` (a stable sort of a permutation);
* ``check`` / ``checked``: a run-time assertion whose failure the library's run function returns as
  an error naming the op (the C API returns it, ``compiler.runtime`` raises it), never a truncated,
  padded or out-of-bounds result.
"""

from __future__ import annotations

import contextlib

import numpy as np
from tvm import te, tirx
from tvm.script.ir_builder import IRBuilder
from tvm.script.ir_builder import tirx as T

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
        T.buffer_store(
            self.buffer,
            tirx.const(value, self.dtype) if isinstance(value, (int, float)) else value.astype(self.dtype),
            [0],
        )

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
    outs = te.extern(shapes, list(inputs), lambda ins, outs: emit(lambda: body(ins, outs)), name=name, dtype=dtypes)
    return list(outs) if isinstance(outs, (list, tuple)) else [outs]
