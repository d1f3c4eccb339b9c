"""Lowering of ``Resize`` (nearest, linear, cubic; every coordinate transformation mode).

With static shapes, each resized axis maps an output index ``o`` to a source coordinate that is
affine in ``o``:

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
axes' taps, computed in float64 coordinates like the ONNX reference.

``antialias=1`` (linear/cubic) widens the filter by ``1/s`` when downscaling: see
``antialias``, which shares the coordinates and the final step with this module.

``roi``, ``scales`` and ``sizes`` may be run-time inputs of the library.  Each parameter is then a
list of float64 TIR expressions (a Python float when it is a constant), so one set of formulas
serves constants and run-time values; the output shape stays the compiled one, and a run-time
check (``ctx.require``) refuses scales/sizes that would give another shape (``floor(s L)`` for
scales, ``sizes`` or, with ``keep_aspect_ratio_policy``, ``round(s L)`` for sizes).  With run-time
values every axis of ``axes`` is resized except length-1 ones (which sample their one element
whatever the scale), since a run-time scale may differ from 1 even where ``O == L``.
"""

from __future__ import annotations

import itertools

import numpy as np
from tvm import te, tirx

from ...registry import lowering
from ...te_util import let
from .antialias import antialias_resize, tap_bound, tap_count

F64 = "float64"


def _is_expr(v) -> bool:
    return not isinstance(v, (int, float, bool, np.integer, np.floating, np.bool_))


def _f64(v):
    return v if _is_expr(v) else tirx.const(float(v), F64)


def _when(cond, then, other):
    """``then if cond else other`` for a Python bool, a TIR Select for a run-time condition."""
    if not _is_expr(cond):
        return then if cond else other
    return tirx.Select(cond, _f64(then), _f64(other))


def _smallest(values, largest: bool = False):
    out = values[0]
    for v in values[1:]:
        if _is_expr(out) or _is_expr(v):
            out = tirx.max(_f64(out), _f64(v)) if largest else tirx.min(_f64(out), _f64(v))
        else:
            out = max(out, v) if largest else min(out, v)
    return out


def _present(ctx, k: int) -> bool:
    """Whether operand ``k`` is given and non-empty (an empty scales/roi counts as absent)."""
    if k >= len(ctx.in_types) or ctx.in_types[k] is None:
        return False
    return int(np.prod(ctx.in_types[k][0])) > 0


def _values(ctx, k: int, tensor, load) -> list | None:
    """Operand ``k``'s elements: Python floats for a constant, float64 loads for a run-time one."""
    if not _present(ctx, k):
        return None
    if ctx.static(k) is not None:
        return [float(v) for v in np.asarray(ctx.static(k)).reshape(-1).tolist()]
    count = int(np.prod(ctx.in_types[k][0]))
    return [load(tensor, i).astype(F64) for i in range(count)]


def _axes(ctx, rank: int) -> list[int]:
    return [int(a) % rank for a in (ctx.attr("axes") or range(rank))]


def _axis_scales(ctx, rank: int, scales_in, sizes_in) -> list:
    """Per-dimension scales as ONNX defines them (given scales, or sizes / input with the policy)."""
    in_shape, out_shape = ctx.in_types[0][0], ctx.out_shape()
    axes = _axes(ctx, rank)
    if scales_in:
        scales = [1.0] * rank
        for a, s in zip(axes, scales_in):
            scales[a] = s
        return scales
    ratios = [out_shape[d] / in_shape[d] for d in range(rank)]
    if sizes_in:
        ratios = [1.0] * rank
        for a, n in zip(axes, sizes_in):
            ratios[a] = n / float(in_shape[a])
    policy = ctx.attr("keep_aspect_ratio_policy", "stretch")
    if policy in ("not_larger", "not_smaller"):
        common = _smallest([ratios[a] for a in axes], largest=policy == "not_smaller")
        ratios = [common if d in axes else 1.0 for d in range(rank)]
    return ratios


def _roi(ctx, rank: int, roi) -> list[tuple]:
    """Per-dimension (start, end) of the region of interest (``tf_crop_and_resize`` only)."""
    spans = [(0.0, 1.0)] * rank
    if not roi:
        return spans
    n = len(roi) // 2
    for j, a in enumerate(_axes(ctx, rank)[:n]):
        spans[a] = (roi[j], roi[j + n])
    return spans


def _shape_checks(ctx, rank: int, scales_in, sizes_in) -> list:
    """Conditions (bools or TIR) that the scales/sizes give the compiled output shape."""
    in_shape, out_shape = ctx.in_types[0][0], ctx.out_shape()
    axes = _axes(ctx, rank)
    checks = []
    if scales_in:
        for a, s in zip(axes, scales_in):
            length = float(in_shape[a]) * s
            checks += [s > 0.0, _floor_int(length) == out_shape[a]]
        return checks
    if not sizes_in:
        return checks
    policy = ctx.attr("keep_aspect_ratio_policy", "stretch")
    if policy not in ("not_larger", "not_smaller"):
        return [n == float(out_shape[a]) for a, n in zip(axes, sizes_in)]
    common = _axis_scales(ctx, rank, None, sizes_in)[axes[0]]
    return [_floor_int(common * float(in_shape[a]) + 0.5) == out_shape[a] for a in axes]


def _floor_int(v):
    return tirx.floor(v).astype("int64") if _is_expr(v) else int(np.floor(v))


def _coordinate(mode: str, o, scale, length: int, out_len: int, roi):
    """The float64 source coordinate of output index ``o`` along one axis."""
    of = o.astype(F64)
    width = scale * length  # the un-rounded output length
    # ``width - 1`` as a divisor, made 1 where ``width == 1`` picks the other branch: a Python
    # division by zero would raise (both branches are built), a TIR one would feed the Select a NaN
    safe = width - 1 + _when(width == 1, 1.0, 0.0)
    if mode == "align_corners":
        return _when(width == 1, 0.0, of * ((length - 1) / safe))
    if mode == "asymmetric":
        return of / scale
    if mode == "tf_crop_and_resize":
        r0, r1 = roi
        one = (r1 - r0) * (length - 1) / 2 + r0 * (length - 1)
        span = (r1 - r0) * (length - 1) / safe
        return _when(width == 1, one, of * span + r0 * (length - 1))
    if mode == "pytorch_half_pixel":
        return _when(width == 1, -0.5, (of + 0.5) / scale - 0.5)
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
    return [(_clamp(idx, length), tirx.const(1.0, F64), idx)]


def _clamp(idx, length: int):
    return tirx.max(tirx.const(0, "int64"), tirx.min(idx, tirx.const(length - 1, "int64")))


def _cubic_weights(r, a: float) -> list:
    """Keys cubic weights of taps floor(x)-1 .. floor(x)+2 for fraction ``r``."""

    def near(t):  # |t| <= 1
        return ((a + 2) * t - (a + 3)) * t * t + 1

    def far(t):  # 1 < |t| < 2
        return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a

    return [far(r + 1), near(r), near(1 - r), far(2 - r)]


def _bound_weights(taps: list, name: str, body, done: tuple = ()):
    """``body(taps)`` with each tap's weight bound once to a variable (``te_util.let``)."""
    if len(done) == len(taps):
        return body(list(done))
    idx, weight, raw = taps[len(done)]
    return let(f"{name}_{len(done)}", weight, lambda w: _bound_weights(taps, name, body, done + ((idx, w, raw),)))


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
    kept = [tirx.Select(ok, w, tirx.const(0.0, F64)) for ok, (_, w) in zip(inside, raw)]
    total = kept[0]
    for w in kept[1:]:
        total = total + w
    return [(_clamp(i, length), w / total, i) for (i, _), w in zip(raw, kept)]


def _unit_scale_condition(dims, scales, rois, crop: bool):
    """A TIR condition that every dim of ``dims`` has scale 1 (and a full roi for a crop), or None
    when there are no such dims or a constant scale already rules it out."""
    conds = []
    for d in dims:
        conds.append(scales[d] == 1.0)
        if crop:
            conds += [rois[d][0] == 0.0, rois[d][1] == 1.0]
    if not dims or any(not _is_expr(c) and not c for c in conds):
        return None
    out = tirx.const(True, "bool")
    for c in conds:
        out = tirx.And(out, c) if _is_expr(c) else out
    return out


def _identity_axis(d, in_shape, out_shape, scale, roi, crop: bool) -> bool:
    """Whether axis ``d`` needs no sampling (so it keeps the output index)."""
    if in_shape[d] != out_shape[d]:
        return False
    if _is_expr(scale) or (crop and any(_is_expr(r) for r in roi)):
        return in_shape[d] == 1  # a run-time value: only a length-1 axis is certainly unchanged
    return scale == 1.0 and not (crop and roi != (0.0, 1.0))


@lowering("Resize", static=(1, 2, 3), runtime=(1, 2, 3))
def _resize(ctx, x, roi=None, scales=None, sizes=None):
    rank = len(x.shape)
    in_shape, out_shape = [int(d) for d in x.shape], ctx.out_shape()
    _check_operand_lengths(ctx, rank, in_shape, out_shape)
    te_load = lambda t, i: t[i]  # noqa: E731
    params = [_values(ctx, k, t, te_load) for k, t in ((1, roi), (2, scales), (3, sizes))]
    roi_v, scales_v, sizes_v = params
    axis_scales, rois = _axis_scales(ctx, rank, scales_v, sizes_v), _roi(ctx, rank, roi_v)
    mode = ctx.attr("mode", "nearest")
    antialias = bool(int(ctx.attr("antialias", 0))) and mode != "nearest"
    rounded = ctx.attr("keep_aspect_ratio_policy", "stretch") in ("not_larger", "not_smaller")
    bounds = (
        {d: tap_bound(axis_scales[d], in_shape[d], out_shape[d], mode, rounded) for d in range(rank)}
        if antialias
        else {}
    )
    _guard_shape(ctx, rank, (roi, scales, sizes), bounds)
    ctm = ctx.attr("coordinate_transformation_mode", "half_pixel")
    rounding = ctx.attr("nearest_mode", "round_prefer_floor")
    cubic_a = float(ctx.attr("cubic_coeff_a", -0.75))
    exclude = bool(int(ctx.attr("exclude_outside", 0)))
    extrapolation = float(ctx.attr("extrapolation_value", 0.0))
    crop = ctm == "tf_crop_and_resize"
    resized = [d for d in range(rank) if not _identity_axis(d, in_shape, out_shape, axis_scales[d], rois[d], crop)]
    out_dtype = ctx.out_dtype()

    def coordinate(d):
        return lambda o: _coordinate(ctm, o, axis_scales[d], in_shape[d], out_shape[d], rois[d])

    def finish(total, o):
        """Extrapolation outside a crop's roi, rounding for integer results, the result type."""
        if crop and resized:
            outside = [
                tirx.any(xd < 0.0, xd > float(in_shape[d] - 1)) for d, xd in ((d, coordinate(d)(o[d])) for d in resized)
            ]
            flag = tirx.any(*outside) if len(outside) > 1 else outside[0]
            total = tirx.Select(flag, tirx.const(extrapolation, F64), total)
        if np.dtype(out_dtype).kind in "iu" and mode != "nearest":
            total = tirx.round(total)
        return total.astype(out_dtype)

    factors = _integer_upsampling(mode, ctm, rounding, resized, in_shape, out_shape, axis_scales)
    if factors is not None:  # every output element is a copy of x[..., o // s, ...]
        return te.compute(
            out_shape, lambda *o: x(*[o[d] // factors[d] if d in factors else o[d] for d in range(rank)]), name="resize"
        )

    if antialias and resized:
        return antialias_resize(
            x,
            out_shape,
            resized,
            {d: coordinate(d) for d in resized},
            {d: axis_scales[d] for d in resized},
            bounds,
            mode,
            cubic_a,
            exclude,
            finish,
        )

    def sample(o, axes):
        """The float64 interpolation at output index ``o`` over the taps of ``axes``: each axis's
        coordinate and tap weights bound once (``te_util.let``), since every product of taps reads
        them. Inlined, a cubic resize of 3 axes at run-time scales with ``exclude_outside`` repeated
        each axis's normalised weights in all 64 products, and TVM's common-subexpression pass took
        5.7 s of the kernel's 20 s compile (timed once with TVM's ``PassTimingInstrument``)."""

        def over(i, taps_per_axis):
            if i == len(axes):
                return weighted_sum(o, axes, taps_per_axis)
            d = axes[i]

            def at(xd):
                if mode == "nearest":
                    return over(i + 1, taps_per_axis + [_nearest_tap(xd, in_shape[d], rounding)])
                taps = _interp_taps(xd, in_shape[d], mode, cubic_a, exclude)
                return _bound_weights(taps, f"resize_w{d}", lambda bound: over(i + 1, taps_per_axis + [bound]))

            return let(f"resize_x{d}", coordinate(d)(o[d]), at)

        return over(0, [])

    def weighted_sum(o, axes, taps_per_axis):
        total = None
        for combo in itertools.product(*taps_per_axis):
            index = list(o)
            weight = None
            for d, (idx, w, _) in zip(axes, combo):
                index[d] = idx
                weight = w if weight is None else weight * w
            term = x(*index).astype(F64)
            term = term if mode == "nearest" else term * weight
            total = term if total is None else total + term
        return x(*o).astype(F64) if total is None else total

    # dims that keep their length under a run-time scale/roi are resampled in general, but their
    # scale is usually 1: then a lazy branch skips their taps (as the reference skips such axes)
    unit = _unit_scale_condition([d for d in resized if in_shape[d] == out_shape[d]], axis_scales, rois, crop)

    def body(*o):
        total = sample(o, resized)
        if unit is not None:
            kept = [d for d in resized if in_shape[d] != out_shape[d]]
            total = tirx.if_then_else(unit, sample(o, kept), total)
        return finish(total, o)

    return te.compute(out_shape, body, name="resize")


# (coordinate_transformation_mode, nearest_mode) pairs under which nearest sampling at an integer
# upscale s reads input index o // s for output index o: asymmetric o / s floored, and
# (o + 0.5) / s - 0.5 = q + t with |t| <= (s - 1) / 2s < 1/2 for o = q s + r, rounded
_INTEGER_NEAREST = {
    ("asymmetric", "floor"),
    *((m, r) for m in ("half_pixel", "pytorch_half_pixel") for r in ("round_prefer_floor", "round_prefer_ceil")),
}


def _integer_upsampling(mode, ctm, rounding, resized, in_shape, out_shape, scales) -> dict[int, int] | None:
    """``{axis: s}`` when nearest sampling reads ``x[..., o // s, ...]`` on every resized axis (an
    exact integer upscale s of a compile-time scale, in one of the ``_INTEGER_NEAREST`` modes): the
    copy then needs no float64 coordinates (a 2x upsample of 96 x 80 x 80: 1.69 -> 0.97 ms, one-off timing
    at 1 thread; onnxruntime 0.27), else None."""
    if mode != "nearest" or (ctm, rounding) not in _INTEGER_NEAREST or not resized:
        return None
    factors = {}
    for d in resized:
        factor = out_shape[d] // in_shape[d] if in_shape[d] else 0
        if factor < 2 or out_shape[d] != factor * in_shape[d] or _is_expr(scales[d]) or scales[d] != factor:
            return None
        factors[d] = factor
    return factors


def _check_operand_lengths(ctx, rank: int, in_shape, out_shape) -> None:
    """Compile-time checks: the parameter lengths fit ``axes`` and unresized dims keep their size."""
    axes = _axes(ctx, rank)
    for k, name in ((2, "scales"), (3, "sizes")):
        if _present(ctx, k) and int(np.prod(ctx.in_types[k][0])) != len(axes):
            raise ctx.fail(f"{name} has {int(np.prod(ctx.in_types[k][0]))} elements for {len(axes)} axes")
    for d in range(rank):
        if d not in axes and in_shape[d] != out_shape[d]:
            raise ctx.fail(
                f"dim {d} is not in axes but the compiled shapes change it ({tuple(in_shape)} -> {tuple(out_shape)})"
            )


def _guard_shape(ctx, rank: int, tensors, bounds: dict) -> None:
    """With run-time scales/sizes: a run-time check that they give the compiled output shape
    (and, with antialiasing, need no more taps than ``bounds`` per dim)."""
    runtime = [k for k in (2, 3) if _present(ctx, k) and ctx.static(k) is None]
    if not runtime or (2 not in runtime and _present(ctx, 2)):
        return  # constant scales decide the shape; run-time sizes are then ignored

    def ok(read):
        load = lambda t, i: read(t, i)  # noqa: E731
        scales_v = _values(ctx, 2, tensors[1], load)
        sizes_v = _values(ctx, 3, tensors[2], load)
        out = tirx.const(True, "bool")
        conditions = _shape_checks(ctx, rank, scales_v, sizes_v)
        axis_scales = _axis_scales(ctx, rank, scales_v, sizes_v)
        conditions += [tap_count(axis_scales[d], ctx.attr("mode")) <= n for d, n in bounds.items()]
        for c in conditions:
            out = tirx.And(out, c if _is_expr(c) else tirx.const(bool(c), "bool"))
        return out

    ctx.require(
        ok,
        "the run-time scales/sizes do not give the compiled output shape "
        f"{tuple(ctx.out_shape())} from the input shape {tuple(ctx.in_types[0][0])}",
    )
