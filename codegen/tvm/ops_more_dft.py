"""Lowering of ``DFT`` as a dense transform along one axis (forward, inverse, one-sided).

The last dim of input and output holds (real) or (real, imaginary).  With ``N`` = ``dft_length``
(default: the axis length, or ``2 (M - 1)`` for a one-sided inverse of ``M`` bins), angles
``theta = 2 pi ((k n) mod N) / N`` (the integer mod keeps the angles small); sums are float64 like ``numpy.fft``:

    forward       X[k] = sum_{n < min(L, N)} x[n] e^{-i theta}      (``onesided``: k <= N/2)
    inverse       x[n] = 1/N sum_{k < min(L, N)} X[k] e^{+i theta}
    inverse, onesided (irfft, real output)
                  x[n] = 1/N sum_{k <= N/2} w_k Re(X[k] e^{+i theta}),  w_k = 2 except k = 0, N/2

Input samples beyond ``N`` are dropped and missing ones count as zero, like ``numpy.fft``.
"""

from __future__ import annotations

import math

import numpy as np
from tvm import te, tirx

from .ops_more_common import lowering_if_missing

F64 = "float64"  # numpy.fft computes in double; so does this kernel


@lowering_if_missing("DFT", static=(1, 2), kind="reduce")
def _dft(ctx, x, *_static_operands):
    rank = len(x.shape)
    axis_in = ctx.static(2)
    axis = int(np.asarray(axis_in).reshape(-1)[0]) if axis_in is not None else int(ctx.attr("axis", -2))
    axis %= rank
    inverse, onesided = bool(int(ctx.attr("inverse", 0))), bool(int(ctx.attr("onesided", 0)))
    length = int(x.shape[axis])
    n_fft = ctx.static(1)
    if n_fft is not None and np.asarray(n_fft).size:
        n_fft = int(np.asarray(n_fft).reshape(-1)[0])
    else:
        n_fft = 2 * (length - 1) if inverse and onesided else length
    complex_in = int(x.shape[-1]) == 2
    irfft = inverse and onesided
    used = min(length, n_fft // 2 + 1 if irfft else n_fft)
    r = te.reduce_axis((0, used), name="r")
    out_shape = ctx.out_shape()
    scale = 1.0 / n_fft if inverse else 1.0
    two_pi_over_n = 2 * math.pi / n_fft

    def body(*o):
        k = o[axis]
        at = list(o[:-1])
        at[axis] = r
        xr = x(*at, 0).astype(F64)
        xi = x(*at, 1).astype(F64) if complex_in else tirx.const(0.0, F64)
        m = tirx.indexmod(k.astype("int64") * r.astype("int64"), n_fft)
        theta = m.astype(F64) * tirx.const(two_pi_over_n, F64)
        c, s = tirx.cos(theta), tirx.sin(theta)
        if irfft:
            edge = tirx.any(r == 0, r * 2 == n_fft)
            w = tirx.Select(edge, tirx.const(1.0, F64), tirx.const(2.0, F64))
            term = w * (xr * c - xi * s)
        elif inverse:
            term = tirx.Select(o[-1] == 0, xr * c - xi * s, xr * s + xi * c)
        else:
            term = tirx.Select(o[-1] == 0, xr * c + xi * s, xi * c - xr * s)
        return te.sum(term * tirx.const(scale, F64), axis=r)

    y = te.compute(out_shape, body, name="dft")
    if ctx.out_dtype() != F64:
        y = te.compute(out_shape, lambda *i: y(*i).astype(ctx.out_dtype()), name="dft_cast")
    return y
