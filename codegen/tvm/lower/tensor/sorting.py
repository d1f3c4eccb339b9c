"""A native TopK kernel: a bounded binary heap per row, no call into the TVM runtime.

    TopK(x, k){axis, largest, sorted} -> values, indices     (k best elements along ``axis``)

topi's TopK sorts through ``tvm.contrib.sort``, a packed function a runtime-free library cannot call.
Here each row (all positions of the other axes) is one TIR loop nest inside a ``te.extern``:

* the output ``indices`` row itself is the heap: it holds the k best indices seen so far with the
  *worst* of them at the root, so a new element enters only when it beats the root (then one
  sift-down), for O(n log k) per row;
* a final in-place heap sort moves the worst to the back, leaving the row best first;
* ``values`` are then gathered from ``x`` with those indices.

"Better" follows ONNX: larger (or smaller, ``largest=0``) values first, and between equal values the
lower index. NaN counts as larger than every number (as numpy's sort places it). ``sorted=0`` leaves
the order unspecified, so the sorted order is a valid result. The compiled ``k`` is the one in the
result shape; a run-time ``K`` operand is checked against it when the kernel starts.
"""

from __future__ import annotations

from tvm import tirx
from tvm.script.ir_builder import tirx as T

from ...registry import lowering
from ...te_util import is_nan
from ...tir_util import I64, Local, extern, grid, when


def _comparable(value, dtype: str):
    """An element widened so that ``<`` orders it (half types to float32)."""
    return value.astype("float32") if str(dtype) in ("float16", "bfloat16") else value


def _is_float(dtype: str) -> bool:
    return str(dtype).startswith(("float", "bfloat"))


def _less(a, b, floating: bool):
    """``a < b`` with NaN above every number (two NaNs are equal)."""
    if not floating:
        return a < b
    return tirx.And(tirx.Not(is_nan(a)), tirx.Or(is_nan(b), a < b))


def _equal(a, b, floating: bool):
    if not floating:
        return a == b
    return tirx.Or(a == b, tirx.And(is_nan(a), is_nan(b)))


class _Row:
    """One row of TopK: element reads along the axis and the heap stored in the indices output row."""

    def __init__(self, data, indices, rest, axis: int, dtype: str, largest: bool):
        self.data, self.indices, self.rest, self.axis = data, indices, rest, axis
        self.dtype, self.largest, self.floating = str(dtype), largest, _is_float(dtype)

    def at(self, position) -> list:
        return self.rest[: self.axis] + [position] + self.rest[self.axis :]

    def value(self, j):
        return _comparable(self.data[tuple(self.at(j))], self.dtype)

    def slot(self, p):
        """The element index held at heap position ``p``."""
        return self.indices[tuple(self.at(p))]

    def put(self, p, j) -> None:
        T.buffer_store(self.indices, j, self.at(p))

    def worse(self, a, b):
        """Element ``a`` ranks after element ``b`` (bool expression over element indices)."""
        va, vb = self.value(a), self.value(b)
        behind = _less(va, vb, self.floating) if self.largest else _less(vb, va, self.floating)
        return tirx.Or(behind, tirx.And(_equal(va, vb, self.floating), a > b))

    def swap(self, p, q) -> None:
        held = Local(self.slot(p))
        self.put(p, self.slot(q))
        self.put(q, held.value)

    def sift_up(self, start) -> None:
        """Move the entry at ``start`` towards the root while it is worse than its parent."""
        pos, going = Local(start), Local(1)
        with T.While(tirx.And(going.value == 1, pos.value > 0)):
            parent = Local(tirx.floordiv(pos.value - 1, 2))
            going.set(0)
            with when(self.worse(self.slot(pos.value), self.slot(parent.value))):
                self.swap(pos.value, parent.value)
                pos.set(parent.value)
                going.set(1)

    def sift_down(self, start, size) -> None:
        """Move the entry at ``start`` down while a child (within ``size``) is worse than it."""
        pos, going = Local(start), Local(1)
        with T.While(going.value == 1):
            going.set(0)
            left = Local(pos.value * 2 + 1)
            with when(left.value < size):
                child = Local(left.value)
                with when(left.value + 1 < size):
                    with when(self.worse(self.slot(left.value + 1), self.slot(left.value))):
                        child.set(left.value + 1)
                with when(self.worse(self.slot(child.value), self.slot(pos.value))):
                    self.swap(child.value, pos.value)
                    pos.set(child.value)
                    going.set(1)


def _top_k_row(row: _Row, n: int, k: int) -> None:
    """Fill the row's indices best first: heap of the k best, then heap sort."""
    size = Local(0)
    with T.serial(0, n) as j:
        j64 = j.astype(I64)
        with T.If(size.value < k):
            with T.Then():
                row.put(size.value, j64)
                row.sift_up(size.value)
                size.add()
            with T.Else():  # j comes after every held index, so it enters only when strictly better
                with when(row.worse(row.slot(0), j64)):
                    row.put(0, j64)
                    row.sift_down(0, k)
    with T.serial(0, k - 1) as step:
        end = k - 1 - step
        row.swap(0, end)
        row.sift_down(0, end)


def _check_k(ctx, k_tensor, k: int) -> None:
    """The K operand (compile-time or run-time) must be the k of the compiled result shape."""
    value = ctx.static(1)
    if value is not None:
        if int(value.reshape(-1)[0]) != k:
            raise ctx.fail(f"K = {int(value.reshape(-1)[0])} does not match the result shape {ctx.out_shape()}")
        return
    if k_tensor is None:
        raise ctx.fail("the K operand is missing")
    rank = len(k_tensor.shape)
    ctx.require(
        lambda read: (read(k_tensor, *([0] * rank))).astype(I64) == k,
        f"K must be {k}, the k this library was compiled for (result shape {tuple(ctx.out_shape())})",
    )


@lowering("TopK", kind="extern", static=(1,), runtime=(1,))
def _top_k(ctx, x, k_tensor=None):
    shape = [int(d) for d in x.shape]
    if not shape:
        raise ctx.fail("a scalar input has no axis to select along")
    axis = int(ctx.attr("axis", -1)) % len(shape)
    k, n = int(ctx.out_shape()[axis]), shape[axis]
    if k > n:
        raise ctx.fail(f"k = {k} is larger than the axis length {n}")
    _check_k(ctx, k_tensor, k)
    largest = bool(int(ctx.attr("largest", 1)))
    rest_shape = shape[:axis] + shape[axis + 1 :]

    def body(ins, outs):
        data, values, indices = ins[0], outs[0], outs[1]
        if k == 0:
            T.evaluate(0)
            return
        with grid(rest_shape) as rest:
            row = _Row(data, indices, rest, axis, x.dtype, largest)
            _top_k_row(row, n, k)
            with T.serial(0, k) as p:
                T.buffer_store(values, data[tuple(row.at(row.slot(p)))], row.at(p))

    return extern(ctx, [x], body, "top_k")
