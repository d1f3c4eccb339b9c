"""Lowerings of sampling grids: GridSample and AffineGrid.

``GridSample`` (2-D and 3-D; nearest, linear, cubic; zeros, border, reflection):

For output position ``(n, c, o...)`` the grid gives normalised coordinates in reverse dimension
order (``x`` first).  Each is mapped to input space

    align_corners=1:  x = (g + 1) / 2 * (L - 1)        borders [0, L - 1]
    align_corners=0:  x = ((g + 1) L - 1) / 2          borders [-0.5, L - 0.5]

(``nearest`` rounds half to even first); a coordinate outside the borders is clamped to
``[0, L - 1]`` (``border``) or reflected at the borders (``reflection``).  Interpolation taps
``floor(x) + k`` are then read with the same padding: zero outside (``zeros``), clamped, or
reflected.  Cubic taps use Keys' kernel with ``a = -0.75``.  Arithmetic is float32, like the
ONNX reference.

    AffineGrid(theta[N,2,3], size=[N,C,H,W]){align_corners}    -> grid[N,H,W,2]
    AffineGrid(theta[N,3,4], size=[N,C,D,H,W]){align_corners}  -> grid[N,D,H,W,3]
        grid[n, ..., k] = theta[n, k, :] . (x_w, y_h[, z_d], 1), with base coordinates in [-1, 1]:
        -1 + 2 i / (L - 1) when align_corners (-1 for L == 1), else (2 i + 1) / L - 1

A run-time ``size`` is checked against the compiled result shape.
"""

from __future__ import annotations

import itertools

from tvm import te, tirx

from ...registry import lowering
from ...te_util import check_values, is_nan, read_if

F32 = "float32"


CUBIC_A = -0.75


def _f(value: float):
    return tirx.const(value, F32)


def _reflect(x, lo: float, hi: float):
    """Reflect ``x`` at ``lo``/``hi`` until it lies between them (float32)."""
    span = hi - lo

    def fold(dx, near, far):
        k = tirx.floor(dx / span)
        r = dx - k * _f(span)
        even = tirx.floormod(k.astype("int32"), 2) == 0
        return tirx.Select(even, near(r), far(r))

    below = fold(_f(lo) - x, lambda r: _f(lo) + r, lambda r: _f(hi) - r)
    above = fold(x - _f(hi), lambda r: _f(hi) - r, lambda r: _f(lo) + r)
    return tirx.Select(x < _f(lo), below, tirx.Select(x > _f(hi), above, x))


def _finite(x, lo: float, hi: float):
    """A float coordinate clamped into ``[lo, hi]``, NaN becoming ``lo``, so that its integer cast is
    defined (LLVM's fptosi of NaN or of an out-of-range value is poison: any tap index)."""
    return tirx.Select(is_nan(x), _f(lo), tirx.max(_f(lo), tirx.min(x, _f(hi))))


def _tap_index(i, length: int, padding: str, lo: float, hi: float):
    """(index to read, in-bounds flag or None) of integer tap ``i`` under ``padding``."""
    last = tirx.const(length - 1, "int32")
    zero = tirx.const(0, "int32")
    if padding == "zeros":
        inside = tirx.all(i >= 0, i < length)
        return tirx.max(zero, tirx.min(i, last)), inside
    if padding == "border":
        return tirx.max(zero, tirx.min(i, last)), None
    reflected = _reflect(i.astype(F32), lo, hi).astype("int32")
    return tirx.max(zero, tirx.min(reflected, last)), None


def _cubic(r):
    a = CUBIC_A

    def near(t):
        return ((a + 2) * t - (a + 3)) * t * t + 1

    def far(t):
        return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a

    return [far(r + 1), near(r), near(1 - r), far(2 - r)]


@lowering("GridSample")
def _grid_sample(ctx, x, grid):
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(ctx.attr("mode", "linear"), ctx.attr("mode", "linear"))
    padding = ctx.attr("padding_mode", "zeros")
    align = bool(int(ctx.attr("align_corners", 0)))
    dims = [int(d) for d in x.shape[2:]]
    nd = len(dims)
    borders = [(0.0, d - 1.0) if align else (-0.5, d - 0.5) for d in dims]
    out_dtype = ctx.out_dtype()

    def body(n, c, *o):
        taps_per_dim = []
        for i, length in enumerate(dims):
            g = grid(n, *o, nd - 1 - i).astype(F32)
            if align:
                xi = (g + _f(1.0)) / _f(2.0) * _f(length - 1)
            else:
                xi = ((g + _f(1.0)) * _f(length) - _f(1.0)) / _f(2.0)
            if mode == "nearest":
                xi = tirx.nearbyint(xi)
            xi = _finite(xi, -(2.0**24), 2.0**24)  # a NaN or huge coordinate never reaches an int cast
            lo, hi = borders[i]
            if padding == "border":
                xi = tirx.Select(
                    tirx.any(xi < _f(lo), xi > _f(hi)), tirx.max(_f(0.0), tirx.min(xi, _f(length - 1))), xi
                )
            elif padding == "reflection":
                xi = _reflect(xi, lo, hi)
            xi = _finite(xi, -4.0, length + 3.0)  # every tap of a coordinate beyond this is outside too
            if mode == "nearest":
                taps_per_dim.append([(xi.astype("int32"), None)])
                continue
            base = tirx.floor(xi)
            r = xi - base
            b = base.astype("int32")
            if mode == "linear":
                taps_per_dim.append([(b, _f(1.0) - r), (b + 1, r)])
            else:
                taps_per_dim.append([(b + (k - 1), w) for k, w in enumerate(_cubic(r))])
        total = None
        for combo in itertools.product(*taps_per_dim):
            index, weight, inside = [], None, []
            for i, (tap, w) in enumerate(combo):
                idx, ok = _tap_index(tap, dims[i], padding, *borders[i])
                index.append(idx)
                if ok is not None:
                    inside.append(ok)
                if w is not None:
                    weight = w if weight is None else weight * w
            value = x(n, c, *index).astype(F32)
            if inside:
                value = read_if(tirx.all(*inside) if len(inside) > 1 else inside[0], value, _f(0.0))
            term = value if weight is None else value * weight
            total = term if total is None else total + term
        return total.astype(out_dtype)

    return te.compute(ctx.out_shape(), body, name="grid_sample")


def _base_coordinate(i, length: int, align_corners: bool):
    """The normalised coordinate of position ``i`` along a dim of ``length`` (float64)."""
    i = i.astype("float64")
    if align_corners:
        if length == 1:
            return tirx.const(-1.0, "float64")
        return tirx.const(-1.0, "float64") + i * tirx.const(2.0 / (length - 1), "float64")
    step = 2.0 / length
    return tirx.const(-1.0 + step / 2, "float64") + i * tirx.const(step, "float64")


@lowering("AffineGrid", static=(1,), runtime=(1,))
def _affine_grid(ctx, theta, size=None):
    """``theta`` times the homogeneous base coordinates, for the compiled N and spatial sizes."""
    out = ctx.out_shape()
    spatial = list(out[1:-1])
    dims = len(spatial)
    if dims not in (2, 3) or out[-1] != dims or tuple(int(d) for d in theta.shape) != (out[0], dims, dims + 1):
        raise ctx.fail(f"theta {tuple(int(d) for d in theta.shape)} and grid {out} do not fit a 2-D or 3-D grid")
    expected = {0: out[0], **{2 + d: s for d, s in enumerate(spatial)}}
    check_values(ctx, 1, size, expected, "size")
    align = bool(ctx.attr("align_corners", 0))
    dtype = ctx.out_dtype()

    def body(n, *index):
        position, k = index[:-1], index[-1]
        # homogeneous vector (x, y[, z], 1): x runs along the last spatial dim, y the one before, ...
        coords = [_base_coordinate(position[dims - 1 - c], spatial[dims - 1 - c], align) for c in range(dims)]
        total = theta[n, k, dims].astype("float64")
        for c in range(dims):
            total = total + theta[n, k, c].astype("float64") * coords[c]
        return total.astype(dtype)

    return te.compute(out, body, name="affine_grid")
