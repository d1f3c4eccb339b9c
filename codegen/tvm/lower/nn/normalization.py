"""Lowerings of normalisations along axes: BatchNormalization, LayerNormalization,
RMSNormalization, InstanceNormalization, LpNormalization, LRN, and Softmax/LogSoftmax/Hardmax.

float16/bfloat16 Softmax rounds like the reference: each partial sum rounded as ml_dtypes' element-by-element
add does (``_half_softmax``).
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx, topi

from ...registry import lowering
from ...te_util import INT32_MAX, MATERIALISED, round_to_bf16, size_of
from ..vector_math import exp_full_f32, log_f32, over_float32


@lowering("BatchNormalization")
def _batch_norm(ctx, x, scale, bias, mean, var):
    eps = float(ctx.attr("epsilon", 1e-5))
    rank = len(x.shape)
    if int(ctx.attr("training_mode", 0)) or len(ctx.out_types) > 1:
        return _batch_norm_training(ctx, x, scale, bias, mean, var, eps)

    def chan(t, i):
        return t[i[1]]

    return (
        te.compute(
            x.shape,
            lambda *i: (
                (x(*i) - chan(mean, i)) * (chan(scale, i) / te.sqrt(chan(var, i) + tirx.const(eps, x.dtype)))
                + chan(bias, i)
            ),
            name="batch_norm",
        )
        if rank >= 2
        else x
    )


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
    y = te.compute(
        x.shape,
        lambda *i: cent(*i) * (scale[i[1]] / te.sqrt(batch_var[i[1]] + c(eps))) + bias[i[1]],
        name="batch_norm_train",
    )
    momentum = float(ctx.attr("momentum", 0.9))

    def update(old, stat, name):
        return te.compute(stat.shape, lambda k: old[k] * c(momentum) + stat[k] * c(1.0 - momentum), name=name)

    running = [update(mean, batch_mean, "running_mean"), update(var, batch_var, "running_var")]
    return [y, *running][: len(ctx.out_types)]


SOFTMAX_LANES = 16  # partial maxima and sums per row (Softmax, LayerNormalization): one AVX-512 vector, four NEON


def _lane_sums(value, outer, vectors: int, lanes: int, names: tuple[str, str], axis: str):
    """(partial, total) sums of a row of ``vectors * lanes`` values ``value(row, col)``: ``lanes``
    partial sums (``names[0]``: vector lanes, the reduction over the row's vectors outside them,
    which the row schedules vectorise) and their sum (``names[1]``)."""
    j = te.reduce_axis((0, vectors), axis)
    partial = te.compute((*outer, lanes), lambda *il: te.sum(value(il[:-1], j * lanes + il[-1]), axis=j), name=names[0])
    lane = te.reduce_axis((0, lanes), f"{axis}_lane")
    return partial, te.compute(tuple(outer), lambda *i: te.sum(partial(*i, lane), axis=lane), name=names[1])


def _softmax_rows(x, lanes: int = SOFTMAX_LANES, log: bool = False):
    """float32 Softmax over the last axis as the ``softmax`` schedule runs it, one row at a time:
    ``lanes`` partial maxima of the row (``softmax_pmax``: vector lanes, the reduction over the
    row's vectors outside them), their maximum, e = exp(x - max) into a row buffer
    (``softmax_exp``, ``vector_math.exp_f32``), ``lanes`` partial sums of e and their sum, and
    e / sum. The row is padded to whole vectors by repeating its last value (which leaves the
    maximum as it is) with e masked to 0 there. No load is under a Select: TVM would drop the clamp
    of a Select's branch under its condition and load past the row's end (past the buffer for the
    last row; ``te_util.read_if``); the schedule splits the whole vectors from the partial one, so
    only that one keeps the clamped loads. With ``log`` (LogSoftmax), the output is x - max -
    log(sum) instead, the row's one log hoisted out of its columns by LLVM."""
    from ..vector_math import exp_f32

    *outer, k = (int(d) for d in x.shape)
    vectors = max(2, -(-k // lanes))  # at least 2: TVM drops a unit reduction loop, and the schedule needs it
    one, zero = tirx.const(1.0, "float32"), tirx.const(0.0, "float32")

    def padded(i, col):  # a padding column repeats the row's last value
        return x(*i, tirx.min(col, k - 1))

    j = te.reduce_axis((0, vectors), "j")
    pmax = te.compute(
        (*outer, lanes), lambda *il: te.max(padded(il[:-1], j * lanes + il[-1]), axis=j), name="softmax_pmax"
    )
    lane = te.reduce_axis((0, lanes), "lane")
    peak = te.compute(tuple(outer), lambda *i: te.max(pmax(*i, lane), axis=lane), name="softmax_max")
    e = te.compute(
        (*outer, vectors * lanes),
        lambda *ic: exp_f32(padded(ic[:-1], ic[-1]) - peak(*ic[:-1])) * tirx.Select(ic[-1] < k, one, zero),
        name="softmax_exp",
        attrs=MATERIALISED,
    )
    _, total = _lane_sums(lambda i, col: e(*i, col), outer, vectors, lanes, ("softmax_psum", "softmax_sum"), "j2")
    if log:
        return te.compute(x.shape, lambda *i: x(*i) - peak(*i[:-1]) - log_f32(total(*i[:-1])), name="softmax_out")
    return te.compute(x.shape, lambda *i: e(*i) / total(*i[:-1]), name="softmax_out")


@lowering("Softmax", "LogSoftmax", kind="softmax")
def _softmax_last_axis(ctx, x):
    """Softmax and LogSoftmax; float32 over the last axis by rows on CPUs (the ``softmax``
    schedule; LogSoftmax's exponentials took a libm ``expf`` call per lane in topi's form), else
    ``_softmax`` (GPU schedules, which get no ``ctx.schedule``, take the one-stage form, and so
    does a tensor of more than 2^31 - 1 elements: its kernel takes the generic schedule, under
    which the rows' exponentials would fill a buffer the size of the input)."""
    axis = int(ctx.attr("axis", -1)) % len(x.shape)
    cpu = ctx.schedule is not None and size_of(ctx.in_types[0][0]) <= INT32_MAX
    if cpu and str(x.dtype) == "float32" and axis == len(x.shape) - 1 and len(x.shape) >= 2:
        return _softmax_rows(x, log=ctx.op == "LogSoftmax")
    return _softmax(ctx, x)


def _softmax(ctx, x):
    axis = int(ctx.attr("axis", -1)) % len(x.shape)
    if ctx.op == "Softmax" and str(x.dtype) == "float32":
        # exp of (x - max) <= 0 through topi.fast_exp: vectorised, abs error 3e-8 (libm expf is scalar)
        peak = topi.max(x, axis=axis, keepdims=True)
        e = topi.fast_exp(topi.subtract(x, peak))
        return topi.divide(e, topi.sum(e, axis=axis, keepdims=True))
    if ctx.op == "Softmax" and str(x.dtype) in ("float16", "bfloat16"):
        return _half_softmax(x, axis)
    if ctx.op == "LogSoftmax" and str(x.dtype) == "float32":
        # x - max - log(sum(e^(x - max))) on vector_math's e^ and log (topi's call libm per lane)
        shifted = topi.subtract(x, topi.max(x, axis=axis, keepdims=True))
        e = over_float32(shifted, exp_full_f32, topi.exp, "log_softmax_exp")
        log_total = over_float32(topi.sum(e, axis=axis, keepdims=True), log_f32, topi.log, "log_softmax_log")
        return topi.subtract(shifted, log_total)
    return topi.nn.softmax(x, axis) if ctx.op == "Softmax" else topi.nn.log_softmax(x, axis)


# a float32 sum whose every partial result is rounded to bfloat16 (ml_dtypes' element-by-element add)
_bf16_running_sum = te.comm_reducer(
    lambda a, b: round_to_bf16(a + b), lambda dtype: tirx.const(0.0, dtype), name="bf16_running_sum"
)


def _half_softmax(x, axis: int):
    """Softmax of a half-precision tensor rounded where numpy (the ONNX reference) rounds: each
    elementwise step computes in float32 and rounds to the half type. numpy sums float16 in float32;
    bfloat16 (an ml_dtypes type) adds element by element, rounding each partial sum to bfloat16.
    bfloat16 rounding is done here (ties to even): the values are then exact when cast."""
    half, f32 = str(x.dtype), "float32"

    def rnd(v):
        return round_to_bf16(v) if half == "bfloat16" else v.astype(half).astype(f32)

    peak = topi.max(x, axis=axis, keepdims=True)

    def at_peak(i):
        return peak(*i[:axis], 0, *i[axis + 1 :])

    e = te.compute(x.shape, lambda *i: rnd(te.exp(rnd(x(*i).astype(f32) - at_peak(i).astype(f32)))), name="softmax_exp")
    k = te.reduce_axis((0, int(x.shape[axis])), "k")
    reducer = _bf16_running_sum if half == "bfloat16" else te.sum
    total = te.compute(peak.shape, lambda *i: reducer(e(*i[:axis], k, *i[axis + 1 :]), axis=k), name="softmax_sum")
    return te.compute(
        x.shape, lambda *i: rnd(e(*i) / rnd(total(*i[:axis], 0, *i[axis + 1 :]))).astype(half), name="softmax_half"
    )


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
    invstd = te.compute(
        sq.shape, lambda *i: tirx.const(1.0, cdt) / te.sqrt(sq(*i) + tirx.const(eps, cdt)), name="invstd"
    )
    normed = topi.multiply(centred, invstd)
    out = topi.multiply(normed, topi.cast(scale, cdt) if str(scale.dtype) != cdt else scale)
    if bias is not None:
        out = topi.add(out, topi.cast(bias, cdt) if str(bias.dtype) != cdt else bias)
    if cdt != dtype:
        out = topi.cast(out, dtype)
    return out, mean, invstd


def _layer_norm_rows(x, gamma, beta, eps: float, rms: bool = False, lanes: int = SOFTMAX_LANES):
    """float32 LayerNormalization (or with ``rms`` RMSNormalization) over a last axis of ``k`` (a
    multiple of ``lanes``), as the ``layer_norm`` schedule runs it one row at a time: ``lanes``
    partial sums of the row (``ln_psum``) and their sum (``ln_sum``), then ``lanes`` partial sums
    of the squared deviations from the mean (``ln_psq``; two passes, as the reference takes the
    variance; RMS: of the squares, no mean) and theirs (``ln_sqsum``; ``_lane_sums``), then the
    normalised row."""
    *outer, k = (int(d) for d in x.shape)
    vectors = k // lanes
    inv_n = tirx.const(1.0 / k, "float32")
    if rms:
        mean = None
    else:
        _, total = _lane_sums(lambda i, col: x(*i, col), outer, vectors, lanes, ("ln_psum", "ln_sum"), "j")
        mean = te.compute(tuple(outer), lambda *i: total(*i) * inv_n, name="ln_mean")

    def centred(i, col):
        return x(*i, col) if mean is None else x(*i, col) - mean(*i)

    def squared(i, col):
        d = centred(i, col)
        return d * d

    _, squares = _lane_sums(squared, outer, vectors, lanes, ("ln_psq", "ln_sqsum"), "j2")
    one, epsilon = tirx.const(1.0, "float32"), tirx.const(eps, "float32")
    invstd = te.compute(tuple(outer), lambda *i: one / te.sqrt(squares(*i) * inv_n + epsilon), name="ln_invstd")

    def normalised(*i):
        value = centred(i[:-1], i[-1]) * invstd(*i[:-1]) * gamma[i[-1]]
        return value + beta[i[-1]] if beta is not None else value

    return te.compute(x.shape, normalised, name="ln_out")


def _layer_norm_by_rows(ctx, x, gamma, beta, axis: int) -> bool:
    """Whether ``_layer_norm_rows`` serves: a CPU build, float32 throughout, the last axis, no
    mean or inverse-deviation outputs, a row of whole ``SOFTMAX_LANES`` (at least two) and scale
    and bias of the row's length."""
    k = int(x.shape[-1])
    params = [t for t in (gamma, beta) if t is not None]
    return (
        ctx.schedule is not None
        and axis == len(x.shape) - 1
        and len(ctx.out_types) == 1
        and all(str(t.dtype) == "float32" for t in (x, *params))
        and all(len(t.shape) == 1 and int(t.shape[0]) == k for t in params)
        and k % SOFTMAX_LANES == 0
        and k >= 2 * SOFTMAX_LANES
        and size_of(ctx.in_types[0][0]) <= INT32_MAX
    )


@lowering("LayerNormalization", kind="layer_norm")
def _layer_norm(ctx, x, gamma, beta=None):
    """LayerNormalization: over a CPU's last axis by rows (``_layer_norm_rows``, the ``layer_norm``
    schedule), else the generic form (mean and inverse deviation available as outputs)."""
    axis = int(ctx.attr("axis", -1)) % len(x.shape)
    if _layer_norm_by_rows(ctx, x, gamma, beta, axis):
        return _layer_norm_rows(x, gamma, beta, float(ctx.attr("epsilon", 1e-5)))
    out, mean, invstd = _normalize_tail(x, axis, float(ctx.attr("epsilon", 1e-5)), gamma, beta, rms=False)
    extra = [mean, invstd][: len(ctx.out_types) - 1]
    extra = [
        topi.cast(t, ctx.out_dtype(k + 1)) if str(t.dtype) != ctx.out_dtype(k + 1) else t for k, t in enumerate(extra)
    ]
    return [out, *extra] if extra else out


@lowering("RMSNormalization", kind="layer_norm")
def _rms_norm(ctx, x, scale):
    """RMSNormalization: by rows where LayerNormalization would be (``_layer_norm_by_rows``)."""
    axis = int(ctx.attr("axis", -1)) % len(x.shape)
    if _layer_norm_by_rows(ctx, x, scale, None, axis):
        return _layer_norm_rows(x, scale, None, float(ctx.attr("epsilon", 1e-5)), rms=True)
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
        n = norm(*i[:axis], 0, *i[axis + 1 :])
        return tirx.Select(n == zero, zero, x(*i) / n)

    return te.compute(x.shape, body, name="lp_norm")


@lowering("Hardmax", kind="reduce")
def _hardmax(ctx, x):
    axis = int(ctx.attr("axis", -1)) % len(x.shape)
    idx = topi.argmax(x, axis=axis, keepdims=True)
    return te.compute(
        x.shape,
        lambda *i: tirx.Select(
            idx(*i[:axis], 0, *i[axis + 1 :]) == i[axis].astype(idx.dtype),
            tirx.const(1, x.dtype),
            tirx.const(0, x.dtype),
        ),
        name="hardmax",
    )


@lowering("InstanceNormalization", kind="reduce")
def _instance_norm(ctx, x, scale, bias):
    axes = list(range(2, len(x.shape)))
    eps = float(ctx.attr("epsilon", 1e-5))
    count = int(np.prod([int(x.shape[a]) for a in axes]))
    mean = topi.divide(topi.sum(x, axis=axes, keepdims=True), tirx.const(count, x.dtype))
    cent = topi.subtract(x, mean)
    var = topi.divide(topi.sum(topi.multiply(cent, cent), axis=axes, keepdims=True), tirx.const(count, x.dtype))
    return te.compute(
        x.shape,
        lambda *i: (
            cent(*i) / te.sqrt(var(i[0], i[1], *[0] * len(axes)) + tirx.const(eps, x.dtype)) * scale[i[1]] + bias[i[1]]
        ),
        name="instance_norm",
    )


@lowering("LRN", kind="reduce")
def _lrn(ctx, x):
    return topi.nn.lrn(
        x,
        int(ctx.attr("size")),
        1,
        float(ctx.attr("alpha", 1e-4)),
        float(ctx.attr("beta", 0.75)),
        float(ctx.attr("bias", 1.0)),
    )
