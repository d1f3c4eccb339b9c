"""CPU schedules for Ember kernels, written against ``tvm.s_tir.Schedule``.

The families, chosen by the kind of a kernel's anchor op:

* ``conv``  - the packed conv (``conv_blk``): output tile of ``t`` pixels x ``conv_blocks`` blocks of
  ``conv_block`` channels accumulated in registers (cache_write to ``local``), channel vector
  innermost, reduction (c, r, s),
  or (r, s, c) where ``conv_taps_outside``, outside it, the NCHW write-back (with any fused
  epilogue) computed right after each output row; ``t`` leaves registers for the inputs a kernel
  row's unrolled taps share (``conv_tile_fitting_registers``), and an input over
  ``CONV_ROW_PAD_BYTES`` (``CONV_STRIDED_ROW_PAD_BYTES`` with a stride) is padded a task's rows at
  a time; the convs vectorised over pixels instead (a pointwise ``conv_pw``, a depthwise or
  few-channel ``dw_conv``) take the schedules of ``schedule_pixel_conv.py``; a 1x1 conv whose
  weight block is past L1 runs its channel loop in chunks outside the pixel tiles, the row's
  accumulators kept between chunks (``conv_channel_chunk``, AVX2);
* ``pool`` - 2-D MaxPool: per channel and output row, the window rows' maximum then the columns';
* ``matmul`` - ``schedule_matmul.py``: ``mi`` rows x ``lanes*nv`` columns register tile, k outside the tile;
  (the lowering pads rows and columns so that the tile fits, and packs B into column panels);
* ``conv_transpose`` - the stride-decomposed ConvTranspose: the packed conv's tiling, then its
  depth-to-space write-back as a parallel pass;
* ``softmax`` and ``layer_norm`` - ``schedule_rows.py``: float32 Softmax, LayerNormalization and
  RMSNormalization over the last axis, one parallel task per row, vector partial maxima and sums;
* generic - every other block: injective producers inlined, outer loops fused and parallel,
  innermost vectorised when it divides the vector width; a loop whose body switches source at
  constant points (a Concat) is cut there: the innermost over whole vectors, an outer one (a
  channel Concat) moved inside the parallel loop (``_partition_outer_axis``).

Tile sizes come from the target (``codegen.target.ScheduleParams``: 2 x 16 channels x 12 pixels and
8 x 2 vectors on x86, 16 channels x 6 pixels and 6 x 4 vectors on 32 NEON registers).
The family is the anchor op's ``OpLowering.kind`` (the first op of the kernel whose kind is not
``injective``: a fused prologue does not hide it). A lowering marks a stage that must keep its own
loop nest (a conv's padded input and packed weight, a tree walk's steps) with
``te.compute(..., attrs=te_util.MATERIALISED)``; no schedule inlines a block so annotated.

Every step is checked by TVM; a family that does not apply raises and the caller falls back to the
generic schedule.
"""

from __future__ import annotations

import math
import os
import traceback

from tvm import s_tir

from ..target import ScheduleParams
from .schedule_matmul import schedule_matmul
from .schedule_reduction import schedule_reduction
from .schedule_rows import schedule_layer_norm, schedule_softmax
from .schedule_util import (
    PARALLEL_MIN_WORK,
    block_name,
    child_blocks,
    divisor_at_most,
    inline_injective,
    is_reduction,
    loop_extent,
    output_block,
    partition_at,
    reductions_under,
    select_bounds,
    vectorize_rows,
)
from .schedule_util import parallel as _parallel

# annotation of a ConvTranspose write-back whose phase-grid row a makes output rows [a*s, a*s + s)
PHASE_ROWS_ALIGNED = "ember.phase_rows_aligned"
# annotation of the packed conv's ``conv_blk``: its column stride, which sets how many input values the
# unrolled taps of one kernel row share (``conv_tile_fitting_registers``)
CONV_STRIDE_KEY = "ember.conv_stride"
# marks a conv_blk over a flattened pixel plane (``lower/nn/conv.py``): its write-back, which reads
# the plane as rows, is a pass of its own (TVM bounds a write-back placed under the tile loop with
# the wrong row width there)
CONV_FLAT_KEY = "ember.conv_flat"
# a 2-D MaxPool's column pass (``lower/nn/pool.py``): [first, end) of its output columns whose windows lie
# inside the input
POOL_INTERIOR_KEY = "ember.pool_interior"
# annotation of the packed conv's ``conv_blk`` where its input is padded above or below: [padding
# rows above, input rows, row stride] (``_skip_padded_kernel_rows``)
CONV_ROWS_KEY = "ember.conv_rows"


def schedule_stages_if_present(sch, names, lanes: int) -> None:
    """``schedule_spatial`` each named stage a lowering may or may not have made (a padded input only
    with pads, a packing stage only for a run-time weight)."""
    for name in names:
        try:
            schedule_spatial(sch, sch.get_sblock(name), lanes)
        except Exception:  # no such stage, or one TVM cannot split: it stays as the lowering made it
            pass


def _rows_fuse_contiguously(sch, block, loops, lanes: int) -> bool:
    """Whether a nest whose rows are narrower than a vector (a conv activation's 7 or 14 pixels) may
    run its last two loops as one: every buffer it reads or writes is indexed in its last two dims
    by the last two loop variables, over whole rows, or by neither (a per-channel gate, a scalar).
    Then the fused loop reads and writes contiguous vectors (TVM folds ``(f // w) * w + f % w``
    back to ``f``), where each row was a vector of 7 lanes of its own (an SE block's gating Mul:
    1152 x 7 x 7 in 8,064 rows)."""
    import re

    iters = sch.get(block).iter_vars
    if len(loops) < 2 or len(iters) != len(loops) or not 1 < loop_extent(sch, loops[-1]) < lanes:
        return False
    row, col = (re.escape(iv.var.name) for iv in iters[-2:])
    width = loop_extent(sch, loops[-1])
    uses = re.compile(rf"\b({row}|{col})\b")
    for region in [*sch.get(block).reads, *sch.get(block).writes]:
        ranges = list(region.region)
        tail = [str(r.min) for r in ranges[-2:]]
        if len(ranges) >= 2 and tail == [iters[-2].var.name, iters[-1].var.name]:
            if int(region.source.shape[-1]) != width or any(int(r.extent) != 1 for r in ranges[-2:]):
                return False
        elif any(uses.search(str(r.min)) or uses.search(str(r.extent)) for r in ranges):
            return False
    return True


def _vectorize_innermost(sch, block, loop, lanes: int) -> None:
    inner = loop_extent(sch, loop)
    if inner % lanes == 0 and inner > lanes:
        _, vec = sch.split(loop, [None, lanes])
        sch.vectorize(vec)
    elif 1 < inner <= 4 * lanes:
        sch.vectorize(loop)


def _parallel_outer(sch, outer, loops) -> None:
    """Fuse the ``outer`` loops into one parallel loop (``_parallel``), where the whole nest
    (``loops``) holds at least ``PARALLEL_MIN_WORK`` iterations and the fused loop more than one."""
    if not outer or math.prod(loop_extent(sch, loop) for loop in loops) < PARALLEL_MIN_WORK:
        return
    fused = sch.fuse(*outer) if len(outer) > 1 else outer[0]
    if loop_extent(sch, fused) > 1:
        _parallel(sch, fused)


def schedule_spatial(sch, block, lanes: int) -> None:
    """Parallelise the fused outer loops; vectorise the innermost loop (no div/mod across rows).

    An innermost loop whose body switches on its index at constant points (a Concat along the
    last axis: ``if_then_else(v >= 6400, b[v - 6400], a[v])``) is first cut at those points, so
    each part reads one source contiguously and vectorises: a vector of guarded loads is
    otherwise computed lane by lane."""
    loops = sch.get_loops(block)
    if not loops:
        return
    if _partition_outer_axis(sch, block, loops, lanes):
        return
    if _rows_fuse_contiguously(sch, block, loops, lanes):
        loops = [*loops[:-2], sch.fuse(*loops[-2:])]
    *outer, last = loops
    bounds = select_bounds(sch, block, loop_extent(sch, last)) if len(sch.get(block).iter_vars) == len(loops) else []
    _parallel_outer(sch, outer, loops)
    extent = loop_extent(sch, last)
    if bounds and len(bounds) <= 8 and extent % lanes == 0 and all(b % lanes == 0 for b in bounds):
        # cut the loop over whole vectors (TVM splits only loops that start at 0: cut after splitting)
        vectors, vec = sch.split(last, [None, lanes])
        sch.vectorize(vec)
        steps = [b // lanes for b in bounds]
        partition_at(sch, vectors, steps)
        return
    if len(sch.get(block).iter_vars) == len(loops):
        _vectorize_or_interleave(sch, block, last, lanes)
    else:
        _vectorize_innermost(sch, block, last, lanes)


def _vectorize_or_interleave(sch, block, loop, lanes: int) -> None:
    """The innermost ``loop``: where the block reads its index as ``x // s`` or ``x % s``
    (``_interleave_factor``), split into (x, phase) with the phase unrolled and x left to LLVM, which
    vectorises the group of s strided stores as contiguous ones plus shuffles (TVM's vector of
    ``x // s`` indices was a gather); else ``_vectorize_innermost``."""
    phases = _interleave_factor(sch, block, loop_extent(sch, loop))
    if phases:
        sch.unroll(sch.split(loop, [None, phases])[1])
    else:
        _vectorize_innermost(sch, block, loop, lanes)


INTERLEAVE_MAX = 8  # the largest upsampling or depth-to-space factor taken as an interleave


def _interleave_factor(sch, block, extent: int) -> int:
    """The ``s`` of a block whose innermost index is read as ``v // s`` or ``v % s`` (a nearest
    upsampling by an integer factor, a DepthToSpace: each output row interleaves ``s`` input rows,
    or repeats each value ``s`` times), where ``s`` is at most ``INTERLEAVE_MAX`` and divides the
    loop: 0 where there is no such ``s`` or several."""
    import re

    name = re.escape(sch.get(block).iter_vars[-1].var.name)
    text = str(sch.get(block).body)
    factors = {int(c) for c in re.findall(rf"\b{name} (?://|%) (\d+)\b", text)}
    if len(factors) != 1:
        return 0
    (factor,) = factors
    return factor if 1 < factor <= INTERLEAVE_MAX and factor < extent and extent % factor == 0 else 0


OUTER_PARTS_MAX = 64  # parts of an outer-axis Concat cut into loops of their own (DenseNet: up to 33)


def _partition_outer_axis(sch, block, loops, lanes: int) -> bool:
    """An outer axis whose body switches on its index at constant points (a channel Concat, fused
    with its BatchNormalization and Relu in DenseNet) is moved inside the parallel loop, just
    outside the innermost, and cut at those points: each part then reads one source, and the
    innermost loop vectorises as contiguous loads, where a vector of the guarded chain computed
    every source's load (a 6-input Concat + BatchNormalization + Relu at 56 x 56 ran at 2x
    onnxruntime's time). False, leaving the block alone, where no outer axis does so."""
    if len(loops) < 2 or len(sch.get(block).iter_vars) != len(loops):
        return False
    *outer, last = loops
    for axis, loop in enumerate(outer):
        bounds = select_bounds(sch, block, loop_extent(sch, loop), axis)
        if bounds and len(bounds) < OUTER_PARTS_MAX:
            break
    else:
        return False
    rest = [lp for lp in outer if not lp.same_as(loop)]
    sch.reorder(*rest, loop, last)
    _parallel_outer(sch, rest, loops)
    _vectorize_or_interleave(sch, block, last, lanes)  # a part may be upsampled (YOLOv8's Resize + Concat)
    partition_at(sch, loop, bounds)
    return True


def schedule_generic(sch, lanes: int) -> None:
    inline_injective(sch)
    for block in child_blocks(sch):
        if is_reduction(sch, block):
            schedule_reduction(sch, block, lanes)
        else:
            schedule_spatial(sch, block, lanes)


def conv_tile_fitting_registers(
    params: ScheduleParams, blocks: int, taps: int, stride: int, block_vectors: int | None = None
) -> int:
    """The widest pixel tile, at most ``params.conv_tile``, whose working set fits the vector registers.

    LLVM unrolls a kernel row's few taps and keeps each input value it broadcasts live for every tap
    that reads it again: ``(tile - 1) * stride + taps`` broadcasts next to ``blocks * tile``
    accumulators and ``blocks`` weight vectors. Past the register file it spills accumulators inside
    the reduction (an 11-pixel tile of a 3x3 conv ran at half the speed of an 8-pixel one). A 1x1
    conv shares nothing: each broadcast is consumed by its FMAs at once. ``block_vectors``: the
    vectors of one block where it is not the target's ``conv_block`` (a one-vector block)."""
    tile = params.conv_tile
    if taps <= 1 or params.conv_taps_outside:  # taps outside: the rolled channel loop is innermost
        return tile
    vectors = blocks * (block_vectors or max(1, params.conv_block // params.lanes))
    # without ``conv_shared_broadcasts`` (AVX2's 16 registers) one broadcast at a time is live: LLVM
    # reloads each one, and 6-pixel tiles beat the 2-pixel ones that keeping them would leave
    shared = (lambda t: (t - 1) * stride + taps) if params.conv_shared_broadcasts else (lambda t: 1)
    while tile > 1 and vectors * tile + shared(tile) + vectors > params.registers:
        tile -= 1
    return tile


def conv_channel_chunk(params: ScheduleParams, channels: int, taps: int, lanes_per_tile: int) -> int:
    """The input channels per chunk of a 1x1 packed conv's reduction, or 0 for none.

    Each pixel tile of the packed conv runs the whole channel loop, so a block's weights
    (``channels * lanes_per_tile`` floats) are read once per tile; past L1 they stream from L2
    at one weight vector per ``conv_tile`` FMAs, which on AVX2 is as much as L2 delivers (ResNet's
    2048 -> 512 1x1 conv at 7 x 7: 43% of the FMA peak with an inner loop of nothing but FMAs and
    loads). Split into chunks of ``params.conv_chunk_bytes`` of weights, the channel loop runs
    outside the tiles and each chunk's weights are read from L1 by every tile of the row. Only 1x1
    convs whose weights are over twice the chunk: 3x3 convs measured slower or the same (their
    rows are few tiles, so a chunk is reused little, and the row's accumulators cost L1 space)."""
    if not params.conv_chunk_bytes or taps != 1:
        return 0
    per_channel = 4 * lanes_per_tile
    if channels * per_channel <= 2 * params.conv_chunk_bytes:
        return 0
    return divisor_at_most(channels, params.conv_chunk_bytes // per_channel, 8) if channels % 8 == 0 else 0


# the packed conv pads its input rows inside each task, where its tile reads them, when a padded copy
# of the whole input would take more than this: YOLOv8's 16 x 640 x 640 input made the copy, a pass
# over 26 MB read and 26 MB written, cost as much as the convolution
CONV_ROW_PAD_BYTES = 4 << 20
# ... or this with a stride: an output row's input rows overlap the next one's less (a 3 x 3 kernel
# at stride 2 pads each row for 1.5 output rows, at stride 1 for 3). RegNetY-800MF's grouped 3 x 3
# stride-2 conv of 64 x 112 x 112 (a 3.3 MB copy): 0.815 -> 0.695 ms, 1 thread, Zen 4; with this
# bound for stride 1 too, YOLOv8's 3 x 3 head conv over a 3.4 MB copy took 9% longer
CONV_STRIDED_ROW_PAD_BYTES = 2 << 20


def _pad_rows_where_read(sch, task, stride: int = 1) -> bool:
    """Move ``conv_pad`` under the conv's parallel ``task`` loop (one output row of a block of output
    channels) when the whole padded input is over ``CONV_ROW_PAD_BYTES`` (``CONV_STRIDED_ROW_PAD_BYTES``
    for a ``stride`` over 1); the padded rows it reads are then made per task, in cache. False where
    there is no such stage or it is small."""
    try:
        pad = sch.get_sblock("conv_pad")
    except Exception:
        return False
    size = 4
    for loop in sch.get_loops(pad):
        size *= loop_extent(sch, loop)
    if size <= (CONV_STRIDED_ROW_PAD_BYTES if stride > 1 else CONV_ROW_PAD_BYTES):
        return False
    try:
        sch.compute_at(pad, task)
    except Exception:  # a region TVM cannot bound: the pass of its own serves
        return False
    return True  # its column loop left to LLVM, which vectorises the bounds test by masking


def schedule_conv(sch, params: ScheduleParams) -> None:
    """Register-tiled schedule for the packed conv2d (see module docstring)."""
    lanes = params.lanes
    inline_injective(sch)
    try:
        sch.get_sblock("dw_conv")
    except Exception:
        pass
    else:
        from .schedule_pixel_conv import schedule_depthwise

        return schedule_depthwise(sch, params)
    try:
        sch.get_sblock("conv_pw")
    except Exception:
        pass
    else:
        from .schedule_pixel_conv import schedule_pointwise

        return schedule_pointwise(sch, params)
    if {"bfconv_blk", "bfconv_rows", "bfconv_amx"} & {block_name(sch, b) for b in child_blocks(sch)}:
        from .lower.nn.conv_bf16 import schedule_bf16_conv

        return schedule_bf16_conv(sch, params)
    blk = sch.get_sblock("conv_blk")
    out = output_block(sch)
    n, ko, y, x, ki, rc, rr, rs = sch.get_loops(blk)
    out_rows = loop_extent(sch, y)
    blocks = divisor_at_most(loop_extent(sch, ko), params.conv_blocks, 1)
    stride = int(sch.get(blk).annotations.get(CONV_STRIDE_KEY, 1))
    taps = loop_extent(sch, rs)  # a kernel row's taps
    widest = conv_tile_fitting_registers(params, blocks, taps, stride)
    if blocks < params.conv_blocks and loop_extent(sch, ko) % 3 == 0:
        # an odd number of channel blocks that 3 divide (1000 channels: 63 blocks of 16): 3 of them x
        # as many pixels as the registers allow, not 1 x ``conv_tile`` (SqueezeNet's 512 -> 1000
        # classifier at 13 x 13: 12 accumulators, streaming a block's weights for 12 products each)
        blocks = 3
        widest = max(1, min(conv_tile_fitting_registers(params, blocks, taps, stride), params.accumulators // blocks))
    elif loop_extent(sch, ki) < params.conv_block and loop_extent(sch, ko) % 3 == 0:
        # one-vector blocks where the target's are wider (``conv_block``: 24 channels on AVX2), or
        # half-vector ones (``conv_half_vectors``): 3 of them x as many pixels as the registers allow
        blocks = 3
        fitting = conv_tile_fitting_registers(params, blocks, taps, stride, block_vectors=1)
        widest = max(1, min(widest, fitting, params.accumulators // blocks))
    ow = loop_extent(sch, x)
    tile = divisor_at_most(ow, widest, 1)
    if 2 * tile < min(ow, widest):  # 13 or 111 wide: a guarded tail beats 1- or 3-pixel tiles
        tiles = -(-ow // widest)
        tile = -(-ow // tiles)  # as many tiles as full ones need, evened out: 13 -> 7 + 6, not 12 + 1
    xo, xi = sch.split(x, [None, tile])
    if params.conv_taps_outside:
        reduction = (rr, rs, rc)
    elif params.conv_rows_innermost and tile == params.conv_tile and loop_extent(sch, rs) > 1:
        reduction = (rc, rs, rr)  # a kernel column's rows read distinct inputs: no broadcast to share
    else:
        reduction = (rc, rr, rs)
    ko, kt = sch.split(ko, [None, blocks])  # kt: the channel blocks of one register tile
    chunk = conv_channel_chunk(
        params, loop_extent(sch, rc), loop_extent(sch, rr) * loop_extent(sch, rs), blocks * loop_extent(sch, ki)
    )
    if chunk and not params.conv_taps_outside:
        # the row's accumulators live in a local buffer across the chunks; within a chunk LLVM keeps
        # a tile's in registers, and the chunk's weights stay in L1 for all the row's tiles
        rco, rci = sch.split(rc, [None, chunk])
        reduction = (rco, rci, rr, rs)
        sch.reorder(n, ko, y, rco, xo, rci, rr, rs, kt, xi, ki)
        acc = sch.cache_write(blk, 0, "local")
        sch.reverse_compute_at(acc, y)
    else:
        sch.reorder(n, ko, y, xo, *reduction, kt, xi, ki)
        acc = sch.cache_write(blk, 0, "local")
        sch.reverse_compute_at(acc, xo)
    sch.unroll(kt)
    outer = sch.fuse(n, ko, y)
    flat = int(sch.get(blk).annotations.get(CONV_FLAT_KEY, 0))
    if not flat:
        sch.reverse_compute_at(out, outer)
    sch.parallel(outer)
    sch.vectorize(ki)
    sch.unroll(xi)
    sch.decompose_reduction(blk, reduction[0])
    acc_loops = sch.get_loops(acc)
    sch.vectorize(acc_loops[-1])
    if flat:
        schedule_spatial(sch, out, lanes)
    else:
        vectorize_rows(sch, out, lanes)
    if not _pad_rows_where_read(sch, outer, stride):
        schedule_stages_if_present(sch, ("conv_pad",), lanes)
    schedule_stages_if_present(sch, ("conv_wpack", "conv_flat", "conv_subsample"), lanes)
    init = sch.get_sblock("conv_blk_init")
    sch.vectorize(sch.get_loops(init)[-1])
    rows = sch.get(blk).annotations.get(CONV_ROWS_KEY)
    if rows is not None and loop_extent(sch, rr) > 1:
        _skip_padded_kernel_rows(sch, rr, outer, out_rows, [int(v) for v in rows])


def _skip_padded_kernel_rows(sch, rr, task, out_rows: int, rows: list[int]) -> None:
    """Run the kernel-row loop ``rr`` of each output row only over the rows inside the input: a
    border row's taps in the padding multiply zeros (11% of a 3x3 conv's work on a 6-row plane:
    the CRNN's 512-channel convs at 6 x 80, which onnxruntime skips). The loop's bounds become
    expressions of the output row, ``task`` % ``out_rows`` (the task loop is image x channel blocks x
    rows), which no schedule primitive sets: the loop is replaced in the schedule's state, last.
    A weight of inf or NaN then no longer meets the padding's zeros (as in onnxruntime)."""
    from tvm import tirx

    pad_top, height, stride = rows
    loop = sch.get(rr)
    y = tirx.floormod(sch.get(task).loop_var, out_rows)
    first = tirx.max(0, pad_top - y * stride)
    end = tirx.min(loop.extent, height + pad_top - y * stride)
    new = tirx.For(loop.loop_var, first, end - first, loop.kind, loop.body, loop.thread_binding, loop.annotations)
    sch.state.replace(sch.get_sref(rr), new, {})


def schedule_conv_transpose(sch, params: ScheduleParams) -> None:
    """The stride-decomposed ConvTranspose (``lower/nn/conv_transpose.py``): its ``conv_blk`` over the
    phase grid is tiled as the packed conv's, with the phase-grid row outermost so that one parallel
    task computes every phase channel of a row; the depth-to-space write-back (with any epilogue) of
    the ``s`` output rows that row makes then follows in the same task, while the row is in cache."""
    lanes = params.lanes
    inline_injective(sch)
    blk = sch.get_sblock("conv_blk")
    out = output_block(sch)
    n, jo, y, x, ji, rc, ru, rv = sch.get_loops(blk)
    xo, xi = sch.split(x, [None, divisor_at_most(loop_extent(sch, x), 8, 1)])
    sch.reorder(n, y, jo, xo, rc, ru, rv, xi, ji)
    acc = sch.cache_write(blk, 0, "local")
    sch.reverse_compute_at(acc, xo)
    outer = sch.fuse(n, y)
    sch.parallel(outer)
    sch.vectorize(ji)
    sch.unroll(xi)
    sch.decompose_reduction(blk, rc)
    sch.vectorize(sch.get_loops(acc)[-1])
    sch.vectorize(sch.get_loops(sch.get_sblock("conv_blk_init"))[-1])
    # TVM places the write-back of grid row ``a`` at output rows [a*s, a*s + s): right only when
    # the lowering aligned the rows (it marks the block so); else (or when TVM cannot match the
    # pattern, which leaves the schedule as it was) the write-back is a pass of its own
    try:
        if not int(sch.get(out).annotations.get(PHASE_ROWS_ALIGNED, 0)):
            raise ValueError("phase-grid rows not aligned with output rows")
        sch.reverse_compute_at(out, outer)
        vectorize_rows(sch, out, lanes)
    except Exception:
        schedule_spatial(sch, out, lanes)
    schedule_stages_if_present(sch, ("conv_pad", "conv_wpack"), lanes)


# a loop part of more pieces than this (4096 float32 columns on AVX-512) is one split loop where it starts
# at 0, else left to LLVM's vectoriser (each piece is code of its own)
VECTOR_PIECES_MAX = 64


def vectorize_in_pieces(sch, loop, piece: int, first: int = 0, end: int | None = None) -> None:
    """Vectorise the part [``first``, ``end``) of ``loop`` (starting at 0; by default all of it) as
    vectors of ``piece`` elements and one shorter one for the rest, each a loop part of its own
    (``loop_partition``; the parts before ``first`` and from ``end`` stay scalar loops): a vector
    longer than a register, which LLVM splits into whole registers and one partial. (``split``
    leaves a bounds test, which scalarises the vector, where its factor does not divide the extent;
    TVM 0.27's ``loop_partition`` of a part not starting at 0 lost its last element.) A part of more
    than ``VECTOR_PIECES_MAX`` pieces is one split loop of whole pieces and one shorter vector where
    it starts at 0, else it stays as it is."""
    extent = loop_extent(sch, loop)
    end = extent if end is None else min(end, extent)
    if end <= first:
        return
    if -(-(end - first) // piece) > VECTOR_PIECES_MAX:
        if first:  # a long part after a head: left to LLVM
            return
        whole = end // piece * piece  # a loop of whole vectors (split), the rest one vector, then any tail
        cuts = sorted({whole, end} - {extent})
        parts = sch.loop_partition(loop, [b - a for a, b in zip([0, *cuts], cuts)] + [None]) if cuts else [loop]
        sch.vectorize(sch.split(parts[0], [None, piece])[1])
        if end > whole:
            sch.vectorize(parts[1])
        return
    starts = [*range(first, end, piece), end]
    cuts = sorted({0, *starts, extent} - {0, extent})
    parts = sch.loop_partition(loop, [b - a for a, b in zip([0, *cuts], cuts)] + [None]) if cuts else [loop]
    bounds = [0, *cuts]
    for start in starts[:-1]:
        sch.vectorize(parts[bounds.index(start)])


def schedule_pool(sch, params: ScheduleParams) -> None:
    """2-D MaxPool, and float32 AveragePool as sums (``lower/nn/pool.py``): parallel over (image,
    channel); per output row, the window rows' maximum (sum) at every column (``pool_rows``), then
    the column windows' maximum over that row (``max_pool``; ``avg_pool``).

    A MaxPool whose windows are expressions (``POOL_INTERIOR_KEY`` on ``max_pool``): ``pool_rows``
    covers the input's columns and is vectorised in pieces (``vectorize_in_pieces``), as are
    ``max_pool``'s columns whose windows miss the padding; its strided reads become wide loads
    and shuffles. SqueezeNet's three pools: 0.244 -> 0.139 ms (onnxruntime 0.136; 1 thread).

    Otherwise (large windows, AveragePool) the row is padded, its loop cut where the padding starts
    and ends so that LLVM vectorises the input's part with no bounds test, and the window loops stay
    inside the column loops: LLVM unrolls them and keeps each maximum in a register to one store.
    With the window rows outside the columns, each partial maximum went back to ``pool_rows`` as a
    select over the value loaded from there, which LLVM's x86 backend makes a masked store
    (``vmaskmovps``, microcoded on a Zen 3: a 3x3 stride-2 pool of 64 x 111 x 111 took 0.97 ms
    against 0.27)."""
    inline_injective(sch)
    pool = output_block(sch)
    if block_name(sch, pool) not in ("max_pool", "avg_pool"):
        raise ValueError("a fused epilogue after the pool")
    rows = sch.get_sblock("pool_rows")
    n, c, y = sch.get_loops(pool)[:3]
    outer = sch.fuse(n, c)
    sch.compute_at(rows, y)
    sch.parallel(outer)
    interior = sch.get(pool).annotations.get(POOL_INTERIOR_KEY)
    if interior is not None:  # the windows as expressions: ``pool_rows`` over the input's columns
        vectorize_in_pieces(sch, sch.get_loops(rows)[-1], 4 * params.lanes)
        first, end = (int(v) for v in interior)
        vectorize_in_pieces(sch, sch.get_loops(pool)[-1], 4 * params.lanes, first, end)
        return
    j = sch.get_loops(rows)[-2]
    # the padded row's parts: padding, the input's columns (unguarded loads), padding; cut before
    # the reductions are split (TVM 0.27's loop_partition crashed on a uint8 pool's column loop
    # with the init block beside the window loop), then each part's reduction split
    partition_at(sch, j, select_bounds(sch, rows, loop_extent(sch, j), axis=3))
    for block in reductions_under(sch, y):
        sch.decompose_reduction(block, sch.get_loops(block)[-1])


def schedule_global_pool(sch, params: ScheduleParams) -> None:
    """GlobalAveragePool (``lower/nn/pool.py``): parallel over (image, channel); per channel, the
    plane's whole vectors summed into one vector accumulator (``gap_lanes``); then, a small pass
    of its own, each channel's lanes and partial vector's values (``gap_sum``) and the division
    (nested in the channel loop, TVM would shrink ``gap_sum``'s reduction to the lanes alone)."""
    inline_injective(sch)
    part = sch.get_sblock("gap_lanes")
    n, c, lane, rp = sch.get_loops(part)
    sch.reorder(n, c, rp, lane)
    channel = sch.fuse(n, c)
    if loop_extent(sch, channel) * loop_extent(sch, rp) * loop_extent(sch, lane) >= PARALLEL_MIN_WORK:
        sch.parallel(channel)
    sch.vectorize(lane)
    sch.decompose_reduction(part, rp)
    sch.vectorize(sch.get_loops(sch.get_sblock("gap_lanes_init"))[-1])


SCHEDULES = {
    "softmax": schedule_softmax,
    "layer_norm": schedule_layer_norm,
    "conv": schedule_conv,
    "pool": schedule_pool,
    "conv_transpose": schedule_conv_transpose,
    "matmul": schedule_matmul,
    "global_pool": schedule_global_pool,
}


def apply_schedule(mod, kind: str, params: "ScheduleParams | int"):
    """Schedule ``mod`` (an IRModule with one ``main``) for its anchor ``kind``; falls back to generic.

    ``params`` is the target's ``ScheduleParams`` (a bare lane count means x86's tiles). With
    ``EMBER_DEBUG_SCHEDULE`` set, the exception that sent a kernel to the generic schedule is printed."""
    params = ScheduleParams.x86(params) if isinstance(params, int) else params
    lanes = params.lanes
    if kind in SCHEDULES:
        sch = s_tir.Schedule(mod)
        try:
            SCHEDULES[kind](sch, params)
            return sch.mod, kind
        except Exception:
            if os.environ.get("EMBER_DEBUG_SCHEDULE"):
                traceback.print_exc()
    sch = s_tir.Schedule(mod)
    try:
        schedule_generic(sch, lanes)
        return sch.mod, "generic"
    except Exception:
        return mod, "none"
