"""Lowering of ConvTranspose (1-D to 3-D, groups, strides, dilations, pads, output_padding,
output_shape, auto_pad).

The output shape comes from the graph's types (shape inference already applied ``output_shape``,
``output_padding`` and ``auto_pad``); the begin pads are the ``pads`` attribute, or, when pads are
implicit, derived from the total padding ``stride (in - 1) + output_padding + dilation (k - 1) + 1 - out``
split like the ONNX reference (``SAME_UPPER`` puts the smaller half first).

**Fast path** (2-D, ``group == 1``): stride decomposition. Along each dim, write an output
position as ``o + pad = q * s + r`` with the phase ``r`` in ``[0, s)``. The taps that reach phase
``r`` are those with ``k * dilation = r + s * t``; they read input ``i = q - t``. So each phase is
an ordinary stride-1 correlation over the phase grid ``q`` with a sub-kernel of ``T = (K - 1) *
dilation // s + 1`` taps (zero where a phase has fewer taps). All ``s_y * s_x`` phases share the
input window, so they become output channels of one convolution:

    blk[n, j/16, a_y, a_x, j%16] = sum_{c, u_y, u_x} xpad[n, c, a_y + u_y + off_y, a_x + u_x + off_x]
                                                   * wsub[j, c, u_y, u_x]
    with j = (r_y * s_x + r_x) * M + m,   wsub[j, c, u_y, u_x] = w[c, m, k_y, k_x]
         where k_d * dilation_d = r_d + s_d * (T_d - 1 - u_d)   (0 when no such tap)
    y[n, m, o_y, o_x] = blk[n, j/16, a_y, a_x, j%16] (+ bias[m])   (the depth-to-space write-back)

``wsub`` is prepacked at compile time into the packed Conv layout ``[J/16, C, T_y, T_x, 16]`` (a
run-time weight is packed by a materialised stage), and ``blk`` is register-tiled by the ``conv``
schedule family (``schedule.schedule_conv_transpose``). For ``kernel == stride`` (the common 2x
upsampling) ``T = 1`` and the whole op is one GEMM with no wasted multiply. One parallel task
computes a phase-grid row (every phase channel); when the begin pad is a multiple of the stride,
that row makes output rows ``[a*s, a*s + s)`` and their write-back follows in the same task, while
the row is in cache (the block is marked ``schedule.PHASE_ROWS_ALIGNED``); else the write-back is
a pass of its own.

**Generic path** (every other case): gather form, one reduction per output element,

    y[n, g*M + m, o...] = b[g*M + m] + sum_{c < C/G, k...} x[n, g*C/G + c, i...] * w[g*C/G + c, m, k...]
    where i_d = (o_d + pad_begin_d - k_d * dilation_d) / stride_d is an integer in [0, in_d)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tvm import te, tirx, topi

from compiler.ir.types import DType, TensorType
from compiler.ops.kernels_contrib import infer_as

from ...registry import lowering
from ...schedule import PHASE_ROWS_ALIGNED
from ...te_util import HALF_TYPES, MATERIALISED, ints, read_if
from .conv import CONV_LANES


def _begin_pads(attrs, in_dims, kernel, strides, dilations, out_dims) -> list[int]:
    nd = len(in_dims)
    pads = attrs.get("pads")
    auto_pad = attrs.get("auto_pad", "NOTSET")
    if pads is not None and auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        return ints(pads)[:nd]
    out_pad = ints(attrs.get("output_padding") or [0] * nd)
    begin = []
    for d in range(nd):
        total = strides[d] * (in_dims[d] - 1) + out_pad[d] + (kernel[d] - 1) * dilations[d] + 1 - out_dims[d]
        if pads is None and auto_pad not in ("SAME_UPPER", "SAME_LOWER") and attrs.get("output_shape") is None:
            begin.append(0)
        elif auto_pad == "SAME_UPPER":
            begin.append(total // 2)
        else:
            begin.append(total - total // 2)
    return begin


@dataclass(frozen=True)
class PhaseDim:
    """One spatial dim of the stride decomposition (see the module docstring)."""

    stride: int
    dilation: int
    kernel: int
    taps: int  # T: sub-kernel taps per phase
    grid: int  # A: phase-grid positions computed (rounded up for the register tile)
    first: int  # q0: the phase-grid row of output 0, shifted by `shift` strides
    shift: int  # L: strides added to the begin pad so that it is not negative
    pad: int  # begin pad (may be negative)
    pad_before: int  # zeros before the input
    pad_after: int  # zeros after the input
    offset: int  # xpad index of (a = 0, u = 0)

    def tap_of(self, r: int, u: int) -> int | None:
        """The kernel tap that phase ``r`` reads at sub-kernel position ``u``, or None."""
        dilated = r + self.stride * (self.taps - 1 - u)
        if dilated % self.dilation:
            return None
        k = dilated // self.dilation
        return k if k < self.kernel else None


def phase_dim(in_len: int, out_len: int, kernel: int, stride: int, dilation: int, pad: int, tile: int, taps=None):
    taps = (kernel - 1) * dilation // stride + 1 if taps is None else taps
    shift = -(-max(0, -pad) // stride)
    padded = pad + shift * stride
    first = padded // stride
    grid = (out_len - 1 + padded) // stride - first + 1
    if grid > tile:
        grid = -(-grid // tile) * tile
    pad_before = max(0, taps - 1 + shift - first)
    offset = first - shift - (taps - 1) + pad_before
    pad_after = max(0, grid + taps - 1 + offset - pad_before - in_len)
    return PhaseDim(stride, dilation, kernel, taps, grid, first, shift, pad, pad_before, pad_after, offset)


REGISTER_TILE = 8  # output pixels per register tile of the conv schedule (schedule_util.divisor_at_most(ow, 8))


def _pads_explicit(attrs) -> bool:
    """Whether the begin pads are the ``pads`` attribute (then they do not depend on the kernel size)."""
    return attrs.get("pads") is not None and attrs.get("auto_pad", "NOTSET") not in ("SAME_UPPER", "SAME_LOWER")


def _geometry(attrs, x_shape, kernel, out_shape, taps=(None, None)):
    """The two PhaseDims of a 2-D ConvTranspose, or None when the fast path does not apply.
    ``kernel`` may be None when the pads are explicit and ``taps`` (from a packed weight) are given."""
    if len(x_shape) != 4 or int(attrs.get("group", 1)) != 1:
        return None
    in_dims, out_dims = list(x_shape[2:]), list(out_shape[2:])
    strides = ints(attrs.get("strides") or [1, 1])
    dilations = ints(attrs.get("dilations") or [1, 1])
    if kernel is None:
        begin, kernel = ints(attrs["pads"])[:2], [0, 0]
    else:
        begin = _begin_pads(attrs, in_dims, kernel, strides, dilations, out_dims)
    tiles = (1, REGISTER_TILE)
    return [
        phase_dim(in_dims[d], out_dims[d], kernel[d], strides[d], dilations[d], begin[d], tiles[d], taps[d])
        for d in (0, 1)
    ]


def _sub_kernel_taps(dims, m_count: int):
    """(j, m, (u_y, k_y), (u_x, k_x)) for every nonzero entry of the phase weight."""
    dy, dx = dims
    for ry in range(dy.stride):
        for rx in range(dx.stride):
            for uy in range(dy.taps):
                ky = dy.tap_of(ry, uy)
                if ky is None:
                    continue
                for ux in range(dx.taps):
                    kx = dx.tap_of(rx, ux)
                    if kx is None:
                        continue
                    for m in range(m_count):
                        yield (ry * dx.stride + rx) * m_count + m, m, (uy, ky), (ux, kx)


def _out_shape_of(attrs, x_shape, w_shape):
    """ConvTranspose's output shape as shape inference gives it (ONNX's inference)."""
    operands = [TensorType(DType.FLOAT32, tuple(x_shape)), TensorType(DType.FLOAT32, tuple(w_shape))]
    inferred = infer_as(None, "ConvTranspose", operands, attrs)[0]
    return None if inferred is None else tuple(inferred.shape)


def _pack_phase_weight(attrs, in_types, w):
    """[C, M, K_y, K_x] -> [ceil(J/16), C, T_y, T_x, 16] with J = s_y * s_x * M phase channels."""
    if in_types[0] is None or w.ndim != 4 or not _pads_explicit(attrs):
        return w  # the lowering sees only the packed shape: it must not need the kernel size
    out_shape = _out_shape_of(attrs, in_types[0][0], w.shape)
    dims = None if out_shape is None else _geometry(attrs, in_types[0][0], w.shape[2:], out_shape)
    if dims is None:
        return w
    c, m_count = w.shape[:2]
    j_count = dims[0].stride * dims[1].stride * m_count
    blocks = -(-j_count // CONV_LANES)
    packed = np.zeros((blocks * CONV_LANES, c, dims[0].taps, dims[1].taps), dtype=w.dtype)
    for j, m, (uy, ky), (ux, kx) in _sub_kernel_taps(dims, m_count):
        packed[j, :, uy, ux] = w[:, m, ky, kx]
    return packed.reshape(blocks, CONV_LANES, c, dims[0].taps, dims[1].taps).transpose(0, 2, 3, 4, 1).copy()


def _phase_weight(w, dims, j_count: int):
    """The packed phase weight computed by the kernel (a run-time ``w``), as ``_pack_phase_weight``."""
    c, m_count = (int(d) for d in w.shape[:2])
    dy, dx = dims
    blocks = -(-j_count // CONV_LANES)
    zero = tirx.const(0, w.dtype)

    def tap(d, r, u):  # the kernel tap (expression) and whether it exists
        dilated = r + d.stride * (d.taps - 1 - u)
        k = tirx.indexdiv(dilated, d.dilation)
        return k, tirx.all(tirx.indexmod(dilated, d.dilation) == 0, k < d.kernel)

    def body(jb, ci, uy, ux, ji):
        j = jb * CONV_LANES + ji
        m = tirx.indexmod(j, m_count)
        phase = tirx.indexdiv(j, m_count)
        ky, ok_y = tap(dy, tirx.indexdiv(phase, dx.stride), uy)
        kx, ok_x = tap(dx, tirx.indexmod(phase, dx.stride), ux)
        inside = tirx.all(j < j_count, ok_y, ok_x)
        read = w[ci, tirx.min(m, m_count - 1), tirx.min(ky, dy.kernel - 1), tirx.min(kx, dx.kernel - 1)]
        return read_if(inside, read, zero)

    return te.compute((blocks, c, dy.taps, dx.taps, CONV_LANES), body, name="conv_wpack", attrs=MATERIALISED)


def _phase_conv(ctx, x, w, bias, dims):
    """The stride-decomposed ConvTranspose (module docstring): ``conv_blk`` then the write-back."""
    dy, dx = dims
    n, c = (int(d) for d in x.shape[:2])
    out_shape = ctx.out_shape()
    m_count = out_shape[1]
    j_count = dy.stride * dx.stride * m_count
    wp = w if 1 in ctx.packed else _phase_weight(w, dims, j_count)
    blocks = int(wp.shape[0])
    acc = "float32" if ctx.out_dtype() in HALF_TYPES else ctx.out_dtype()
    if dy.pad_before or dy.pad_after or dx.pad_before or dx.pad_after:
        data = topi.nn.pad(
            x,
            [0, 0, dy.pad_before, dx.pad_before],
            [0, 0, dy.pad_after, dx.pad_after],
            name="conv_pad",
            attrs=MATERIALISED,
        )
    else:
        data = x
    rc = te.reduce_axis((0, c), "rc")
    ru = te.reduce_axis((0, dy.taps), "ru")
    rv = te.reduce_axis((0, dx.taps), "rv")
    blk = te.compute(
        (n, blocks, dy.grid, dx.grid, CONV_LANES),
        lambda b, jb, ay, ax, ji: te.sum(
            data[b, rc, ay + ru + dy.offset, ax + rv + dx.offset].astype(acc) * wp[jb, rc, ru, rv, ji].astype(acc),
            axis=[rc, ru, rv],
        ),
        name="conv_blk",
    )

    def out(b, m, oy, ox):
        qy, qx = oy + dy.pad + dy.shift * dy.stride, ox + dx.pad + dx.shift * dx.stride
        ry, rx = tirx.indexmod(qy, dy.stride), tirx.indexmod(qx, dx.stride)
        j = (ry * dx.stride + rx) * m_count + m
        value = blk[
            b,
            tirx.indexdiv(j, CONV_LANES),
            tirx.indexdiv(qy, dy.stride) - dy.first,
            tirx.indexdiv(qx, dx.stride) - dx.first,
            tirx.indexmod(j, CONV_LANES),
        ]
        if bias is not None:
            value = value + bias[m].astype(acc)
        return value.astype(ctx.out_dtype())

    aligned = (dy.pad + dy.shift * dy.stride) % dy.stride == 0  # grid row a makes output rows [a*s, a*s + s)
    return te.compute(out_shape, out, name="conv_transpose_out", attrs={PHASE_ROWS_ALIGNED: int(aligned)})


def _gather_conv_transpose(ctx, x, w, bias=None):
    """The generic gather form (module docstring): any rank, groups, dilations and pads."""
    in_dims = [int(d) for d in x.shape[2:]]
    nd = len(in_dims)
    kernel = [int(d) for d in w.shape[2:]]
    strides = ints(ctx.attr("strides") or [1] * nd)
    dilations = ints(ctx.attr("dilations") or [1] * nd)
    out_shape = ctx.out_shape()
    out_dims = list(out_shape[2:])
    begin = _begin_pads(ctx.attrs, in_dims, kernel, strides, dilations, out_dims)
    groups = int(ctx.attr("group", 1))
    c_per_group = int(x.shape[1]) // groups
    m_per_group = int(w.shape[1])
    rc = te.reduce_axis((0, c_per_group), name="rc")
    rk = [te.reduce_axis((0, k), name=f"rk{d}") for d, k in enumerate(kernel)]
    acc = "float32" if ctx.out_dtype() in HALF_TYPES else ctx.out_dtype()

    def body(n, m, *o):
        g = tirx.indexdiv(m, m_per_group)
        ml = tirx.indexmod(m, m_per_group)
        c = g * c_per_group + rc
        conds, idx = [], []
        for d in range(nd):
            t = o[d] + begin[d] - rk[d] * dilations[d]
            conds += [t >= 0, tirx.indexmod(t, strides[d]) == 0, tirx.indexdiv(t, strides[d]) < in_dims[d]]
            idx.append(tirx.indexdiv(t, strides[d]))
        product = x(n, c, *idx).astype(acc) * w(c, ml, *rk).astype(acc)
        value = tirx.if_then_else(tirx.all(*conds), product, tirx.const(0, acc))
        return te.sum(value, axis=[rc, *rk])

    y = te.compute(out_shape, body, name="conv_transpose")
    if bias is not None:
        y = te.compute(out_shape, lambda n, m, *o: y(n, m, *o) + bias(m).astype(acc), name="conv_transpose_bias")
    if acc != ctx.out_dtype():
        y = te.compute(out_shape, lambda *i: y(*i).astype(ctx.out_dtype()), name="conv_transpose_cast")
    return y


@lowering("ConvTranspose", kind="conv_transpose", prepack={1: _pack_phase_weight})
def _conv_transpose(ctx, x, w, bias=None):
    x_shape = tuple(int(d) for d in x.shape)
    if 1 in ctx.packed:  # [J/16, C, T_y, T_x, 16]: explicit pads, the taps from the packed shape
        dims = _geometry(ctx.attrs, x_shape, None, ctx.out_shape(), (int(w.shape[2]), int(w.shape[3])))
    else:
        dims = _geometry(ctx.attrs, x_shape, [int(d) for d in w.shape[2:]], ctx.out_shape())
    if dims is None:
        return _gather_conv_transpose(ctx, x, w, bias)
    return _phase_conv(ctx, x, w, bias, dims)
