"""Lowerings whose shape parameters may arrive at run time: views, Slice, Pad, Expand, Tile, ...

A library has static shapes: every result type is known when it is compiled (from shape inference
or the model's declared output types). A parameter such as Reshape's ``shape`` or Slice's
``starts`` may still be a run-time input of the model. Such an operand becomes a kernel input: the
lowering computes with its value where the value matters (Slice's start and step, Pad's offsets)
and checks, with ``ctx.require``, that the value yields the result shape the library was compiled
for. Any other value makes the run fail with a message, never a wrong or out-of-bounds result.

Each lowering writes its index arithmetic once, over a ``get(tensor, i)`` reader, so that the
same formulas serve the kernel body (TE reads) and the run-time check (TIR buffer loads).
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx, topi

from .registry import lowering

I64 = "int64"


def _te_get(tensor, i):
    return tensor[i].astype(I64) if len(tensor.shape) else tensor().astype(I64)


def _guard_get(read):
    return lambda tensor, i: (read(tensor, i) if len(tensor.shape) else read(tensor)).astype(I64)


def _const_get(values):
    """A reader over a compile-time array, so static and run-time operands share one formula."""
    return lambda _tensor, i: tirx.const(int(np.asarray(values).reshape(-1)[i]), I64)


def _all(conditions) -> object:
    out = tirx.const(True, "bool")
    for c in conditions:
        out = tirx.And(out, c)
    return out


def _any(conditions) -> object:
    out = tirx.const(False, "bool")
    for c in conditions:
        out = tirx.Or(out, c)
    return out


def _pick(index, values):
    """``values[index]`` for a run-time ``index`` over a short static list (a Select chain)."""
    out = tirx.const(int(values[-1]) if values else 0, I64)
    for k in range(len(values) - 2, -1, -1):
        out = tirx.Select(index == k, tirx.const(int(values[k]), I64), out)
    return out


def _norm_axis(a, rank: int):
    return tirx.Select(a < 0, a + rank, a)


def _length(ctx, k: int) -> int:
    """Number of elements of operand ``k`` (its static type)."""
    shape = ctx.in_types[k][0]
    return int(np.prod(shape)) if len(shape) else 1


def _operand(ctx, k, tensor):
    """(reader for the kernel body, reader maker for the guard, source) of operand ``k``."""
    if ctx.static(k) is not None:
        get = _const_get(ctx.static(k))
        return get, (lambda _read: get), None
    return _te_get, _guard_get, tensor


# views ---------------------------------------------------------------------------------------------

@lowering("Reshape", static=(1,), runtime=(1,), view=True)
def _reshape(ctx, x, shape=None):
    """A run-time ``shape`` must resolve (0 = copy, -1 = infer) to the compiled result shape."""
    out, in_shape = ctx.out_shape(), ctx.in_types[0][0]
    if shape is not None and ctx.static(1) is None:
        allowzero = bool(ctx.attr("allowzero", 0))
        if _length(ctx, 1) != len(out):
            raise ctx.fail(f"shape has {_length(ctx, 1)} elements but the result has rank {len(out)}")

        def ok(read):
            get = _guard_get(read)
            dims = [get(shape, i) for i in range(len(out))]
            each = [_any([d == out[i], d == -1] + ([d == 0] if not allowzero and i < len(in_shape)
                                                    and in_shape[i] == out[i] else []))
                    for i, d in enumerate(dims)]
            inferred = sum((tirx.Select(d == -1, tirx.const(1, I64), tirx.const(0, I64)) for d in dims),
                           tirx.const(0, I64))
            return _all(each + [inferred <= 1])

        ctx.require(ok, f"the run-time shape does not give the compiled result shape {tuple(out)}")
    return topi.reshape(x, out)


@lowering("Squeeze", "Unsqueeze", static=(1,), runtime=(1,), view=True)
def _squeeze(ctx, x, axes=None):
    """Run-time ``axes`` must name exactly the size-1 dims the compiled shapes drop (add)."""
    out, in_shape = ctx.out_shape(), ctx.in_types[0][0]
    if axes is not None and ctx.static(1) is None:
        squeeze = ctx.op == "Squeeze"
        full, short = (in_shape, out) if squeeze else (out, in_shape)
        count = _length(ctx, 1)
        if len(full) - len(short) != count:
            raise ctx.fail(f"{count} run-time axes cannot turn {tuple(in_shape)} into {tuple(out)}")

        def ok(read):
            get = _guard_get(read)
            picked = [_norm_axis(get(axes, j), len(full)) for j in range(count)]
            conds = [tirx.And(a >= 0, a < len(full)) for a in picked]
            conds += [picked[j] != picked[k] for j in range(count) for k in range(j + 1, count)]
            kept_before = tirx.const(0, I64)
            for p in range(len(full)):
                is_axis = _any([a == p for a in picked])
                conds.append(tirx.Select(is_axis, tirx.const(full[p] == 1, "bool"),
                                         _pick(kept_before, list(short)) == full[p]))
                kept_before = kept_before + tirx.Select(is_axis, tirx.const(0, I64), tirx.const(1, I64))
            return _all(conds)

        ctx.require(ok, f"the run-time axes do not turn {tuple(in_shape)} into the compiled {tuple(out)}")
    return topi.reshape(x, out)


# Slice ---------------------------------------------------------------------------------------------

def _slice_params(ctx, rank, in_shape, readers, tensors):
    """Per dim: (begin, step, extent) as int64 expressions over the operands' readers."""
    count = _length(ctx, 1)
    get_s, get_e, get_a, get_t = readers
    t_s, t_e, t_a, t_t = tensors
    begin = [tirx.const(0, I64)] * rank
    step = [tirx.const(1, I64)] * rank
    extent = [tirx.const(int(d), I64) for d in in_shape]
    for j in range(count):
        axis = _norm_axis(get_a(t_a, j), rank) if get_a else tirx.const(j, I64)
        st = get_t(t_t, j) if get_t else tirx.const(1, I64)
        for d in range(rank):
            dim = int(in_shape[d])
            s, e = get_s(t_s, j), get_e(t_e, j)
            s = tirx.Select(s < 0, s + dim, s)
            e = tirx.Select(e < 0, e + dim, e)
            lo, hi = tirx.Select(st > 0, tirx.const(0, I64), tirx.const(-1, I64)), \
                tirx.Select(st > 0, tirx.const(dim, I64), tirx.const(dim - 1, I64))
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
    ops = {k: _operand(ctx, k, t) for k, t in zip((1, 2, 3, 4), (starts, ends, axes, steps)) if k in present}
    tensors = [ops[k][2] if k in ops else None for k in (1, 2, 3, 4)]
    body_readers = [ops[k][0] if k in ops else None for k in (1, 2, 3, 4)]
    begin, step, _ = _slice_params(ctx, rank, in_shape, body_readers, tensors)

    def ok(read):
        readers = [ops[k][1](read) if k in ops else None for k in (1, 2, 3, 4)]
        _, steps_, extent = _slice_params(ctx, rank, in_shape, readers, tensors)
        return _all([n == out[d] for d, n in enumerate(extent)] + [s != 0 for s in steps_])

    ctx.require(ok, f"the run-time starts/ends/axes/steps do not give the compiled shape {tuple(out)}")
    return te.compute(out, lambda *i: x(*[begin[d] + i[d].astype(I64) * step[d] for d in range(rank)]),
                      name="slice")


def _static_slice(ctx, x, out):
    rank = len(x.shape)
    starts, ends = ctx.static(1), ctx.static(2)
    axes = ctx.static(3, np.arange(len(starts)))
    steps = ctx.static(4, np.ones(len(starts), dtype=np.int64))
    begin, stride = [0] * rank, [1] * rank
    for s, e, a, st in zip(starts.tolist(), ends.tolist(), axes.tolist(), steps.tolist()):
        a %= rank
        dim = int(x.shape[a])
        s = s + dim if s < 0 else s
        s = min(max(s, 0), dim) if st > 0 else min(max(s, -1), dim - 1)
        begin[a], stride[a] = s, st
    return te.compute(out, lambda *i: x(*[begin[d] + i[d] * stride[d] for d in range(rank)]), name="slice")
