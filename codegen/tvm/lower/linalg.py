"""Lowerings of linear algebra: MatMul, Gemm, Einsum and Det.

A constant 2-D ``B`` of MatMul or Gemm (transposed first for ``transB``) is prepacked at compile
time into panels ``[N/P, K, P]`` of the matmul schedule's register tile width ``P`` (32 or 16), so
that the vector loop over N reads contiguous memory.

    Det(x)                                  determinant of each trailing square matrix (LU with
                                            partial pivoting, in float64)
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx, topi
from tvm.script.ir_builder import tirx as T

from ..registry import lowering
from ..te_util import HALF_TYPES, rounded_to_half
from ..tir_util import I64, Local, Workspace, extern, grid, when


def _panel_width(n: int) -> int:
    """Columns per prepacked panel of a constant B (the matmul schedule's register tile)."""
    return 32 if n % 32 == 0 else 16 if n % 16 == 0 else 0


def _pack_panels(b):
    """[K, N] -> [N/P, K, P]: each register tile's columns of B contiguous along K."""
    if b.ndim != 2 or not _panel_width(b.shape[1]):
        return b
    p = _panel_width(b.shape[1])
    return np.ascontiguousarray(b.reshape(b.shape[0], b.shape[1] // p, p).transpose(1, 0, 2))


def _pack_matmul_b(attrs, in_types, b):
    return _pack_panels(b)


def _pack_gemm_b(attrs, in_types, b):
    return _pack_panels(b.T if int(attrs.get("transB", 0)) else b)


def _panel_reader(bp):
    """B[k, n] read from its panel-packed form [N/P, K, P]."""
    p = int(bp.shape[2])
    return lambda k, n: bp[n // p, k, n % p]


def matmul_compute(a, b, out_shape, out_dtype, b_reader=None):
    """C[..., m, n] = sum_k A[..., m, k] * B[..., k, n] with numpy broadcasting of batch dims;
    ``b_reader(k, n)`` replaces indexing of a 2-D ``b`` (prepacked panels)."""
    ka = int(a.shape[-1])
    rk = te.reduce_axis((0, ka), "rk")
    batch = len(out_shape) - 2

    def index(t, idx, last2):
        off = batch - (len(t.shape) - 2)
        lead = [0 if int(t.shape[d]) == 1 else idx[off + d] for d in range(len(t.shape) - 2)]
        return t(*lead, *last2)

    def read_b(i):
        return b_reader(rk, i[-1]) if b_reader is not None else index(b, i, (rk, i[-1]))

    # half types accumulate in float32 and round once (as numpy's and onnxruntime's matmuls do)
    acc_dtype = "float32" if str(out_dtype) in HALF_TYPES else out_dtype
    out = te.compute(
        out_shape,
        lambda *i: te.sum(index(a, i, (i[-2], rk)).astype(acc_dtype) * read_b(i).astype(acc_dtype), axis=rk),
        name="matmul",
    )
    return out if acc_dtype == out_dtype else rounded_to_half(out, out_dtype)


@lowering("MatMul", kind="matmul", prepack={1: _pack_matmul_b})
def _matmul(ctx, a, b):
    out_shape = ctx.out_shape()
    if 1 in ctx.packed:  # a constant 2-D B prepacked into panels [N/P, K, P]
        if len(a.shape) == 1:
            a = topi.expand_dims(a, 0)
        full = tuple(out_shape) if len(ctx.in_types[0][0]) > 1 else (1, *out_shape)
        out = matmul_compute(a, None, full, ctx.out_dtype(), _panel_reader(b))
        return topi.reshape(out, out_shape) if full != tuple(out_shape) else out
    a2 = a if len(a.shape) > 1 else topi.expand_dims(a, 0)
    b2 = b if len(b.shape) > 1 else topi.expand_dims(b, 1)
    full = list(out_shape)
    if len(a.shape) == 1:
        full.insert(len(full) - (0 if len(b.shape) == 1 else 1), 1)
    if len(b.shape) == 1:
        full.append(1)
    out = matmul_compute(a2, b2, tuple(full), ctx.out_dtype())
    if tuple(full) != tuple(out_shape):
        out = topi.reshape(out, out_shape)
    return out


@lowering("Gemm", kind="matmul", prepack={1: _pack_gemm_b})
def _gemm(ctx, a, b, c=None):
    if int(ctx.attr("transA", 0)):
        a = topi.transpose(a, [1, 0])
    reader = None
    if 1 in ctx.packed:
        if len(b.shape) == 3:
            reader = _panel_reader(b)
    elif int(ctx.attr("transB", 0)):
        b = topi.transpose(b, [1, 0])
    out = matmul_compute(a, b, ctx.out_shape(), ctx.out_dtype(), reader)
    alpha, beta = float(ctx.attr("alpha", 1.0)), float(ctx.attr("beta", 1.0))
    if alpha != 1.0:
        out = topi.multiply(out, tirx.const(alpha, out.dtype))
    if c is not None:
        cc = c if beta == 1.0 else topi.multiply(c, tirx.const(beta, c.dtype))
        out = topi.add(out, cc)
    return out


@lowering("Einsum")
def _einsum(ctx, *xs):
    return topi.einsum(ctx.attr("equation").replace(" ", ""), *xs)


# Det -------------------------------------------------------------------------------------------------


@lowering("Det", kind="extern")
def _det(ctx, x):
    dims = [int(d) for d in x.shape]
    if len(dims) < 2 or dims[-1] != dims[-2]:
        raise ctx.fail(f"the input shape {dims} does not end in a square matrix")
    size, batch = dims[-1], dims[:-2]
    f64 = "float64"

    def body(ins, outs):
        data, result = ins[0], outs[0]
        workspace = Workspace()
        lu = workspace.buffer(size * size, f64)
        with grid(batch) as b:
            with T.grid(size, size) as (r, c):
                T.buffer_store(lu, data[tuple(b + [r, c])].astype(f64), [r * size + c])
            det = Local(1.0, f64)
            with T.serial(0, size) as k:
                pivot = Local(k.astype(I64))
                with T.serial(k + 1, size) as r:
                    with when(tirx.abs(lu[r * size + k]) > tirx.abs(lu[pivot.value * size + k])):
                        pivot.set(r.astype(I64))
                with when(pivot.value != k.astype(I64)):
                    with T.serial(0, size) as c:
                        held = Local(lu[k * size + c], f64)
                        T.buffer_store(lu, lu[pivot.value * size + c], [k * size + c])
                        T.buffer_store(lu, held.value, [pivot.value * size + c])
                    det.set(-det.value)
                head = Local(lu[k * size + k], f64)
                det.set(det.value * head.value)
                with when(head.value != tirx.const(0.0, f64)):
                    with T.serial(k + 1, size) as r:
                        factor = Local(lu[r * size + k] / head.value, f64)
                        with T.serial(k + 1, size) as c:
                            T.buffer_store(lu, lu[r * size + c] - factor.value * lu[k * size + c], [r * size + c])
            T.buffer_store(result, det.value.astype(str(x.dtype)), b)
        workspace.free_all()

    return extern(ctx, [x], body, "det")[0]
