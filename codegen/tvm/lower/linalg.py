"""Lowerings of linear algebra: MatMul, Gemm, Einsum and Det.

A constant 2-D ``B`` of MatMul or Gemm (transposed first for ``transB``) is prepacked at compile
time into panels ``[N/P, K, P]`` of the matmul schedule's register tile width ``P`` (32 or 16), so
that the vector loop over N reads contiguous memory.

    Det(x)                                  determinant of each trailing square matrix (LU with
                                            partial pivoting, in float64)
"""

from __future__ import annotations

import dataclasses

import numpy as np
from tvm import te, tirx, topi
from tvm.script.ir_builder import tirx as T

from ..dot_instructions import BF16
from ..registry import lowering
from ..te_util import HALF_TYPES, MATERIALISED, rounded_to_half
from ..tir_util import I64, Local, Workspace, extern, grid, when
from .matmul_amx import amx_bf16_matmul, amx_bf16_matmul_fits
from .matmul_bf16 import (
    bf16_dot_matmul,
    bf16_matmul_fits,
    is_packed_bf16_matmul_weight,
    pack_bf16_matmul_weight,
    unpacked_bf16_matmul_weight,
)

ROW_TILE = 8  # rows of the matmul schedule's register tile (schedule_matmul.schedule_matmul)


def _panel_width(n: int) -> int:
    """Columns per panel of a packed B (a multiple of the schedule's register tile), or 0: too narrow."""
    return 32 if n >= 32 else 16 if n >= 8 else 0


def _padded(n: int, width: int) -> int:
    return -(-n // width) * width


def _padded_rows(m: int, tile: int = ROW_TILE) -> int:
    """Rows computed: ``m``, or ``m`` rounded up to whole register tiles of ``tile`` rows (the
    target's ``ScheduleParams.mm_rows``) when the best tile that divides ``m`` is under 4 rows, or
    under ``tile`` rows where rounding up adds at most 1/8. On AVX2 (6-row tiles) BERT's 128 rows
    took 4-row tiles, 8 accumulators; as 132 rows in 6-row tiles its [128, 768] x [768, 3072]
    went from 1.25-1.33x onnxruntime's time to 1.18-1.19x."""
    if m <= tile:
        return m
    best = max(d for d in range(1, tile + 1) if m % d == 0)
    padded = _padded(m, tile)
    return m if best >= tile or (best >= 4 and 8 * padded > 9 * m) else padded


def _pack_panels(b):
    """[K, N] -> [ceil(N/P), K, P], columns past N zero: each register tile's columns of B contiguous
    along K, whatever N is."""
    if b.ndim != 2 or not _panel_width(b.shape[1]):
        return b
    k, n = b.shape
    p = _panel_width(n)
    padded = np.zeros((k, _padded(n, p)), dtype=b.dtype)
    padded[:, :n] = b
    return np.ascontiguousarray(padded.reshape(k, -1, p).transpose(1, 0, 2))


def _pack_matmul_b(attrs, in_types, b, schedule=None):
    """B in panels; a bfloat16 B of a bfloat16 product on a 16-lane target in the K-pair words of
    ``matmul_bf16.py``, or, where the target's pair kernels do not pay (``ScheduleParams.bf16_pairs``),
    widened to float32 panels (exactly; ``matmul_compute`` widens A and rounds the result)."""
    if bf16_matmul_fits(in_types):
        amx = amx_bf16_matmul_fits(schedule, in_types[0][0], int(b.shape[0]))  # the same K-pair words
        if schedule is None or (schedule.lanes == BF16.lanes and schedule.bf16_pairs) or amx:
            return pack_bf16_matmul_weight(b)
        if not schedule.bf16_pairs:
            b = b.astype(np.float32)
    return _pack_panels(b)


_pack_matmul_b.uses_schedule = True  # the planner passes the target's ScheduleParams


def _pack_gemm_b(attrs, in_types, b):
    """Gemm's B as MatMul's ([K, N]) in panels; left alone (declined) when too narrow for panels."""
    oriented = b.T if int(attrs.get("transB", 0)) else b
    panels = _pack_panels(oriented)
    return b if panels is oriented else panels


def _panel_reader(bp, batch: int = 0):
    """B[..., k, n] read from its panel-packed form [..., N/P, K, P]; ``batch`` leading output dims
    are matched to the packed tensor's own (broadcast) batch dims."""
    p = int(bp.shape[-1])
    lead_dims = len(bp.shape) - 3

    def read(i, k, n):
        off = batch - lead_dims
        lead = [0 if int(bp.shape[d]) == 1 else i[off + d] for d in range(lead_dims)]
        return bp[(*lead, n // p, k, n % p)]

    return read


def _packed_at_run_time(b, n: int, transposed: bool):
    """A run-time B ([..., K, N], or [..., N, K] when ``transposed``) packed into zero-padded panels
    [..., ceil(N/P), K, P] by a stage of the kernel (a copy of B: small next to the product)."""
    p = _panel_width(n) or 16
    k = int(b.shape[-1] if transposed else b.shape[-2])
    lead = [int(d) for d in b.shape[:-2]]
    zero = tirx.const(0, b.dtype)

    def body(*i):
        *batch, panel, kk, col = i
        nn = panel * p + col
        safe = tirx.min(nn, n - 1)
        read = b(*batch, safe, kk) if transposed else b(*batch, kk, safe)
        return tirx.Select(nn < n, read, zero)

    return te.compute((*lead, _padded(n, p) // p, k, p), body, name="matmul_bpack", attrs=MATERIALISED)


def matmul_compute(a, b, out_shape, out_dtype, b_reader=None, padded=None):
    """C[..., m, n] = sum_k A[..., m, k] * B[..., k, n] with numpy broadcasting of batch dims;
    ``b_reader(i, k, n)`` replaces indexing of ``b`` (packed panels). With ``padded`` (rows, columns)
    larger than the output's, the product is computed on that grid (rows of A past the last are read
    again, B's padding columns are zero) and cropped, so the register tile always fits."""
    ka = int(a.shape[-1])
    rk = te.reduce_axis((0, ka), "rk")
    batch = len(out_shape) - 2
    rows, cols = out_shape[-2:]
    domain = tuple(out_shape[:-2]) + (tuple(padded) if padded is not None else (rows, cols))

    def index(t, idx, last2):
        off = batch - (len(t.shape) - 2)
        lead = [0 if int(t.shape[d]) == 1 else idx[off + d] for d in range(len(t.shape) - 2)]
        return t(*lead, *last2)

    def read_a(i):
        m = i[-2] if domain[-2] == rows else tirx.min(i[-2], rows - 1)
        return index(a, i, (m, rk))

    def read_b(i):
        return b_reader(i, rk, i[-1]) if b_reader is not None else index(b, i, (rk, i[-1]))

    # half types accumulate in float32 and round once (as numpy's and onnxruntime's matmuls do)
    acc_dtype = "float32" if str(out_dtype) in HALF_TYPES else out_dtype
    out = te.compute(
        domain, lambda *i: te.sum(read_a(i).astype(acc_dtype) * read_b(i).astype(acc_dtype), axis=rk), name="matmul"
    )
    if domain != tuple(out_shape):
        product = out
        out = te.compute(tuple(out_shape), lambda *i: product(*i), name="gemm_crop")
    return out if acc_dtype == out_dtype else rounded_to_half(out, out_dtype)


def _tiled_matmul(ctx, a, b, out_shape, b_packed: bool, transposed: bool):
    """``a @ b`` (b: [..., K, N], [..., N, K] when ``transposed``, or packed panels) for the
    register-tiled schedule: B in zero-padded panels (packed at compile time or by the kernel), rows
    padded when their count has no good tile."""
    rows, cols = out_shape[-2:]
    if not b_packed and (transposed or cols % 16) and _panel_width(cols):
        b, b_packed = _packed_at_run_time(b, cols, transposed), True
    elif transposed:
        b = topi.transpose(b, [*range(len(b.shape) - 2), len(b.shape) - 1, len(b.shape) - 2])
    reader = _panel_reader(b, len(out_shape) - 2) if b_packed else None
    width = int(b.shape[-1]) * int(b.shape[-3]) if b_packed else cols
    tile = ROW_TILE if ctx.schedule is None else ctx.schedule.mm_rows(ctx.schedule.mm_vectors)
    if ctx.schedule is not None and str(a.dtype) in HALF_TYPES and str(b.dtype) == "float32":
        # a half A against float32 panels (a bfloat16 weight widened at compile time: _pack_matmul_b)
        # widened in one pass, not at each of the register tile's broadcasts: BERT-base's bfloat16
        # MatMul + Add + GELU (128 x 768 x 3072) took 5.3 ms that way against 4.2 in float32
        a = te.compute(a.shape, lambda *i: a(*i).astype("float32"), name="matmul_awide", attrs=MATERIALISED)
    return matmul_compute(
        a, None if b_packed else b, out_shape, ctx.out_dtype(), reader, (_padded_rows(rows, tile), width)
    )


def run_time_matmul(ctx, a, b, dtype: str = "float32"):
    """``a @ b`` in ``dtype`` (float32, or int32 for integer products too deep to be exact in float)
    for two run-time operands ([..., M, K] and [..., K, N], batch dims broadcast) on
    ``schedule_matmul``'s register tile, the result ``ctx``'s shape. Each operand is first one
    materialised pass (``matmul_awide``, ``matmul_bwide``: whatever ``a`` and ``b`` compute, such as an
    integer less its zero point, is done once, not at every load of the tile)."""
    a = te.compute(a.shape, lambda *i: a(*i).astype(dtype), name="matmul_awide", attrs=MATERIALISED)
    b = te.compute(b.shape, lambda *i: b(*i).astype(dtype), name="matmul_bwide", attrs=MATERIALISED)
    ctx = dataclasses.replace(ctx, out_types=[(ctx.out_types[0][0], np.dtype(dtype))])
    return _tiled_matmul(ctx, a, b, tuple(ctx.out_shape()), False, False)


@lowering("MatMul", kind="matmul", prepack={1: _pack_matmul_b})
def _matmul(ctx, a, b):
    out_shape = ctx.out_shape()
    a2 = a if len(a.shape) > 1 else topi.expand_dims(a, 0)
    full = list(out_shape)
    if len(a.shape) == 1:
        full.insert(len(full) - (0 if len(ctx.in_types[1][0]) == 1 else 1), 1)
    if 1 in ctx.packed and is_packed_bf16_matmul_weight(a, b):
        if amx_bf16_matmul_fits(ctx.schedule, a.shape, int(a.shape[-1])) and len(a.shape) >= 2:
            return amx_bf16_matmul(ctx, a, b)
        if ctx.schedule is not None and len(a.shape) >= 2:  # a CPU build
            return bf16_dot_matmul(ctx, a, b)
        b = unpacked_bf16_matmul_weight(int(ctx.in_types[1][0][0]), int(ctx.in_types[1][0][1]), b)
        ctx = dataclasses.replace(ctx, packed=ctx.packed - {1})
    if 1 in ctx.packed:  # a constant 2-D B prepacked into panels [N/P, K, P]
        out = _tiled_matmul(ctx, a2, b, tuple(full), True, False)
    else:
        b2 = b if len(b.shape) > 1 else topi.expand_dims(b, 1)
        if len(b.shape) == 1:
            full.append(1)
        out = _tiled_matmul(ctx, a2, b2, tuple(full), False, False)
    if tuple(full) != tuple(out_shape):
        out = topi.reshape(out, out_shape)
    return out


@lowering("Gemm", kind="matmul", prepack={1: _pack_gemm_b})
def _gemm(ctx, a, b, c=None):
    if int(ctx.attr("transA", 0)):
        a = topi.transpose(a, [1, 0])
    packed = 1 in ctx.packed  # a constant B in panels [N/P, K, P]
    out = _tiled_matmul(ctx, a, b, ctx.out_shape(), packed, not packed and bool(int(ctx.attr("transB", 0))))
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
