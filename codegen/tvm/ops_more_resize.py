"""Lowering of ``Resize`` (nearest, linear, cubic; every coordinate transformation mode).

With static shapes and constant ``roi``/``scales``/``sizes``, each resized axis maps an output
index ``o`` to a source coordinate that is affine in ``o``:

    half_pixel            x = (o + 0.5) / s - 0.5
    half_pixel_symmetric  x = L/2 * (1 - O / (s L)) + (o + 0.5) / s - 0.5
    pytorch_half_pixel    x = (o + 0.5) / s - 0.5        (-0.5 when s L == 1)
    align_corners         x = o (L - 1) / (s L - 1)      (0 when s L == 1)
    asymmetric            x = o / s
    tf_crop_and_resize    x = r0 (L - 1) + o (r1 - r0)(L - 1) / (s L - 1), outside [0, L-1] -> extrapolation

(``s`` the axis scale, ``L`` the input and ``O`` the output length, ``r0``/``r1`` the axis roi).
Each axis then contributes taps ``(index, weight)``: one for nearest (by ``nearest_mode``), two for
linear, four for cubic (``cubic_coeff_a``); indices clamp to the edge, and ``exclude_outside``
zeroes and renormalises taps outside the input.  The result is the sum over the product of the
axes' taps, computed in float64 coordinates like the ONNX reference.  ``antialias=1`` is not
lowered (the filter widens with the scale) and fails at compile time.
"""

from __future__ import annotations

import itertools

import numpy as np
from tvm import te, tirx

from .ops_more_common import lowering_if_missing


def _axis_scales(ctx, rank: int) -> list[float]:
    """Per-dimension scales as ONNX defines them (given scales, or sizes / input with the policy)."""
    in_shape, out_shape = ctx.in_types[0][0], ctx.out_shape()
    axes = [int(a) % rank for a in (ctx.attr("axes") or range(rank))]
    scales_in, sizes_in = ctx.static(2), ctx.static(3)
    scales = [1.0] * rank
    if scales_in is not None and np.asarray(scales_in).size:
        for a, s in zip(axes, np.asarray(scales_in, np.float32).reshape(-1).tolist()):
            scales[a] = float(s)
        return scales
    ratios = [out_shape[d] / in_shape[d] for d in range(rank)]
    if sizes_in is not None and np.asarray(sizes_in).size:
        ratios = [1.0] * rank
        for a, n in zip(axes, np.asarray(sizes_in).reshape(-1).tolist()):
            ratios[a] = int(n) / in_shape[a]
    policy = ctx.attr("keep_aspect_ratio_policy", "stretch")
    if policy in ("not_larger", "not_smaller"):
        pick = min if policy == "not_larger" else max
        common = pick(ratios[a] for a in axes)
        ratios = [common if d in axes else 1.0 for d in range(rank)]
    return ratios


def _roi(ctx, rank: int) -> list[tuple[float, float]]:
    """Per-dimension (start, end) of the region of interest (``tf_crop_and_resize`` only)."""
    roi = ctx.static(1)
    spans = [(0.0, 1.0)] * rank
    if roi is None or np.asarray(roi).size == 0:
        return spans
    roi = np.asarray(roi, np.float64).reshape(-1).tolist()
    axes = [int(a) % rank for a in (ctx.attr("axes") or range(rank))]
    n = len(roi) // 2
    for j, a in enumerate(axes[:n]):
        spans[a] = (roi[j], roi[j + n])
    return spans


def _coordinate(mode: str, o, scale: float, length: int, out_len: int, roi: tuple[float, float]):
    """The float64 source coordinate of output index ``o`` along one axis."""
    of = o.astype("float64")
    width = scale * length  # the un-rounded output length
    if mode == "align_corners":
        return tirx.const(0.0, "float64") if width == 1 else of * ((length - 1) / (width - 1))
    if mode == "asymmetric":
        return of / scale
    if mode == "tf_crop_and_resize":
        r0, r1 = roi
        if width == 1:
            return tirx.const((r1 - r0) * (length - 1) / 2 + r0 * (length - 1), "float64")
        return of * ((r1 - r0) * (length - 1) / (width - 1)) + r0 * (length - 1)
    if mode == "pytorch_half_pixel":
        return tirx.const(-0.5, "float64") if width == 1 else (of + 0.5) / scale - 0.5
    if mode == "half_pixel":
        return (of + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        offset = length / 2 * (1 - out_len / width)
        return (of + 0.5) / scale - 0.5 + offset
    if mode == "tf_half_pixel_for_nn":
        return (of + 0.5) / scale
    raise ValueError(f"coordinate_transformation_mode '{mode}' is not supported")


def _nearest_tap(x, length: int, rounding: str):
    """The one (index, weight) of nearest-neighbour sampling at coordinate ``x``."""
    lo = tirx.floor(x)
    frac = x - lo
    if rounding == "floor":
        up = tirx.const(False, "bool")
    elif rounding == "ceil":
        up = frac > 0.0
    elif rounding == "round_prefer_ceil":
        up = frac >= 0.5
    else:  # round_prefer_floor (the default)
        up = frac > 0.5
    idx = lo.astype("int64") + tirx.Select(up, tirx.const(1, "int64"), tirx.const(0, "int64"))
    return [(_clamp(idx, length), tirx.const(1.0, "float64"), idx)]


def _clamp(idx, length: int):
    return tirx.max(tirx.const(0, "int64"), tirx.min(idx, tirx.const(length - 1, "int64")))


def _cubic_weights(r, a: float) -> list:
    """Keys cubic weights of taps floor(x)-1 .. floor(x)+2 for fraction ``r``."""
    def near(t):  # |t| <= 1
        return ((a + 2) * t - (a + 3)) * t * t + 1

    def far(t):  # 1 < |t| < 2
        return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a

    return [far(r + 1), near(r), near(1 - r), far(2 - r)]


def _interp_taps(x, length: int, mode: str, cubic_a: float, exclude: bool):
    """(clamped index, weight, raw index) taps of linear or cubic interpolation at ``x``."""
    lo = tirx.floor(x)
    r = x - lo
    base = lo.astype("int64")
    if mode == "linear":
        raw = [(base, 1.0 - r), (base + 1, r)]
    else:
        raw = [(base + (k - 1), w) for k, w in enumerate(_cubic_weights(r, cubic_a))]
    if not exclude:
        return [(_clamp(i, length), w, i) for i, w in raw]
    inside = [tirx.all(i >= 0, i < length) for i, _ in raw]
    kept = [tirx.Select(ok, w, tirx.const(0.0, "float64")) for ok, (_, w) in zip(inside, raw)]
    total = kept[0]
    for w in kept[1:]:
        total = total + w
    return [(_clamp(i, length), w / total, i) for (i, _), w in zip(raw, kept)]


@lowering_if_missing("Resize", static=(1, 2, 3))
def _resize(ctx, x, *_static_operands):
    if int(ctx.attr("antialias", 0)):
        raise ctx.fail("antialias=1 is not supported by code generation")
    rank = len(x.shape)
    in_shape, out_shape = [int(d) for d in x.shape], ctx.out_shape()
    scales, rois = _axis_scales(ctx, rank), _roi(ctx, rank)
    mode = ctx.attr("mode", "nearest")
    ctm = ctx.attr("coordinate_transformation_mode", "half_pixel")
    rounding = ctx.attr("nearest_mode", "round_prefer_floor")
    cubic_a = float(ctx.attr("cubic_coeff_a", -0.75))
    exclude = bool(int(ctx.attr("exclude_outside", 0)))
    extrapolation = float(ctx.attr("extrapolation_value", 0.0))
    resized = [d for d in range(rank) if in_shape[d] != out_shape[d] or scales[d] != 1.0
               or (ctm == "tf_crop_and_resize" and rois[d] != (0.0, 1.0))]
    out_dtype = ctx.out_dtype()

    def body(*o):
        taps_per_axis, outside = [], []
        for d in resized:
            xd = _coordinate(ctm, o[d], scales[d], in_shape[d], out_shape[d], rois[d])
            if ctm == "tf_crop_and_resize":
                outside.append(tirx.any(xd < 0.0, xd > float(in_shape[d] - 1)))
            if mode == "nearest":
                taps_per_axis.append(_nearest_tap(xd, in_shape[d], rounding))
            else:
                taps_per_axis.append(_interp_taps(xd, in_shape[d], mode, cubic_a, exclude))
        total = None
        for combo in itertools.product(*taps_per_axis):
            index = list(o)
            weight = None
            for d, (idx, w, _) in zip(resized, combo):
                index[d] = idx
                weight = w if weight is None else weight * w
            term = x(*index).astype("float64")
            term = term if mode == "nearest" else term * weight
            total = term if total is None else total + term
        if total is None:
            total = x(*o).astype("float64")
        if outside:
            flag = outside[0]
            for f in outside[1:]:
                flag = tirx.any(flag, f)
            total = tirx.Select(flag, tirx.const(extrapolation, "float64"), total)
        if np.dtype(out_dtype).kind in "iu":
            total = tirx.round(total) if mode != "nearest" else total
        return total.astype(out_dtype)

    return te.compute(out_shape, body, name="resize")


@lowering_if_missing("Upsample", static=(1,))
def _upsample(ctx, x, *_static_operands):
    """``Upsample(x, scales){mode}`` (deprecated) is ``Resize`` with asymmetric coordinates and,
    for nearest, floor rounding."""
    import dataclasses

    mode = ctx.attr("mode", "nearest")
    attrs = {"mode": "linear" if mode in ("linear", "bilinear") else mode,
             "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
    return _resize(dataclasses.replace(ctx, attrs=attrs, statics={2: ctx.static(1)}), x)
