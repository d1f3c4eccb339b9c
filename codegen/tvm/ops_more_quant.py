"""Lowerings of ``QuantizeLinear`` and ``DequantizeLinear``.

    DequantizeLinear:  y = (x - zero_point) * scale
    QuantizeLinear:    y = saturate(round_half_to_even(x / scale) + zero_point)

``scale``/``zero_point`` are run-time operands: a scalar (per tensor), a 1-D tensor along
``axis`` (per channel), or a tensor of ``x``'s rank whose ``axis`` dim has ``ceil(n / block_size)``
entries (blocked).  Quantised types are the 8/16/32-bit integers and the low-precision types
kernels keep as uint8 storage (int4/uint4/int2/uint2, float8, float4_e2m1fn; see ops_more_lowp):
those are decoded to / encoded from float32 with round-half-to-even; float8 outputs honour
``saturate``, integer outputs always clamp.  A scale may itself be low precision (float8_e8m0fnu).
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx

from .ops_more_common import lowering_if_missing
from .ops_more_lowp import FLOAT_FORMATS, INT_FORMATS, decode, encode_float, encode_int, is_lowp


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


def _value(ctx, operand: int, element, wide: str):
    """``element`` of operand ``operand`` as a ``wide`` value, decoding low-precision storage."""
    dtype = str(np.dtype(ctx.in_types[operand][1]))
    return (decode(element, dtype) if is_lowp(dtype) else element).astype(wide)


def _axis(ctx, rank: int) -> int:
    return int(ctx.attr("axis", 1)) % max(rank, 1)


@lowering_if_missing("DequantizeLinear")
def _dequantize(ctx, x, scale, zero_point=None):
    rank, block = len(x.shape), int(ctx.attr("block_size", 0))
    axis = _axis(ctx, rank)
    out_dtype = ctx.out_dtype()

    x_dtype = str(np.dtype(ctx.in_types[0][1]))
    exact = "int32" if x_dtype not in FLOAT_FORMATS else "float32"  # x - zero_point without rounding

    def body(*i):
        v = _value(ctx, 0, x(*i), exact)
        if zero_point is not None:
            v = v - _value(ctx, 2, _param_index(zero_point, i, axis, block), exact)
        return (v.astype("float32") * _value(ctx, 1, _param_index(scale, i, axis, block), "float32")).astype(out_dtype)

    return te.compute(ctx.out_shape(), body, name="dequantize")


@lowering_if_missing("QuantizeLinear")
def _quantize(ctx, x, scale, zero_point=None):
    rank, block = len(x.shape), int(ctx.attr("block_size", 0))
    axis = _axis(ctx, rank)
    out_dtype = ctx.out_dtype()
    saturate = bool(ctx.attr("saturate", 1))
    wide = "float32"
    if out_dtype not in FLOAT_FORMATS and out_dtype not in INT_FORMATS and np.dtype(out_dtype).kind not in "iu":
        raise ctx.fail(f"quantising to {out_dtype} is not supported")

    def scaled(i):
        return _value(ctx, 0, x(*i), wide) / _value(ctx, 1, _param_index(scale, i, axis, block), wide)

    def zero(i):
        return _value(ctx, 2, _param_index(zero_point, i, axis, block), wide)

    if out_dtype in FLOAT_FORMATS:
        def body(*i):
            q = scaled(i)
            if zero_point is not None:
                q = q + zero(i)
            return encode_float(q, out_dtype, saturate)
        return te.compute(ctx.out_shape(), body, name="quantize")

    def rounded(i):
        q = tirx.nearbyint(scaled(i))
        return q + zero(i) if zero_point is not None else q

    if out_dtype in INT_FORMATS:
        return te.compute(ctx.out_shape(), lambda *i: encode_int(rounded(i), out_dtype, saturate=True),
                          name="quantize")
    info = np.iinfo(out_dtype)

    def body(*i):
        q = tirx.max(tirx.const(float(info.min), wide), tirx.min(rounded(i), tirx.const(float(info.max), wide)))
        return q.astype(out_dtype)

    return te.compute(ctx.out_shape(), body, name="quantize")
