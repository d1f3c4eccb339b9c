"""bfloat16 Conv as dot products of input-channel pairs (``vdpbf16ps`` on CPUs with AVX-512 BF16).

What ``convert-bfloat16`` leaves: a 2-D, ``group == 1`` Conv whose operands and result are bfloat16.
Products are exact in float32 and accumulate there; the result is rounded once to bfloat16, as the
reference (``_half_conv``) does.

    packed weight  [ceil(K/16), ceil(C/2), R, S, 16 * 2] int16  bfloat16 bits, prepacked at compile
                   time: 16 output channels x 2 consecutive input channels per 64-byte row
    packed input   [N, ceil(C/2), H + pads, W + pads, 2] int16   (``bfconv_pad``, per call; padding
                   and the channel past an odd C hold +0.0)
    accumulator    [N, ceil(K/16), OH, OW, 16] float32           (``bfconv_blk``)

or, for the 1x1 convs that ``dot_kernels.rows_layout_fits``, lanes along the output row (as
QLinearConv's row kernel): weight [K, ceil(C/2), 1, 1, 2], input [N, ceil(C/2), OH, OW16 * 2]
(``bfconv_rows_pad``), accumulator [N, K, OH, OW16] (``bfconv_rows``).

The schedule is the dot-product conv's (``dot_kernels.schedule_dot_conv``, QLinearConv's too) with the float32 conv's
register tile (``ScheduleParams.conv_blocks`` x ``conv_tile``: 2 blocks x up to 12 pixels on
AVX-512). Of 2x12, 3x8, 4x7, 2x14 and 4x6, measured on ResNet-50's 3x3 convs at 28, 14 and 7 pixels
and a 1x1 64->256 conv at 56 (1 thread, Zen 4, a one-off script not kept), 2x12 was the fastest or
within noise of it on each.
Without AVX-512 BF16 the same TE arithmetic runs as float32 FMAs on the widened bits.
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx

from ...dot_instructions import BF16
from ...te_util import round_to_bf16
from ..dot_kernels import (
    dot_accumulation,
    rows_accumulators,
    rows_packed_input,
    rows_value,
    schedule_dot_conv,
    schedule_dot_rows,
)
from ..matmul_amx import amx_bf16_rows_conv, amx_bf16_rows_conv_fits, schedule_amx_rows_conv

BF16_PAIR = BF16.depth


def bf16_conv_fits(attrs, in_types) -> bool:
    x, w = in_types[0], in_types[1]
    return (
        x is not None
        and w is not None
        and len(w[0]) == 4
        and int(attrs.get("group", 1)) == 1
        and str(np.dtype(x[1])) == "bfloat16"
        and str(np.dtype(w[1])) == "bfloat16"
    )


def pack_bf16_conv_weight(w: np.ndarray, rows: bool = False) -> np.ndarray:
    """[K, C, R, S] bfloat16 -> [ceil(K/16), ceil(C/2), R, S, 32] int16, or [K, ceil(C/2), 1, 1, 2]
    for the row kernel (``rows``; module docstring)."""
    k, c, r, s = w.shape
    lanes = 1 if rows else BF16.lanes
    kb, c2 = -(-k // lanes), -(-c // BF16_PAIR)
    padded = np.zeros((kb * lanes, c2 * BF16_PAIR, r, s), dtype=np.int16)
    padded[:k, :c] = np.asarray(w).view(np.int16)
    packed = padded.reshape(kb, lanes, c2, BF16_PAIR, r, s).transpose(0, 2, 4, 5, 1, 3)
    return np.ascontiguousarray(packed).reshape(kb, c2, r, s, lanes * BF16_PAIR)


def is_packed_bf16_weight(x, w) -> bool:
    """Whether ``w`` (a Conv's prepacked operand, ``x`` its TE input) holds bfloat16 channel pairs:
    the conv is bfloat16 and its weight became int16 (on targets whose block is not 16 lanes it
    stays bfloat16 in ``[K/B, C, R, S, B]``)."""
    return str(x.dtype) == "bfloat16" and len(w.shape) == 5 and str(w.dtype) == "int16"


def unpacked_bf16_weight(k: int, c: int, wp):
    """The [K, C, R, S] bfloat16 weight read back out of its packed form (a fallback's operand)."""
    r, s = int(wp.shape[2]), int(wp.shape[3])
    lanes = int(wp.shape[-1]) // BF16_PAIR  # 16, or 1 in the row kernel's layout
    return te.compute(
        (k, c, r, s),
        lambda m, ch, rr, ss: tirx.reinterpret(
            "bfloat16", wp[m // lanes, ch // BF16_PAIR, rr, ss, m % lanes * BF16_PAIR + ch % BF16_PAIR]
        ),
        name="bfconv_unpack",
    )


def _widened(bits):
    """A bfloat16 value held as its int16 bits, as the float32 it is exactly."""
    return tirx.reinterpret("float32", tirx.shift_left(bits.astype("int32"), 16))


def bf16_dot_conv(ctx, x, wp, bias, strides, dilations, pads):
    """The packed bfloat16 conv (module docstring); ``bias`` is bfloat16 or None."""
    n, k, oh, ow = ctx.out_shape()
    rows = int(wp.shape[-1]) == BF16_PAIR
    bits, zero = (lambda v: tirx.reinterpret("int16", v)), tirx.const(0, "int16")
    if rows and amx_bf16_rows_conv_fits(ctx.schedule, int(x.shape[1]), k):  # AMX tiles (matmul_amx.py)
        acc = amx_bf16_rows_conv(rows_packed_input(x, BF16, strides, (oh, ow), bits, zero, "bfconv_rows_pad"), wp)
    else:
        window, accumulators = (strides, dilations, pads), rows_accumulators(ctx.schedule, BF16)
        acc = dot_accumulation(rows, x, wp, BF16, window, (oh, ow), bits, zero, _widened, "bfconv", accumulators)

    def result(b, m, y, xx):
        total = rows_value(acc, b, m, y, xx) if rows else acc[b, m // BF16.lanes, y, xx, m % BF16.lanes]
        if bias is not None:
            total = total + bias[m].astype("float32")
        return round_to_bf16(total).astype("bfloat16")

    return te.compute((n, k, oh, ow), result, name="bfconv_out")


def schedule_bf16_conv(sch, params) -> None:
    """``bfconv_blk``: the float32 conv's register tile, ``vdpbf16ps`` inside; ``bfconv_rows``: the
    row kernel's."""
    names = [sch.get(b).name_hint for b in sch.get_child_blocks(sch.get_sblock("root"))]
    if "bfconv_amx" in names:
        schedule_amx_rows_conv(sch, params, "bfconv_rows_pad", BF16_PAIR)
    elif "bfconv_rows" in names:
        schedule_dot_rows(sch, params, BF16, ("bfconv_rows", "bfconv_rows_pad"))
    else:
        schedule_dot_conv(sch, params, BF16, ("bfconv_blk", "bfconv_pad"), (params.conv_blocks, params.conv_tile))
