"""Lowering of ``DFT`` as a dense transform along one axis (forward, inverse, one-sided).

The last dim of input and output holds (real) or (real, imaginary).  With ``N`` = ``dft_length``
(default: the axis length, or ``2 (M - 1)`` for a one-sided inverse of ``M`` bins), angles
``theta = 2 pi ((k n) mod N) / N`` (the integer mod keeps the angles small); sums are float64 like ``numpy.fft``:

    forward       X[k] = sum_{n < min(L, N)} x[n] e^{-i theta}      (``onesided``: k <= N/2)
    inverse       x[n] = 1/N sum_{k < min(L, N)} X[k] e^{+i theta}
    inverse, onesided (irfft, real output)
                  x[n] = 1/N sum_{k <= N/2} w_k Re(X[k] e^{+i theta}),  w_k = 2 except k = 0, N/2

Input samples beyond ``N`` are dropped and missing ones count as zero, like ``numpy.fft``.

``axis`` and ``dft_length`` may be run-time inputs.  The result shape is static, but it does not
always imply the axis (a ``(1, 10, 10, 1)`` signal transforms along 1 or 2 into the same shape), so
a run-time axis is not checked against one guess: the kernel reads it and transforms along it.
The candidate axes are those whose compiled shapes fit; one reduction of the longest candidate's
length reads the signal along the chosen axis (a Select per dim, so the cost stays one transform,
not one per candidate), and a run-time check refuses an axis outside the candidates.  A run-time
``dft_length`` is read likewise and checked against the compiled length of the transformed axis.
"""

from __future__ import annotations

import math

import numpy as np
from tvm import te, tirx

from ...registry import lowering

F64 = "float64"


I64 = "int64"


def _scalar(tensor, load):
    """A run-time scalar operand (rank 0 or one element) as an int64 expression."""
    return (load(tensor, 0) if len(tensor.shape) else load(tensor)).astype(I64)


def _fft_length(ctx, length: int, dft_length):
    """``N`` for an axis of ``length``: the given dft_length (int or expression) or the default."""
    if dft_length is not None:
        return dft_length
    inverse, onesided = bool(int(ctx.attr("inverse", 0))), bool(int(ctx.attr("onesided", 0)))
    return 2 * (length - 1) if inverse and onesided else length


def _out_length(ctx, n_fft):
    onesided = bool(int(ctx.attr("onesided", 0)))
    inverse = bool(int(ctx.attr("inverse", 0)))
    return n_fft // 2 + 1 if onesided and not inverse else n_fft


def _candidates(ctx, rank: int, in_shape, out_shape, static_n, runtime_n: bool) -> list[int]:
    """Axes along which the transform gives the compiled result shape (a run-time N: any length)."""
    found = []
    for d in range(rank - 1):
        if any(in_shape[e] != out_shape[e] for e in range(rank - 1) if e != d):
            continue
        if runtime_n or _out_length(ctx, _fft_length(ctx, in_shape[d], static_n)) == out_shape[d]:
            found.append(d)
    return found


def _present(ctx, k: int) -> bool:
    return k < len(ctx.in_types) and ctx.in_types[k] is not None and int(np.prod(ctx.in_types[k][0])) > 0


def _static_int(ctx, k: int):
    value = ctx.static(k)
    if value is None or not np.asarray(value).size:
        return None
    return int(np.asarray(value).reshape(-1)[0])


def _pick(axis, values: dict):
    """``values[axis]`` for a run-time ``axis`` among the dict's keys (ints or expressions)."""
    keys = list(values)
    out = values[keys[-1]]
    for d in reversed(keys[:-1]):
        out = tirx.Select(axis == d, _i64(values[d]), _i64(out))
    return out


def _i64(v):
    return tirx.const(int(v), I64) if isinstance(v, (int, np.integer)) else v


@lowering("DFT", static=(1, 2), runtime=(1, 2), kind="reduce")
def _dft(ctx, x, dft_length=None, axis_in=None):
    rank = len(x.shape)
    in_shape, out_shape = [int(d) for d in x.shape], ctx.out_shape()
    inverse, onesided = bool(int(ctx.attr("inverse", 0))), bool(int(ctx.attr("onesided", 0)))
    irfft = inverse and onesided
    static_axis = _static_int(ctx, 2) if _present(ctx, 2) else int(ctx.attr("axis", -2))
    static_n = _static_int(ctx, 1)
    runtime_axis = static_axis is None
    runtime_n = static_n is None and _present(ctx, 1)
    candidates = _candidates(ctx, rank, in_shape, out_shape, static_n, runtime_n)
    if not runtime_axis:
        candidates = [static_axis % rank]
    if not candidates:
        raise ctx.fail(f"no axis transforms {tuple(in_shape)} into the compiled {tuple(out_shape)}")

    def params(load):
        """(axis, N) as ints or int64 expressions, reading run-time operands with ``load``."""
        axis = candidates[0]
        if runtime_axis:
            a = _scalar(axis_in, load)
            axis = tirx.Select(a < 0, a + rank, a)
        n_fft = _scalar(dft_length, load) if runtime_n else static_n
        if n_fft is None:
            n_fft = (
                _pick(axis, {d: _fft_length(ctx, in_shape[d], None) for d in candidates})
                if runtime_axis
                else _fft_length(ctx, in_shape[axis], None)
            )
        return axis, n_fft

    if runtime_axis or runtime_n:

        def ok(read):
            axis, n_fft = params(read)
            conds = [_any_of([axis == d for d in candidates]) if runtime_axis else True, n_fft > 0]
            wanted = _pick(axis, {d: out_shape[d] for d in candidates}) if runtime_axis else out_shape[axis]
            conds.append(_out_length(ctx, n_fft) == wanted)
            return tirx.all(*[tirx.const(c, "bool") if isinstance(c, bool) else c for c in conds])

        ctx.require(
            ok,
            f"the run-time axis/dft_length do not transform {tuple(in_shape)} into the "
            f"compiled {tuple(out_shape)} (axes that fit: {candidates})",
        )
    axis, n_fft = params(lambda t, *i: t(*i) if not i else t[i[0]])
    lengths = {d: in_shape[d] for d in candidates}
    if isinstance(axis, int) and isinstance(n_fft, int):
        used = min(in_shape[axis], n_fft // 2 + 1 if irfft else n_fft)
        extent, mask = used, None
    else:
        length = _pick(axis, lengths) if runtime_axis else in_shape[axis]
        bound = (n_fft // 2 + 1) if irfft else n_fft
        used = tirx.min(_i64(length), _i64(bound))
        extent, mask = max(lengths.values()), used
    return _transform(ctx, x, axis, n_fft, extent, mask, candidates)


def _any_of(conditions):
    out = tirx.const(False, "bool")
    for c in conditions:
        out = tirx.Or(out, c)
    return out


def _transform(ctx, x, axis, n_fft, extent, mask, candidates):
    """The DFT sum along ``axis`` (int or run-time) of ``N`` = ``n_fft`` points."""
    rank = len(x.shape)
    inverse, onesided = bool(int(ctx.attr("inverse", 0))), bool(int(ctx.attr("onesided", 0)))
    irfft = inverse and onesided
    complex_in = int(x.shape[-1]) == 2
    r = te.reduce_axis((0, extent), name="r")
    out_shape = ctx.out_shape()
    static = isinstance(axis, int) and isinstance(n_fft, int)
    if static:
        scale = tirx.const(1.0 / n_fft if inverse else 1.0, F64)
        step = tirx.const(2 * math.pi / n_fft, F64)
    else:
        nf = _i64(n_fft).astype(F64)
        scale = 1.0 / nf if inverse else tirx.const(1.0, F64)
        step = tirx.const(2 * math.pi, F64) / nf

    def body(*o):
        if isinstance(axis, int):
            k = o[axis]
            at = list(o[:-1])
            at[axis] = r
        else:
            k = _pick(axis, {d: o[d].astype(I64) for d in candidates})
            rr = r.astype(I64)
            at = [
                tirx.Select(axis == d, tirx.min(rr, int(x.shape[d]) - 1), o[d].astype(I64)) if d in candidates else o[d]
                for d in range(rank - 1)
            ]
        xr = x(*at, 0).astype(F64)
        xi = x(*at, 1).astype(F64) if complex_in else tirx.const(0.0, F64)
        m = tirx.indexmod(k.astype(I64) * r.astype(I64), _i64(n_fft))
        theta = m.astype(F64) * step
        c, s = tirx.cos(theta), tirx.sin(theta)
        if irfft:
            edge = tirx.any(r == 0, r.astype(I64) * 2 == _i64(n_fft))
            w = tirx.Select(edge, tirx.const(1.0, F64), tirx.const(2.0, F64))
            term = w * (xr * c - xi * s)
        elif inverse:
            term = tirx.Select(o[-1] == 0, xr * c - xi * s, xr * s + xi * c)
        else:
            term = tirx.Select(o[-1] == 0, xr * c + xi * s, xi * c - xr * s)
        if mask is not None:
            term = tirx.Select(r.astype(I64) < mask, term, tirx.const(0.0, F64))
        return te.sum(term * scale, axis=r)

    y = te.compute(out_shape, body, name="dft")
    if ctx.out_dtype() != F64:
        y = te.compute(out_shape, lambda *i: y(*i).astype(ctx.out_dtype()), name="dft_cast")
    return y
