"""The fast integer convolution: QLinearConv as u8 x s8 -> s32 dot products of a few channels at a time,
with the requantization in the epilogue.  The target's ``ScheduleParams.int8_dot`` picks the
instruction the layouts are built for (``integer_dot``): ``vpdpbusd`` (AVX-512 VNNI: L = 16 output
channels, D = 4 input channels per int32 lane, operands as bytes) or, on AVX2, ``vpmaddwd`` (L = 8,
D = 2, operands widened to int16 when packed, so every product is exact).

Layouts (E: the activation element, uint8 for ``vpdpbusd``, int16 for ``vpmaddwd``; the weights
stay int8 for both, and ``vpmaddwd``'s kernel sign-extends each weight vector as it loads it):

    packed weight  [ceil(K/L), ceil(C/D) + 4/D, R, S, L * D] int8  (prepacked at compile time)
                   the 4/D slots after the channels at (r, s) = (0, 0) hold each output channel's
                   weight sum as the 4 little-endian bytes of an int32, D a slot (the zero-point
                   correction below)
    packed input   [N, ceil(C/D), H + pads, W + pads, D] E        (``qconv_pad``, per call)
                   int8 inputs are shifted by +128 into uint8 (their zero point too); padding and the
                   channels past C hold the (shifted) zero point
    accumulator    [N, ceil(K/L), OH, OW, L] int32                 (``qconv_blk``)

or, for the convs that ``dot_kernels.rows_layout_fits`` (1x1 unpadded ones, and stride-1 ones whose
rows are whole vectors but for an eighth), lanes along the output row (the NCHW write-back reads
whole rows instead of one lane of every L):

    packed weight  [K, ceil(C/D) + 1, R, S, D] int8 (int16 for ``vpmaddwd``: each channel's pair
                   is broadcast as one word), the weight sums likewise
    packed input   [N, ceil(C/D), HQ, WQ * D] E, D channels per pixel (``qconv_rows_pad``)
    accumulator    [N, K, OH, ceil(OW/L) * L] int32                (``qconv_rows``)

Because padding holds the zero point, ``sum (x - zx) w = sum x w - zx * wsum[m]`` exactly, and

    y = saturate(round_half_even((acc - zx * wsum[m] + bias[m]) * (sx * sw[m] / sy)) + zy)

in float32, as onnxruntime's kernels requantize.  The fast path takes 2-D convolutions with
``group == 1``, int8 weights whose zero points are constant zeros (symmetric, the quantizers' default)
and uint8 or int8 inputs; depthwise convs of such weights take ``quantization_depthwise.py``'s
kernel, and everything else the generic lowering in ``quantization.py``.
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx

from ..dot_instructions import PMADDWD, VNNI, DotInstruction
from ..schedule import schedule_spatial
from ..schedule_matmul import schedule_matmul
from ..te_util import MATERIALISED
from .dot_kernels import (
    DOT_MATMUL_TILE,
    dot_accumulation,
    rows_accumulators,
    rows_layout_from_attrs,
    rows_packed_input,
    rows_value,
    schedule_dot_conv,
    schedule_dot_matmul,
    schedule_dot_rows,
)
from .matmul_amx import (
    amx_int8_accumulator,
    amx_int8_matmul_fits,
    amx_int8_rows_conv,
    amx_int8_rows_conv_fits,
    flat_row,
    schedule_amx_matmul,
    schedule_amx_rows_conv,
)
from .nn.conv import conv_params
from .quantization_dynamic import narrowed

# MatMulInteger's register tile on vpmaddwd (rows, blocks of 8 columns): 16 registers hold the
# accumulators, the weight vectors, a broadcast and the product before its add
MATMUL_TILE_PMADDWD = (4, 2)
# the activation element each instruction's packed input holds (int8 inputs are shifted into it)
_ACTIVATION = {VNNI.mnemonic: "uint8", PMADDWD.mnemonic: "int16"}
# the row kernel's weight element: broadcast per output channel, ``vpmaddwd``'s pair is read as one
# int16 word (as bytes each broadcast took a widening of its own: ResNet-50's 1x1 convs on 7 x 7
# planes ran 2x slower), while the channel-lane kernel's weight vectors are widened as loaded
_ROW_WEIGHT = {VNNI.mnemonic: "int8", PMADDWD.mnemonic: "int16"}


def integer_dot(schedule) -> DotInstruction:
    """The instruction the integer kernels are laid out for on the target of ``schedule`` (its
    ``ScheduleParams``; None: ``vpdpbusd``)."""
    return PMADDWD if getattr(schedule, "int8_dot", "") == PMADDWD.mnemonic else VNNI


def _conv_dot(wp) -> DotInstruction:
    """The instruction a packed conv weight was laid out for (its row of L x D or D bytes says)."""
    return PMADDWD if int(wp.shape[-1]) in (PMADDWD.lanes * PMADDWD.depth, PMADDWD.depth) else VNNI


def _sum_slots(dot: DotInstruction, element_bytes: int) -> int:
    """Channel slots after a packed conv weight's channels that hold the int32 weight sums: 4 bytes
    a lane, ``dot.depth`` elements of ``element_bytes`` a slot."""
    return max(1, 4 // (dot.depth * element_bytes))


def _matmul_dot(bp) -> DotInstruction:
    """The instruction a packed MatMulInteger weight was laid out for (its words of D bytes say)."""
    return PMADDWD if str(bp.dtype) == f"int{8 * PMADDWD.depth}" else VNNI


def _fast_conv_fits(attrs, in_types, weight: int = 3) -> bool:
    x, w = in_types[0], in_types[weight]
    if x is None or w is None or len(w[0]) != 4 or int(attrs.get("group", 1)) != 1:
        return False
    return np.dtype(w[1]) == np.int8 and np.dtype(x[1]) in (np.uint8, np.int8)


def pack_conv_integer_weight(attrs, in_types, w, schedule=None):
    """ConvInteger's weight (operand 1) packed as QLinearConv's (operand 3) is."""
    if not _fast_conv_fits(attrs, in_types, weight=1):
        return w
    return pack_vnni_conv_weight(attrs, [in_types[0], None, None, in_types[1]], w, schedule)


pack_conv_integer_weight.uses_schedule = True


def pack_vnni_conv_weight(attrs, in_types, w, schedule=None):
    """[K, C, R, S] int8 -> [ceil(K/L), ceil(C/D) + S4, R, S, L * D] int8, or [K, ceil(C/D) + S4, R,
    S, D] for the row kernel, with the weight sums in the S4 = 4 / D slots after the channels
    (module docstring; L and D from the target's ``integer_dot``); other weights are left as they
    are (the generic path). The weights stay bytes for ``vpmaddwd`` too: the kernel widens each
    weight vector as it loads it (``vpmovsxbw``), which costs less than reading int16 weights,
    twice the bytes, from memory (ResNet-50's: 24.8 MiB, not 49.1)."""
    if not _fast_conv_fits(attrs, in_types) or w.dtype != np.int8:
        return w
    dot = integer_dot(schedule)
    k, c, r, s = w.shape
    rows = rows_layout_from_attrs(attrs, in_types[0][0], w.shape, dot.lanes)
    lanes = 1 if rows else dot.lanes
    element = np.dtype(_ROW_WEIGHT[dot.mnemonic] if rows else np.int8).newbyteorder("<")
    kb, cd, slots = -(-k // lanes), -(-c // dot.depth), _sum_slots(dot, element.itemsize)
    padded = np.zeros((kb * lanes, (cd + slots) * dot.depth, r, s), dtype=element)
    padded[:k, :c] = w
    packed = padded.reshape(kb, lanes, cd + slots, dot.depth, r, s).transpose(0, 2, 4, 5, 1, 3).copy()
    sums = np.zeros(kb * lanes, dtype="<i4")
    sums[:k] = w.reshape(k, -1).astype(np.int64).sum(axis=1)
    parts = sums.view(element).reshape(kb, lanes, slots, dot.depth)  # an int32's little-endian parts
    packed[:, cd:, 0, 0] = parts.transpose(0, 2, 1, 3)
    return packed.reshape(kb, cd + slots, r, s, lanes * dot.depth)


pack_vnni_conv_weight.uses_schedule = True  # the planner passes the target's ScheduleParams


def _no_weight_zero(in_types, constant, weight_zero: int) -> bool:
    """The weight has no zero point (operand ``weight_zero``), or a constant one of zeros."""
    if weight_zero >= len(in_types) or in_types[weight_zero] is None:
        return True
    zero = constant(weight_zero)
    return zero is not None and not np.any(np.asarray(zero))


def packed_conv_takes(attrs, in_types, constant, weight: int = 3, weight_zero: int = 5) -> bool:
    """Whether the packed kernel computes a QLinearConv (with ConvInteger's operand indices, a
    ConvInteger) as it is: a 2-D conv of group 1 on 8-bit input with int8 weights (what
    ``pack_vnni_conv_weight`` packs) and no weight zero point. The lowering's ``native`` fact:
    ``integer-conv-int8-weights`` and ``integer-conv-as-float`` rewrite the others."""
    x = in_types[0]
    fits = _fast_conv_fits(attrs, in_types, weight) and x is not None and len(x[0]) == 4
    return fits and _no_weight_zero(in_types, constant, weight_zero)


def fast_conv_applies(ctx, weight: int = 3, weight_zero: int = 5) -> bool:
    """Whether ``ctx`` (a QLinearConv; with ConvInteger's operand indices, a ConvInteger) takes the
    packed kernel: ``packed_conv_takes`` once the planner has packed the weight."""
    packed = weight in ctx.packed and len(ctx.in_types[0][0]) == 4 and np.dtype(ctx.in_types[weight][1]) != np.float32
    return packed and _no_weight_zero(ctx.in_types, ctx.static, weight_zero)


def _packed_lanes(wp, dot: DotInstruction) -> int:
    """Output channels per packed weight row: ``dot.lanes``, or 1 for the row kernel's layout."""
    return int(wp.shape[-1]) // dot.depth


def unpacked_weight(ctx, wp):
    """The [K, C, R, S] weight read back out of its packed form (for the generic kernel)."""
    k, c = ctx.out_shape()[1], int(ctx.in_types[0][0][1])
    r, s = int(wp.shape[2]), int(wp.shape[3])
    dot = _conv_dot(wp)
    lanes, depth = _packed_lanes(wp, dot), dot.depth
    return te.compute(
        (k, c, r, s),
        lambda m, ch, rr, ss: wp[m // lanes, ch // depth, rr, ss, m % lanes * depth + ch % depth],
        name="qconv_unpack",
    )


def _param(tensor, index, dtype: str):
    """A per-tensor (one element) or per-output-channel scale/zero point as an expression."""
    if tensor is None:
        return tirx.const(0, dtype)
    if int(np.prod([int(d) for d in tensor.shape])) == 1:
        return tensor(*([0] * len(tensor.shape))).astype(dtype)
    return tensor(index).astype(dtype)


def _int32_of_parts(packed, part):
    """The int32 stored as little-endian parts of ``packed``'s element type (bytes or int16 words);
    ``part(index)`` reads part ``index``."""
    bits = np.dtype(str(packed.dtype)).itemsize * 8
    parts = 32 // bits
    total = None
    for index in range(parts):
        e = part(index).astype("int32")
        if index < parts - 1:  # the lower parts unsigned, the top one carries the sign
            e = tirx.bitwise_and(e, (1 << bits) - 1)
        total = e if total is None else total + e * (1 << (bits * index))
    return total


def _weight_sum(wp, cd: int, m, dot: DotInstruction):
    """Output channel ``m``'s int32 weight sum, stored as its little-endian parts (bytes, or int16
    for ``vpmaddwd``'s row kernel), ``dot.depth`` in each of the packed weight's slots after its
    ``cd`` channel slots."""
    lanes, depth = _packed_lanes(wp, dot), dot.depth
    return _int32_of_parts(wp, lambda i: wp[m // lanes, cd + i // depth, 0, 0, m % lanes * depth + i % depth])


def vnni_conv(ctx, x, x_scale, x_zero, wp, w_scale, y_scale, y_zero, bias):
    """QLinearConv through the packed integer dot-product kernel (module docstring)."""
    exact, _ = vnni_conv_accumulator(ctx, x, x_zero, wp)
    return requantized_conv(ctx, exact, x_scale, w_scale, y_scale, y_zero, bias)


def requantized_conv(ctx, exact, x_scale, w_scale, y_scale, y_zero, bias):
    """QLinearConv's output from ``exact(b, m, y, x)``, its int32 ``sum (x - zx) w``:
    ``saturate(round_half_even((exact + bias[m]) * (sx * sw[m] / sy)) + zy)`` in float32."""
    n, k, oh, ow = ctx.out_shape()
    f32 = "float32"

    def scaled(b, m, y, xx):
        total = exact(b, m, y, xx)
        if bias is not None:
            total = total + bias[m]
        scale = _param(x_scale, 0, f32) * _param(w_scale, m, f32) / _param(y_scale, 0, f32)
        return total.astype(f32) * scale

    values = te.compute((n, k, oh, ow), scaled, name="qconv_scaled")
    return narrowed(ctx, values, y_zero, ctx.out_dtype(), "qconv_out")


def vnni_conv_integer(ctx, x, x_zero, wp):
    """ConvInteger through the same kernel: its int32 ``sum (x - zx) w``."""
    exact, k = vnni_conv_accumulator(ctx, x, x_zero, wp)
    n, _, oh, ow = ctx.out_shape()
    return te.compute((n, k, oh, ow), exact, name="qconv_int")


def vnni_conv_accumulator(ctx, x, x_zero, wp):
    """``(f(b, m, y, x), K)``: ``f`` the int32 ``sum (x - zx) w`` of an output, read from the packed
    kernel's accumulator less ``zx * wsum[m]``."""
    _, strides, dilations, pads = conv_params(ctx, [int(d) for d in wp.shape[2:4]])
    dot = _conv_dot(wp)
    cd = int(wp.shape[1]) - _sum_slots(dot, np.dtype(str(wp.dtype)).itemsize)
    n, k, oh, ow = ctx.out_shape()
    i32 = "int32"
    shift = 128 if str(x.dtype) == "int8" else 0
    zx = _param(x_zero, 0, i32) + shift
    rows = _packed_lanes(wp, dot) == 1
    activation = _ACTIVATION[dot.mnemonic]
    element, fill = (lambda v: (v.astype(i32) + shift).astype(activation)), zx.astype(activation)
    if rows and dot is VNNI and amx_int8_rows_conv_fits(ctx.schedule, int(x.shape[1]), k):  # AMX tiles
        acc = amx_int8_rows_conv(rows_packed_input(x, dot, strides, (oh, ow), element, fill, "qconv_rows_pad"), wp, cd)
    else:
        window = (strides, dilations, pads)
        widen = lambda v: v.astype(i32)  # noqa: E731
        accumulators = rows_accumulators(ctx.schedule, dot)
        acc = dot_accumulation(rows, x, wp, dot, window, (oh, ow), element, fill, widen, "qconv", accumulators)

    def exact(b, m, y, xx):
        product = rows_value(acc, b, m, y, xx) if rows else acc[b, m // dot.lanes, y, xx, m % dot.lanes]
        return product - zx * _weight_sum(wp, cd, m, dot)

    return exact, k


# MatMulInteger -----------------------------------------------------------------------------------------


def pack_vnni_matmul_weight(attrs, in_types, b, schedule=None, zero: int = 3):
    """[K, N] int8 (K a multiple of D) -> [ceil(N/L), K/D + 4/D, L] words of D bytes (int32 for
    ``vpdpbusd``, int16 for ``vpmaddwd``; L and D from the target's ``integer_dot``): each word
    holds the D weights b[D r:D r + D, col] as little-endian bytes (a row of L words is one
    dot-product operand, which ``vpmaddwd``'s kernel sign-extends as it loads it), and the last
    4/D rows hold the column sums as the little-endian words of an int32, so the epilogue reads
    them as whole vectors (as bytes they cost 64 byte inserts per 16 outputs); other weights are
    left as they are. A uint8 ``b`` is packed as the int8 ``b - 128`` (``shifted_weight_zero`` moves
    its zero point alike) where its zero point is given (operand ``zero``: it says b's type to the
    lowering, which sees only the packed words)."""
    a = in_types[0]
    dot = integer_dot(schedule)
    unsigned = b.dtype == np.uint8 and zero < len(in_types) and in_types[zero] is not None
    if (
        (b.dtype != np.int8 and not unsigned)
        or b.ndim != 2
        or a is None
        or np.dtype(a[1]) not in (np.uint8, np.int8)
        or b.shape[0] % dot.depth
    ):
        return b
    if unsigned:
        b = (b.astype(np.int16) - 128).astype(np.int8)
    k, n = b.shape
    lanes, depth, word = dot.lanes, dot.depth, f"<i{dot.depth}"
    nb, kd = -(-n // lanes), k // depth
    padded = np.zeros((k, nb * lanes), dtype=np.int8)
    padded[:, :n] = b
    words = padded.reshape(kd, depth, nb, lanes).transpose(2, 0, 3, 1).copy().view(word).reshape(nb, kd, lanes)
    sums = np.zeros(nb * lanes, dtype="<i4")
    sums[:n] = b.astype(np.int64).sum(axis=0)
    parts = sums.view(word).reshape(nb, lanes, 4 // depth).transpose(0, 2, 1)
    return np.concatenate([words, parts], axis=1).astype(np.dtype(word).newbyteorder("="))


pack_vnni_matmul_weight.uses_schedule = True  # the planner passes the target's ScheduleParams


def pack_qlinear_matmul_weight(attrs, in_types, b, schedule=None):
    """QLinearMatMul's ``b`` (operand 3, its zero point operand 5) packed as MatMulInteger's is."""
    return pack_vnni_matmul_weight(attrs, in_types, b, schedule, zero=5)


pack_qlinear_matmul_weight.uses_schedule = True


def shifted_weight_zero(ctx, b_zero: int) -> np.ndarray | None:
    """The packed weight's zero point (operand ``b_zero``, a compile-time constant, per tensor or per
    column): less 128 for a uint8 weight (packed as ``b - 128``); None where it is not constant."""
    if b_zero >= len(ctx.in_types) or ctx.in_types[b_zero] is None:
        return np.zeros(1, np.int32)
    zero = ctx.static(b_zero)
    if zero is None:
        return None
    zero = np.asarray(zero)
    return zero.astype(np.int32).reshape(-1) - (128 if zero.dtype == np.uint8 else 0)


def fast_matmul_applies(ctx, b: int = 1, a_zero: int = 2, b_zero: int = 3) -> bool:
    """Whether a MatMulInteger (or, with its operand indices, a QLinearMatMul) takes the packed kernel:
    packed weight (operand ``b``), a per-tensor zero point of ``a`` (operand ``a_zero``), a constant
    zero point of ``b`` (operand ``b_zero``) per tensor, or zeros per column."""
    zb = shifted_weight_zero(ctx, b_zero)
    za = ctx.in_types[a_zero]
    zb_ok = zb is not None and (zb.size == 1 or not np.any(zb))  # a per-column zb: only zeros
    return b in ctx.packed and zb_ok and (za is None or int(np.prod(za[0])) == 1)


def _weight_element(word, index: int):
    """Signed byte ``index`` (0 = least significant) of a word of packed weights, as int32."""
    return tirx.shift_right(tirx.shift_left(word.astype("int32"), 24 - 8 * index), 24)


def _column_sum(bp, kd: int, block, lane):
    """Column ``(block, lane)``'s int32 weight sum, stored as the little-endian words of rows ``kd`` on."""
    return _int32_of_parts(bp, lambda i: bp[block, kd + i, lane])


def unpacked_matmul_weight(ctx, bp, b_zero: int = 3):
    """The [K, N] weight read back out of its packed words (for the generic kernel): uint8 again
    where its zero point (operand ``b_zero``) says it was one (packed as ``b - 128``)."""
    k, n = int(ctx.in_types[0][0][-1]), ctx.out_shape()[-1]
    dot = _matmul_dot(bp)
    zero = ctx.in_types[b_zero] if b_zero < len(ctx.in_types) else None
    unsigned = zero is not None and np.dtype(zero[1]) == np.uint8

    def element(r, col):
        value = _weight_element(bp[col // dot.lanes, r // dot.depth, col % dot.lanes], r % dot.depth)
        return (value + 128).astype("uint8") if unsigned else value

    return te.compute((k, n), element, name="qmatmul_unpack")


def vnni_matmul_integer(ctx, a, bp, a_zero, b_zero: np.ndarray | None = None):
    """int32 ``sum_k (a[..., m, k] - za) (b[k, n] - zb)`` as packed dot products less ``za *
    colsum[n]`` and, where the packed weight's zero point ``b_zero`` (``shifted_weight_zero``, one
    value) is not zero, less ``zb * sum_k (a[..., m, k] - za)`` (a row sum of A, ``qmatmul_rowsum``:
    M x K adds next to the product's M x K x N). On ``vpmaddwd`` the activation is first widened to int16,
    ``qmatmul_a16``; for ``vpdpbusd`` an int8 activation is shifted by +128 into uint8,
    ``qmatmul_au8``, and its zero point with it."""
    original, original_zero = a, _param(a_zero, 0, "int32")
    dot = _matmul_dot(bp)
    *lead, m, k = (int(d) for d in a.shape)
    nb, kd = int(bp.shape[0]), int(bp.shape[1]) - 4 // dot.depth
    n = ctx.out_shape()[-1]
    activation = _ACTIVATION[dot.mnemonic]
    shift = 128 if activation == "uint8" and str(a.dtype) == "int8" else 0
    if shift:
        source = a
        a = te.compute(
            a.shape,
            lambda *i: (source(*i).astype("int32") + shift).astype("uint8"),
            name="qmatmul_au8",
            attrs=MATERIALISED,
        )
    elif activation != str(a.dtype):
        a = te.compute(a.shape, lambda *i: a(*i).astype(activation), name="qmatmul_a16", attrs=MATERIALISED)
    za = _param(a_zero, 0, "int32") + shift
    rows = None
    if b_zero is not None and np.any(b_zero):
        rk = te.reduce_axis((0, k), "rk")
        rows = te.compute(
            (*lead, m), lambda *i: te.sum(original[(*i, rk)].astype("int32"), axis=rk), name="qmatmul_rowsum"
        )

    def weight_zero(i):  # zb * sum_k (a - za), zb per tensor (``fast_matmul_applies``)
        if rows is None:
            return tirx.const(0, "int32")
        return tirx.const(int(b_zero[0]), "int32") * (rows[i[:-1]] - original_zero * k)

    if dot is VNNI and amx_int8_matmul_fits(ctx.schedule, a.shape, k):
        tiles = amx_int8_accumulator(a, bp)

        def corrected(*i):
            product = tiles[flat_row(i, lead, m), i[-1]]
            return product - za * _column_sum(bp, kd, i[-1] // dot.lanes, i[-1] % dot.lanes) - weight_zero(i)

        return te.compute((*lead, m, n), corrected, name="qmatmul_out")
    rco, rci = te.reduce_axis((0, kd), "rco"), te.reduce_axis((0, dot.depth), "rci")
    acc = te.compute(
        (*lead, m, nb, dot.lanes),
        lambda *i: te.sum(
            a[(*i[:-2], rco * dot.depth + rci)].astype("int32") * _weight_element(bp[i[-2], rco, i[-1]], rci),
            axis=[rco, rci],
        ),
        name="qmatmul_blk",
    )
    return te.compute(
        (*lead, m, n),
        lambda *i: (
            acc[(*i[:-1], i[-1] // dot.lanes, i[-1] % dot.lanes)]
            - za * _column_sum(bp, kd, i[-1] // dot.lanes, i[-1] % dot.lanes)
            - weight_zero(i)
        ),
        name="qmatmul_out",
    )


def schedule_vnni_matmul(sch, params) -> None:
    """MatMulInteger's and QLinearMatMul's ``qmatmul_blk``: 4 rows x 3 blocks of 16 int32 columns on
    ``vpdpbusd`` (an int8 activation shifted into uint8 first, ``qmatmul_au8``), or
    MATMUL_TILE_PMADDWD on ``vpmaddwd`` (after the activation's widening, ``qmatmul_a16``)."""
    dot = integer_dot(params)
    names = [sch.get(b).name_hint for b in sch.get_child_blocks(sch.get_sblock("root"))]
    if "matmul" in names:  # a product of a run-time b on the float matmul's tile (``_run_time_product``)
        return schedule_matmul(sch, params)
    for widened in ("qmatmul_a16", "qmatmul_au8"):
        if widened in names:
            schedule_spatial(sch, sch.get_sblock(widened), params.lanes)
    if "qmatmul_amx" in names:
        return schedule_amx_matmul(sch, params, "qmatmul_abytes")
    schedule_dot_matmul(sch, params, dot, "qmatmul_blk", DOT_MATMUL_TILE if dot is VNNI else MATMUL_TILE_PMADDWD)


def schedule_vnni_conv(sch, params) -> None:
    """QLinearConv's ``qconv_blk`` on the target's integer dot product with the float32 conv's register
    tile: its ``conv_blocks`` blocks of ``conv_block`` channels as blocks of the instruction's lanes x
    up to ``conv_tile`` pixels (AVX-512: 2 x 16 channels x 12 pixels, 24 accumulators, 2 weight vectors
    per 12 broadcasts, where 1 block x 14 pixels took 43.9 ms per int8 ResNet-50 run against 41.4, 1
    thread; AVX2: 2 x 8 channels x 6 pixels, 12)."""
    dot = integer_dot(params)
    tile = (max(1, params.conv_blocks * params.conv_block // dot.lanes), params.conv_tile)
    names = [sch.get(b).name_hint for b in sch.get_child_blocks(sch.get_sblock("root"))]
    if "dw_conv" in names:  # a depthwise integer conv on the float depthwise kernel (quantization_depthwise)
        from ..schedule_pixel_conv import schedule_depthwise

        schedule_depthwise(sch, params)
    elif "qconv_amx" in names:
        schedule_amx_rows_conv(sch, params, "qconv_rows_pad", dot.depth)
    elif "qconv_rows" in names:
        schedule_dot_rows(sch, params, dot, ("qconv_rows", "qconv_rows_pad"))
    else:
        schedule_dot_conv(sch, params, dot, ("qconv_blk", "qconv_pad"), tile)


def _register_schedule() -> None:
    from ..schedule import SCHEDULES

    SCHEDULES.setdefault("vnni_conv", schedule_vnni_conv)
    SCHEDULES.setdefault("vnni_matmul", schedule_vnni_matmul)


_register_schedule()
