"""Direct lowerings of two geometry ops whose size operand may be a run-time input.

    AffineGrid(theta[N,2,3], size=[N,C,H,W]){align_corners}    -> grid[N,H,W,2]
    AffineGrid(theta[N,3,4], size=[N,C,D,H,W]){align_corners}  -> grid[N,D,H,W,3]
        grid[n, ..., k] = theta[n, k, :] . (x_w, y_h[, z_d], 1), with base coordinates in [-1, 1]:
        -1 + 2 i / (L - 1) when align_corners (-1 for L == 1), else (2 i + 1) / L - 1
    CenterCropPad(x, shape){axes}
        each listed axis becomes ``shape[j]`` long: centred crop (start (in - out) // 2) or centred
        zero padding (start (out - in) // 2)

The result shape is the compiled (declared or inferred) one; a run-time ``size`` / ``shape`` operand
is checked against it with ``ctx.require`` (a different value fails the run with a message), and a
constant one at compile time. The rest is index arithmetic: without the op's function body, these
need neither If nor ConstantOfShape of a run-time shape.
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx

from .ops_more_common import lowering_if_missing

I64 = "int64"


def _all(conditions):
    out = tirx.const(True, "bool")
    for c in conditions:
        out = tirx.And(out, c)
    return out


def _check_values(ctx, k, tensor, expected: dict, what: str) -> None:
    """Operand ``k`` must hold ``expected[j]`` at each listed position ``j`` (compile time or run time)."""
    count = int(np.prod(ctx.in_types[k][0])) if len(ctx.in_types[k][0]) else 1
    if max(expected, default=-1) >= count:
        raise ctx.fail(f"{what} has {count} elements; expected at least {max(expected) + 1}")
    message = f"{what} {list(expected.values())} (at positions {list(expected)}) is what this library was " \
              f"compiled for (result shape {tuple(ctx.out_shape())}); the run-time value differs"
    value = ctx.static(k)
    if value is not None:
        flat = np.asarray(value).reshape(-1)
        if any(int(flat[j]) != v for j, v in expected.items()):
            raise ctx.fail(f"{what} {flat.tolist()} does not give the result shape {tuple(ctx.out_shape())}")
        return
    if tensor is None:
        raise ctx.fail(f"{what} is missing")
    rank = len(tensor.shape)

    def ok(read):
        def get(j):
            return (read(tensor, j) if rank else read(tensor)).astype(I64)
        return _all([get(j) == v for j, v in expected.items()])

    ctx.require(ok, message)


def _base_coordinate(i, length: int, align_corners: bool):
    """The normalised coordinate of position ``i`` along a dim of ``length`` (float64)."""
    i = i.astype("float64")
    if align_corners:
        if length == 1:
            return tirx.const(-1.0, "float64")
        return tirx.const(-1.0, "float64") + i * tirx.const(2.0 / (length - 1), "float64")
    step = 2.0 / length
    return tirx.const(-1.0 + step / 2, "float64") + i * tirx.const(step, "float64")


@lowering_if_missing("AffineGrid", static=(1,), runtime=(1,))
def _affine_grid(ctx, theta, size=None):
    """``theta`` times the homogeneous base coordinates, for the compiled N and spatial sizes."""
    out = ctx.out_shape()
    spatial = list(out[1:-1])
    dims = len(spatial)
    if dims not in (2, 3) or out[-1] != dims or tuple(int(d) for d in theta.shape) != (out[0], dims, dims + 1):
        raise ctx.fail(f"theta {tuple(int(d) for d in theta.shape)} and grid {out} do not fit a 2-D or 3-D grid")
    expected = {0: out[0], **{2 + d: s for d, s in enumerate(spatial)}}
    _check_values(ctx, 1, size, expected, "size")
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


@lowering_if_missing("CenterCropPad", static=(1,), runtime=(1,))
def _center_crop_pad(ctx, x, shape=None):
    """Centred crop or zero padding of each listed axis to the compiled length."""
    in_shape, out = [int(d) for d in x.shape], ctx.out_shape()
    rank = len(in_shape)
    axes = ctx.attr("axes")
    axes = list(range(rank)) if axes is None else [int(a) % rank for a in axes]
    if len(set(axes)) != len(axes):
        raise ctx.fail(f"axes {axes} repeat an axis")
    if any(out[d] != in_shape[d] for d in range(rank) if d not in axes):
        raise ctx.fail(f"the result shape {out} changes an axis not in {axes}")
    _check_values(ctx, 1, shape, {j: out[a] for j, a in enumerate(axes)}, "shape")
    zero = tirx.const(0, str(x.dtype))

    def body(*i):
        src, inside = [], []
        for d in range(rank):
            if out[d] <= in_shape[d]:
                src.append(i[d] + (in_shape[d] - out[d]) // 2)
            else:
                s = i[d] - (out[d] - in_shape[d]) // 2
                inside.append(tirx.And(s >= 0, s < in_shape[d]))
                src.append(tirx.max(0, tirx.min(s, max(in_shape[d] - 1, 0))))
        return tirx.Select(_all(inside), x(*src), zero) if inside else x(*src)

    return te.compute(out, body, name="center_crop_pad")
