"""Register-tiled dot-product kernels shared by the int8 and bfloat16 paths: a conv and a matmul
whose innermost ``16 x depth`` product is one x86 dot instruction (``dot_instructions``:
``vpdpbusd`` for QLinearConv / MatMulInteger in ``quantization_gemm.py``, ``vdpbf16ps`` for the
bfloat16 Conv / MatMul of ``nn/conv_bf16.py`` and ``matmul_bf16.py``).

    conv     input repacked per call to [N, C/depth, H + pads, W + pads, depth], weight prepacked to
             [K/16, C/depth (+ extra slots), R, S, 16 * depth], accumulation [N, K/16, OH, OW, 16]
    matmul   weight prepacked to 32-bit words of ``depth`` elements [N/16, K/depth (+1), 16],
             accumulation [..., M, N/16, 16]

Each path builds its accumulation, names its blocks, and writes its own epilogue
(requantization, bfloat16 rounding); the schedules here tile the accumulation in registers and
rebuild the product onto the instruction where the target has it.
"""

from __future__ import annotations

from tvm import te, tirx

from ..dot_instructions import DotInstruction, rebuild_dot, target_has
from ..schedule import schedule_spatial
from ..schedule_util import divisor_at_most, inline_injective, loop_extent, output_block, vectorize_rows
from ..te_util import MATERIALISED, read_if

# the register tile: rows x column blocks of 16 accumulators.  Measured for MatMulInteger on BERT-base's shapes
# (128 rows; K x N = 768 x 768, 3072 x 768, 768 x 3072; 1 thread): 4 x 3 was the fastest of 4 x 2,
# 4 x 3, 4 x 4, 4 x 6, 8 x 2, 8 x 3 and 16 x 1 (the old 12 x 1 tile, 1.2x slower on 768 x 768);
# the bf16 MatMul takes it without a measurement of its own
DOT_MATMUL_TILE = (4, 3)  # (rows, blocks of 16 columns), MatMulInteger's and the bf16 MatMul's


def dot_conv_accumulation(x, wp, dot: DotInstruction, window, out_hw, element, fill, widen, names):
    """The accumulation ``[N, K/16, OH, OW, 16]`` of a packed dot-product conv (QLinearConv's VNNI
    kernel, the bfloat16 conv): the input repacked per call to ``[N, C/depth, H + pads, W + pads,
    depth]`` (``names[1]``; ``element(load)`` of each input value, ``fill`` in the padding and the
    channels past C, read through ``read_if``), then summed against the packed weight
    ``[K/16, C/depth (+ extra slots), R, S, 16 * depth]`` with both operands ``widen``-ed.
    ``window`` is (strides, dilations, pads as [top, left, bottom, right])."""
    strides, dilations, pads = window
    n, c, h, wd = (int(d) for d in x.shape)
    kb, r, s = int(wp.shape[0]), int(wp.shape[2]), int(wp.shape[3])
    blocks = -(-c // dot.depth)

    def packed_input(b, cb, yy, xx, ci):
        ch, y0, x0 = cb * dot.depth + ci, yy - pads[0], xx - pads[1]
        inside = tirx.all(ch < c, y0 >= 0, y0 < h, x0 >= 0, x0 < wd)
        return read_if(inside, element(x(b, ch, y0, x0)), fill)  # padded read

    hp, wpd = h + pads[0] + pads[2], wd + pads[1] + pads[3]
    data = te.compute((n, blocks, hp, wpd, dot.depth), packed_input, name=names[1], attrs=MATERIALISED)
    rco = te.reduce_axis((0, blocks), "rco")
    rr, rs = te.reduce_axis((0, r), "rr"), te.reduce_axis((0, s), "rs")
    rci = te.reduce_axis((0, dot.depth), "rci")
    return te.compute(
        (n, kb, *out_hw, dot.lanes),
        lambda b, ko, y, xx, ki: te.sum(
            widen(data[b, rco, y * strides[0] + rr * dilations[0], xx * strides[1] + rs * dilations[1], rci])
            * widen(wp[ko, rco, rr, rs, ki * dot.depth + rci]),
            axis=[rco, rr, rs, rci],
        ),
        name=names[0],
    )


def schedule_dot_conv(sch, params, dot: DotInstruction, names: tuple[str, str], tile: tuple[int, int]) -> None:
    """The packed dot-product conv (``names``: its accumulation and its packed input): a register tile
    of ``tile`` = (channel blocks of 16, output pixels) accumulators, the ``16 x depth`` product
    rebuilt onto ``dot`` where the target has it; the write-back (with any fused epilogue) per
    tile, while the accumulators are still in cache."""
    lanes = params.lanes  # the target's ScheduleParams
    inline_injective(sch)
    blk = sch.get_sblock(names[0])
    out = output_block(sch)
    n, ko, y, x, ki, rco, rr, rs, rci = sch.get_loops(blk)
    xo, xi = sch.split(x, [None, divisor_at_most(loop_extent(sch, x), tile[1], 1)])
    ko, kt = sch.split(ko, [None, divisor_at_most(loop_extent(sch, ko), tile[0], 1)])
    sch.reorder(n, ko, y, xo, rco, rr, rs, kt, xi, ki, rci)
    local = sch.cache_write(blk, 0, "local")
    sch.reverse_compute_at(local, xo)
    outer = sch.fuse(n, ko, y)
    sch.reverse_compute_at(out, outer)  # per output row: the pixel loop is long enough for vectors
    sch.parallel(outer)
    sch.unroll(kt)
    sch.unroll(xi)
    init = sch.decompose_reduction(blk, rco)
    sch.vectorize(sch.get_loops(init)[-1])
    sch.vectorize(sch.get_loops(local)[-1])
    if lanes == dot.lanes and target_has(dot.feature):
        rebuild_dot(sch, blk, dot)
    vectorize_rows(sch, out, lanes)
    schedule_spatial(sch, sch.get_sblock(names[1]), lanes)


def schedule_dot_matmul(sch, params, dot: DotInstruction, name: str, tile: tuple[int, int]) -> None:
    """A register tile of up to ``tile`` = (rows, blocks of 16 columns) accumulators, ``dot`` inside:
    per step of ``depth`` along K, ``blocks`` weight vectors and ``rows`` broadcast activations feed
    rows x blocks dot products.  Column panels outside row tiles (a panel of the weight stays in
    cache while the rows pass by); the write-back, with any fused epilogue, per tile.  The weight
    is in 32-bit words of ``depth`` elements (``pack_vnni_matmul_weight``)."""
    lanes = params.lanes  # the target's ScheduleParams
    inline_injective(sch)
    blk = sch.get_sblock(name)
    out = output_block(sch)
    *lead, m, nb, ki, rco, rci = sch.get_loops(blk)
    mo, mi = sch.split(m, [None, divisor_at_most(loop_extent(sch, m), tile[0], 1)])
    no, ni = sch.split(nb, [None, divisor_at_most(loop_extent(sch, nb), tile[1], 1)])
    sch.reorder(*lead, no, mo, rco, mi, ni, ki, rci)
    local = sch.cache_write(blk, 0, "local")
    sch.reverse_compute_at(local, mo)
    sch.reverse_compute_at(out, mo)
    outer = sch.fuse(*lead, no, mo)
    sch.parallel(outer)
    sch.unroll(mi)
    sch.unroll(ni)
    init = sch.decompose_reduction(blk, rco)
    sch.vectorize(sch.get_loops(init)[-1])
    sch.vectorize(sch.get_loops(local)[-1])
    last = sch.get_loops(out)[-1]
    if loop_extent(sch, last) % dot.lanes == 0 and loop_extent(sch, last) > dot.lanes:
        sch.vectorize(sch.split(last, [None, dot.lanes])[1])
    if lanes == dot.lanes and target_has(dot.feature):
        rebuild_dot(sch, blk, dot, weight_words=True)
