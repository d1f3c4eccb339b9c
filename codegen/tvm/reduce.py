"""Lowerings of reductions: ReduceSum/Mean/Max/Min/Prod/L1/L2/SumSquare/LogSumExp, ArgMax/ArgMin."""

from __future__ import annotations

import numpy as np
from tvm import tirx, topi

from .registry import lowering


def _axes(ctx, rank: int):
    """Reduced axes: the ``axes`` operand (opset 18+, ReduceSum 13+) or the ``axes`` attribute."""
    axes = ctx.static(1)
    if axes is None:
        axes = ctx.attr("axes")
    if axes is None and len(ctx.in_types) > 1 and ctx.in_types[1] is not None:
        # axes given at run time: with keepdims=1 the reduced axes are the ones that became 1
        in_shape, out_shape = ctx.in_types[0][0], ctx.out_shape()
        if not int(ctx.attr("keepdims", 1)):
            return _axes_from_dropped_dims(ctx, in_shape, out_shape)
        axes = [d for d in range(rank) if out_shape[d] == 1 and in_shape[d] != 1]
        return axes
    if axes is None or len(np.asarray(axes).reshape(-1)) == 0:
        if int(ctx.attr("noop_with_empty_axes", 0)):
            return []
        return list(range(rank))
    return sorted(int(a) % rank for a in np.asarray(axes).reshape(-1).tolist())


def _axes_from_dropped_dims(ctx, in_shape, out_shape) -> list[int]:
    """With keepdims=0: the one set of axes whose removal turns ``in_shape`` into ``out_shape``."""
    from itertools import combinations

    rank = len(in_shape)
    fits = [list(c) for c in combinations(range(rank), rank - len(out_shape))
            if [d for i, d in enumerate(in_shape) if i not in c] == list(out_shape)]
    if len(fits) != 1:
        raise ctx.fail(f"run-time reduction axes with keepdims=0 are ambiguous for {tuple(in_shape)} -> "
                       f"{tuple(out_shape)}; make the axes a constant")
    return fits[0]


def _count(x, axes):
    return int(np.prod([int(x.shape[a]) for a in axes])) if axes else 1


@lowering("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
          "ReduceSumSquare", "ReduceLogSumExp", "ReduceLogSum", static=(1,), shape_only=(1,), kind="reduce")
def _reduce(ctx, x, _axes_input=None):
    rank = len(x.shape)
    axes = _axes(ctx, rank)
    keep = bool(ctx.attr("keepdims", 1))
    if not axes:
        return topi.identity(x)
    op = ctx.op
    if str(x.dtype) == "bool":  # min/max/sum of booleans through uint8
        out = _reduce_uint8(ctx, topi.cast(x, "uint8"), axes, keep)
        return topi.cast(out, "bool")
    return _reduce_typed(ctx, x, axes, keep)


def _reduce_uint8(ctx, x, axes, keep):
    return _reduce_typed(ctx, x, axes, keep)


_EMPTY_REDUCTION = {"ReduceMax": float("-inf"), "ReduceMin": float("inf"), "ReduceProd": 1.0,
                    "ReduceLogSumExp": float("-inf"), "ReduceLogSum": float("-inf"), "ReduceMean": float("nan")}


def _reduce_typed(ctx, x, axes, keep):
    op = ctx.op
    if any(int(x.shape[a]) == 0 for a in axes):  # an empty set reduces to the identity element
        value, dtype = _EMPTY_REDUCTION.get(op, 0.0), str(x.dtype)  # booleans arrive as uint8
        if "float" not in dtype and value in (float("inf"), float("-inf")):
            info = np.iinfo(np.dtype(dtype))
            value = info.max if value > 0 else info.min
        return topi.full(ctx.out_shape(), dtype, value)
    if op == "ReduceSum":
        out = topi.sum(x, axes, keep)
    elif op == "ReduceMean":
        out = topi.divide(topi.sum(x, axes, keep), tirx.const(_count(x, axes), x.dtype))
    elif op == "ReduceMax":
        out = topi.max(x, axes, keep)
    elif op == "ReduceMin":
        out = topi.min(x, axes, keep)
    elif op == "ReduceProd":
        out = topi.prod(x, axes, keep)
    elif op == "ReduceL1":
        out = topi.sum(topi.abs(x), axes, keep)
    elif op == "ReduceL2":
        out = topi.sqrt(topi.sum(topi.multiply(x, x), axes, keep))
    elif op == "ReduceSumSquare":
        out = topi.sum(topi.multiply(x, x), axes, keep)
    elif op == "ReduceLogSum":
        out = topi.log(topi.sum(x, axes, keep))
    else:  # ReduceLogSumExp
        mx = topi.max(x, axes, True)
        out = topi.add(topi.log(topi.sum(topi.exp(topi.subtract(x, mx)), axes, keep)),
                       mx if keep else topi.squeeze(mx, axes))
    return topi.reshape(out, ctx.out_shape()) if tuple(int(d) for d in out.shape) != ctx.out_shape() else out


@lowering("ArgMax", "ArgMin", kind="reduce")
def _arg(ctx, x):
    axis = int(ctx.attr("axis", 0)) % len(x.shape)
    keep = bool(ctx.attr("keepdims", 1))
    fn = topi.argmax if ctx.op == "ArgMax" else topi.argmin
    out = fn(x, axis=axis, keepdims=keep, select_last_index=bool(ctx.attr("select_last_index", 0)))
    return topi.cast(out, "int64") if out.dtype != "int64" else out


@lowering("CumSum", "CumProd", static=(1,))
def _cumulative(ctx, x, _axis=None):
    axis = int(np.asarray(ctx.static(1)).reshape(-1)[0]) % len(x.shape)
    fn = topi.cumsum if ctx.op == "CumSum" else topi.cumprod
    reverse = bool(ctx.attr("reverse", 0))
    data = topi.flip(x, axis) if reverse else x
    out = fn(data, axis, str(x.dtype), bool(ctx.attr("exclusive", 0)))
    return topi.flip(out, axis) if reverse else out
