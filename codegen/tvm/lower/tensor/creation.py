"""Lowerings of ops that make tensors: Range, ConstantOfShape, OneHot, EyeLike.

    EyeLike(x){k, dtype}           1 where column - row == k

A run-time ``shape``/``limit``/``depth`` operand is checked against the compiled result shape.
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx, topi

from ...registry import lowering
from ...te_util import all_of
from ...tir_util import I64
from .operands import guard_get


@lowering("Range", static=(0, 1, 2), runtime=(0, 1, 2))
def _range(ctx, start=None, limit=None, delta=None):
    """``start + i * delta`` for the compiled length; run-time bounds must give that length."""
    n, dtype = ctx.out_shape()[0], ctx.out_dtype()
    wide = "float64" if "float" in dtype else I64

    def value(k, tensor, reader):
        if ctx.static(k) is not None:
            return tirx.const(np.asarray(ctx.static(k)).reshape(-1)[0].item(), wide)
        return reader(tensor)

    def te_read(tensor):
        return tensor(*([0] * len(tensor.shape))).astype(wide)

    s0, d0 = value(0, start, te_read), value(2, delta, te_read)
    if any(ctx.static(k) is None for k in range(3)):

        def ok(read):
            def guard_read(tensor):
                return read(tensor, *([0] * len(tensor.shape))).astype(wide)

            s, lim, d = (value(k, t, guard_read) for k, t in zip(range(3), (start, limit, delta)))
            safe = tirx.Select(d == 0, tirx.const(1, wide), d)
            if wide == I64:  # ceil((lim - s) / d) in integers
                count = tirx.Select(
                    d > 0, tirx.floordiv(lim - s + safe - 1, safe), tirx.floordiv(s - lim - safe - 1, -safe)
                )
            else:
                count = tirx.ceil((lim - s) / safe).astype(I64)
            return tirx.And(d != 0, tirx.max(count, tirx.const(0, I64)) == n)

        ctx.require(ok, f"start/limit/delta do not give the compiled length {n}")
    return te.compute((n,), lambda i: (s0 + i.astype(wide) * d0).astype(dtype), name="range")


@lowering("ConstantOfShape", static=(0,), runtime=(0,))
def _constant_of_shape(ctx, shape=None):
    value = ctx.attr("value")
    fill = 0 if value is None else np.asarray(value).reshape(-1)[0].item()
    out = ctx.out_shape()
    if shape is not None and ctx.static(0) is None:
        ctx.require(
            lambda read: all_of([guard_get(read)(shape, d) == out[d] for d in range(len(out))]),
            f"the run-time shape is not the compiled {tuple(out)}",
        )
    return topi.full(out, ctx.out_dtype(), fill)


@lowering("OneHot", static=(1,), runtime=(1,))
def _one_hot(ctx, indices, depth_t, values):
    rank = len(ctx.out_shape())
    axis = int(ctx.attr("axis", -1)) % rank
    depth = ctx.out_shape()[axis]
    dtype = ctx.out_dtype()
    if depth_t is not None and ctx.static(1) is None:
        ctx.require(
            lambda read: (read(depth_t, *([0] * len(depth_t.shape)))).astype(I64) == depth,
            f"the run-time depth is not the compiled {depth}",
        )

    def body(*i):
        idx = indices(*i[:axis], *i[axis + 1 :]).astype(I64)
        idx = tirx.Select(idx < 0, idx + depth, idx)
        return tirx.Select(idx == i[axis].astype(I64), values[1], values[0]).astype(dtype)

    return te.compute(ctx.out_shape(), body, name="one_hot")


@lowering("EyeLike")
def _eye_like(ctx, x):
    k, out = int(ctx.attr("k", 0)), ctx.out_dtype()
    return te.compute(
        ctx.out_shape(), lambda i, j: tirx.Select(j - i == k, tirx.const(1, out), tirx.const(0, out)), name="eye_like"
    )
