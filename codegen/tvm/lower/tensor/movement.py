"""Lowerings of data movement: Transpose, Concat, Split, Slice, Pad, Expand, Tile, DepthToSpace,
SpaceToDepth, Trilu, ReverseSequence, CenterCropPad.

    ReverseSequence(x, lens)       x[t] -> x[lens[b] - 1 - t] for t < lens[b], along time_axis
    CenterCropPad(x, shape){axes}  each listed axis becomes ``shape[j]`` long: centred crop (start
                                   (in - out) // 2) or centred zero padding (start (out - in) // 2)

Shape parameters (Slice's ``starts``, Pad's ``pads``, CenterCropPad's ``shape`` ...) may be run-time
inputs: the kernel computes with them where their value matters and checks that they give the
compiled result shape (see ``operands``).
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx, topi

from ...registry import lowering
from ...te_util import all_of, check_values, read_if, require_all
from ...tir_util import I64
from .operands import guard_get, norm_axis, operand_getter, operand_length


@lowering("Transpose")
def _transpose(ctx, x):
    perm = ctx.attr("perm")
    return topi.transpose(x, [int(p) for p in perm] if perm is not None else None)


@lowering("Concat")
def _concat(ctx, *xs):
    return topi.concatenate(list(xs), int(ctx.attr("axis")) % len(xs[0].shape))


@lowering("DepthToSpace")
def _depth_to_space(ctx, x):
    b = int(ctx.attr("blocksize"))
    n, c, h, w = (int(d) for d in x.shape)
    oc = c // (b * b)
    crd = ctx.attr("mode", "DCR") == "CRD"

    def body(i, k, y, xx):
        by, bx = y % b, xx % b
        ch = k * b * b + by * b + bx if crd else (by * b + bx) * oc + k
        return x[i, ch, y // b, xx // b]

    return te.compute((n, oc, h * b, w * b), body, name="depth_to_space")


@lowering("SpaceToDepth")
def _space_to_depth(ctx, x):
    b = int(ctx.attr("blocksize"))
    n, c, h, w = (int(d) for d in x.shape)

    crd = ctx.attr("mode", "DCR") == "CRD"  # opset 28: channel-major output blocks

    def body(i, k, y, xx):
        blk, ch = (k % (b * b), k // (b * b)) if crd else (k // c, k % c)
        return x[i, ch, y * b + blk // b, xx * b + blk % b]

    return te.compute((n, c * b * b, h // b, w // b), body, name="space_to_depth")


def scalar_of(tensor, dtype: str = "int64"):
    """The single element of a run-time operand (0-d or one element) as a TE expression."""
    return tensor(*([0] * len(tensor.shape))).astype(dtype)


@lowering("Trilu", static=(1,), runtime=(1,))
def _trilu(ctx, x, k_tensor=None):
    if ctx.static(1) is not None:
        k = int(np.asarray(ctx.static(1)).reshape(-1)[0])
    elif k_tensor is not None:
        k = scalar_of(k_tensor)  # any value works: k only moves the diagonal
    else:
        k = 0
    upper = bool(ctx.attr("upper", 1))

    def body(*i):
        keep = (i[-1] - i[-2] >= k) if upper else (i[-1] - i[-2] <= k)
        return tirx.Select(keep, x(*i), tirx.const(0, x.dtype))

    return te.compute(x.shape, body, name="trilu")


# Slice ---------------------------------------------------------------------------------------------


def _slice_params(ctx, rank, in_shape, readers, tensors):
    """Per dim: (begin, step, extent) as int64 expressions over the operands' readers."""
    count = operand_length(ctx, 1)
    get_s, get_e, get_a, get_t = readers
    t_s, t_e, t_a, t_t = tensors
    begin = [tirx.const(0, I64)] * rank
    step = [tirx.const(1, I64)] * rank
    extent = [tirx.const(int(d), I64) for d in in_shape]
    for j in range(count):
        axis = norm_axis(get_a(t_a, j), rank) if get_a else tirx.const(j, I64)
        st = get_t(t_t, j) if get_t else tirx.const(1, I64)
        for d in range(rank):
            dim = int(in_shape[d])
            s, e = get_s(t_s, j), get_e(t_e, j)
            s = tirx.Select(s < 0, s + dim, s)
            e = tirx.Select(e < 0, e + dim, e)
            lo, hi = (
                tirx.Select(st > 0, tirx.const(0, I64), tirx.const(-1, I64)),
                tirx.Select(st > 0, tirx.const(dim, I64), tirx.const(dim - 1, I64)),
            )
            s, e = tirx.max(lo, tirx.min(s, hi)), tirx.max(lo, tirx.min(e, hi))
            span = tirx.Select(st > 0, e - s, s - e)
            mag = tirx.Select(st > 0, st, -st)
            n = tirx.Select(span > 0, tirx.floordiv(span + mag - 1, tirx.max(mag, 1)), tirx.const(0, I64))
            hit = axis == d
            begin[d] = tirx.Select(hit, s, begin[d])
            step[d] = tirx.Select(hit, st, step[d])
            extent[d] = tirx.Select(hit, n, extent[d])
    return begin, step, extent


@lowering("Slice", static=(1, 2, 3, 4), runtime=(1, 2, 3, 4))
def _slice(ctx, x, starts=None, ends=None, axes=None, steps=None):
    rank, in_shape, out = len(x.shape), ctx.in_types[0][0], ctx.out_shape()
    present = [k for k in (1, 2, 3, 4) if k < len(ctx.in_types) and ctx.in_types[k] is not None]
    if all(ctx.static(k) is not None for k in present):
        return _static_slice(ctx, x, out)
    ops = {k: operand_getter(ctx, k, t) for k, t in zip((1, 2, 3, 4), (starts, ends, axes, steps)) if k in present}
    tensors = [ops[k][2] if k in ops else None for k in (1, 2, 3, 4)]
    body_readers = [ops[k][0] if k in ops else None for k in (1, 2, 3, 4)]
    begin, step, _ = _slice_params(ctx, rank, in_shape, body_readers, tensors)

    def ok(read):
        readers = [ops[k][1](read) if k in ops else None for k in (1, 2, 3, 4)]
        _, steps_, extent = _slice_params(ctx, rank, in_shape, readers, tensors)
        return all_of([n == out[d] for d, n in enumerate(extent)] + [s != 0 for s in steps_])

    ctx.require(ok, f"the run-time starts/ends/axes/steps do not give the compiled shape {tuple(out)}")
    return te.compute(out, lambda *i: x(*[begin[d] + i[d].astype(I64) * step[d] for d in range(rank)]), name="slice")


def _static_slice(ctx, x, out):
    rank = len(x.shape)
    starts, ends = ctx.static(1), ctx.static(2)
    axes = ctx.static(3, np.arange(len(starts)))
    steps = ctx.static(4, np.ones(len(starts), dtype=np.int64))
    begin, stride = [0] * rank, [1] * rank
    for s, _e, a, st in zip(starts.tolist(), ends.tolist(), axes.tolist(), steps.tolist()):
        a %= rank
        dim = int(x.shape[a])
        s = s + dim if s < 0 else s
        s = min(max(s, 0), dim) if st > 0 else min(max(s, -1), dim - 1)
        begin[a], stride[a] = s, st
    return te.compute(out, lambda *i: x(*[begin[d] + i[d] * stride[d] for d in range(rank)]), name="slice")


# Pad -----------------------------------------------------------------------------------------------


def _pad_amounts(ctx, rank, readers, tensors):
    """Per dim (before, after) as int64 expressions over the pads/axes readers."""
    (get_p, get_a), (t_p, t_a) = readers, tensors
    count = operand_length(ctx, 3) if get_a else rank
    before = [tirx.const(0, I64)] * rank
    after = [tirx.const(0, I64)] * rank
    for j in range(count):
        axis = norm_axis(get_a(t_a, j), rank) if get_a else tirx.const(j, I64)
        for d in range(rank):
            hit = axis == d
            before[d] = tirx.Select(hit, get_p(t_p, j), before[d])
            after[d] = tirx.Select(hit, get_p(t_p, j + count), after[d])
    return before, after


def _source_index(mode, i, before, n):
    """Index into a dim of size ``n`` that output position ``i`` reads (and whether it is inside)."""
    src = i.astype(I64) - before
    inside = tirx.And(src >= 0, src < n)
    if mode == "edge":
        src = tirx.max(tirx.const(0, I64), tirx.min(src, tirx.const(n - 1, I64)))
    elif mode == "reflect":
        src = tirx.Select(src < 0, -src, src)
        src = tirx.Select(src >= n, 2 * (n - 1) - src, src)
    elif mode == "wrap":
        src = tirx.floormod(src, tirx.const(n, I64))
    else:  # constant: the caller reads through ``read_if(inside, ...)``; the clamp is kept for it
        src = tirx.max(tirx.const(0, I64), tirx.min(src, tirx.const(max(n - 1, 0), I64)))
    return src, inside


@lowering("Pad", static=(1, 2, 3), runtime=(1, 2, 3))
def _pad(ctx, x, pads=None, value=None, axes=None):
    """Constant, edge, reflect and wrap padding; negative pads crop. Pads/axes/value may be run-time."""
    rank, in_shape, out = len(x.shape), ctx.in_types[0][0], ctx.out_shape()
    mode = ctx.attr("mode", "constant")
    if mode not in ("constant", "edge", "reflect", "wrap"):
        raise ctx.fail(f"pad mode '{mode}' is not supported")
    has_axes = len(ctx.in_types) > 3 and ctx.in_types[3] is not None
    p_ops = operand_getter(ctx, 1, pads)
    a_ops = operand_getter(ctx, 3, axes) if has_axes else None
    tensors = (p_ops[2], a_ops[2] if a_ops else None)
    before, after = _pad_amounts(ctx, rank, (p_ops[0], a_ops[0] if a_ops else None), tensors)
    if p_ops[2] is not None or (a_ops and a_ops[2] is not None):

        def ok(read):
            b, a = _pad_amounts(ctx, rank, (p_ops[1](read), a_ops[1](read) if a_ops else None), tensors)
            conds = [in_shape[d] + b[d] + a[d] == out[d] for d in range(rank)]
            if mode == "reflect":
                conds += [tirx.And(b[d] < max(in_shape[d], 1), a[d] < max(in_shape[d], 1)) for d in range(rank)]
            if mode in ("edge", "reflect", "wrap"):
                conds += [tirx.Or(tirx.And(b[d] <= 0, a[d] <= 0), in_shape[d] > 0) for d in range(rank)]
            return all_of(conds)

        ctx.require(ok, f"the pads do not give the compiled shape {tuple(out)} (or exceed what mode '{mode}' allows)")
    if ctx.static(2) is not None:
        fill = (
            tirx.const(np.asarray(ctx.static(2)).reshape(-1)[0].item(), x.dtype)
            if np.asarray(ctx.static(2)).size
            else tirx.const(0, x.dtype)
        )
    elif value is not None and len(ctx.in_types) > 2 and ctx.in_types[2] is not None:
        fill = value(*([0] * len(value.shape))).astype(x.dtype)
    else:
        fill = tirx.const(0, x.dtype)

    def body(*i):
        srcs, inside = [], tirx.const(True, "bool")
        for d in range(rank):
            src, ok_d = _source_index(mode, i[d], before[d], int(in_shape[d]))
            srcs.append(src)
            inside = tirx.And(inside, ok_d)
        if mode != "constant":
            return x(*srcs)
        return read_if(inside, x(*srcs), fill)

    return te.compute(out, body, name="pad")


@lowering("Expand", static=(1,), runtime=(1,))
def _expand(ctx, x, shape=None):
    out, in_shape = ctx.out_shape(), ctx.in_types[0][0]
    if shape is not None and ctx.static(1) is None:
        count = operand_length(ctx, 1)

        def ok(read):
            get = guard_get(read)
            conds = []
            for p in range(len(out)):
                q = p - (len(out) - count)  # shape operand position (right-aligned)
                r = p - (len(out) - len(in_shape))
                s_dim = get(shape, q) if q >= 0 else tirx.const(1, I64)
                i_dim = int(in_shape[r]) if r >= 0 else 1
                if i_dim == 1:
                    conds.append(tirx.Select(s_dim == 1, tirx.const(1, I64), s_dim) == out[p])
                else:
                    conds.append(tirx.And(tirx.Or(s_dim == 1, s_dim == i_dim), tirx.const(i_dim == out[p], "bool")))
            return all_of(conds)

        ctx.require(ok, f"the run-time shape does not broadcast the input to the compiled {tuple(out)}")
    return topi.broadcast_to(x, out)


@lowering("Tile", static=(1,), runtime=(1,))
def _tile(ctx, x, repeats=None):
    out, shape = ctx.out_shape(), [int(d) for d in x.shape]
    if repeats is not None and ctx.static(1) is None:
        ctx.require(
            lambda read: all_of([guard_get(read)(repeats, d) * shape[d] == out[d] for d in range(len(shape))]),
            f"the run-time repeats do not give the compiled shape {tuple(out)}",
        )
    return te.compute(out, lambda *i: x(*[i[d] % shape[d] for d in range(len(shape))]), name="tile")


@lowering("Split", static=(1,), runtime=(1,))
def _split(ctx, x, split=None):
    axis = int(ctx.attr("axis", 0)) % len(x.shape)
    sizes = [shape[axis] for shape, _ in ctx.out_types]
    if split is not None and ctx.static(1) is None:
        ctx.require(
            lambda read: all_of([guard_get(read)(split, j) == s for j, s in enumerate(sizes)]),
            f"the run-time split sizes are not the compiled {sizes}",
        )

    def part(shape, start, k):
        return te.compute(shape, lambda *i: x(*i[:axis], i[axis] + start, *i[axis + 1 :]), name=f"split{k}")

    outs, start = [], 0
    for shape, _ in ctx.out_types:
        outs.append(part(shape, start, len(outs)))
        start += shape[axis]
    return outs


@lowering("ReverseSequence")
def _reverse_sequence(ctx, x, lens):
    """Each length must lie in ``[0, T]`` (checked once per batch entry, as onnxruntime does); the
    read position stays inside the time axis whatever the check."""
    batch_axis, time_axis = int(ctx.attr("batch_axis", 1)), int(ctx.attr("time_axis", 0))
    steps = int(x.shape[time_axis])
    require_all(ctx, lens, lambda v, j: tirx.And(v >= 0, v <= steps), f"a sequence length is outside [0, {steps}]")

    def body(*i):
        n = tirx.max(tirx.const(0, I64), tirx.min(lens(i[batch_axis]).astype(I64), tirx.const(steps, I64)))
        t = i[time_axis].astype(I64)
        src = list(i)
        src[time_axis] = tirx.Select(t < n, n - 1 - t, t)
        return x(*src)

    return te.compute(x.shape, body, name="reverse_sequence")


@lowering("CenterCropPad", static=(1,), runtime=(1,))
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
    check_values(ctx, 1, shape, {j: out[a] for j, a in enumerate(axes)}, "shape")
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
        return tirx.Select(all_of(inside), x(*src), zero) if inside else x(*src)

    return te.compute(out, body, name="center_crop_pad")
