"""CPU schedules of the convolutions vectorised over pixels rather than output channels (the conv
family of ``schedule.py`` dispatches to them by the lowering's stage names):

* ``schedule_depthwise`` - a depthwise conv (``dw_conv``): one task per channel, a tile of output
  rows of whole vectors over the unrolled taps (kernels over 3 x 3 a kernel column at a time:
  ``_column_outer``), the padded input a pass of its own or made a row at a time where the taps read
  it (``DW_ROW_PAD_BYTES``), the epilogue per row tile, or per plane where a row is one vector;
* ``_schedule_row_conv`` - a group-1 conv of few input channels (``dw_conv`` with a channel
  reduction, an RGB stem): one task per output row, a channels x pixel-vectors register tile;
* ``schedule_pointwise`` - a 1x1 conv as a product (``conv_pw``): a tile of rows of output channels x
  pixel vectors (``pointwise_tile``), whose output rows are NCHW rows.
"""

from __future__ import annotations

import math

from ..target import ScheduleParams
from .schedule_util import (
    block_name,
    child_blocks,
    divisor_at_most,
    inline_injective,
    loop_extent,
    output_block,
    partition_at,
    vectorize_rows,
)

# a depthwise conv pads (and phase-splits) its input a group of rows at a time, where the taps read it,
# when a copy of the whole input would take more than this (MobileNetV2's 96 x 112 x 112): below it
# the copy stays in cache and, done once, costs less than the rows each done for two output rows
DW_ROW_PAD_BYTES = 4 << 20
# ... and where it does, the input rows of as many output-row tiles as fit in this are made at once
DW_ROW_GROUP_BYTES = 8 << 10
# annotations of ``conv_pw``: its register tile, chosen by the lowering (``pointwise_tile``)
POINTWISE_ROWS_KEY = "ember.pointwise_rows"
POINTWISE_VECTORS_KEY = "ember.pointwise_vectors"
# annotation of a depthwise conv's ``conv_pad``: the [first, end) columns of its (phase-split) padded
# input where every phase reads inside the input (set by the lowering, where the padding is known)
DW_INNER_COLUMNS_KEY = "ember.dw_inner_columns"
DW_TILE_COLUMNS = (64, 48, 32, 16, 8)  # depthwise register tiles, widest first (whole vectors)
# a depthwise kernel over 3 x 3 taps, on a target of at least this many vector registers, runs its taps a
# kernel column at a time over a tile of several output rows of at most ``DW_COLUMN_OUTER_VECTORS``
# vectors (``_column_outer``)
DW_COLUMN_OUTER_REGISTERS = 32
DW_COLUMN_OUTER_VECTORS = 2


def schedule_depthwise(sch, params: ScheduleParams) -> None:
    """Depthwise conv (``lower/nn/conv.py``): parallel over (image, channel); each output row is
    computed into a small row buffer, a tile of columns at a time accumulating over the unrolled
    taps in vector registers, and written back at once through any fused epilogue. The padded input
    is a parallel pass of its own (a plane per task would cost a workspace allocation per task);
    with a stride, that pass splits each padded row into its column phases, cut where the padding
    starts and ends (``_partition_phase_split``: vector shuffles, where a split reading the input
    under bounds tests took a gather per 8 values), or, for an input over ``DW_ROW_PAD_BYTES``
    (divided by ``params.depthwise_row_pad_divisor``), with or without a stride, the padding and
    split are done for a group of output-row tiles at a time where the taps read them (the rows
    two groups share are made twice). With a stride, that only where kernel rows / stride is at
    most 1.5 (3 x 3 at stride 2): DBNet's 288-channel 5 x 5 stride-2 conv at 40 x 40 took 1.10 ms
    padded 2.5 times over by single output rows and 0.49 ms in a pass of its own (measured before
    the grouping)."""
    lanes = params.lanes
    inline_injective(sch)
    dw = sch.get_sblock("dw_conv")
    out = output_block(sch)
    n, c, y, x, *taps = sch.get_loops(dw)  # (r, s), or (input channel, r, s) for a few-channel conv
    if len(taps) == 3:
        return _schedule_row_conv(sch, dw, out, lanes, min(ROW_CONV_ACCUMULATORS, params.accumulators))
    width = loop_extent(sch, x)
    kernel = [loop_extent(sch, t) for t in taps]
    column_outer = _column_outer(kernel, params)
    tile, rows = depthwise_tile(width, loop_extent(sch, y), kernel, params)
    # a row computed 8 wide (7 x 7 and smaller planes) in vectors of 8: split by AVX-512's 16, the
    # tile was one predicated 16-lane vector, which LLVM built from scalar FMAs and shuffles
    # (EfficientNet-B0's 1152-channel 5 x 5 conv at 7 x 7 with its SiLU: 0.167 -> 0.099 ms, Zen 4,
    # 1 thread; onnxruntime 0.074)
    lanes = min(lanes, tile)
    xo, xi = sch.split(x, [None, tile])
    yo, yi = sch.split(y, [None, rows])
    if column_outer:
        taps = taps[::-1]  # (kernel column, kernel row): see ``_column_outer``
    sch.reorder(yo, xo, *taps, yi, xi)
    outer = sch.fuse(n, c)
    if width <= params.lanes:
        # rows of one vector (planes of 9 to 16 columns; 8 and under are one tile already): the
        # write-back and its epilogue run once over the channel's plane, after its row tiles. One node,
        # 1 thread, kernel time (Zen 4): 672 x 14 x 14 5 x 5 0.17 -> 0.10 ms, with its SiLU 0.235 ->
        # 0.147; 384 x 14 x 14 7 x 7 0.74x; 672 x 28 x 28 5 x 5 stride 2 with SiLU 0.74x; a 3 x 3 with
        # Relu 1.007x. Wider rows measured slower that way (240 x 28 x 28 5 x 5 1.11x, 144 x 56 x 56
        # 3 x 3 1.06x) and are written back after each row tile
        sch.reverse_compute_at(out, outer)
    else:
        sch.reverse_compute_at(out, yo)
    sch.parallel(outer)
    xv, xl = sch.split(xi, [None, lanes])  # one register per vector: a 32-lane vector op made LLVM
    sch.unroll(xv)  # build each tap's weight splat lane by lane and keep 36 of them on the stack
    sch.vectorize(xl)
    sch.unroll(yi)
    for tap in taps:
        sch.unroll(tap)
    sch.decompose_reduction(dw, taps[0])
    *_, init_rows, init_vectors, init_lanes = sch.get_loops(sch.get_sblock("dw_conv_init"))
    sch.unroll(init_rows)
    sch.unroll(init_vectors)
    sch.vectorize(init_lanes)
    vectorize_rows(sch, out, lanes)
    if "dw_deinterleave" in {block_name(sch, b) for b in child_blocks(sch)}:
        _schedule_deinterleave(sch, sch.get_sblock("dw_deinterleave"), outer)
        return
    pad = sch.get_sblock("conv_pad")
    extents = [loop_extent(sch, loop) for loop in sch.get_loops(pad)]  # (..., row, phase, column)
    kernel_rows, stride = kernel[0], extents[-2]  # a phase per unit of stride
    copy_bytes = 4 * math.prod(extents)
    by_rows = stride == 1 or 2 * kernel_rows <= 3 * stride
    if copy_bytes > DW_ROW_PAD_BYTES // params.depthwise_row_pad_divisor and by_rows:
        # the tap rows' input rows padded (and split into their column phases) right where they are
        # read, into a row buffer that stays in L1: a copy of the whole input would cost its memory
        # traffic (MobileNetV2's 32 x 112 x 112 stride-1 conv: 0.30 -> 0.19-0.21 ms in the model).
        # The rows are made once per group of output-row tiles whose input rows fit
        # ``DW_ROW_GROUP_BYTES``: per tile, the rows its taps share with the next tile were made
        # twice (MobileNetV2's 96 x 112 x 112 conv, one output row per tile, 3 input rows a row:
        # 0.38 -> 0.32 ms in the model), and per tap row the middle row of a 2-row tile's 3 rows
        # was made for nothing. Never per column tile: a tile's few columns of padding and phase
        # split ran as short scalar loops (72 x 160 x 160, stride 2: 1.9 -> 0.7 ms)
        row_bytes = 4 * extents[-1] * extents[-2]
        tiles = loop_extent(sch, yo)
        group = max(
            g
            for g in range(1, tiles + 1)
            if tiles % g == 0 and (g == 1 or ((g * rows - 1) * stride + kernel_rows) * row_bytes <= DW_ROW_GROUP_BYTES)
        )
        at = sch.split(yo, [None, group])[0] if group > 1 else yo
        sch.compute_at(pad, at)
        _partition_phase_split(sch, pad, stride)
        return
    *row_loops, _, _ = sch.get_loops(pad)  # one parallel pass of its own, a padded row at a time
    sch.parallel(sch.fuse(*row_loops))
    if stride > 1 or _reads_integers(sch, pad):  # a stride-1 row of floats is left whole (LLVM masks it)
        _partition_phase_split(sch, pad, stride)


def _schedule_deinterleave(sch, de, task) -> None:
    """A stride-2 depthwise conv's even/odd column planes (``dw_deinterleave``) made in each
    channel's task, where they stay in L1: the columns outside the input cut off, the rest one loop
    over both phases that LLVM vectorises as interleaved loads."""
    from tvm.sym import Analyzer

    sch.compute_at(de, task)
    phase, column = sch.get_loops(de)[-2:]
    # the loop covers the columns the taps read, from the first one (``start``) on
    at_start = Analyzer()
    at_start.bind(sch.get(column).loop_var, 0)
    start = int(at_start.simplify(sch.get(column).body.iter_values[-1]))
    extent = loop_extent(sch, column)
    sch.reorder(column, phase)
    sch.unroll(phase)
    bounds = [int(b) - start for b in sch.get(de).annotations[DW_INNER_COLUMNS_KEY]]
    partition_at(sch, column, [b for b in bounds if 0 < b < extent])


def _reads_integers(sch, pad) -> bool:
    """Whether ``conv_pad`` converts integers (an integer depthwise conv's ``float32(x) - zx``): LLVM
    masks the bounds test of a stride-1 row of floats, but built the converted row from scalars
    (an int8 192 x 28 x 28 3 x 3 conv: 0.22 ms whole, 0.08 cut where the padding starts and ends)."""
    return any("int" in str(region.source.dtype) for region in sch.get(pad).reads)


def _partition_phase_split(sch, pad, stride: int) -> None:
    """Cut a strided depthwise conv's phase split (``conv_pad``) at the columns where every phase
    reads inside the input (its ``DW_INNER_COLUMNS_KEY``): that part, with no bounds test, is a loop
    over columns of the unrolled phases, which LLVM vectorises as interleaved loads and shuffles; the
    few padded columns either side stay scalar. (Padding each row into a buffer of its own first, to
    give the split a bounds-free input, cost a second pass: MobileNetV2's 144 x 56 x 56 stride-2
    conv, 0.19 -> 0.17 ms in the model.)"""
    column = sch.get_loops(pad)[-1]
    if stride > 1:  # a stride-1 pad's one phase: its loop may be gone where the pad moved into a task
        phase = sch.get_loops(pad)[-2]
        sch.reorder(column, phase)
        sch.unroll(phase)
    first, end = (int(b) for b in sch.get(pad).annotations[DW_INNER_COLUMNS_KEY])
    partition_at(sch, column, [b for b in (first, end) if 0 < b < loop_extent(sch, column)])


def depthwise_tile(width: int, height: int, taps: list[int], params: ScheduleParams) -> tuple[int, int]:
    """Columns and output rows of a depthwise conv's register tile over rows ``width`` columns wide
    (as computed) and ``height`` rows. x86 takes the widest of ``DW_TILE_COLUMNS`` that divides the
    row (at most ``DW_COLUMN_OUTER_VECTORS`` vectors where the kernel runs a column at a time), then
    the rows that fit (``depthwise_rows``). With ``params.depthwise_vector_tiles`` (aarch64) the
    tile is 1 to ``DW_COLUMN_OUTER_VECTORS`` whole vectors, whichever gives the most accumulators
    (rows x vectors; then the wider): a 56-wide row on NEON takes 4 rows x 2 vectors, a 28- or
    14-wide one 7 rows x 1 vector, where 2 vectors would leave 1 or 2 rows."""
    lanes = params.lanes
    if params.depthwise_vector_tiles:
        tiles = [v * lanes for v in range(1, DW_COLUMN_OUTER_VECTORS + 1) if width % (v * lanes) == 0]
        if tiles:
            sized = [(t, depthwise_rows(height, t // lanes, taps, params)) for t in tiles]
            return max(sized, key=lambda tr: (tr[1] * tr[0], tr[0]))
    widest = DW_COLUMN_OUTER_VECTORS * lanes if _column_outer(taps, params) else DW_TILE_COLUMNS[0]
    tile = next((t for t in DW_TILE_COLUMNS if width % t == 0 and t <= widest), width)
    return tile, depthwise_rows(height, max(1, tile // lanes), taps, params)


def _column_outer(taps: list[int], params: ScheduleParams) -> bool:
    """Whether a depthwise kernel of ``taps`` (rows, columns) runs a kernel column at a time: over
    ``params.depthwise_column_taps`` taps (10 on x86: over 3 x 3), with
    ``params.depthwise_accumulators`` and at least ``DW_COLUMN_OUTER_REGISTERS`` registers. For one
    kernel column the tile's output rows read overlapping input rows, so the unrolled taps load each
    input vector once for all the rows that use it (rows + kernel rows - 1 loads per column vector,
    not rows x kernel rows). With the kernel rows outermost the same vector came back a whole kernel
    row of taps later, too late to keep in a register, so 7 x 7 kernels had taken one output row of
    up to 4 vectors at the FMA latency. One node, 1 thread (Zen 4): 7 x 7 at 56 x 56 (96 channels)
    0.53 -> 0.35 ms, at 7 x 7 (768) 0.131 -> 0.058; 5 x 5 at 28 x 28 (240) 0.170 -> 0.115, at 7 x 7
    (1152) 0.063 -> 0.055; against the kernel rows outermost with the same tiles 0.40, 0.072, 0.120
    and 0.063 ms."""
    kernel_taps = taps[0] * taps[1] if len(taps) == 2 else 0
    return (
        bool(params.depthwise_accumulators)
        and kernel_taps >= params.depthwise_column_taps
        and params.registers >= DW_COLUMN_OUTER_REGISTERS
    )


def depthwise_rows(height: int, vectors: int, taps: list[int], params: ScheduleParams) -> int:
    """Output rows of a depthwise conv's register tile of ``vectors`` column vectors: the most, at
    most 8, that divide ``height`` and keep ``rows x vectors`` within
    ``params.depthwise_accumulators`` (0: one row), for kernels of at most 3 x 3 taps, for larger
    ones that run a kernel column at a time (``_column_outer``) where the accumulators, the input
    vectors of one kernel column and a weight fit the registers, and otherwise for 5 x 5 kernels whose
    row is one vector. Each tap adds into every accumulator, so one row of 2 vectors (a 14- or
    112-wide row on AVX2) runs at the FMA latency, not its throughput (AVX2, one thread, against
    onnxruntime: 576 channels at 14 x 14 1.9x -> 0.9x at its best; 144 at 56 x 56 1.00x -> 0.87x).
    With the kernel rows outermost (AVX2), 5 x 5 kernels measured slower with 2 rows of 2 or 4
    vectors (672 at 14 x 14: 0.79x -> 1.05x; 120 at 28 x 28 in MobileNetV3, 0.191 -> 0.202 ms) and
    faster with 7 rows of one vector (960 at 7 x 7 in MobileNetV3: 0.107 -> 0.073 ms)."""
    if not params.depthwise_accumulators or len(taps) != 2:
        return 1
    kernel_rows, kernel_taps = taps[0], taps[0] * taps[1]
    column_outer = _column_outer(taps, params)

    def fits(rows: int) -> bool:
        if height % rows or rows * vectors > params.depthwise_accumulators:
            return False
        if column_outer:  # the accumulators, one kernel column's input vectors and a weight
            return rows * vectors + (rows + kernel_rows - 1) * vectors + 1 <= params.registers
        return kernel_taps <= 9 or (kernel_taps <= 25 and vectors == 1)

    return max((r for r in range(1, 9) if fits(r)), default=1)


# output channels x pixel vectors of a few-channel conv's register tile (at most the target's
# ``accumulators``). 8 since the tile is written back from its registers: one node alone, 1 thread
# (Zen 4), 16 -> 8: 3 -> 16 at 640 x 640 (8 channels x 2 vectors -> 4 x 2) 2.24 -> 1.97 ms (8 x 1:
# 1.85), 3 -> 32 at 224 x 224 0.308 -> 0.271, ResNet-50's 7x7 2.27 -> 2.26, 3 -> 64 3x3 at 224 x 224
# 0.615 -> 0.601; each stem in its model (with its epilogue, both orders of an interleaved
# comparison): MobileNetV2 0.28 -> 0.22, DBNet 1.48 -> 1.34, ResNet-50 2.21 -> 2.13, SqueezeNet 0.52
# -> 0.50, EfficientNet-B0 0.34 -> 0.34, YOLOv8 (its SiLU on the narrower tile) 1.63-1.67 -> 1.66-1.69
ROW_CONV_ACCUMULATORS = 8


def _schedule_row_conv(sch, dw, out, lanes: int, accumulators: int) -> None:
    """A conv of few input channels (``dw_conv`` with a channel reduction, ``lower/nn/conv.py``): one
    task per output row, which pads (and, with a stride, phase-splits) the few input rows it reads
    into buffers that stay in L1, then runs over blocks of output channels; the register tile is a
    block's channels x one or two pixel vectors, each tap a vector load of the row and a broadcast
    weight per channel, over the input channels (a loop: unrolled as well, LLVM hoisted every tap's
    weight broadcasts, 27 x 8 for a 3x3 conv, out of the tile loop and spilled them) and the unrolled
    taps. The row is whole tiles (``_depthwise_width``), each written back through the fused epilogue
    from its accumulators right after its reduction (through a row buffer, a block's rows at its end,
    the stores ran apart from the products). (A padded copy of the whole input, YOLOv8's 3 x 640 x
    640, cost a pass over 10 MB of fresh workspace pages per call.) Each stem in its model, 1 thread,
    before -> after those two changes: YOLOv8 2.04 -> 1.64 ms, DBNet 1.80 -> 1.42, ResNet-50's 7x7
    2.41 -> 2.21, SqueezeNet 0.68 -> 0.52, EfficientNet-B0 0.40 -> 0.34, MobileNetV2 0.40 -> 0.28,
    RegNetY-800MF 0.38 -> 0.30 (Zen 4)."""
    n, k, y, x, rc, rr, rs = sch.get_loops(dw)
    lanes = min(lanes, loop_extent(sch, x))  # a row computed 8 wide: vectors of 8 (``schedule_depthwise``)
    vectors = 2 if (loop_extent(sch, x) // lanes) % 2 == 0 else 1
    rows = divisor_at_most(loop_extent(sch, k), accumulators // vectors, 1)
    ko, ki = sch.split(k, [None, rows])
    xo, xv, xl = sch.split(x, [None, vectors, lanes])  # whole tiles: the lowering rounds rows up to vectors
    sch.reorder(n, y, ko, xo, rc, rr, rs, ki, xv, xl)
    outer = sch.fuse(n, y)
    sch.set_scope(dw, 0, "local")  # the tile's accumulators, written back through the epilogue at once
    sch.reverse_compute_at(out, xo)
    sch.parallel(outer)
    sch.vectorize(xl)
    sch.unroll(xv)
    sch.unroll(ki)
    for tap in (rr, rs):
        sch.unroll(tap)
    sch.decompose_reduction(dw, rc)
    *_, init_rows, init_vectors, init_lanes = sch.get_loops(sch.get_sblock("dw_conv_init"))
    sch.unroll(init_rows)
    sch.unroll(init_vectors)
    sch.vectorize(init_lanes)
    *_, out_rows, out_pixels = sch.get_loops(out)
    sch.unroll(out_rows)
    out_vectors, out_lanes = sch.split(out_pixels, [None, lanes])
    sch.unroll(out_vectors)
    sch.vectorize(out_lanes)
    pad = sch.get_sblock("conv_pad")
    sch.compute_at(pad, outer)
    phases = loop_extent(sch, sch.get_loops(pad)[-2])  # the stride
    if phases > 1:
        _partition_phase_split(sch, pad, phases)


def pointwise_tile(channels: int, pixels: int, params: ScheduleParams) -> tuple[int, int] | None:
    """(rows of output channels, vectors of pixels) of a pointwise conv's register tile over
    ``pixels`` rounded up to whole vectors, or to whole tiles where
    ``params.pointwise_padded_tiles`` (``pointwise_pixels``); None when that rounding wastes over
    1/8 of the work for every tile (7 x 7 on 16 lanes: 64 for 49; the channel-vector conv does
    better there) or no row count from 4 up divides ``channels``. Where
    ``params.pointwise_padded_rows`` a row count that does not divide ``channels`` serves too when
    rounding the channels up to it (``pointwise_channels``) wastes at most 1/16: AVX2's 6 x 2 tile
    for 256 output channels, not a 4 x 2 one. The tile with the most accumulators, at most
    ``params.accumulators`` (24 of AVX-512's 32 registers, 12 of AVX2's 16), wins, then one whose
    rows divide ``channels`` (ShuffleNetV2's 116 channels at 14 x 14 ran 1.3x slower on 6 x 2 over
    120 than on 4 x 3), then the one whose vector count comes first in ``params.pointwise_vectors``,
    among those that leave at least 4 row blocks (parallel tasks) where one does."""
    order = params.pointwise_vectors

    def fits(rows: int) -> bool:
        rounded = pointwise_channels(channels, rows)
        return rounded == channels or (params.pointwise_padded_rows and 16 * rounded <= 17 * channels)

    tiles = [
        (rows, vectors)
        for vectors in order
        if (padded := pointwise_pixels(pixels, vectors, params)) is not None and 8 * padded <= 9 * pixels
        for rows in range(4, min(channels, params.accumulators // vectors) + 1)
        if fits(rows)
    ]
    spread = [t for t in tiles if pointwise_channels(channels, t[0]) // t[0] >= 4] or tiles
    key = lambda t: (t[0] * t[1], channels % t[0] == 0, -order.index(t[1]))  # noqa: E731
    return max(spread, key=key) if spread else None


def pointwise_channels(channels: int, rows: int) -> int:
    """The output channels of a pointwise conv's product, ``channels`` rounded up to whole ``rows``."""
    return -(-channels // rows) * rows


def pointwise_pixels(pixels: int, vectors: int, params: ScheduleParams) -> int | None:
    """The length of a pointwise conv's pixel rows under a tile of ``vectors`` vectors, or None where
    that tile does not fit. A plane of whole vectors must make whole tiles; any other is rounded up
    (the last tile reads a zero-padded copy of its pixels, ``conv_xtail``) to whole vectors, or to
    whole tiles where ``params.pointwise_padded_tiles`` (14 x 14 = 196 pixels on AVX2's 6 x 2 tile:
    208)."""
    lanes = params.lanes
    whole = -(-pixels // lanes)
    if params.pointwise_padded_tiles and whole * lanes != pixels:
        return -(-whole // vectors) * vectors * lanes
    return whole * lanes if whole % vectors == 0 else None


# a pointwise conv whose input is larger than this (a quarter of a core's L2) runs over chunks of
# image rows, each read once for every block of output channels, instead of over blocks of output
# channels, each reading the whole input again: in a model the input is not all in L2 when the conv
# starts, and the other blocks' outputs evict it (1 MiB before: 64 -> 256 at 56 x 56, 1.18 -> 1.02 ms
# on its own; EfficientNet-B0 0.967/0.974 and MobileNetV3-Large 0.964/0.875 at 1/2 threads)
POINTWISE_STREAM_BYTES = 256 << 10


def pointwise_chunk_rows(height: int, width: int, vectors: int, lanes: int) -> int | None:
    """Image rows per chunk of a chunked pointwise conv: the fewest that divide ``height`` and hold
    whole tiles of ``vectors`` pixel vectors, or None when no such count leaves 2 chunks or more."""
    tile = vectors * lanes
    return next((r for r in range(1, height // 2 + 1) if height % r == 0 and r * width % tile == 0), None)


def schedule_pointwise(sch, params: ScheduleParams) -> None:
    """1x1 conv as a product (``conv_pw``, ``lower/nn/conv.py``): ``rows x vectors`` accumulators
    (``pointwise_tile``) over the input channels, each tile written back, with any epilogue, from its
    registers as soon as it is done (``_schedule_pointwise_tiles``), in parallel tasks of a block of
    ``rows`` output channels over all pixels, or, for an input past ``POINTWISE_STREAM_BYTES``, of
    a chunk of image rows over all output channels (the input read once, the weights once per
    chunk). On a plane that whole tiles overshoot, the last tile reads a zero-padded copy of its
    pixels and its write-back drops those past the plane."""
    lanes = params.lanes
    inline_injective(sch)
    blk = sch.get_sblock("conv_pw")
    out = output_block(sch)
    n, k, p, rc = sch.get_loops(blk)
    *_, height, width = (loop_extent(sch, loop) for loop in sch.get_loops(out))
    tile = sch.get(blk).annotations  # the lowering's (``pointwise_tile``)
    rows, vectors = int(tile[POINTWISE_ROWS_KEY]), int(tile[POINTWISE_VECTORS_KEY])
    chunk = pointwise_chunk_rows(height, width, vectors, lanes)
    padded = loop_extent(sch, p)  # the pixels rounded up to whole tiles
    input_bytes = 4 * loop_extent(sch, rc) * padded
    if height * width == padded:
        chunked = input_bytes > POINTWISE_STREAM_BYTES and chunk is not None
        return _schedule_pointwise_tiles(sch, blk, out, (rows, vectors, lanes), chunk * width if chunked else None)
    # a plane of pixels that whole tiles overshoot: the last tile's write-back drops the pixels past
    # the plane, a bounds test that scalarised every tile's stores until TVM's LoopPartition (asked
    # by the hint) cut that tile off the tile loop
    _schedule_pointwise_tiles(sch, blk, out, (rows, vectors, lanes), None)
    sch.annotate(sch.get_loops(out)[1], "pragma_loop_partition_hint", 1)


def _schedule_pointwise_tiles(sch, blk, out, tile: tuple[int, int, int], chunk: int | None) -> None:
    """``schedule_pointwise``'s tiles: the write-back's (row, column) iteration made one flat pixel
    index (``transform_block_layout``), so that each register tile of ``rows`` channels x
    ``vectors * lanes`` pixels is a region of it (the last one cut at the plane's end where whole
    tiles overshoot it), and each tile is written back from its
    accumulators, through the epilogue, right after its reduction. Parallel tasks are blocks of
    ``rows`` output channels, or with ``chunk`` chunks of that many pixels (whole image rows) over
    all channels. Written back after each task's whole block instead, through an L1 buffer, the
    stores of a large plane ran apart from the products: 32 -> 64 channels at 112 x 112 spent a
    third of its time in that pass (perf), and MobileNetV2's 16 -> 96 + Clip took 0.755 ms alone
    against 0.446 now (onnxruntime 0.47; Zen 4, 1 thread)."""
    rows, vectors, lanes = tile
    *_, width = (loop_extent(sch, loop) for loop in sch.get_loops(out))
    sch.transform_block_layout(out, lambda b, k, y, x: (b, k, y * width + x))
    n, k, f = sch.get_loops(out)
    pixels = vectors * lanes
    ko, ki = sch.split(k, [None, rows])
    if chunk:
        pc, po, pt = sch.split(f, [None, chunk // pixels, pixels])
        sch.reorder(n, pc, ko, po, ki, pt)
        sch.parallel(sch.fuse(n, pc))
    else:
        po, pt = sch.split(f, [None, pixels])
        sch.reorder(n, ko, po, ki, pt)
        sch.parallel(sch.fuse(n, ko))
    sch.compute_at(blk, po)
    *_, kk, pp, rc = sch.get_loops(blk)
    pv, pl = sch.split(pp, [None, lanes])
    sch.reorder(rc, kk, pv, pl)
    sch.set_scope(blk, 0, "local")  # the tile's accumulators: registers, as LLVM keeps them
    sch.vectorize(pl)  # (before the reduction is split: TVM 0.27 refuses to vectorise it after)
    sch.unroll(kk)
    sch.unroll(pv)
    sch.decompose_reduction(blk, rc)
    *_, init_rows, init_vectors, init_lanes = sch.get_loops(sch.get_sblock("conv_pw_init"))
    sch.unroll(init_rows)
    sch.unroll(init_vectors)
    sch.vectorize(init_lanes)
    sch.unroll(ki)
    tv, tl = sch.split(pt, [None, lanes])
    sch.unroll(tv)
    sch.vectorize(tl)
