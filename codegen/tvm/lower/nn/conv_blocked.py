"""Lowerings of the blocked-layout ops that ``convert-layout`` makes (``compiler/ops/ember_layout.py``).

    ember.ConvBlocked(x[N, C/c, H, W, c], w[K, C, R, S], b[K]?) -> y[N, K/c, OH, OW, c]

The same register-tiled compute as Conv's packed path (``conv.py``: ``conv_blk``, the weight
prepacked at compile time into ``[K/c, C, R, S, c]``, the ``conv`` schedule) with neither the
input read through NCHW nor an unpack stage: ``conv_out`` writes the block as it is, so the next
blocked kernel reads it directly. Its schedule is the conv one plus a vectorised write-back (the
innermost loop is the c-lane channel block).

A depthwise one (group = C = K) is ``dw_blk``: each output vector of c channels is the sum over the
R x S taps of an input vector times a weight vector (``[C/c, 1, R, S, c]``), with the same tiling:
a row of up to 8 output pixels in registers, parallel over (image, channel block, row).

    ember.LayoutTransform(x){src, dst}   NCHW <-> NCHW{c}c, an injective copy
"""

from __future__ import annotations

import numpy as np
from tvm import te, topi

from compiler.ops.ember_layout import lanes_of

from ....target import ScheduleParams
from ...registry import lowering
from ...schedule import CONV_STRIDE_KEY, SCHEDULES, inline_injective, schedule_conv, schedule_stages_if_present
from ...te_util import MATERIALISED


def _pack_blocked_weight(attrs, in_types, w):
    """[K, C, R, S] -> [K/c, C, R, S, c] for the layout's c (K is a multiple of c)."""
    lanes = lanes_of(attrs["layout"])
    k = w.shape[0]
    return np.ascontiguousarray(w.reshape(k // lanes, lanes, *w.shape[1:]).transpose(0, 2, 3, 4, 1))


def _schedule_depthwise_blocked(sch, lanes: int) -> None:
    """``dw_blk``: [up to 8 pixels x c lanes] accumulated in registers over the taps."""
    dw = sch.get_sblock("dw_blk")
    n, ko, y, x, ki, rr, rs = sch.get_loops(dw)
    width = int(sch.get(x).extent)
    tile = next(d for d in range(min(width, 8), 0, -1) if width % d == 0)
    xo, xi = sch.split(x, [None, tile])
    sch.reorder(n, ko, y, xo, rr, rs, xi, ki)
    acc = sch.cache_write(dw, 0, "local")
    sch.reverse_compute_at(acc, xo)
    outer = sch.fuse(n, ko, y)
    sch.reverse_compute_at(sch.get_output_blocks(sch.get_sblock("root"))[0], outer)
    sch.parallel(outer)
    sch.vectorize(ki)
    sch.unroll(xi)
    sch.decompose_reduction(dw, rr)
    sch.vectorize(sch.get_loops(acc)[-1])
    sch.vectorize(sch.get_loops(sch.get_sblock("dw_blk_init"))[-1])
    schedule_stages_if_present(sch, ("conv_pad", "conv_wpack"), lanes)


def schedule_conv_blocked(sch, params: ScheduleParams) -> None:
    """The packed-conv schedule (or the depthwise one), then the blocked write-back vectorised."""
    inline_injective(sch)
    try:
        sch.get_sblock("dw_blk")
    except Exception:
        schedule_conv(sch, params)
    else:
        _schedule_depthwise_blocked(sch, params.lanes)
    out = sch.get_output_blocks(sch.get_sblock("root"))[0]
    try:
        sch.vectorize(sch.get_loops(out)[-1])
    except Exception:  # already vectorised, or a fused epilogue that TVM cannot vectorise: scalar is correct
        pass


SCHEDULES.setdefault("conv-blocked", schedule_conv_blocked)


@lowering("ember.ConvBlocked", kind="conv-blocked", prepack={1: _pack_blocked_weight})
def _conv_blocked(ctx, x, w, bias=None):
    lanes = lanes_of(ctx.attr("layout"))
    strides, dilations, pads = ctx.attr("strides"), ctx.attr("dilations"), ctx.attr("pads")
    n, cb, h, wd, _ = (int(d) for d in x.shape)
    _, kb, oh, ow, _ = ctx.out_shape()
    channels = cb * lanes
    if int(ctx.attr("group", 1)) != 1:
        return _depthwise_blocked(ctx, x, w, bias)
    if 1 in ctx.packed:
        r, s = (int(d) for d in w.shape[2:4])
        wp = w
    else:
        r, s = (int(d) for d in w.shape[2:])
        wp = te.compute(
            (kb, channels, r, s, lanes),
            lambda a, ci, ri, si, b: w[a * lanes + b, ci, ri, si],
            name="conv_wpack",
            attrs=MATERIALISED,
        )
    data = _padded(x, pads)
    rc = te.reduce_axis((0, channels), "rc")
    rr = te.reduce_axis((0, r), "rr")
    rs = te.reduce_axis((0, s), "rs")
    dtype = ctx.out_dtype()
    blk = te.compute(
        (n, kb, oh, ow, lanes),
        lambda b, ko, y, xx, ki: te.sum(
            data[
                b, rc // lanes, y * strides[0] + rr * dilations[0], xx * strides[1] + rs * dilations[1], rc % lanes
            ].astype(dtype)
            * wp[ko, rc, rr, rs, ki].astype(dtype),
            axis=[rc, rr, rs],
        ),
        name="conv_blk",
        attrs={CONV_STRIDE_KEY: strides[1]},
    )
    return _with_bias(blk, bias, lanes)


def _padded(x, pads):
    if not any(pads):
        return x
    return topi.nn.pad(x, [0, 0, pads[0], pads[1], 0], [0, 0, pads[2], pads[3], 0], name="conv_pad", attrs=MATERIALISED)


def _with_bias(blk, bias, lanes):
    if bias is None:
        return te.compute(blk.shape, lambda b, ko, y, xx, ki: blk[b, ko, y, xx, ki], name="conv_out")
    return te.compute(
        blk.shape, lambda b, ko, y, xx, ki: blk[b, ko, y, xx, ki] + bias[ko * lanes + ki], name="conv_out"
    )


def _depthwise_blocked(ctx, x, w, bias):
    lanes = lanes_of(ctx.attr("layout"))
    strides, dilations, pads = ctx.attr("strides"), ctx.attr("dilations"), ctx.attr("pads")
    r, s = (int(d) for d in w.shape[2:4])
    if 1 in ctx.packed:
        wp = w
    else:
        kb = int(w.shape[0]) // lanes
        wp = te.compute(
            (kb, 1, r, s, lanes),
            lambda a, z, ri, si, b: w[a * lanes + b, z, ri, si],
            name="conv_wpack",
            attrs=MATERIALISED,
        )
    data = _padded(x, pads)
    rr = te.reduce_axis((0, r), "rr")
    rs = te.reduce_axis((0, s), "rs")
    blk = te.compute(
        ctx.out_shape(),
        lambda b, ko, y, xx, ki: te.sum(
            data[b, ko, y * strides[0] + rr * dilations[0], xx * strides[1] + rs * dilations[1], ki]
            * wp[ko, 0, rr, rs, ki],
            axis=[rr, rs],
        ),
        name="dw_blk",
    )
    return _with_bias(blk, bias, lanes)


@lowering("ember.LayoutTransform")
def _layout_transform(ctx, x):
    to_lanes = lanes_of(ctx.attr("dst"))
    if to_lanes is not None:
        return te.compute(
            ctx.out_shape(), lambda b, co, y, xx, ci: x[b, co * to_lanes + ci, y, xx], name="layout_to_blocked"
        )
    lanes = lanes_of(ctx.attr("src"))
    return te.compute(
        ctx.out_shape(), lambda b, k, y, xx: x[b, k // lanes, y, xx, k % lanes], name="layout_from_blocked"
    )
