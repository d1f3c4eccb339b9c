"""The fast integer convolution: QLinearConv as u8 x s8 -> s32 dot products of four channels at a time,
with the requantization in the epilogue (``vpdpbusd`` on CPUs with AVX-512 VNNI).

Layouts (``VNNI_LANES`` = 16 output channels, ``VNNI_DEPTH`` = 4 input channels per int32 lane):

    packed weight  [ceil(K/16), ceil(C/4) + 1, R, S, 16 * 4] int8  (prepacked at compile time)
                   slot ceil(C/4) at (r, s) = (0, 0) holds each output channel's weight sum as the
                   four little-endian bytes of an int32 (the zero-point correction below)
    packed input   [N, ceil(C/4), H + pads, W + pads, 4] uint8       (``qconv_pad``, per call)
                   int8 inputs are shifted by +128 into uint8 (their zero point too); padding and the
                   channels past C hold the (shifted) zero point
    accumulator    [N, ceil(K/16), OH, OW, 16] int32                  (``qconv_blk``)

or, for the convs that ``dot_kernels.rows_layout_fits`` (1x1 unpadded ones, and stride-1 ones whose
rows are 14-16, 28-32, 56-64... wide), lanes along the output row (the NCHW write-back reads whole
rows instead of one lane of every 16):

    packed weight  [K, ceil(C/4) + 1, R, S, 4] int8, the weight sums likewise in slot ceil(C/4)
    packed input   [N, ceil(C/4), HQ, WQ * 4] uint8, 4 channels per pixel (``qconv_rows_pad``)
    accumulator    [N, K, OH, ceil(OW/16) * 16] int32                 (``qconv_rows``)

Because padding holds the zero point, ``sum (x - zx) w = sum x w - zx * wsum[m]`` exactly, and

    y = saturate(round_half_even((acc - zx * wsum[m] + bias[m]) * (sx * sw[m] / sy)) + zy)

in float32, as onnxruntime's kernels requantize.  The fast path takes 2-D convolutions with
``group == 1``, int8 weights whose zero points are constant zeros (symmetric, the quantizers' default)
and uint8 or int8 inputs; everything else goes to the generic lowering in ``quantization.py``.
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx

from ..dot_instructions import VNNI
from .dot_kernels import (
    DOT_MATMUL_TILE,
    dot_conv_accumulation,
    dot_rows_accumulation,
    rows_layout_from_attrs,
    schedule_dot_conv,
    schedule_dot_matmul,
    schedule_dot_rows,
)
from .nn.conv import conv_params
from .quantization_dynamic import round_half_even

VNNI_LANES = 16
VNNI_DEPTH = 4


def _fast_conv_fits(attrs, in_types) -> bool:
    x, w = in_types[0], in_types[3]
    if x is None or w is None or len(w[0]) != 4 or int(attrs.get("group", 1)) != 1:
        return False
    return np.dtype(w[1]) == np.int8 and np.dtype(x[1]) in (np.uint8, np.int8)


def pack_vnni_conv_weight(attrs, in_types, w):
    """[K, C, R, S] int8 -> [ceil(K/16), ceil(C/4) + 1, R, S, 16 * 4], or [K, ceil(C/4) + 1, R, S, 4]
    for the row kernel, with the weight sums in the last channel slot (module docstring); other
    weights are left as they are (the generic path)."""
    if not _fast_conv_fits(attrs, in_types) or w.dtype != np.int8:
        return w
    k, c, r, s = w.shape
    rows = rows_layout_from_attrs(attrs, in_types[0][0], w.shape)
    lanes = 1 if rows else VNNI_LANES
    kb, c4 = -(-k // lanes), -(-c // VNNI_DEPTH)
    padded = np.zeros((kb * lanes, (c4 + 1) * VNNI_DEPTH, r, s), dtype=np.int8)
    padded[:k, :c] = w
    packed = padded.reshape(kb, lanes, c4 + 1, VNNI_DEPTH, r, s).transpose(0, 2, 4, 5, 1, 3).copy()
    sums = np.zeros(kb * lanes, dtype="<i4")
    sums[:k] = w.reshape(k, -1).astype(np.int64).sum(axis=1)
    packed[:, c4, 0, 0] = sums.view(np.int8).reshape(kb, lanes, VNNI_DEPTH)
    return packed.reshape(kb, c4 + 1, r, s, lanes * VNNI_DEPTH)


def fast_conv_applies(ctx) -> bool:
    """Whether ``ctx`` (a QLinearConv) takes the VNNI kernel: packed weight, zero weight zero point."""
    w_zero = ctx.static(5)
    zero_ok = ctx.in_types[5] is None or (w_zero is not None and not np.any(np.asarray(w_zero)))
    return 3 in ctx.packed and zero_ok and len(ctx.in_types[0][0]) == 4


def _packed_lanes(wp) -> int:
    """Output channels per packed weight row: 16, or 1 for the row kernel's layout."""
    return int(wp.shape[-1]) // VNNI_DEPTH


def unpacked_weight(ctx, wp):
    """The [K, C, R, S] weight read back out of its packed form (for the generic kernel)."""
    k, c = ctx.out_shape()[1], int(ctx.in_types[0][0][1])
    r, s = int(wp.shape[2]), int(wp.shape[3])
    lanes = _packed_lanes(wp)
    return te.compute(
        (k, c, r, s),
        lambda m, ch, rr, ss: wp[m // lanes, ch // VNNI_DEPTH, rr, ss, m % lanes * VNNI_DEPTH + ch % VNNI_DEPTH],
        name="qconv_unpack",
    )


def _param(tensor, index, dtype: str):
    """A per-tensor (one element) or per-output-channel scale/zero point as an expression."""
    if tensor is None:
        return tirx.const(0, dtype)
    if int(np.prod([int(d) for d in tensor.shape])) == 1:
        return tensor(*([0] * len(tensor.shape))).astype(dtype)
    return tensor(index).astype(dtype)


def _weight_sum(wp, c4: int, m):
    """Output channel ``m``'s int32 weight sum, stored as four bytes in the packed weight's last
    channel slot."""
    lanes = _packed_lanes(wp)
    total = tirx.const(0, "int32")
    for byte in range(VNNI_DEPTH):
        at = (m // lanes, c4, 0, 0, m % lanes * VNNI_DEPTH + byte)
        b = wp[at].astype("int32")
        total = total + tirx.bitwise_and(b, 255) * (1 << (8 * byte)) if byte < 3 else total + b * (1 << 24)
    return total


def vnni_conv(ctx, x, x_scale, x_zero, wp, w_scale, y_scale, y_zero, bias):
    """QLinearConv through the packed u8 x s8 kernel (module docstring)."""
    _, strides, dilations, pads = conv_params(ctx, [int(d) for d in wp.shape[2:4]])
    c4 = int(wp.shape[1]) - 1
    n, k, oh, ow = ctx.out_shape()
    i32 = "int32"
    shift = 128 if str(x.dtype) == "int8" else 0
    zx = _param(x_zero, 0, i32) + shift
    rows = _packed_lanes(wp) == 1
    acc = (dot_rows_accumulation if rows else dot_conv_accumulation)(
        x,
        wp,
        VNNI,
        (strides, dilations, pads),
        (oh, ow),
        lambda v: (v.astype(i32) + shift).astype("uint8"),
        zx.astype("uint8"),
        lambda v: v.astype(i32),
        ("qconv_rows", "qconv_rows_pad") if rows else ("qconv_blk", "qconv_pad"),
    )
    out = ctx.out_dtype()
    info = np.iinfo(out)
    f32 = "float32"

    def requantized(b, m, y, xx):
        product = acc[b, m, y, xx] if rows else acc[b, m // VNNI_LANES, y, xx, m % VNNI_LANES]
        total = product - zx * _weight_sum(wp, c4, m)
        if bias is not None:
            total = total + bias[m]
        scale = _param(x_scale, 0, f32) * _param(w_scale, m, f32) / _param(y_scale, 0, f32)
        q = round_half_even(ctx, total.astype(f32) * scale) + _param(y_zero, 0, f32)
        return tirx.max(tirx.const(float(info.min), f32), tirx.min(q, tirx.const(float(info.max), f32))).astype(out)

    return te.compute((n, k, oh, ow), requantized, name="qconv_out")


# MatMulInteger -----------------------------------------------------------------------------------------


def pack_vnni_matmul_weight(attrs, in_types, b):
    """[K, N] int8 (K a multiple of 4) -> [ceil(N/16), K/4 + 1, 16] int32: each word holds the 4
    weights b[4r:4r+4, col] as little-endian bytes (a row of 16 words is one ``vpdpbusd`` operand),
    and the last row holds the column sums, so the epilogue reads them as one int32 vector (as bytes
    they cost 64 byte inserts per 16 outputs); other weights are left as they are."""
    a = in_types[0]
    if b.dtype != np.int8 or b.ndim != 2 or a is None or np.dtype(a[1]) != np.uint8 or b.shape[0] % VNNI_DEPTH:
        return b
    k, n = b.shape
    nb, k4 = -(-n // VNNI_LANES), k // VNNI_DEPTH
    padded = np.zeros((k, nb * VNNI_LANES), dtype=np.int8)
    padded[:, :n] = b
    words = padded.reshape(k4, VNNI_DEPTH, nb, VNNI_LANES).transpose(2, 0, 3, 1).copy().view("<i4")
    sums = np.zeros(nb * VNNI_LANES, dtype="<i4")
    sums[:n] = b.astype(np.int64).sum(axis=0)
    packed = np.concatenate([words.reshape(nb, k4, VNNI_LANES), sums.reshape(nb, 1, VNNI_LANES)], axis=1)
    return packed.astype(np.int32)


def fast_matmul_applies(ctx) -> bool:
    """Whether a MatMulInteger takes the VNNI kernel: packed weight, per-tensor a zero point, zero b's."""
    zb = ctx.static(3)
    zb_ok = ctx.in_types[3] is None or (zb is not None and not np.any(np.asarray(zb)))
    za = ctx.in_types[2]
    return 1 in ctx.packed and zb_ok and (za is None or int(np.prod(za[0])) == 1)


def _weight_byte(word, index):
    """Signed byte ``index`` (0 = least significant) of an int32 word of four packed weights."""
    return tirx.shift_right(tirx.shift_left(word, 24 - 8 * index), 24)


def unpacked_matmul_weight(ctx, bp):
    k, n = int(ctx.in_types[0][0][-1]), ctx.out_shape()[-1]
    return te.compute(
        (k, n),
        lambda r, col: _weight_byte(bp[col // VNNI_LANES, r // VNNI_DEPTH, col % VNNI_LANES], r % VNNI_DEPTH),
        name="qmatmul_unpack",
    )


def vnni_matmul_integer(ctx, a, bp, a_zero):
    """int32 ``sum_k (a[..., m, k] - za) b[k, n]`` as u8 x s8 dot products less ``za * colsum[n]``."""
    *lead, m, k = (int(d) for d in a.shape)
    nb, k4 = int(bp.shape[0]), int(bp.shape[1]) - 1
    n = ctx.out_shape()[-1]
    rco, rci = te.reduce_axis((0, k4), "rco"), te.reduce_axis((0, VNNI_DEPTH), "rci")
    acc = te.compute(
        (*lead, m, nb, VNNI_LANES),
        lambda *i: te.sum(
            a[(*i[:-2], rco * VNNI_DEPTH + rci)].astype("int32") * _weight_byte(bp[i[-2], rco, i[-1]], rci),
            axis=[rco, rci],
        ),
        name="qmatmul_blk",
    )
    za = _param(a_zero, 0, "int32")
    return te.compute(
        (*lead, m, n),
        lambda *i: (
            acc[(*i[:-1], i[-1] // VNNI_LANES, i[-1] % VNNI_LANES)]
            - za * bp[i[-1] // VNNI_LANES, k4, i[-1] % VNNI_LANES]
        ),
        name="qmatmul_out",
    )


def schedule_vnni_matmul(sch, params) -> None:
    """MatMulInteger's ``qmatmul_blk``: 4 rows x 3 blocks of 16 int32 columns on ``vpdpbusd``."""
    schedule_dot_matmul(sch, params, VNNI, "qmatmul_blk", DOT_MATMUL_TILE)


def schedule_vnni_conv(sch, params) -> None:
    """QLinearConv's ``qconv_blk`` on ``vpdpbusd`` with the float32 conv's register tile (2 blocks of 16
    channels x up to 12 pixels on AVX-512: 24 accumulators, 2 weight vectors per 12 broadcasts; the
    earlier 1 block x 14 pixels took 43.9 ms per int8 ResNet-50 run against 41.4, 1 thread)."""
    names = [sch.get(b).name_hint for b in sch.get_child_blocks(sch.get_sblock("root"))]
    if "qconv_rows" in names:
        schedule_dot_rows(sch, params, VNNI, ("qconv_rows", "qconv_rows_pad"), params.conv_blocks * params.conv_tile)
    else:
        schedule_dot_conv(sch, params, VNNI, ("qconv_blk", "qconv_pad"), (params.conv_blocks, params.conv_tile))


def _register_schedule() -> None:
    from ..schedule import SCHEDULES

    SCHEDULES.setdefault("vnni_conv", schedule_vnni_conv)
    SCHEDULES.setdefault("vnni_matmul", schedule_vnni_matmul)


_register_schedule()
