"""bfloat16 MatMul by a constant weight as dot products of K-pairs (``vdpbf16ps`` on AVX-512 BF16).

What ``convert-bfloat16`` leaves of a Linear layer: ``MatMul(a[..., M, K], b[K, N])`` with bfloat16
operands and result, ``b`` constant, K even.  Products are exact in float32 and accumulate there;
the result is rounded once to bfloat16, as the reference does.

    packed weight  [ceil(N/16), K/2, 16] int32   each word holds b[2r, n] (low half) and b[2r+1, n]
                                                 (high half) as bfloat16 bits: a row of 16 words is
                                                 one ``vdpbf16ps`` operand (prepacked at compile time)
    accumulator    [..., M, ceil(N/16), 16] float32                (``bfmatmul_blk``)

The schedule is MatMulInteger's (``dot_kernels.schedule_dot_matmul``): 4 rows x 3 blocks of 16
columns.  Without AVX-512 BF16 the same TE arithmetic runs as float32 FMAs on the widened bits.
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx

from ..dot_instructions import BF16
from ..te_util import round_to_bf16
from .dot_kernels import DOT_MATMUL_TILE, schedule_dot_matmul

BF16_PAIR = BF16.depth


def bf16_matmul_fits(in_types) -> bool:
    a, b = in_types[0], in_types[1]
    return (
        a is not None
        and b is not None
        and len(b[0]) == 2
        and len(a[0]) >= 2
        and b[0][0] % BF16_PAIR == 0
        and str(np.dtype(a[1])) == "bfloat16"
        and str(np.dtype(b[1])) == "bfloat16"
    )


def pack_bf16_matmul_weight(b: np.ndarray) -> np.ndarray:
    """[K, N] bfloat16 (K even) -> [ceil(N/16), K/2, 16] int32 words (module docstring)."""
    k, n = b.shape
    nb = -(-n // BF16.lanes)
    padded = np.zeros((k, nb * BF16.lanes), dtype=np.uint16)
    padded[:, :n] = np.asarray(b).view(np.uint16)
    pairs = padded.reshape(k // BF16_PAIR, BF16_PAIR, nb, BF16.lanes).astype(np.uint32)
    words = pairs[:, 0] | (pairs[:, 1] << 16)  # [K/2, nb, 16]
    return np.ascontiguousarray(words.transpose(1, 0, 2)).view(np.int32)


def is_packed_bf16_matmul_weight(a, b) -> bool:
    """Whether ``b`` (a MatMul's prepacked operand, ``a`` its TE left operand) holds bfloat16 K-pair
    words: the product is bfloat16 and its weight became int32 (an int32 MatMul's weight is int32 in
    panels too)."""
    return str(a.dtype) == "bfloat16" and len(b.shape) == 3 and str(b.dtype) == "int32"


def _half(word, index):
    """bfloat16 ``index`` (0: low half) of a packed int32 word, as the float32 it is exactly."""
    return tirx.reinterpret("float32", tirx.shift_left(tirx.shift_right(word, 16 * index), 16))


def unpacked_bf16_matmul_weight(k: int, n: int, bp):
    """The [K, N] bfloat16 weight read back out of its packed words (a fallback's operand)."""
    return te.compute(
        (k, n),
        lambda r, col: _half(bp[col // BF16.lanes, r // BF16_PAIR, col % BF16.lanes], r % BF16_PAIR).astype("bfloat16"),
        name="bfmatmul_unpack",
    )


def bf16_dot_matmul(ctx, a, bp):
    """``a @ b`` for the packed ``b`` (module docstring)."""
    *lead, m, k = (int(d) for d in a.shape)
    nb = int(bp.shape[0])
    n = ctx.out_shape()[-1]
    bits = te.compute(a.shape, lambda *i: tirx.reinterpret("int16", a(*i)), name="bfmatmul_a")
    rco, rci = te.reduce_axis((0, k // BF16_PAIR), "rco"), te.reduce_axis((0, BF16_PAIR), "rci")

    def product(*i):
        x = bits[(*i[:-2], rco * BF16_PAIR + rci)]
        widened = tirx.reinterpret("float32", tirx.shift_left(x.astype("int32"), 16))
        return widened * _half(bp[i[-2], rco, i[-1]], rci)

    acc = te.compute((*lead, m, nb, BF16.lanes), lambda *i: te.sum(product(*i), axis=[rco, rci]), name="bfmatmul_blk")
    return te.compute(
        (*lead, m, n),
        lambda *i: round_to_bf16(acc[(*i[:-1], i[-1] // BF16.lanes, i[-1] % BF16.lanes)]).astype("bfloat16"),
        name="bfmatmul_out",
    )


def schedule_bf16_matmul(sch, params) -> None:
    """``bfmatmul_blk``: 4 rows x 3 blocks of 16 float32 columns, ``vdpbf16ps`` inside."""
    schedule_dot_matmul(sch, params, BF16, "bfmatmul_blk", DOT_MATMUL_TILE)
