"""Lowerings of convolutions: Conv (DeformConv and Col2Im are in ``deform_conv.py`` and ``col2im.py``).

Convolutions with ``group == 1`` and 2-D kernels use Ember's own compute: the weight is prepacked
at compile time into ``[K/B, C, R, S, B]`` so the innermost loop is a B-lane vector over output
channels (``conv_blk``); the result is written in NCHW by ``conv_out``, where epilogues fuse.
B is the target's ``ScheduleParams.conv_block`` (16 on x86 and on 4 NEON registers).
On a target whose block is one vector (AVX-512), a 1x1, stride-1, unpadded conv is instead a
product of pixel vectors (``conv_pw``): its output rows are NCHW rows, written back without the
channel-block transposition, which costs more than the product when C is small.
Other convolutions fall back to ``topi.nn.conv``.

``ConvTranspose`` lives in ``conv_transpose.py``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from tvm import te, tirx, topi

from ....target import ScheduleParams
from ...dot_instructions import BF16
from ...registry import lowering
from ...schedule import CONV_FLAT_KEY, CONV_ROWS_KEY, CONV_STRIDE_KEY
from ...schedule_pixel_conv import (
    DW_INNER_COLUMNS_KEY,
    POINTWISE_ROWS_KEY,
    POINTWISE_STREAM_BYTES,
    POINTWISE_VECTORS_KEY,
    pointwise_channels,
    pointwise_chunk_rows,
    pointwise_pixels,
    pointwise_tile,
)
from ...te_util import (
    HALF_TYPES,
    MATERIALISED,
    expr_dtype,
    read_if,
    rounded_to_half,
)
from ..dot_kernels import rows_layout_from_attrs
from ..matmul_amx import amx_bf16_rows_conv_fits
from .conv_bf16 import bf16_conv_fits, bf16_dot_conv, is_packed_bf16_weight, pack_bf16_conv_weight, unpacked_bf16_weight
from .conv_grouped import grouped_gemm_conv

CONV_LANES = 16  # output-channel block of the packed conv weight when no target says (x86's)


def conv_block(schedule: ScheduleParams | None, channels: int | None = None) -> int:
    """Output channels per packed block: the target's ``conv_block``, else ``CONV_LANES``; or one
    vector where the block is wider (AVX2's 16 channels are 2 vectors) and ``channels`` output
    channels are a multiple of 3 vectors but not of the block: 24 channels then take 3 blocks of 8
    and a 3 x 4-pixel tile instead of 32 computed in 2-vector blocks (a 3x3 conv 96 -> 24 at
    160 x 160: 1.57x onnxruntime's time -> 1.26x; 40 -> 24 at 80 x 80: 1.40x -> 1.10x). Likewise
    half a vector where the target takes ``conv_half_vectors`` (24 channels as 3 blocks of 8 on 16
    lanes)."""
    if schedule is None:
        return CONV_LANES
    block = schedule.conv_block
    narrow = schedule.lanes // 2 if schedule.conv_half_vectors else schedule.lanes
    if channels is not None and block > narrow and channels % block and channels % (3 * narrow) == 0:
        return narrow
    return block


def attr_ints(value, n, default):
    return [int(v) for v in value] if value is not None else [default] * n


def conv_params(ctx, kernel=None):
    """(spatial rank, strides, dilations, pads as [begin..., end...]) with auto_pad resolved."""
    x_shape = ctx.in_types[0][0]
    nd = len(x_shape) - 2
    strides = attr_ints(ctx.attr("strides"), nd, 1)
    dilations = attr_ints(ctx.attr("dilations"), nd, 1)
    if kernel is None:
        kernel = list(ctx.attr("kernel_shape") or ctx.in_types[1][0][2:])
    pads = attr_ints(ctx.attr("pads"), 2 * nd, 0)
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = ctx.out_shape()[2:]
        before, after = [], []
        for d in range(nd):
            total = max(0, (out[d] - 1) * strides[d] + (kernel[d] - 1) * dilations[d] + 1 - x_shape[2 + d])
            small, big = total // 2, total - total // 2
            before.append(small if auto_pad == "SAME_UPPER" else big)
            after.append(big if auto_pad == "SAME_UPPER" else small)
        pads = before + after
    elif auto_pad == "VALID":
        pads = [0] * (2 * nd)
    return nd, strides, dilations, pads


def _blocked_groups_ok(k: int, group: int, block: int) -> bool:
    """The blocked conv handles ``group`` when no ``block``-channel output block straddles two groups."""
    return group == 1 or (k % group == 0 and (k // group) % block == 0)


def packed_blocks(k: int, block: int, schedule: ScheduleParams | None, group: int = 1) -> int:
    """Output-channel blocks of the packed conv weight: ``ceil(k / block)``, plus one zero block where
    an odd count that 3 do not divide would leave ``schedule_conv`` one block to a register tile on a
    target that pairs them (``conv_blocks``), for group 1 and 9 blocks or more (at most 1/10 of the
    products wasted). RegNetY-800MF's 784-channel 1x1 convs at 7 x 7 (49 blocks) had 1 x 7
    accumulators, below what covers the FMA latency: 1.73-1.79x onnxruntime's time; the whole model
    took 0.952 / 0.957 of its time at 1 / 2 threads with 50 blocks (``compare_libraries.py``, 15
    runs). 7 blocks (112 channels, EfficientNet-B0's and MobileNetV3's projections at 14 x 14) gained
    nothing (1.004 / 1.018 and 0.983 / 1.002), so they keep theirs."""
    kb = -(-k // block)
    if schedule is not None and schedule.conv_blocks == 2 and group == 1 and kb >= 9 and kb % 2 and kb % 3:
        kb += 1
    return kb


def _pack_conv_weight(attrs, in_types, w, schedule: ScheduleParams | None = None):
    """[K, C, R, S] -> [ceil(K/B), C, R, S, B] (zero-padded output channels), B the target's block;
    a bfloat16 weight on a 16-lane target -> the channel-pair layout of ``conv_bf16.py``, or, where the
    target's pair kernels do not pay (``ScheduleParams.bf16_pairs``), widened to float32 first."""
    if bf16_conv_fits(attrs, in_types):
        rows = rows_layout_from_attrs(attrs, in_types[0][0], w.shape, BF16.lanes)
        amx = rows and amx_bf16_rows_conv_fits(schedule, int(w.shape[1]), int(w.shape[0]))  # 1x1 on tiles
        if schedule is None or (schedule.lanes == BF16.lanes and schedule.bf16_pairs) or amx:
            return pack_bf16_conv_weight(w, rows)
        if not schedule.bf16_pairs:
            w = w.astype(np.float32)  # exact; ``_half_conv`` widens the input and rounds the result
    block = conv_block(schedule, int(w.shape[0]))
    group = int(attrs.get("group", 1))
    if w.ndim != 4 or not _blocked_groups_ok(w.shape[0], group, block):
        return w
    k = w.shape[0]
    kb = packed_blocks(k, block, schedule, group)
    padded = np.zeros((kb * block,) + w.shape[1:], dtype=w.dtype)
    padded[:k] = w
    return padded.reshape(kb, block, *w.shape[1:]).transpose(0, 2, 3, 4, 1).copy()


_pack_conv_weight.uses_schedule = True  # the planner passes the target's ScheduleParams


def _kernel_1x1(w) -> bool:
    """Whether the (packed or plain) conv weight ``w`` has a 1 x 1 kernel."""
    return tuple(int(d) for d in w.shape[2:4]) == (1, 1)


# a 1x1 conv's pixels are tiled as one flattened row when its rows take no whole register tiles and
# the plane is at most this many pixels (one task's block of outputs then stays in L2)
FLAT_PLANE_MAX_PIXELS = 1024


def _flat_plane_pixels(ctx, w) -> int:
    """The pixels (the plane rounded up to whole tiles) of a 1x1 unpadded conv whose
    output rows are not a whole number of the target's pixel tiles, on a plane of at most
    ``FLAT_PLANE_MAX_PIXELS`` that whole tiles overshoot by at most 1/8, or 0: its H x W pixels are
    then tiled as one row. On AVX2 (6-pixel tiles) a 7-wide
    row took a 4- and a 3-pixel tile, too few accumulators to cover the FMA latency: 512 -> 2048 at
    7 x 7 went from 1.77x onnxruntime to 1.42x, 1024 -> 256 at 14 x 14 from 1.22x to 1.1x. A strided
    conv (ResNet's downsampling 1x1 convs) reads its flat row's pixels at their strided places."""
    if ctx.schedule is None or not ctx.schedule.flat_planes:  # AVX2's (``ScheduleParams.flat_planes``)
        return 0
    _, strides, _, pads = conv_params(ctx)
    _, _, oh, ow = ctx.out_shape()
    if any(pads) or not _kernel_1x1(w):
        return 0
    tile = ctx.schedule.conv_tile
    pixels = oh * ow
    padded = -(-pixels // tile) * tile
    fits = oh > 1 and ow % tile != 0 and pixels <= FLAT_PLANE_MAX_PIXELS and 8 * padded <= 9 * pixels
    return padded if fits else 0


def _conv2d_blocked(ctx, x, w, bias, block: int, flat: bool = False):
    _, strides, dilations, pads = conv_params(ctx)
    n, c, h, wd = (int(d) for d in x.shape)
    _, k, oh, ow = ctx.out_shape()
    pixels = _flat_plane_pixels(ctx, w)
    if pixels:  # whole tiles: the pixels past the plane read its last pixel again and are dropped
        last = oh * ow - 1
        flat = _conv2d_blocked(
            dataclasses.replace(
                ctx,
                attrs={**ctx.attrs, "strides": [1, 1], "auto_pad": "NOTSET", "pads": [0, 0, 0, 0]},
                in_types=[((n, c, 1, pixels), ctx.in_types[0][1]), *ctx.in_types[1:]],
                out_types=[((n, k, 1, pixels), ctx.out_types[0][1])],
            ),
            te.compute(
                (n, c, 1, pixels),
                lambda b, ci, z, p: x[b, ci, tirx.min(p, last) // ow * strides[0], tirx.min(p, last) % ow * strides[1]],
                name="conv_flat",
                attrs=MATERIALISED if any(st != 1 for st in strides) else None,
            ),
            w,
            bias,
            block,
            flat=True,
        )
        return te.compute((n, k, oh, ow), lambda b, kk, y, xx: flat[b, kk, 0, y * ow + xx], name="conv_unflat")
    group = int(ctx.attr("group", 1))
    if ctx.schedule is not None and group == 1 and any(st != 1 for st in strides) and not any(pads) and _kernel_1x1(w):
        # a strided 1x1 conv reads every s-th pixel of every s-th row: its tiles' broadcasts then span
        # s times the lines. The pixels it reads are copied dense first (``conv_subsample``), and the
        # conv runs at stride 1 on them
        sub = te.compute(
            (n, c, oh, ow),
            lambda b, ci, y, xx: x[b, ci, y * strides[0], xx * strides[1]],
            name="conv_subsample",
            attrs=MATERIALISED,
        )
        dense = {**ctx.attrs, "strides": [1, 1], "auto_pad": "NOTSET", "pads": [0, 0, 0, 0]}
        in_types = [((n, c, oh, ow), ctx.in_types[0][1]), *ctx.in_types[1:]]
        return _conv2d_blocked(dataclasses.replace(ctx, attrs=dense, in_types=in_types), sub, w, bias, block)
    c_per_group = c // group
    blocks_per_group = -(-k // block) // group
    if 1 in ctx.packed:
        kb, _, r, s, _ = (int(d) for d in w.shape)
        wp = w
    else:
        kk, _, r, s = (int(d) for d in w.shape)
        kb = packed_blocks(kk, block, ctx.schedule, group)
        wp = te.compute(
            (kb, c_per_group, r, s, block),
            lambda a, ci, ri, si, b: read_if(
                a * block + b < kk, w[tirx.min(a * block + b, kk - 1), ci, ri, si], tirx.const(0, w.dtype)
            ),
            name="conv_wpack",
            attrs=MATERIALISED,
        )  # the conv schedule packs it once, outside the tile loops
    if any(pads):
        data = topi.nn.pad(
            x, [0, 0, pads[0], pads[1]], [0, 0, pads[2], pads[3]], name="conv_pad", attrs=MATERIALISED
        )  # no bounds tests inside the register tile
    else:
        data = x
    rc = te.reduce_axis((0, c_per_group), "rc")
    rr = te.reduce_axis((0, r), "rr")
    rs = te.reduce_axis((0, s), "rs")
    blk = te.compute(
        (n, kb, oh, ow, block),
        lambda b, ko, y, xx, ki: te.sum(
            data[
                b,
                rc if group == 1 else ko // blocks_per_group * c_per_group + rc,
                y * strides[0] + rr * dilations[0],
                xx * strides[1] + rs * dilations[1],
            ].astype(ctx.out_dtype())
            * wp[ko, rc, rr, rs, ki].astype(ctx.out_dtype()),
            axis=[rc, rr, rs],
        ),
        name="conv_blk",
        attrs={
            CONV_STRIDE_KEY: strides[1],
            **({CONV_FLAT_KEY: 1} if flat else {}),
            **({CONV_ROWS_KEY: [pads[0], h, strides[0]]} if (pads[0] or pads[2]) and dilations[0] == 1 else {}),
        },
    )
    if bias is None:
        return te.compute((n, k, oh, ow), lambda b, kk, y, xx: blk[b, kk // block, y, xx, kk % block], name="conv_out")
    return te.compute(
        (n, k, oh, ow),
        lambda b, kk, y, xx: blk[b, kk // block, y, xx, kk % block] + bias[kk],
        name="conv_out",
    )


# Above this many input channels a 1x1 conv keeps the channel-vector tile: its transposing write-back
# is then small next to the product, and its 24-accumulator tile beat conv_pw's (256 -> 128 at 56 x 56:
# 1.10x onnxruntime against 1.36x; 1024 -> 128 at 14 x 14: 1.05x against 1.18x; at 64-144 channels
# conv_pw won by 1.2-1.9x; measured before conv_pw ran large inputs in chunks of rows; at 56 x 56 and
# up, AVX-512 now takes conv_pw for any channel count: ``ScheduleParams.pointwise_wide_plane_pixels``)
POINTWISE_MAX_INPUT_CHANNELS = 192


def _pointwise_tile(ctx, x, w) -> tuple[int, int] | None:
    """The (rows, vectors) register tile (``schedule_pixel_conv.pointwise_tile``) of a 1x1, stride-1, unpadded,
    ungrouped conv of at most ``POINTWISE_MAX_INPUT_CHANNELS`` inputs (any number on a plane of at least
    ``ScheduleParams.pointwise_wide_plane_pixels``, where the target sets it) on a target that computes such
    convs as products (``ScheduleParams.pointwise_products``: AVX-512, whose conv block is one vector,
    and AVX2), or None: there such a conv is a matrix product W[K, C] x X[C, H*W] whose output rows
    are NCHW rows."""
    if ctx.schedule is None:  # building for a GPU (no CPU schedule): the CUDA schedules take the blocked conv
        return None
    _, strides, _, pads = conv_params(ctx)
    lanes = ctx.schedule.lanes
    if int(ctx.attr("group", 1)) != 1 or any(pads) or any(s != 1 for s in strides):
        return None
    if not ctx.schedule.pointwise_products:  # (any packed block: each weight is read as a scalar)
        return None
    if len(x.shape) != 4 or not _kernel_1x1(w):
        return None
    channels, pixels, k = int(x.shape[1]), int(x.shape[2]) * int(x.shape[3]), ctx.out_shape()[1]
    wide = ctx.schedule.pointwise_wide_plane_pixels
    if channels > POINTWISE_MAX_INPUT_CHANNELS and not (wide and pixels >= wide):
        return None
    tile = pointwise_tile(k, pixels, ctx.schedule)
    if tile is None or 4 * channels * pixels <= POINTWISE_STREAM_BYTES:
        return tile
    # past POINTWISE_STREAM_BYTES, conv_pw runs over chunks of whole image rows; with no such chunk each row block
    # would stream the whole input again, and the channel-vector conv serves (160 -> 128 at 56 x 56
    # streamed 32 times: 1.37x onnxruntime against 1.15x)
    h, wd = int(x.shape[2]), int(x.shape[3])
    return tile if pointwise_chunk_rows(h, wd, tile[1], lanes) is not None else None


def _pointwise2d(ctx, x, w, bias, tile: tuple[int, int]):
    """1x1 conv as ``conv_pw[n, K, H*W] = sum_c W[K, c] * x[n, c, H*W]``: a register tile of ``rows``
    output channels x ``vectors`` vectors of pixels (``tile``, from ``_pointwise_tile``), each weight
    broadcast, each input vector a contiguous load, and ``conv_out`` (with any fused epilogue)
    written as whole NCHW rows without the channel-block transposition of ``conv_blk``. Where the
    rows do not divide K the product has K rounded up to whole rows, the extra rows reading the
    last channel's weights again; the write-back drops them."""
    rows, vectors = tile
    n, c, h, wd = (int(d) for d in x.shape)
    k = ctx.out_shape()[1]
    dtype = ctx.out_dtype()
    if 1 in ctx.packed:
        block = int(w.shape[4])

        def weight(kk, ci):
            kk = tirx.min(kk, k - 1)
            return w[kk // block, ci, 0, 0, kk % block]
    else:

        def weight(kk, ci):
            return w[tirx.min(kk, k - 1), ci, 0, 0]

    pixels = h * wd
    padded = pointwise_pixels(pixels, vectors, ctx.schedule)
    whole = pixels - pixels % (vectors * ctx.schedule.lanes)  # the pixels of the tiles inside the plane
    if whole == padded:
        data = te.compute((n, c, pixels), lambda b, ci, p: x[b, ci, p // wd, p % wd], name="conv_flat")
    else:  # the last tile reads a zero-padded copy of its pixels; the tiles before it read the input
        tail = te.compute(
            (n, c, padded - whole),
            lambda b, ci, q: read_if(
                whole + q < pixels,
                x[b, ci, tirx.min(whole + q, pixels - 1) // wd, tirx.min(whole + q, pixels - 1) % wd],
                tirx.const(0, x.dtype),
            ),
            name="conv_xtail",
            attrs=MATERIALISED,
        )
        data = te.compute(
            (n, c, padded),
            lambda b, ci, p: tirx.if_then_else(
                tirx.likely(p < whole), x[b, ci, p // wd, p % wd], tail[b, ci, p - whole]
            ),
            name="conv_flat",
        )  # ``likely``: TVM's LoopPartition cuts the last tile off the tile loop (``schedule_pointwise``);
        # unpartitioned, the vector condition would make TVM scalarise the loop, and each read stays guarded
    rc = te.reduce_axis((0, c), "rc")
    pw = te.compute(
        (n, pointwise_channels(k, rows), padded),
        lambda b, kk, p: te.sum(weight(kk, rc).astype(dtype) * data[b, rc, p].astype(dtype), axis=rc),
        name="conv_pw",
        attrs={POINTWISE_ROWS_KEY: rows, POINTWISE_VECTORS_KEY: vectors},
    )
    if bias is None:
        return te.compute((n, k, h, wd), lambda b, kk, y, xx: pw[b, kk, y * wd + xx], name="conv_out")
    return te.compute((n, k, h, wd), lambda b, kk, y, xx: pw[b, kk, y * wd + xx] + bias[kk], name="conv_out")


DW_WIDTH_STEP = 16  # a depthwise output row is computed this many columns at a time (8 when narrower)


def _depthwise_width(width: int, vector: int = 0) -> int:
    """Columns of a depthwise output row as computed: ``width`` rounded up to whole vectors, so the
    scheduler's register tile is a power of two (LLVM builds a 56-lane vector a lane at a time); to
    whole ``vector``s where given (``ScheduleParams.depthwise_vector_tiles``)."""
    step = vector or (8 if width <= 8 else DW_WIDTH_STEP)
    return -(-width // step) * step


# a group-1 conv of at most this many input channels (a network's RGB stem) is computed as rows of
# pixel vectors, as a depthwise conv is, summing over its few channels: the channel-vector conv's
# 27-long reduction per tile could not pay for its transposing write-back (SqueezeNet's 3 -> 64
# stem ran at 30% of the FMA peak)
ROW_CONV_MAX_CHANNELS = 4
# ... and at most this many kernel taps: the schedule unrolls channels x taps, and ViT's 16 x 16
# stride-16 patch embedding (768 unrolled taps) took a minute to compile
ROW_CONV_MAX_TAPS = 49


def _row_conv_fits(ctx, x, w, group: int) -> bool:
    """A 2-D, group-1 CPU conv of at most ``ROW_CONV_MAX_CHANNELS`` input channels and
    ``ROW_CONV_MAX_TAPS`` taps."""
    return (
        ctx.schedule is not None
        and group == 1
        and len(x.shape) == 4
        and int(x.shape[1]) <= ROW_CONV_MAX_CHANNELS
        and len(w.shape) in (4, 5)
        and int(w.shape[2]) * int(w.shape[3]) <= ROW_CONV_MAX_TAPS
    )


# a stride-2 depthwise conv's input planes are split into even and odd columns in each channel's task
# where the two halves fit this (a 56 x 56 plane takes 13 KiB; MobileNetV2's 112 x 112 one, 51 KiB, took
# 0.198 -> 0.211 ms that way, as its split planes left L1 before the taps read them). Planes of 26 and
# 38 KiB gained (one node, 1 thread, kernel time against a pass of its own, Zen 4's 32 KiB L1):
# DBNet's 96 x 80 x 80 5 x 5 0.180 -> 0.154 ms, 64 x 96 x 96 5 x 5 0.163 -> 0.144, 3 x 3 at both 3% less;
# 96 x 112 x 112 3 x 3 (51 KiB) 12% more
DW_DEINTERLEAVE_BYTES = 40 << 10


def _deinterleaved(ctx, x, strides, dilations, pads, r, s, wide, load):
    """A stride-2 depthwise conv's input split into its even and odd columns as whole planes
    (``dw_deinterleave[b, c, phase, g]``): each phase's rows of W/2 columns end to end, with
    ``top`` zero rows above and zero rows below, one zero before the first and slack after the
    last for the row tiles' columns past the output. The split of a plane of even width is one
    long run of interleaved loads (``2g + phase``), which LLVM vectorises with shuffles, where a
    split row by row, 7 to 28 columns at a time, left most of it scalar. Returns (the planes, W/2,
    whether a real output's taps reach the right padding), or None: not a CPU build, not stride 2,
    a dilation, an odd width, or planes over ``DW_DEINTERLEAVE_BYTES``."""
    n, c, h, wd = (int(d) for d in x.shape)
    _, _, oh, ow = ctx.out_shape()
    if ctx.schedule is None or list(strides) != [2, 2] or list(dilations) != [1, 1] or wd % 2:
        return None
    if pads[1] > 2 or pads[0] > r:
        return None
    half, top = wd // 2, pads[0]
    rows = max(top + h, 2 * (oh - 1) + r)
    length = 2 + rows * half + wide
    dtype = expr_dtype(load(x[0, 0, 0, 0]))
    if 2 * length * np.dtype(dtype).itemsize > DW_DEINTERLEAVE_BYTES:
        return None
    first, end = 1 + top * half, 1 + (top + h) * half

    def value(b, ch, p, g):
        t = tirx.max(tirx.min(g - first, h * half - 1), 0)
        inside = tirx.And(g >= first, g < end)
        return tirx.if_then_else(inside, load(x[b, ch, t // half, t % half * 2 + p]), tirx.const(0, dtype))

    data = te.compute(
        (n, c, 2, length), value, name="dw_deinterleave", attrs={**MATERIALISED, DW_INNER_COLUMNS_KEY: [first, end]}
    )
    return data, half, 2 * (ow - 1) + s - 1 - pads[1] > wd - 1


def _deinterleaved_tap(data, half, pad_left, right_pad, at):
    """Input of tap (rr, rs) for output (y, xx) (``at`` = (b, ch, y, xx, rr, rs)) of a stride-2 conv
    read from ``_deinterleaved``'s planes: column 2 xx + rs - pad_left is column xx + offset of its
    phase. A lane left of the input (offset -1 at xx = 0) reads the zero before the plane or a row's
    last column, one right of it (with ``right_pad``: a real output's taps reach the right padding)
    the next row's first: both are selected away (conditions TVM drops for the taps and lanes where
    they hold)."""
    b, ch, y, xx, rr, rs = at
    col = rs - pad_left
    phase = col % 2
    offset = (col - phase) // 2  # -1, 0, 1 (floor division of a tap reaching left of the input)
    inside = xx + offset >= 0
    if right_pad:
        inside = tirx.And(inside, xx + offset < half)
    v = data[b, ch, phase, 1 + (2 * y + rr) * half + xx + offset]
    return tirx.Select(inside, v, tirx.const(0, data.dtype))


def _phase_split(x, st: int, dilation: int, pads, s: int, wide: int, load):
    """``conv_pad``: a depthwise (or few-channel) conv's input padded and split by column phase (j =
    q*st + p), so that a stride-st row of ``wide`` columns reads each tap's inputs contiguously: one
    strided pass instead of a strided load per tap, padded far enough right that the extra columns
    read zeros. The columns q where every phase reads inside the input are annotated: the schedule
    cuts the pass there, and that part, free of bounds tests, becomes LLVM's interleaved loads and
    shuffles. ``load`` maps an input element to the value padded (a cast, for an integer conv)."""
    n, c, h, wd = (int(d) for d in x.shape)
    need = (wide - 1) * st + (s - 1) * dilation + 1  # padded input columns the wide row reads
    cols = -(-max(need, wd + pads[1] + pads[3]) // st)  # per column phase

    def padded(b, ch, i, j):
        inside = tirx.And(tirx.And(i >= pads[0], i < h + pads[0]), tirx.And(j >= pads[1], j < wd + pads[1]))
        value = load(x[b, ch, i - pads[0], j - pads[1]])
        return tirx.if_then_else(inside, value, tirx.const(0, expr_dtype(value)))

    inner = (max(-(-(pads[1] - p) // st) for p in range(st)), min(-(-(wd + pads[1] - p) // st) for p in range(st)))
    return te.compute(
        (n, c, h + pads[0] + pads[2], st, cols),
        lambda b, ch, i, p, q: padded(b, ch, i, q * st + p),
        name="conv_pad",
        attrs={**MATERIALISED, DW_INNER_COLUMNS_KEY: list(inner)},
    )


def _depthwise2d(ctx, x, w, bias, full: bool = False, load=None):
    """Depthwise conv (group == C, ``multiplier`` outputs per input channel), or with ``full`` a
    group-1 conv of few input channels summed over them (``ROW_CONV_MAX_CHANNELS``).

    ``dw_conv`` computes each output row ``_depthwise_width`` columns wide over the input split by
    column phase (``_phase_split``), or for a stride-2 conv of a small even-width plane over its
    even and odd columns (``_deinterleaved``); ``dw_out`` keeps the real columns (plus the bias)
    and is where a fused epilogue lands. ``load`` maps each input element to the value summed
    (``depthwise_conv``); the input as it is by default."""
    r, s = (int(d) for d in w.shape[2:4])
    _, strides, dilations, pads = conv_params(ctx, [r, s])
    load = load or (lambda v: v)
    n, c, h, wd = (int(d) for d in x.shape)
    _, k, oh, ow = ctx.out_shape()
    mult = k // c
    if full and len(w.shape) == 5:  # the prepacked [K/B, C, R, S, B] weight
        block = int(w.shape[4])

        def weight(kk, ch, ri, si):
            return w[kk // block, ch, ri, si, kk % block]
    else:

        def weight(kk, ch, ri, si):
            return w[kk, ch, ri, si]

    vector_tiles = not full and ctx.schedule is not None and ctx.schedule.depthwise_vector_tiles
    wide = _depthwise_width(ow, ctx.schedule.lanes if vector_tiles else 0)
    de = None if full else _deinterleaved(ctx, x, strides, dilations, pads, r, s, wide, load)
    if de is not None:
        data, half, right_pad = de
    else:
        data = _phase_split(x, strides[1], dilations[1], pads, s, wide, load)
    rc = te.reduce_axis((0, c), "rc") if full else None
    rr = te.reduce_axis((0, r), "rr")
    rs = te.reduce_axis((0, s), "rs")

    st = strides[1]

    def tap(b, kk, y, xx):
        if de is not None:
            at = (b, kk // mult, y, xx, rr, rs)
            return _deinterleaved_tap(data, half, pads[1], right_pad, at) * weight(kk, 0, rr, rs)
        j = rs * dilations[1]
        ch, wc = (rc, rc) if full else (kk // mult, 0)
        return data[b, ch, y * strides[0] + rr * dilations[0], j % st, xx + j // st] * weight(kk, wc, rr, rs)

    axes = [rc, rr, rs] if full else [rr, rs]
    out = te.compute((n, k, oh, wide), lambda b, kk, y, xx: te.sum(tap(b, kk, y, xx), axis=axes), name="dw_conv")
    if bias is None:
        return te.compute((n, k, oh, ow), lambda b, kk, y, xx: out[b, kk, y, xx], name="dw_out")
    return te.compute((n, k, oh, ow), lambda b, kk, y, xx: out[b, kk, y, xx] + bias[kk], name="dw_out")


def depthwise_conv(ctx, x, w, load):
    """A CPU depthwise conv (group = input channels, weight [K, 1, R, S]) of ``load(x)``, each input
    element mapped as the padding pass reads it (an integer conv's ``float32(x) - zx``), which
    padding then extends with zeros. No bias."""
    return _depthwise2d(ctx, x, w, None, load=load)


@lowering("Conv", kind="conv", prepack={1: _pack_conv_weight})
def _conv(ctx, x, w, bias=None):
    if 1 in ctx.packed and is_packed_bf16_weight(x, w):
        if ctx.schedule is not None:  # a CPU build; a GPU build takes topi's conv on the unpacked weight
            _, strides, dilations, pads = conv_params(ctx, [int(d) for d in w.shape[2:4]])
            return bf16_dot_conv(ctx, x, w, bias, strides, dilations, pads)
        w = unpacked_bf16_weight(ctx.out_shape()[1], int(x.shape[1]), w)
        ctx = dataclasses.replace(ctx, packed=ctx.packed - {1})
    if str(x.dtype) in HALF_TYPES:
        return _half_conv(ctx, x, w, bias)
    nd, strides, dilations, pads = conv_params(ctx)
    group = int(ctx.attr("group", 1))
    block = int(w.shape[4]) if 1 in ctx.packed and len(w.shape) == 5 else conv_block(ctx.schedule, ctx.out_shape()[1])
    if nd == 2 and (tile := _pointwise_tile(ctx, x, w)) is not None:
        return _pointwise2d(ctx, x, w, bias, tile)
    if nd == 2 and _row_conv_fits(ctx, x, w, group):
        return _depthwise2d(ctx, x, w, bias, full=True)
    if nd == 2 and _blocked_groups_ok(ctx.out_shape()[1], group, block) and not (group > 1 and int(w.shape[1]) == 1):
        return _conv2d_blocked(ctx, x, w, bias, block)
    if nd == 2 and group == int(x.shape[1]) and int(w.shape[1]) == 1 and ctx.schedule is not None:
        return _depthwise2d(ctx, x, w, bias)  # CPU rows; a GPU build (no ctx.schedule) takes topi's
    if nd == 2 and ctx.schedule is None and group > 1 and int(w.shape[1]) > 1:
        return grouped_gemm_conv(ctx, x, w, bias, strides, dilations, pads, group)
    pad_arg = pads
    out = topi.nn.conv(
        x, w, strides, pad_arg, dilations, group, "NCHW" if nd == 2 else {1: "NCW", 3: "NCDHW"}[nd], "", ctx.out_dtype()
    )
    if bias is not None:
        out = te.compute(out.shape, lambda b, kk, *sp: out(b, kk, *sp) + bias[kk], name="conv_bias")
    return out


def _half_conv(ctx, x, w, bias):
    """float16/bfloat16 Conv: operands widened to float32, accumulated there and rounded once (as the
    reference and onnxruntime do; a half accumulator drifts by several units in the last place)."""
    wide = dataclasses.replace(ctx, out_types=[(ctx.out_shape(), np.dtype("float32"))] + list(ctx.out_types[1:]))
    wide_bias = None if bias is None else topi.cast(bias, "float32")
    nd, _, _, _ = conv_params(ctx)
    group = int(ctx.attr("group", 1))
    packed = 1 in ctx.packed and len(w.shape) == 5
    block = int(w.shape[4]) if packed else conv_block(None, ctx.out_shape()[1])
    if (
        ctx.schedule is None  # a GPU build: the product reads the 16-bit operands, so tensor cores take it
        and nd == 2
        and (packed or 1 not in ctx.packed)
        and _blocked_groups_ok(ctx.out_shape()[1], group, block)
        and not (group > 1 and int(w.shape[1]) == 1)
    ):
        return rounded_to_half(_conv2d_blocked(wide, x, w, wide_bias, block), ctx.out_dtype())
    out = _conv(wide, topi.cast(x, "float32"), topi.cast(w, "float32"), wide_bias)
    return rounded_to_half(out, ctx.out_dtype())
