"""Lowerings of sampling-based neural-network ops: RoiAlign and DeformConv.

    RoiAlign(x[N,C,H,W], rois[R,4], batch_indices[R]){mode, output_height, output_width,
             sampling_ratio, spatial_scale, coordinate_transformation_mode}  -> y[R,C,oh,ow]

Each output bin averages (``avg``) or takes the maximum (``max``) of bilinear samples on a regular
grid inside the bin. With ``sampling_ratio=0`` the grid size comes from each ROI's size, a run-time
value, so the kernel is a TIR loop nest (``te.extern``) whose inner loop extents are computed per
ROI. The arithmetic follows ONNX's reference: float32 coordinates, samples more than one pixel
outside the image count as zero, ``max`` mode keeps the largest of the four weighted corner values.
A batch index outside ``[0, N)`` fails the run with a message.

    DeformConv(x[N,C,H,W], w[M,C/group,kh,kw], offset[N,og*kh*kw*2,oh,ow], bias?, mask?)
             {dilations, group, offset_group, pads, strides}

A 2-D convolution whose kernel taps move by per-position offsets: each tap samples ``x``
bilinearly (zero outside the image, as GridSample with align_corners does) at
``(i*stride - pad + k*dilation + offset)``, is scaled by ``mask``, and the samples are contracted
with the weights. Two TE stages: the masked samples [N, C, kh, kw, oh, ow], then the reduction.
"""

from __future__ import annotations

from tvm import te, tirx
from tvm.script.ir_builder import tirx as T

from .ops_more_common import lowering_if_missing
from .ops_more_select import Local, check, extern

F32 = "float32"


def _f(value):
    return tirx.const(float(value), F32)


class _Bilinear:
    """The four corner positions and weights of one sample at (y, x) on an H x W plane."""

    def __init__(self, y, x, height: int, width: int):
        outside = tirx.Or(tirx.Or(y < _f(-1), y > _f(height)), tirx.Or(x < _f(-1), x > _f(width)))
        y, x = tirx.max(y, _f(0)), tirx.max(x, _f(0))
        y_low, x_low = tirx.floor(y).astype("int32"), tirx.floor(x).astype("int32")
        y_edge, x_edge = y_low >= height - 1, x_low >= width - 1
        self.y_low = tirx.Select(y_edge, tirx.const(height - 1, "int32"), y_low)
        self.x_low = tirx.Select(x_edge, tirx.const(width - 1, "int32"), x_low)
        self.y_high = tirx.Select(y_edge, tirx.const(height - 1, "int32"), y_low + 1)
        self.x_high = tirx.Select(x_edge, tirx.const(width - 1, "int32"), x_low + 1)
        ly = tirx.Select(y_edge, _f(0), y - y_low.astype(F32))
        lx = tirx.Select(x_edge, _f(0), x - x_low.astype(F32))
        hy, hx = _f(1) - ly, _f(1) - lx
        keep = lambda w: tirx.Select(outside, _f(0), w)  # noqa: E731
        self.weights = [keep(hy * hx), keep(hy * lx), keep(ly * hx), keep(ly * lx)]

    def terms(self, read):
        """The four weighted corner values; ``read(row, column)`` loads a pixel as float32."""
        corners = [(self.y_low, self.x_low), (self.y_low, self.x_high), (self.y_high, self.x_low),
                   (self.y_high, self.x_high)]
        return [w * read(r, c) for w, (r, c) in zip(self.weights, corners)]


@lowering_if_missing("RoiAlign", kind="extern")
def _roi_align(ctx, x, rois, batch_indices):
    n, channels, height, width = (int(d) for d in x.shape)
    count, _, out_h, out_w = ctx.out_shape()
    mode = ctx.attr("mode", "avg")
    if mode not in ("avg", "max"):
        raise ctx.fail(f"unknown mode {mode!r}")
    half_pixel = ctx.attr("coordinate_transformation_mode", "half_pixel") == "half_pixel"
    ratio = int(ctx.attr("sampling_ratio", 0))
    scale = float(ctx.attr("spatial_scale", 1.0))
    out_dtype = ctx.out_dtype()
    message = f"{ctx.op}: a batch index is outside [0, {n})"

    def body(ins, outs):
        data, boxes, batches, result = ins[0], ins[1], ins[2], outs[0]
        with T.serial(0, count) as r:
            batch = Local(batches[r].astype("int64"))
            check(tirx.And(batch.value >= 0, batch.value < n), message)
            offset = _f(0.5 if half_pixel else 0.0)
            corner = [Local(boxes[r, k].astype(F32) * _f(scale) - offset, F32) for k in range(4)]
            start_w, start_h, end_w, end_h = corner
            roi_w, roi_h = Local(end_w.value - start_w.value, F32), Local(end_h.value - start_h.value, F32)
            if not half_pixel:  # malformed ROIs become 1x1
                roi_w.set(tirx.max(roi_w.value, _f(1)))
                roi_h.set(tirx.max(roi_h.value, _f(1)))
            bin_h, bin_w = Local(roi_h.value / _f(out_h), F32), Local(roi_w.value / _f(out_w), F32)
            if ratio > 0:
                grid_h, grid_w = Local(ratio, "int32"), Local(ratio, "int32")
            else:
                grid_h = Local(tirx.ceil(roi_h.value / _f(out_h)).astype("int32"), "int32")
                grid_w = Local(tirx.ceil(roi_w.value / _f(out_w)).astype("int32"), "int32")
            samples = tirx.max(grid_h.value * grid_w.value, 1).astype(F32)
            with T.grid(channels, out_h, out_w) as (c, ph, pw):
                total = Local(0.0, F32)
                seen = Local(0, "int32")
                with T.serial(0, grid_h.value) as iy:
                    y = start_h.value + ph.astype(F32) * bin_h.value + \
                        (iy.astype(F32) + _f(0.5)) * bin_h.value / grid_h.value.astype(F32)
                    with T.serial(0, grid_w.value) as ix:
                        xx = start_w.value + pw.astype(F32) * bin_w.value + \
                            (ix.astype(F32) + _f(0.5)) * bin_w.value / grid_w.value.astype(F32)
                        sample = _Bilinear(y, xx, height, width)
                        terms = sample.terms(lambda row, col: data[batch.value, c, row, col].astype(F32))
                        if mode == "avg":
                            total.set(total.value + terms[0] + terms[1] + terms[2] + terms[3])
                        else:
                            best = tirx.max(tirx.max(terms[0], terms[1]), tirx.max(terms[2], terms[3]))
                            with T.If(seen.value == 0):
                                with T.Then():
                                    total.set(best)
                                    seen.set(1)
                                with T.Else():
                                    total.set(tirx.max(total.value, best))
                value = total.value / samples if mode == "avg" else total.value
                T.buffer_store(result, value.astype(out_dtype), [r, c, ph, pw])

    return extern(ctx, [x, rois, batch_indices], body, "roi_align")[0]


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
            value = tirx.Select(inside, x(n, c, at_r, at_c).astype(f64), tirx.const(0.0, f64))
            total = total + wy * wx * value
    return total


@lowering_if_missing("DeformConv", kind="reduce")
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
        raise ctx.fail(f"weight shape {wdims} does not fit {channels} channels in {group} groups "
                       f"and {offset_group} offset groups")
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
