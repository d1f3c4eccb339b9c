"""Lowerings of ``QuantizeLinear`` and ``DequantizeLinear`` for integer quantised types.

    DequantizeLinear:  y = (x - zero_point) * scale
    QuantizeLinear:    y = saturate(round_half_to_even(x / scale) + zero_point)

``scale``/``zero_point`` are run-time operands: a scalar (per tensor), a 1-D tensor along
``axis`` (per channel), or a tensor of ``x``'s rank whose ``axis`` dim has ``ceil(n / block_size)``
entries (blocked).  Float8/4-bit types cannot cross the compiled library's C API, so only the
8/16/32-bit integer forms are reachable through it.
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx

from .ops_more_common import lowering_if_missing


def _param_index(param, index, axis: int, block: int):
    """The element of ``scale``/``zero_point`` that applies at ``x[index]``."""
    rank = len(param.shape)
    if rank == 0:
        return param()
    if block <= 0 and rank == 1:
        return param(index[axis] if int(param.shape[0]) != 1 else 0)
    at = list(index)
    if block > 0:
        at[axis] = tirx.indexdiv(index[axis], block)
    return param(*at)


def _axis(ctx, rank: int) -> int:
    return int(ctx.attr("axis", 1)) % max(rank, 1)


@lowering_if_missing("DequantizeLinear")
def _dequantize(ctx, x, scale, zero_point=None):
    rank, block = len(x.shape), int(ctx.attr("block_size", 0))
    axis = _axis(ctx, rank)
    out_dtype = ctx.out_dtype()

    def body(*i):
        v = x(*i).astype("int32")
        if zero_point is not None:
            v = v - _param_index(zero_point, i, axis, block).astype("int32")
        return (v.astype("float32") * _param_index(scale, i, axis, block).astype("float32")).astype(out_dtype)

    return te.compute(ctx.out_shape(), body, name="dequantize")


@lowering_if_missing("QuantizeLinear")
def _quantize(ctx, x, scale, zero_point=None):
    rank, block = len(x.shape), int(ctx.attr("block_size", 0))
    axis = _axis(ctx, rank)
    out_dtype = ctx.out_dtype()
    if np.dtype(out_dtype).kind not in "iu":
        raise ctx.fail(f"quantising to {out_dtype} is not supported")
    info = np.iinfo(out_dtype)
    wide = "float32"

    def body(*i):
        q = tirx.nearbyint(x(*i).astype(wide) / _param_index(scale, i, axis, block).astype(wide))
        if zero_point is not None:
            q = q + _param_index(zero_point, i, axis, block).astype(wide)
        q = tirx.max(tirx.const(float(info.min), wide), tirx.min(q, tirx.const(float(info.max), wide)))
        return q.astype(out_dtype)

    return te.compute(ctx.out_shape(), body, name="quantize")
