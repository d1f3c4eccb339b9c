"""Lowerings of neural-network ops: Conv, Gemm/MatMul, pooling, normalisation, softmax.

Convolutions with ``group == 1`` and 2-D kernels use Ember's own compute: the weight is prepacked
at compile time into ``[K/16, C, R, S, 16]`` so the innermost loop is a 16-lane vector over output
channels (``conv_blk``); the result is written in NCHW by ``conv_out``, where epilogues fuse.
Other convolutions fall back to ``topi.nn.conv``. Gemm with ``transB`` gets its weight transposed at
compile time so that the vector loop over N reads contiguous memory.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from tvm import te, tirx, topi

from .registry import lowering

HALF_TYPES = ("float16", "bfloat16")

CONV_LANES = 16  # output-channel block of the packed conv weight


def _ints(value, n, default):
    return [int(v) for v in value] if value is not None else [default] * n


def _conv_params(ctx, kernel=None):
    """(spatial rank, strides, dilations, pads as [begin..., end...]) with auto_pad resolved."""
    x_shape = ctx.in_types[0][0]
    nd = len(x_shape) - 2
    strides = _ints(ctx.attr("strides"), nd, 1)
    dilations = _ints(ctx.attr("dilations"), nd, 1)
    if kernel is None:
        kernel = list(ctx.attr("kernel_shape") or ctx.in_types[1][0][2:])
    pads = _ints(ctx.attr("pads"), 2 * nd, 0)
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


def _blocked_groups_ok(k: int, group: int) -> bool:
    """The blocked conv handles ``group`` when no 16-channel output block straddles two groups."""
    return group == 1 or (k % group == 0 and (k // group) % CONV_LANES == 0)


def _pack_conv_weight(attrs, in_types, w):
    """[K, C, R, S] -> [ceil(K/16), C, R, S, 16] (zero-padded output channels)."""
    group = int(attrs.get("group", 1))
    if w.ndim != 4 or not _blocked_groups_ok(w.shape[0], group):
        return w
    k = w.shape[0]
    kb = -(-k // CONV_LANES)
    padded = np.zeros((kb * CONV_LANES,) + w.shape[1:], dtype=w.dtype)
    padded[:k] = w
    return padded.reshape(kb, CONV_LANES, *w.shape[1:]).transpose(0, 2, 3, 4, 1).copy()


def _conv2d_blocked(ctx, x, w, bias):
    _, strides, dilations, pads = _conv_params(ctx)
    n, c, h, wd = (int(d) for d in x.shape)
    _, k, oh, ow = ctx.out_shape()
    group = int(ctx.attr("group", 1))
    c_per_group = c // group
    blocks_per_group = -(-k // CONV_LANES) // group
    if 1 in ctx.packed:
        kb, _, r, s, _ = (int(d) for d in w.shape)
        wp = w
    else:
        kk, _, r, s = (int(d) for d in w.shape)
        kb = -(-kk // CONV_LANES)
        wp = te.compute((kb, c_per_group, r, s, CONV_LANES), lambda a, ci, ri, si, b: tirx.Select(
            a * CONV_LANES + b < kk, w[tirx.min(a * CONV_LANES + b, kk - 1), ci, ri, si], tirx.const(0, w.dtype)),
            name="conv_wpack")
    if any(pads):
        data = topi.nn.pad(x, [0, 0, pads[0], pads[1]], [0, 0, pads[2], pads[3]], name="conv_pad")
    else:
        data = x
    rc = te.reduce_axis((0, c_per_group), "rc")
    rr = te.reduce_axis((0, r), "rr")
    rs = te.reduce_axis((0, s), "rs")
    blk = te.compute(
        (n, kb, oh, ow, CONV_LANES),
        lambda b, ko, y, xx, ki: te.sum(
            data[b, rc if group == 1 else ko // blocks_per_group * c_per_group + rc,
                 y * strides[0] + rr * dilations[0], xx * strides[1] + rs * dilations[1]].astype(ctx.out_dtype())
            * wp[ko, rc, rr, rs, ki].astype(ctx.out_dtype()), axis=[rc, rr, rs]),
        name="conv_blk")
    if bias is None:
        return te.compute((n, k, oh, ow), lambda b, kk, y, xx: blk[b, kk // CONV_LANES, y, xx, kk % CONV_LANES],
                          name="conv_out")
    return te.compute((n, k, oh, ow),
                      lambda b, kk, y, xx: blk[b, kk // CONV_LANES, y, xx, kk % CONV_LANES] + bias[kk],
                      name="conv_out")


def _depthwise2d(ctx, x, w, bias):
    """Depthwise conv (group == C): ``dw_conv`` block, vectorised along output rows by the scheduler."""
    _, strides, dilations, pads = _conv_params(ctx)
    n, c, h, wd = (int(d) for d in x.shape)
    _, k, oh, ow = ctx.out_shape()
    mult = k // c
    r, s = (int(d) for d in w.shape[2:])
    data = topi.nn.pad(x, [0, 0, pads[0], pads[1]], [0, 0, pads[2], pads[3]], name="conv_pad") if any(pads) else x
    rr = te.reduce_axis((0, r), "rr")
    rs = te.reduce_axis((0, s), "rs")
    out = te.compute((n, k, oh, ow), lambda b, kk, y, xx: te.sum(
        data[b, kk // mult, y * strides[0] + rr * dilations[0], xx * strides[1] + rs * dilations[1]]
        * w[kk, 0, rr, rs], axis=[rr, rs]), name="dw_conv")
    if bias is None:
        return out
    return te.compute(out.shape, lambda b, kk, y, xx: out[b, kk, y, xx] + bias[kk], name="conv_bias")


@lowering("Conv", kind="conv", prepack={1: _pack_conv_weight})
def _conv(ctx, x, w, bias=None):
    if str(x.dtype) in HALF_TYPES:
        return _half_conv(ctx, x, w, bias)
    nd, strides, dilations, pads = _conv_params(ctx)
    group = int(ctx.attr("group", 1))
    if nd == 2 and _blocked_groups_ok(ctx.out_shape()[1], group) and not (group > 1 and int(w.shape[1]) == 1):
        return _conv2d_blocked(ctx, x, w, bias)
    if nd == 2 and group == int(x.shape[1]) and int(w.shape[1]) == 1:
        return _depthwise2d(ctx, x, w, bias)
    pad_arg = pads
    out = topi.nn.conv(x, w, strides, pad_arg, dilations, group, "NCHW" if nd == 2 else
                       {1: "NCW", 3: "NCDHW"}[nd], "", ctx.out_dtype())
    if bias is not None:
        out = te.compute(out.shape, lambda b, kk, *sp: out(b, kk, *sp) + bias[kk], name="conv_bias")
    return out


def _panel_width(n: int) -> int:
    """Columns per prepacked panel of a constant B (the matmul schedule's register tile)."""
    return 32 if n % 32 == 0 else 16 if n % 16 == 0 else 0


def _pack_panels(b):
    """[K, N] -> [N/P, K, P]: each register tile's columns of B contiguous along K."""
    if b.ndim != 2 or not _panel_width(b.shape[1]):
        return b
    p = _panel_width(b.shape[1])
    return np.ascontiguousarray(b.reshape(b.shape[0], b.shape[1] // p, p).transpose(1, 0, 2))


def _pack_matmul_b(attrs, in_types, b):
    return _pack_panels(b)


def _pack_gemm_b(attrs, in_types, b):
    return _pack_panels(b.T if int(attrs.get("transB", 0)) else b)


def _panel_reader(bp):
    """B[k, n] read from its panel-packed form [N/P, K, P]."""
    p = int(bp.shape[2])
    return lambda k, n: bp[n // p, k, n % p]


def matmul_compute(a, b, out_shape, out_dtype, b_reader=None):
    """C[..., m, n] = sum_k A[..., m, k] * B[..., k, n] with numpy broadcasting of batch dims;
    ``b_reader(k, n)`` replaces indexing of a 2-D ``b`` (prepacked panels)."""
    ka = int(a.shape[-1])
    rk = te.reduce_axis((0, ka), "rk")
    batch = len(out_shape) - 2

    def index(t, idx, last2):
        off = batch - (len(t.shape) - 2)
        lead = [0 if int(t.shape[d]) == 1 else idx[off + d] for d in range(len(t.shape) - 2)]
        return t(*lead, *last2)

    def read_b(i):
        return b_reader(rk, i[-1]) if b_reader is not None else index(b, i, (rk, i[-1]))

    # half types accumulate in float32 and round once (as numpy's and onnxruntime's matmuls do)
    acc_dtype = "float32" if str(out_dtype) in HALF_TYPES else out_dtype
    out = te.compute(out_shape, lambda *i: te.sum(
        index(a, i, (i[-2], rk)).astype(acc_dtype) * read_b(i).astype(acc_dtype), axis=rk), name="matmul")
    return out if acc_dtype == out_dtype else _rounded_to_half(out, out_dtype)


def _rounded_to_half(out, half_dtype):
    """A float32 result rounded once to float16/bfloat16 (bfloat16 rounded here, ties to even: TVM may
    drop a bfloat16 rounding inside a fused kernel)."""
    if str(half_dtype) == "bfloat16":
        return te.compute(out.shape, lambda *i: _round_to_bf16(out(*i)).astype(half_dtype), name="half_result")
    return te.compute(out.shape, lambda *i: out(*i).astype(half_dtype), name="half_result")


def _half_conv(ctx, x, w, bias):
    """float16/bfloat16 Conv: operands widened to float32, accumulated there and rounded once (as the
    reference and onnxruntime do; a half accumulator drifts by several units in the last place)."""
    wide = dataclasses.replace(ctx, out_types=[(ctx.out_shape(), np.dtype("float32"))] + list(ctx.out_types[1:]))
    out = _conv(wide, topi.cast(x, "float32"), topi.cast(w, "float32"),
                None if bias is None else topi.cast(bias, "float32"))
    return _rounded_to_half(out, ctx.out_dtype())


@lowering("MatMul", kind="matmul", prepack={1: _pack_matmul_b})
def _matmul(ctx, a, b):
    out_shape = ctx.out_shape()
    if 1 in ctx.packed:  # a constant 2-D B prepacked into panels [N/P, K, P]
        if len(a.shape) == 1:
            a = topi.expand_dims(a, 0)
        full = tuple(out_shape) if len(ctx.in_types[0][0]) > 1 else (1, *out_shape)
        out = matmul_compute(a, None, full, ctx.out_dtype(), _panel_reader(b))
        return topi.reshape(out, out_shape) if full != tuple(out_shape) else out
    a2 = a if len(a.shape) > 1 else topi.expand_dims(a, 0)
    b2 = b if len(b.shape) > 1 else topi.expand_dims(b, 1)
    full = list(out_shape)
    if len(a.shape) == 1:
        full.insert(len(full) - (0 if len(b.shape) == 1 else 1), 1)
    if len(b.shape) == 1:
        full.append(1)
    out = matmul_compute(a2, b2, tuple(full), ctx.out_dtype())
    if tuple(full) != tuple(out_shape):
        out = topi.reshape(out, out_shape)
    return out


@lowering("Gemm", kind="matmul", prepack={1: _pack_gemm_b})
def _gemm(ctx, a, b, c=None):
    if int(ctx.attr("transA", 0)):
        a = topi.transpose(a, [1, 0])
    reader = None
    if 1 in ctx.packed:
        if len(b.shape) == 3:
            reader = _panel_reader(b)
    elif int(ctx.attr("transB", 0)):
        b = topi.transpose(b, [1, 0])
    out = matmul_compute(a, b, ctx.out_shape(), ctx.out_dtype(), reader)
    alpha, beta = float(ctx.attr("alpha", 1.0)), float(ctx.attr("beta", 1.0))
    if alpha != 1.0:
        out = topi.multiply(out, tirx.const(alpha, out.dtype))
    if c is not None:
        cc = c if beta == 1.0 else topi.multiply(c, tirx.const(beta, c.dtype))
        out = topi.add(out, cc)
    return out


def _pool_args(ctx):
    x_shape = ctx.in_types[0][0]
    nd = len(x_shape) - 2
    kernel = [int(k) for k in ctx.attr("kernel_shape")]
    strides = _ints(ctx.attr("strides"), nd, 1)
    dilations = _ints(ctx.attr("dilations"), nd, 1)
    _, _, _, pads = _conv_params(ctx, kernel)
    return nd, kernel, strides, dilations, pads


def _lp_pool(ctx, x, kernel, strides, dilations, pads):
    """(sum over the window of |x|^p)^(1/p), zero padding."""
    p = float(ctx.attr("p", 2))
    nd = len(kernel)
    data = topi.nn.pad(x, [0, 0, *pads[:nd]], [0, 0, *pads[nd:]], name="lp_pad") if any(pads) else x
    red = [te.reduce_axis((0, k), f"r{d}") for d, k in enumerate(kernel)]
    c = lambda v: tirx.const(v, x.dtype)  # noqa: E731
    acc = te.compute(ctx.out_shape(), lambda n, ch, *o: te.sum(te.power(te.abs(data(
        n, ch, *[o[d] * strides[d] + red[d] * dilations[d] for d in range(nd)])), c(p)), axis=red), name="lp_sum")
    return te.compute(acc.shape, lambda *i: te.power(acc(*i), c(1.0 / p)), name="lp_pool")


@lowering("MaxPool", "AveragePool", "LpPool", kind="pool")
def _pool(ctx, x):
    nd, kernel, strides, dilations, pads = _pool_args(ctx)
    if ctx.op == "LpPool":
        return _lp_pool(ctx, x, kernel, strides, dilations, pads)
    kind = "max" if ctx.op == "MaxPool" else "avg"
    layout = {1: "NCW", 2: "NCHW", 3: "NCDHW"}[nd]
    fn = {1: topi.nn.pool1d, 2: topi.nn.pool2d, 3: topi.nn.pool3d}[nd]
    pooled = fn(x, kernel, strides, dilations, pads, kind, bool(ctx.attr("ceil_mode", 0)), layout,
                bool(ctx.attr("count_include_pad", 0)))
    if len(ctx.out_types) > 1:
        return [pooled, _max_pool_indices(ctx, x, pooled, kernel, strides, dilations, pads)]
    return pooled


def _max_pool_indices(ctx, x, pooled, kernel, strides, dilations, pads):
    """MaxPool's Indices: the flat position in ``x`` of each window's first maximum (scan order).

    The first maximum in the window's row-major scan has the lowest row-major flat index, so it is a
    min-reduction over the window's positions holding the pooled value (padding excluded).
    ``storage_order=1`` then renumbers that position column-major within its (n, c) plane.
    """
    nd = len(kernel)
    dims = [int(d) for d in x.shape]
    spatial = dims[2:]
    plane = int(np.prod(spatial))
    red = [te.reduce_axis((0, k), f"w{d}") for d, k in enumerate(kernel)]
    big = tirx.const(np.iinfo(np.int64).max, "int64")

    def first_max(n, c, *o):
        at, inside = [], tirx.const(True, "bool")
        for d in range(nd):
            p = o[d] * strides[d] + red[d] * dilations[d] - pads[d]
            inside = tirx.And(inside, tirx.And(p >= 0, p < spatial[d]))
            at.append(tirx.max(0, tirx.min(p, spatial[d] - 1)))
        flat = tirx.const(0, "int64")
        for d in range(nd):
            flat = flat * spatial[d] + at[d].astype("int64")
        hit = tirx.And(inside, x(n, c, *at) == pooled(n, c, *o))
        return te.min(tirx.Select(hit, flat, big), axis=red)

    within = te.compute(pooled.shape, first_max, name="max_pool_argmax")
    column_major = bool(int(ctx.attr("storage_order", 0)))

    def number(n, c, *o):
        f = within(n, c, *o)
        if column_major:  # row-major (i0, i1, ...) -> sum i_d * prod(spatial[:d])
            stride_list = [int(np.prod(spatial[:d])) for d in range(nd)]
            column = tirx.const(0, "int64")
            for d in range(nd):
                size = int(np.prod(spatial[d + 1:]))
                column = column + tirx.floormod(tirx.floordiv(f, size), spatial[d]) * stride_list[d]
            f = column
        return (n.astype("int64") * dims[1] + c.astype("int64")) * plane + f

    return te.compute(pooled.shape, number, name="max_pool_indices")


@lowering("GlobalAveragePool", "GlobalMaxPool", kind="reduce")
def _global_pool(ctx, x):
    axes = list(range(2, len(x.shape)))
    if ctx.op == "GlobalMaxPool":
        return topi.max(x, axis=axes, keepdims=True)
    count = int(np.prod([int(x.shape[a]) for a in axes]))
    return topi.divide(topi.sum(x, axis=axes, keepdims=True), tirx.const(count, x.dtype))


@lowering("BatchNormalization", elementwise=True)
def _batch_norm(ctx, x, scale, bias, mean, var):
    eps = float(ctx.attr("epsilon", 1e-5))
    rank = len(x.shape)
    if int(ctx.attr("training_mode", 0)) or len(ctx.out_types) > 1:
        return _batch_norm_training(ctx, x, scale, bias, mean, var, eps)

    def chan(t, i):
        return t[i[1]]

    return te.compute(x.shape, lambda *i: (x(*i) - chan(mean, i)) *
                      (chan(scale, i) / te.sqrt(chan(var, i) + tirx.const(eps, x.dtype))) + chan(bias, i),
                      name="batch_norm") if rank >= 2 else x


def _batch_norm_training(ctx, x, scale, bias, mean, var, eps):
    """Training mode: normalise with the batch statistics (biased variance over every axis but 1);
    the optional results are the running mean/var updated with ``momentum``."""
    axes = [a for a in range(len(x.shape)) if a != 1]
    count = int(np.prod([int(x.shape[a]) for a in axes]))
    dtype = str(x.dtype)
    c = lambda v: tirx.const(v, dtype)  # noqa: E731
    batch_mean = topi.multiply(topi.sum(x, axes), c(1.0 / count))
    cent = te.compute(x.shape, lambda *i: x(*i) - batch_mean[i[1]], name="bn_centred")
    batch_var = topi.multiply(topi.sum(topi.multiply(cent, cent), axes), c(1.0 / count))
    y = te.compute(x.shape, lambda *i: cent(*i) * (scale[i[1]] / te.sqrt(batch_var[i[1]] + c(eps))) + bias[i[1]],
                   name="batch_norm_train")
    momentum = float(ctx.attr("momentum", 0.9))

    def update(old, stat, name):
        return te.compute(stat.shape, lambda k: old[k] * c(momentum) + stat[k] * c(1.0 - momentum), name=name)

    running = [update(mean, batch_mean, "running_mean"), update(var, batch_var, "running_var")]
    return [y, *running][:len(ctx.out_types)]


@lowering("Softmax", "LogSoftmax", kind="reduce")
def _softmax(ctx, x):
    axis = int(ctx.attr("axis", -1)) % len(x.shape)
    if ctx.op == "Softmax" and str(x.dtype) == "float32":
        # exp of (x - max) <= 0 through topi.fast_exp: vectorised, abs error 3e-8 (libm expf is scalar)
        peak = topi.max(x, axis=axis, keepdims=True)
        e = topi.fast_exp(topi.subtract(x, peak))
        return topi.divide(e, topi.sum(e, axis=axis, keepdims=True))
    if ctx.op == "Softmax" and str(x.dtype) in ("float16", "bfloat16"):
        return _half_softmax(x, axis)
    return topi.nn.softmax(x, axis) if ctx.op == "Softmax" else topi.nn.log_softmax(x, axis)


def _round_to_bf16(v):
    """A float32 value rounded to the nearest bfloat16 (ties to even), kept as float32 (NaN kept)."""
    bits = tirx.reinterpret("uint32", v)
    rounded = (bits + tirx.const(0x7FFF, "uint32") + ((bits >> 16) & tirx.const(1, "uint32"))) \
        & tirx.const(0xFFFF0000, "uint32")
    return tirx.Select(tirx.isnan(v), v, tirx.reinterpret("float32", rounded))


# a float32 sum whose every partial result is rounded to bfloat16 (ml_dtypes' element-by-element add)
_bf16_running_sum = te.comm_reducer(lambda a, b: _round_to_bf16(a + b),
                                    lambda dtype: tirx.const(0.0, dtype), name="bf16_running_sum")


def _half_softmax(x, axis: int):
    """Softmax of a half-precision tensor rounded where numpy (the ONNX reference) rounds: each
    elementwise step computes in float32 and rounds to the half type. numpy sums float16 in float32;
    bfloat16 (an ml_dtypes type) adds element by element, rounding each partial sum to bfloat16.
    bfloat16 rounding is done here (ties to even): the values are then exact when cast."""
    half, f32 = str(x.dtype), "float32"

    def rnd(v):
        return _round_to_bf16(v) if half == "bfloat16" else v.astype(half).astype(f32)

    peak = topi.max(x, axis=axis, keepdims=True)

    def at_peak(i):
        return peak(*i[:axis], 0, *i[axis + 1:])

    e = te.compute(x.shape, lambda *i: rnd(te.exp(rnd(x(*i).astype(f32) - at_peak(i).astype(f32)))),
                   name="softmax_exp")
    k = te.reduce_axis((0, int(x.shape[axis])), "k")
    reducer = _bf16_running_sum if half == "bfloat16" else te.sum
    total = te.compute(peak.shape, lambda *i: reducer(e(*i[:axis], k, *i[axis + 1:]), axis=k), name="softmax_sum")
    return te.compute(x.shape, lambda *i: rnd(e(*i) / rnd(total(*i[:axis], 0, *i[axis + 1:]))).astype(half),
                      name="softmax_half")


def _normalize_tail(x, axis, eps, scale, bias, rms: bool):
    """(x - mean) * invstd * scale + bias over axes [axis, rank); also returns mean and invstd
    (keepdims shapes). ``rms``: no centring, invstd from the mean of squares."""
    rank = len(x.shape)
    axes = list(range(axis, rank))
    count = int(np.prod([int(x.shape[a]) for a in axes]))
    dtype = str(x.dtype)
    xf = topi.cast(x, "float32") if dtype in ("float16", "bfloat16") else x
    cdt = str(xf.dtype)
    inv_n = tirx.const(1.0 / count, cdt)
    if rms:
        mean = None
        sq = topi.multiply(topi.sum(topi.multiply(xf, xf), axes, True), inv_n)
        centred = xf
    else:
        mean = topi.multiply(topi.sum(xf, axes, True), inv_n)
        centred = topi.subtract(xf, mean)
        sq = topi.multiply(topi.sum(topi.multiply(centred, centred), axes, True), inv_n)
    invstd = te.compute(sq.shape, lambda *i: tirx.const(1.0, cdt) / te.sqrt(sq(*i) + tirx.const(eps, cdt)),
                        name="invstd")
    normed = topi.multiply(centred, invstd)
    out = topi.multiply(normed, topi.cast(scale, cdt) if str(scale.dtype) != cdt else scale)
    if bias is not None:
        out = topi.add(out, topi.cast(bias, cdt) if str(bias.dtype) != cdt else bias)
    if cdt != dtype:
        out = topi.cast(out, dtype)
    return out, mean, invstd


@lowering("LayerNormalization", kind="reduce")
def _layer_norm(ctx, x, gamma, beta=None):
    axis = int(ctx.attr("axis", -1)) % len(x.shape)
    out, mean, invstd = _normalize_tail(x, axis, float(ctx.attr("epsilon", 1e-5)), gamma, beta, rms=False)
    extra = [mean, invstd][:len(ctx.out_types) - 1]
    extra = [topi.cast(t, ctx.out_dtype(k + 1)) if str(t.dtype) != ctx.out_dtype(k + 1) else t
             for k, t in enumerate(extra)]
    return [out, *extra] if extra else out


@lowering("RMSNormalization", kind="reduce")
def _rms_norm(ctx, x, scale):
    axis = int(ctx.attr("axis", -1)) % len(x.shape)
    return _normalize_tail(x, axis, float(ctx.attr("epsilon", 1e-5)), scale, None, rms=True)[0]


@lowering("LpNormalization", kind="reduce")
def _lp_norm(ctx, x):
    axis = int(ctx.attr("axis", -1)) % len(x.shape)
    p = int(ctx.attr("p", 2))
    if p == 1:
        norm = topi.sum(topi.abs(x), [axis], True)
    else:
        norm = topi.sqrt(topi.sum(topi.multiply(x, x), [axis], True))
    zero = tirx.const(0, x.dtype)

    def body(*i):  # a zero norm (an all-zero slice) gives zeros, as the ONNX reference does
        n = norm(*i[:axis], 0, *i[axis + 1:])
        return tirx.Select(n == zero, zero, x(*i) / n)

    return te.compute(x.shape, body, name="lp_norm")


@lowering("Hardmax", kind="reduce")
def _hardmax(ctx, x):
    axis = int(ctx.attr("axis", -1)) % len(x.shape)
    idx = topi.argmax(x, axis=axis, keepdims=True)
    return te.compute(x.shape, lambda *i: tirx.Select(
        idx(*i[:axis], 0, *i[axis + 1:]) == i[axis].astype(idx.dtype), tirx.const(1, x.dtype),
        tirx.const(0, x.dtype)), name="hardmax")


@lowering("InstanceNormalization", kind="reduce")
def _instance_norm(ctx, x, scale, bias):
    axes = list(range(2, len(x.shape)))
    eps = float(ctx.attr("epsilon", 1e-5))
    count = int(np.prod([int(x.shape[a]) for a in axes]))
    mean = topi.divide(topi.sum(x, axis=axes, keepdims=True), tirx.const(count, x.dtype))
    cent = topi.subtract(x, mean)
    var = topi.divide(topi.sum(topi.multiply(cent, cent), axis=axes, keepdims=True), tirx.const(count, x.dtype))
    return te.compute(x.shape, lambda *i: cent(*i) / te.sqrt(var(i[0], i[1], *[0] * len(axes)) +
                      tirx.const(eps, x.dtype)) * scale[i[1]] + bias[i[1]], name="instance_norm")


@lowering("LRN", kind="reduce")
def _lrn(ctx, x):
    return topi.nn.lrn(x, int(ctx.attr("size")), 1, float(ctx.attr("alpha", 1e-4)),
                       float(ctx.attr("beta", 0.75)), float(ctx.attr("bias", 1.0)))
