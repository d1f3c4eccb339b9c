"""Lowering of DeformConv.

    DeformConv(x[N,C,H,W], w[M,C/group,kh,kw], offset[N,og*kh*kw*2,oh,ow], bias?, mask?)
             {dilations, group, offset_group, pads, strides}

A 2-D convolution whose kernel taps move by per-position offsets: each tap samples ``x``
bilinearly (zero outside the image, as GridSample with align_corners does) at
``(i*stride - pad + k*dilation + offset)``, is scaled by ``mask``, and the samples are contracted
with the weights. Two TE stages: the masked samples [N, C, kh, kw, oh, ow], then the reduction.
"""

from __future__ import annotations

from tvm import te, tirx

from ...registry import lowering
from ...te_util import read_if


def _bilinear_zero_padded(x, n, c, y, xx, height: int, width: int):
    """x[n, c] sampled at the float64 position (y, xx): bilinear, corners outside the image read 0."""
    f64 = "float64"
    y0, x0 = tirx.floor(y), tirx.floor(xx)
    ly, lx = y - y0, xx - x0
    y0, x0 = y0.astype("int64"), x0.astype("int64")
    total = tirx.const(0.0, f64)
    for dy, wy in ((0, tirx.const(1.0, f64) - ly), (1, ly)):
        for dx, wx in ((0, tirx.const(1.0, f64) - lx), (1, lx)):
            r, col = y0 + dy, x0 + dx
            inside = tirx.And(tirx.And(r >= 0, r < height), tirx.And(col >= 0, col < width))
            at_r = tirx.max(tirx.const(0, "int64"), tirx.min(r, tirx.const(height - 1, "int64")))
            at_c = tirx.max(tirx.const(0, "int64"), tirx.min(col, tirx.const(width - 1, "int64")))
            value = read_if(inside, x(n, c, at_r, at_c).astype(f64), tirx.const(0.0, f64))
            total = total + wy * wx * value
    return total


@lowering("DeformConv", kind="reduce")
def _deform_conv(ctx, x, w, offset, bias=None, mask=None):
    dims, wdims = [int(d) for d in x.shape], [int(d) for d in w.shape]
    if len(dims) != 4:
        raise ctx.fail(f"only 2-D DeformConv is supported (input shape {dims})")
    n, channels, height, width = dims
    out_channels, group_in, kh, kw = wdims
    group, offset_group = int(ctx.attr("group", 1)), int(ctx.attr("offset_group", 1))
    strides = [int(v) for v in (ctx.attr("strides") or [1, 1])]
    dilations = [int(v) for v in (ctx.attr("dilations") or [1, 1])]
    pads = [int(v) for v in (ctx.attr("pads") or [0, 0, 0, 0])]
    out_h, out_w = ctx.out_shape()[2:]
    if group_in * group != channels or out_channels % group or channels % offset_group:
        raise ctx.fail(
            f"weight shape {wdims} does not fit {channels} channels in {group} groups and {offset_group} offset groups"
        )
    if int(offset.shape[1]) != offset_group * kh * kw * 2:
        raise ctx.fail(f"offset has {int(offset.shape[1])} channels; expected {offset_group * kh * kw * 2}")
    per_offset_group, per_group_out = channels // offset_group, out_channels // group
    dtype, f64 = str(x.dtype), "float64"

    def sample(b, c, ki, kj, i, j):
        g = tirx.floordiv(c, per_offset_group)
        tap = (g * kh + ki) * kw + kj
        y = (i * strides[0] - pads[0] + ki * dilations[0]).astype(f64) + offset(b, tap * 2, i, j).astype(f64)
        xx = (j * strides[1] - pads[1] + kj * dilations[1]).astype(f64) + offset(b, tap * 2 + 1, i, j).astype(f64)
        value = _bilinear_zero_padded(x, b, c, y, xx, height, width)
        if mask is not None:
            value = value * mask(b, tap, i, j).astype(f64)
        return value.astype(dtype)

    samples = te.compute((n, channels, kh, kw, out_h, out_w), sample, name="deform_samples")
    rc, ri, rj = te.reduce_axis((0, group_in), "rc"), te.reduce_axis((0, kh), "ri"), te.reduce_axis((0, kw), "rj")

    def body(b, m, i, j):
        c = tirx.floordiv(m, per_group_out) * group_in + rc
        return te.sum(samples(b, c, ri, rj, i, j) * w(m, rc, ri, rj), axis=[rc, ri, rj])

    out = te.compute((n, out_channels, out_h, out_w), body, name="deform_conv")
    if bias is None:
        return out
    return te.compute(out.shape, lambda b, m, i, j: out(b, m, i, j) + bias(m), name="deform_conv_bias")


# Col2Im ----------------------------------------------------------------------------------------------
