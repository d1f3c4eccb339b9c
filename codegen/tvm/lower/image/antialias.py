"""Antialiased ``Resize`` (``antialias=1``, linear or cubic): the filter widens with the downscale.

Along an axis with scale ``s`` (``f = min(s, 1)``) the filter has support 1 (linear) or 2 (cubic)
in output units, so it takes ``n = 2 - 2 (floor(-support / f) + 1)`` input taps at indices
``lo - n/2 + 1 .. lo + n/2`` (``lo = floor(x)``, or ``x - 1`` at an integer ``x``), weighted by the
kernel at ``f (index - x)`` and normalised to sum 1, as the ONNX reference does; indices clamp to
the edge and ``exclude_outside`` drops taps outside the input before normalising.

``n`` grows as ``1 / s``, so the taps are not unrolled into one expression (a product over axes
of wide filters would swamp the compiler). Each axis gets small tables instead, indexed by
(output position, tap): the clamped input index and the unnormalised weight, plus the weight sum
per position. They are reductions (over one element), which the scheduler keeps materialised, so
the main kernel is a compact reduction over each axis's taps that reads the tables. With a run-time
scale ``n`` is a run-time value: the tables have ``bound`` taps (the most the compiled shape
allows, see ``tap_bound``) and taps past ``n`` weigh 0.
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx

F64, I64 = "float64", "int64"


def _is_expr(v) -> bool:
    return not isinstance(v, (int, float, bool, np.integer, np.floating, np.bool_))


def support(mode: str) -> int:
    return 1 if mode == "linear" else 2


def tap_count(scale, mode: str):
    """Number of filter taps for ``scale`` (int, or int64 expression for a run-time scale)."""
    if not _is_expr(scale):
        return 2 - 2 * (int(np.floor(-support(mode) / min(scale, 1.0))) + 1)
    shrink = tirx.min(scale, tirx.const(1.0, F64))
    return 2 - 2 * (tirx.floor(tirx.const(-float(support(mode)), F64) / shrink).astype(I64) + 1)


def tap_bound(scale, in_len: int, out_len: int, mode: str, rounded: bool) -> int:
    """The most taps an axis may need: its scale's count, or for a run-time scale the count of the
    smallest scale giving ``out_len`` (``rounded``: the output length is round(s L), else floor)."""
    if not _is_expr(scale):
        return tap_count(scale, mode)
    smallest = (out_len - 0.5) / in_len if rounded else out_len / in_len * (1 - 1e-9)
    return tap_count(max(smallest, 1e-6), mode)


def _kernel(a, mode: str, cubic_a: float):
    """The filter at distance ``a`` >= 0 (in output units)."""
    zero = tirx.const(0.0, F64)
    if mode == "linear":
        return tirx.max(1.0 - a, zero)
    near = ((cubic_a + 2) * a - (cubic_a + 3)) * a * a + 1.0
    far = ((cubic_a * a - 5 * cubic_a) * a + 8 * cubic_a) * a - 4 * cubic_a
    return tirx.Select(a <= 1.0, near, tirx.Select(a < 2.0, far, zero))


def _tables(d: int, coordinate, scale, length: int, out_len: int, bound: int, mode: str, cubic_a: float, exclude: bool):
    """(index, weight, weight sum) tables of axis ``d``: shapes (out, bound), (out, bound), (out,)."""
    count = tap_count(scale, mode)
    shrink = tirx.min(scale, tirx.const(1.0, F64)) if _is_expr(scale) else tirx.const(min(scale, 1.0), F64)

    def raw_index(o, t):
        x = coordinate(o)
        fl = tirx.floor(x)
        lo = tirx.Select(x == fl, fl - 1.0, fl).astype(I64)
        return x, lo - count // 2 + 1 + t.astype(I64)

    def weight(o, t):
        x, idx = raw_index(o, t)
        w = _kernel(tirx.abs((idx.astype(F64) - x) * shrink), mode, cubic_a)
        keep = t.astype(I64) < count
        if exclude:
            keep = tirx.all(keep, idx >= 0, idx < length)
        return tirx.Select(keep, w, tirx.const(0.0, F64))

    def clamped(o, t):
        idx = raw_index(o, t)[1]
        return tirx.max(tirx.const(0, I64), tirx.min(idx, tirx.const(length - 1, I64)))

    one = te.reduce_axis((0, 1), name=f"one{d}")
    one_w = te.reduce_axis((0, 1), name=f"one_w{d}")
    index = te.compute(
        (out_len, bound), lambda o, t: te.sum(clamped(o, t) + one.astype(I64) * 0, axis=one), name=f"resize_index{d}"
    )
    raw = te.compute(
        (out_len, bound),
        lambda o, t: te.sum(weight(o, t) + one_w.astype(F64) * 0.0, axis=one_w),
        name=f"resize_weight{d}",
    )
    t = te.reduce_axis((0, bound), name=f"tap_sum{d}")
    total = te.compute((out_len,), lambda o: te.sum(raw[o, t], axis=t), name=f"resize_weight_sum{d}")
    return index, raw, total


def antialias_resize(
    x,
    out_shape,
    axes: list[int],
    coordinates: dict,
    scales: dict,
    bounds: dict,
    mode: str,
    cubic_a: float,
    exclude: bool,
    finish,
):
    """The antialiased resize of ``x`` along ``axes``; ``coordinates[d](o)`` maps an output index
    to the float64 source coordinate, ``finish(acc, o)`` turns the float64 sum into the result."""
    in_shape = [int(s) for s in x.shape]
    tables = {
        d: _tables(d, coordinates[d], scales[d], in_shape[d], out_shape[d], bounds[d], mode, cubic_a, exclude)
        for d in axes
    }
    taps = [te.reduce_axis((0, bounds[d]), name=f"tap{d}") for d in axes]

    def accumulate(*o):
        index, weight = list(o), None
        for d, t in zip(axes, taps):
            idx, raw, total = tables[d]
            index[d] = idx[o[d], t]
            norm = tirx.Select(total[o[d]] == 0.0, tirx.const(1.0, F64), total[o[d]])
            w = raw[o[d], t] / norm
            weight = w if weight is None else weight * w
        return te.sum(x(*index).astype(F64) * weight, axis=taps)

    acc = te.compute(out_shape, accumulate, name="resize_acc")
    return te.compute(out_shape, lambda *o: finish(acc(*o), o), name="resize")
