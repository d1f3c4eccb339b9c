"""Lowerings of smaller ops met in the ONNX node suite: indexing, bit views and integer matmuls.

    BitCast(x){to}                 reinterpret the bits (same element width; bool -> 0/1 bytes)
    IsInf(x)                       isinf(x) and (x > 0 and detect_positive or x < 0 and detect_negative)
    EyeLike(x){k, dtype}           1 where column - row == k
    GatherND(data, indices)        data[b..., indices[b..., i..., :], rest...] with ``batch_dims`` b
    ReverseSequence(x, lens)       x[t] -> x[lens[b] - 1 - t] for t < lens[b], along time_axis
    MatMulInteger(a, b, za, zb)    int32 sum (a - za)(b - zb)
    QLinearMatMul(a, sa, za, b, sb, zb, sy, zy)
                                   saturate(round(sum (a - za)(b - zb) * sa sb / sy) + zy)

Matmul operands broadcast over leading (batch) dims like numpy; zero points and scales are
per-tensor (scalars or one-element tensors) or, for QLinearMatMul, per row of ``a`` / column of ``b``.
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx

from .ops_more_common import lowering_if_missing


@lowering_if_missing("BitCast", elementwise=True)
def _bitcast(ctx, x):
    out = ctx.out_dtype()
    if str(x.dtype) == "bool" or out == "bool":
        return te.compute(x.shape, lambda *i: x(*i).astype(out), name="bitcast")
    return te.compute(x.shape, lambda *i: tirx.reinterpret(out, x(*i)), name="bitcast")


@lowering_if_missing("IsInf", elementwise=True)
def _isinf(ctx, x):
    pos, neg = int(ctx.attr("detect_positive", 1)), int(ctx.attr("detect_negative", 1))

    def body(*i):
        v = x(*i)
        zero = tirx.const(0, str(x.dtype))
        sign = tirx.const(False, "bool")
        if pos:
            sign = tirx.any(sign, v > zero)
        if neg:
            sign = tirx.any(sign, v < zero)
        return tirx.all(tirx.isinf(v), sign)

    return te.compute(x.shape, body, name="isinf")


@lowering_if_missing("EyeLike")
def _eye_like(ctx, x):
    k, out = int(ctx.attr("k", 0)), ctx.out_dtype()
    return te.compute(ctx.out_shape(), lambda i, j: tirx.Select(j - i == k, tirx.const(1, out), tirx.const(0, out)),
                      name="eye_like")


@lowering_if_missing("GatherND")
def _gather_nd(ctx, data, indices):
    b = int(ctx.attr("batch_dims", 0))
    q = len(indices.shape)
    m = int(indices.shape[-1])
    dims = [int(d) for d in data.shape]

    def body(*o):
        lead = o[:q - 1]
        at = list(o[:b])
        for t in range(m):
            i = indices(*lead, t).astype("int64")
            at.append(tirx.Select(i < 0, i + dims[b + t], i))
        return data(*at, *o[q - 1:])

    return te.compute(ctx.out_shape(), body, name="gather_nd")


@lowering_if_missing("ReverseSequence")
def _reverse_sequence(ctx, x, lens):
    batch_axis, time_axis = int(ctx.attr("batch_axis", 1)), int(ctx.attr("time_axis", 0))

    def body(*i):
        n = lens(i[batch_axis]).astype("int32")
        t = i[time_axis]
        src = list(i)
        src[time_axis] = tirx.Select(t < n, n - 1 - t, t)
        return x(*src)

    return te.compute(x.shape, body, name="reverse_sequence")


def _scalar(param, dtype: str):
    """A per-tensor quantisation parameter (0-d or one-element tensor) as an expression."""
    if param is None:
        return tirx.const(0, dtype)
    return (param() if len(param.shape) == 0 else param(*([0] * len(param.shape)))).astype(dtype)


def _per(param, index, dtype: str):
    """A quantisation parameter that is per tensor or per ``index`` (a row of a, a column of b)."""
    if param is None:
        return tirx.const(0, dtype)
    size = int(np.prod([int(d) for d in param.shape])) if len(param.shape) else 1
    if size == 1:
        return _scalar(param, dtype)
    return param(*([0] * (len(param.shape) - 1)), index).astype(dtype)


def _int_matmul(ctx, a, b, za_of, zb_of, name: str):
    """int32 ``sum_k (a[..., i, k] - za(i)) (b[..., k, j] - zb(j))`` with numpy batch broadcasting."""
    out_shape = ctx.out_shape()
    ra, rb, ro = len(a.shape), len(b.shape), len(out_shape)
    kdim = int(a.shape[-1])
    k = te.reduce_axis((0, kdim), name="k")

    def batch_index(tensor, rank, o):
        lead = []
        for d in range(rank - 2):
            od = o[ro - 2 - (rank - 2) + d]
            lead.append(od if int(tensor.shape[d]) != 1 else 0)
        return lead

    def body(*o):
        i, j = o[-2], o[-1]
        av = a(*batch_index(a, ra, o), i, k).astype("int32") - za_of(i)
        bv = b(*batch_index(b, rb, o), k, j).astype("int32") - zb_of(j)
        return te.sum(av * bv, axis=k)

    if ra < 2 or rb < 2:
        raise ctx.fail("1-D operands are not supported")
    return te.compute(out_shape, body, name=name)


@lowering_if_missing("MatMulInteger", kind="reduce")
def _matmul_integer(ctx, a, b, za=None, zb=None):
    return _int_matmul(ctx, a, b, lambda i: _per(za, i, "int32"), lambda j: _per(zb, j, "int32"), "matmul_int")


@lowering_if_missing("QLinearMatMul", kind="reduce")
def _qlinear_matmul(ctx, a, sa, za, b, sb, zb, sy, zy=None):
    acc = _int_matmul(ctx, a, b, lambda i: _per(za, i, "int32"), lambda j: _per(zb, j, "int32"), "qmatmul_acc")
    out = ctx.out_dtype()
    info = np.iinfo(out)
    f32 = "float32"

    def body(*o):
        i, j = o[-2], o[-1]
        scale = _per(sa, i, f32) * _per(sb, j, f32) / _scalar(sy, f32)
        q = tirx.nearbyint(acc(*o).astype(f32) * scale) + _scalar(zy, f32)
        return tirx.max(tirx.const(float(info.min), f32), tirx.min(q, tirx.const(float(info.max), f32))).astype(out)

    return te.compute(ctx.out_shape(), body, name="qmatmul")
