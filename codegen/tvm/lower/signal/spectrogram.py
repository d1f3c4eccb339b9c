"""Lowerings of the signal ops whose scalar parameters are usually model inputs: the window
functions (``HannWindow``, ``HammingWindow``, ``BlackmanWindow``), ``MelWeightMatrix`` and ``STFT``.

The library's result shapes are static, so a run-time parameter that decides a shape (a window's
``size``, the mel matrix's ``num_mel_bins``/``dft_length``, STFT's ``frame_step``/``frame_length``)
is checked at run time (``ctx.require``) against the compiled shape; a parameter that only changes
values (``sample_rate``, the mel edges, STFT's step and ``frame_length`` within what the shape
allows) is read by the kernel. Each formula is written once over a ``load(tensor, *index)`` reader
so the kernel body (TE reads) and the check (TIR loads) share it; a constant operand reads as a
Python number.

    HannWindow      w[n] = sin(pi n / M)^2
    HammingWindow   w[n] = 25/46 - 21/46 cos(2 pi n / M)
    BlackmanWindow  w[n] = 0.42 - 0.5 cos(2 pi n / M) + 0.08 cos(4 pi n / M)
                    (M = size when ``periodic``, else size - 1)
    STFT            y[b, f, k] = sum_{n < min(W, N)} x[b, f s + n] w[n] e^{-2 pi i k n / N}
                    (s = frame_step, N = frame_length, W = the window length; f < 1 + (L - N) // s)

``MelWeightMatrix`` follows the ONNX reference: bin edges ``floor((N + 1) hz(t) / rate)`` for
``t = 0 .. bins + 1`` (mel-spaced, in the reference's float32/float64 steps), then a rising ramp
from each left edge to its centre and a falling one from the centre to the right edge.
"""

from __future__ import annotations

import math

import numpy as np
from tvm import te, tirx

from ...registry import lowering

F64, I64 = "float64", "int64"


def _te_load(tensor, *index):
    return tensor(*index) if not index else tensor[index]


def _scalar(ctx, k: int, tensor, load, dtype: str = I64):
    """Operand ``k`` (a scalar or one-element tensor): a Python number if constant, else a load."""
    value = ctx.static(k)
    if value is not None:
        number = np.asarray(value).reshape(-1)[0]
        return int(number) if dtype == I64 else float(number)
    if tensor is None:
        return None
    loaded = load(tensor, *([0] * len(tensor.shape)))
    return loaded.astype(dtype)


def _is_expr(v) -> bool:
    return not isinstance(v, (int, float, bool, np.integer, np.floating, np.bool_))


def _condition(c):
    return tirx.const(bool(c), "bool") if not _is_expr(c) else c


def _all(conditions):
    out = tirx.const(True, "bool")
    for c in conditions:
        out = tirx.And(out, _condition(c))
    return out


def _present(ctx, k: int) -> bool:
    return k < len(ctx.in_types) and ctx.in_types[k] is not None


# windows -------------------------------------------------------------------------------------------


def _window_value(op: str, n, m: float):
    """The window's float64 value at sample ``n`` (an expression) for period ``m``."""
    phase = n.astype(F64) * tirx.const(math.pi, F64) / tirx.const(float(m), F64)
    if op == "HannWindow":
        s = tirx.sin(phase)
        return s * s
    if op == "HammingWindow":
        alpha = 25.0 / 46.0
        return tirx.const(alpha, F64) - tirx.cos(phase * 2.0) * tirx.const(1 - alpha, F64)
    return tirx.const(0.42, F64) - tirx.cos(phase * 2.0) * 0.5 + tirx.cos(phase * 4.0) * 0.08


@lowering("HannWindow", "HammingWindow", "BlackmanWindow", static=(0,), runtime=(0,))
def _window(ctx, size=None):
    (length,) = ctx.out_shape()
    if ctx.static(0) is None:
        ctx.require(
            lambda read: _scalar(ctx, 0, size, read) == length,
            f"the run-time size differs from the compiled window length {length}",
        )
    elif _scalar(ctx, 0, None, None) != length:
        raise ctx.fail(f"size {_scalar(ctx, 0, None, None)} differs from the result length {length}")
    period = length if int(ctx.attr("periodic", 1)) else length - 1
    if period == 0:
        period = float("nan")  # 0/0, as the reference computes for a symmetric window of one sample
    return te.compute((length,), lambda n: _window_value(ctx.op, n, period).astype(ctx.out_dtype()), name="window")


# MelWeightMatrix ---------------------------------------------------------------------------------


def _mel(hertz):
    """The reference's mel value: float32 ``2595 log1p(hz / 700)``, then float64 ``/ ln 10``."""
    f32 = hertz.astype("float32") if _is_expr(hertz) else tirx.const(float(np.float32(hertz)), "float32")
    mel = tirx.const(2595.0, "float32") * tirx.log1p(f32 / tirx.const(700.0, "float32"))
    return mel.astype(F64) / tirx.const(math.log(10), F64)


def _mel_params(ctx, operands, load):
    """(bins, dft_length, sample rate, low mel, mel step) from the five operands."""
    bins, dft = (_scalar(ctx, k, operands[k], load) for k in (0, 1))
    rate = _scalar(ctx, 2, operands[2], load)
    low, high = (_scalar(ctx, k, operands[k], load, F64) for k in (3, 4))
    low_mel, high_mel = _mel(low), _mel(high)
    step = (high_mel - low_mel) / tirx.const(float(ctx.out_shape()[1] + 2), F64)
    return bins, dft, rate, low_mel, step


def _mel_edge(t, dft, rate, low_mel, step):
    """Spectrogram bin index of mel point ``t`` (int64)."""
    mel = t.astype(F64) * step + low_mel
    hertz = tirx.const(700.0, F64) * tirx.exp(mel / tirx.const(2595.0, F64) * tirx.const(math.log(10), F64))
    hertz = hertz - tirx.const(700.0, F64)  # 700 expm1(...), up to the reference's expm1 rounding
    scaled = tirx.const(float(dft + 1), F64) * hertz if not _is_expr(dft) else (dft + 1).astype(F64) * hertz
    rate_f = tirx.const(float(rate), F64) if not _is_expr(rate) else rate.astype(F64)
    return tirx.floor(scaled / rate_f).astype(I64)


@lowering("MelWeightMatrix", static=(0, 1, 2, 3, 4), runtime=(0, 1, 2, 3, 4))
def _mel_weight_matrix(ctx, *operands):
    operands = list(operands) + [None] * (5 - len(operands))
    spectrum, bins_out = ctx.out_shape()
    if any(ctx.static(k) is None for k in range(5)):

        def ok(read):
            bins, dft, rate, low_mel, step = _mel_params(ctx, operands, read)
            first = _mel_edge(tirx.const(0, I64), dft, rate, low_mel, step)
            centre = _mel_edge(tirx.const(bins_out, I64), dft, rate, low_mel, step)
            last = _mel_edge(tirx.const(bins_out + 1, I64), dft, rate, low_mel, step)
            return _all(
                [
                    bins == bins_out,
                    dft // 2 + 1 == spectrum,
                    rate > 0,
                    step >= 0.0,
                    first >= 0,
                    centre < spectrum,
                    last <= spectrum,
                ]
            )

        ctx.require(
            ok,
            f"the run-time parameters do not give the compiled ({spectrum}, {bins_out}) matrix "
            "with every mel bin inside the spectrogram",
        )
    _, dft, rate, low_mel, step = _mel_params(ctx, operands, _te_load)

    def body(j, i):
        lo, c, hi = (_mel_edge(i.astype(I64) + t, dft, rate, low_mel, step) for t in (0, 1, 2))
        j = j.astype(I64)
        zero, one = tirx.const(0.0, F64), tirx.const(1.0, F64)
        rising = tirx.Select(
            c == lo,
            tirx.Select(j == c, one, zero),
            tirx.Select(tirx.all(lo <= j, j <= c), (j - lo).astype(F64) / tirx.max(c - lo, 1).astype(F64), zero),
        )
        falling = tirx.all(hi > c, c <= j, j < hi)
        value = tirx.Select(falling, (hi - j).astype(F64) / tirx.max(hi - c, 1).astype(F64), rising)
        return value.astype(ctx.out_dtype())

    return te.compute((spectrum, bins_out), body, name="mel_weight_matrix")


# STFT --------------------------------------------------------------------------------------------


@lowering("STFT", static=(1, 3), runtime=(1, 3), kind="reduce")
def _stft(ctx, signal, frame_step=None, window=None, frame_length=None):
    batch, samples = (int(d) for d in signal.shape[:2])
    complex_in = int(signal.shape[-1]) == 2
    _, frames, bins, _ = ctx.out_shape()
    onesided = bool(int(ctx.attr("onesided", 1)))
    width = int(window.shape[0]) if window is not None else None

    def params(load):
        step = _scalar(ctx, 1, frame_step, load)
        n_fft = _scalar(ctx, 3, frame_length, load) if _present(ctx, 3) else None
        if n_fft is None:
            n_fft = width if width is not None else samples
        return step, n_fft

    candidates = [2 * (bins - 1), 2 * bins - 1] if onesided else [bins]
    if any(ctx.static(k) is None for k in (1, 3) if _present(ctx, k)):

        def ok(read):
            step, n_fft = params(read)
            conds = [step > 0, n_fft > 0, n_fft <= samples, (n_fft // 2 + 1 if onesided else n_fft) == bins]
            conds.append(
                tirx.floordiv(samples - n_fft, tirx.max(step, 1)) + 1 == frames
                if _is_expr(step) or _is_expr(n_fft)
                else (samples - n_fft) // step + 1 == frames
            )
            if width is not None:
                conds.append(n_fft == width)
            return _all(conds)

        ctx.require(ok, f"the run-time frame_step/frame_length do not give the compiled {ctx.out_shape()}")
    step, n_fft = params(_te_load)
    if not _is_expr(n_fft) and n_fft not in candidates:
        raise ctx.fail(f"frame_length {n_fft} does not give {bins} frequency bins")
    extent = min(max(candidates), samples) if _is_expr(n_fft) else min(n_fft, samples)
    r = te.reduce_axis((0, extent), name="n")
    n_f64 = n_fft.astype(F64) if _is_expr(n_fft) else tirx.const(float(n_fft), F64)
    angle = tirx.const(2 * math.pi, F64) / n_f64

    def body(b, f, k, part):
        n = r.astype(I64)
        at = f.astype(I64) * step + n
        inside = tirx.all(n < n_fft, at < samples)
        at = tirx.min(at, samples - 1)
        xr = signal(b, at, 0).astype(F64)
        xi = signal(b, at, 1).astype(F64) if complex_in else tirx.const(0.0, F64)
        if window is not None:
            w = window(tirx.min(n, width - 1)).astype(F64)
            xr, xi = xr * w, xi * w
        theta = tirx.indexmod(k.astype(I64) * n, n_fft).astype(F64) * angle
        c, s = tirx.cos(theta), tirx.sin(theta)
        term = tirx.Select(part == 0, xr * c + xi * s, xi * c - xr * s)
        return te.sum(tirx.Select(inside, term, tirx.const(0.0, F64)), axis=r)

    y = te.compute((batch, frames, bins, 2), body, name="stft")
    return te.compute(y.shape, lambda *i: y(*i).astype(ctx.out_dtype()), name="stft_cast")
