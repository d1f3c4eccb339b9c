"""Register-tiled dot-product kernels shared by the int8 and bfloat16 paths: a conv and a matmul
whose innermost ``16 x depth`` product is one x86 dot instruction (``dot_instructions``:
``vpdpbusd`` for QLinearConv / MatMulInteger in ``quantization_gemm.py``, ``vdpbf16ps`` for the
bfloat16 Conv / MatMul of ``nn/conv_bf16.py`` and ``matmul_bf16.py``).

    conv     input repacked per call to [N, C/depth, H + pads, W + pads, depth], weight prepacked to
             [K/16, C/depth (+ extra slots), R, S, 16 * depth], accumulation [N, K/16, OH, OW, 16]
    rows     (a 1x1 conv whose lanes run along the output rows) input repacked per call to
             [N, C/depth, OH / r, P * depth] (``depth`` channels per pixel; bands of r rows as one
             row of P pixels, r x OW rounded up to whole tiles), weight prepacked to
             [K, C/depth (+ extra slots), 1, 1, depth], accumulation [N, K, OH / r, P]: the
             write-back reads whole rows, as NCHW stores them
    matmul   weight prepacked to 32-bit words of ``depth`` elements [N/16, K/depth (+1), 16],
             accumulation [..., M, N/16, 16]

Each path builds its accumulation, names its blocks, and writes its own epilogue
(requantization, bfloat16 rounding); the schedules here tile the accumulation in registers and
rebuild the product onto the instruction where the target has it.
"""

from __future__ import annotations

from tvm import te, tirx

from ..dot_instructions import DotInstruction, rebuild_dot, target_has
from ..schedule_util import (
    block_name,
    child_blocks,
    divisor_at_most,
    inline_injective,
    loop_extent,
    output_block,
    partition_at,
    select_bounds,
    vectorize_rows,
    vectorize_whole_vectors,
)
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


def rows_layout_fits(kernel, strides, dilations, pads, out_w: int, lanes: int = 16) -> bool:
    """Whether a packed dot-product conv takes the row kernel (``dot_rows_accumulation``): a 1x1
    unpadded conv at any stride (the repack samples the strided pixels) whose output row rounded up
    to ``lanes`` wastes at most an eighth of the products (OW 14-16, 28-32, 56-64, ...; a 7-wide row
    would waste over half).  Measured against the channel-lane kernel, one QLinearConv at a time (1
    thread, minimum of 40 runs): 256 -> 64 at 56 x 56 0.65 -> 0.32 ms, 64 -> 256 at 56 x 56 0.74 ->
    0.42, 512 -> 128 at 28 x 28 0.45 -> 0.31; the 3x3 convs were no faster (64 at 56 x 56 0.67 ->
    0.63, 128 at 28 x 28 0.60 -> 0.60, 256 at 14 x 14 0.56 -> 0.60), so they keep that kernel."""
    pointwise = list(kernel) == [1, 1] and not any(pads)
    rounded = -(-out_w // lanes) * lanes
    return pointwise and 8 * (rounded - out_w) <= rounded


def rows_layout_from_attrs(attrs, x_shape, w_shape, lanes: int = 16) -> bool:
    """``rows_layout_fits`` from a conv's attributes and operand shapes alone: what a weight packer
    sees (no output shape), so that it lays the weight out for the kernel that will read it."""
    strides, dilations = list(attrs.get("strides") or [1, 1]), list(attrs.get("dilations") or [1, 1])
    kernel, width = [int(d) for d in w_shape[2:]], int(x_shape[3])
    auto_pad = attrs.get("auto_pad", "NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out_w = -(-width // strides[1])
        pads = [0] if kernel == [1, 1] else [1]  # only a wider kernel needs SAME padding
    else:
        pads = [0] * 4 if auto_pad == "VALID" else list(attrs.get("pads") or [0] * 4)
        out_w = (width + pads[1] + pads[3] - (kernel[1] - 1) * dilations[1] - 1) // strides[1] + 1
    return rows_layout_fits(kernel, strides, dilations, pads, out_w, lanes)


def rows_packed_input(x, dot: DotInstruction, strides, out_hw, element, fill, name: str, band=None):
    """The row kernel's input ``[N, C/depth, OH / r, P * depth]``, repacked per call at the output grid
    (``dot_rows_accumulation``): a band of ``r`` output rows as one row of ``P`` pixels (``band``,
    from ``rows_band``; by default one row rounded up to whole vectors)."""
    n, c = int(x.shape[0]), int(x.shape[1])
    blocks, depth = -(-c // dot.depth), dot.depth
    oh, ow = out_hw
    r, pixels = band[:2] if band else (1, -(-ow // dot.lanes) * dot.lanes)

    def packed_input(b, cb, yb, j):
        ch, p = cb * depth + j % depth, j // depth
        y, x0 = (yb, p) if r == 1 else (yb * r + p // ow, p % ow)
        inside = tirx.all(ch < c, x0 < ow) if r == 1 else tirx.all(ch < c, p < r * ow)
        return read_if(inside, element(x(b, ch, y * strides[0], x0 * strides[1])), fill)

    return te.compute((n, blocks, oh // r, pixels * depth), packed_input, name=name, attrs=MATERIALISED)


# annotation of the row kernel's accumulation: its band (``rows_band``: rows, pixels, vectors, channels), OW and
# the conv's largest stride
ROWS_BAND_KEY = "ember.rows_band"
# the most pixels in a band of the row kernel (its packed input, C x pixels bytes, stays in L2)
ROWS_BAND_MAX_PIXELS = 512


def rows_band(out_hw, channels: int, lanes: int, accumulators: int, min_accumulators: int = 16):
    """(rows r, pixels P, vectors v, channels m) of the row kernel's band and register tile: ``r``
    output rows (a divisor of OH) computed as one flat row of ``P`` pixels (r x OW rounded up to
    whole tiles of ``v`` vectors, at most ``ROWS_BAND_MAX_PIXELS``; NCHW keeps the band's rows
    contiguous, so the write-back still stores whole vectors), in tiles of ``m`` output channels (a
    divisor of ``channels``) x ``v`` pixel vectors. The band that wastes the fewest lanes wins, then
    the tile with the most accumulators (at least ``min_accumulators`` where one has), the fewest
    rows, the most vectors (fewer broadcasts per product). One row at a time, OW 56 and 28 rounded
    up to 64 and 32 computed an eighth more than the plane; 2 rows of 56 are 7 whole vectors, 4 of
    28 too (on a Zen 4, 1 thread: 512 -> 128 at 28 x 28 0.298 -> 0.250 ms, 64 -> 256 at 56 x 56
    0.373 -> 0.335; 2 rows of 56 in 16 channels x 1 vector beat 8 rows in 4 x 4 by 7%). A 14 x 14
    plane is one band of 13 vectors, 208 pixels for 196 (one row at a time: 224; 1024 -> 256 at
    14 x 14 0.300 -> 0.259 ms; the write-back iterates the band flat, ``schedule_dot_rows``); a
    padded band is a whole plane (for a band of part of one, TVM did not simplify the write-back's
    flattened index and placed it wrongly). For a band of one row, ``v`` and ``m`` only rank it:
    ``schedule_dot_rows`` tiles such rows as before, the row's vectors and the rows below it."""
    oh, ow = out_hw
    candidates = []
    for r in [d for d in range(1, oh + 1) if oh % d == 0]:
        for v in (4, 3, 2, 1):
            step = v * lanes
            pixels = -(-(r * ow) // step) * step
            if r > 1 and (pixels > ROWS_BAND_MAX_PIXELS or (pixels != r * ow and r != oh)):
                continue  # padded, a band is a whole plane: see the write-back in ``schedule_dot_rows``
            m = divisor_at_most(channels, max(1, accumulators // v), 1)
            waste = round(100 * (pixels - r * ow) / pixels)  # percent: a 1% difference does not count
            candidates.append(((waste, v * m < min_accumulators, -v * m, r, -v), (r, pixels, v, m)))
    return min(candidates)[1]


def rows_accumulators(params, dot: DotInstruction) -> int:
    """The row kernel's register budget: the float32 conv's tile counted in the instruction's lanes
    (AVX-512: 2 x 12 = 24; AVX2's ``vpmaddwd``: 2 x 6 = 12); 24 without a CPU schedule."""
    if params is None:
        return 24
    return max(1, params.conv_blocks * params.conv_block // dot.lanes) * params.conv_tile


def rows_value(acc, b, m, y, xx):
    """Output ``(b, m, y, xx)`` of a row kernel's accumulation (``dot_rows_accumulation``)."""
    band = acc.op.attrs.get(ROWS_BAND_KEY) if isinstance(acc.op, te.ComputeOp) else None
    r = int(band[0]) if band is not None else 1
    if r == 1:
        return acc[b, m, y, xx]
    ow = int(band[4])
    return acc[b, m, y // r, y % r * ow + xx]


def dot_rows_accumulation(x, wp, dot: DotInstruction, window, out_hw, element, fill, widen, names, accumulators):
    """The accumulation ``[N, K, OH / r, P]`` of a packed dot-product 1x1 conv whose vector lanes are
    ``dot.lanes`` consecutive output pixels (``rows_layout_fits``), a band of ``r`` output rows as one
    row of ``P`` (``rows_band``, for a register tile of at most ``accumulators``; ``rows_value``
    reads an output): the input repacked per call at the output grid (the stride applied there) to
    ``[N, C/depth, OH / r, P * depth]`` (``names[1]``; a pixel's ``depth`` channels side by side, so
    ``lanes`` pixels are one ``lanes * depth`` operand; ``fill`` past the band and past C), summed
    against the weight ``[K, C/depth (+ extra slots), 1, 1, depth]`` broadcast per output channel.
    ``window`` is (strides, dilations, pads), the pads zero."""
    n, depth, blocks = int(x.shape[0]), dot.depth, -(-int(x.shape[1]) // dot.depth)
    k, (oh, ow) = int(wp.shape[0]), out_hw
    band = rows_band(out_hw, k, dot.lanes, accumulators)
    r, pixels = band[:2]
    data = rows_packed_input(x, dot, window[0], out_hw, element, fill, names[1], band)
    rco, rci = te.reduce_axis((0, blocks), "rco"), te.reduce_axis((0, depth), "rci")
    return te.compute(
        (n, k, oh // r, pixels),
        lambda b, m, y, xx: te.sum(
            widen(data[b, rco, y, xx * depth + rci]) * widen(wp[m, rco, 0, 0, rci]), axis=[rco, rci]
        ),
        name=names[0],
        attrs={ROWS_BAND_KEY: [*band, ow, max(int(v) for v in window[0])]},
    )


def dot_accumulation(
    rows: bool, x, wp, dot: DotInstruction, window, out_hw, element, fill, widen, prefix: str, accumulators: int = 24
):
    """The row kernel's accumulation (``rows``; a register tile of at most ``accumulators``) or the
    channel-lane one, its blocks named ``<prefix>_rows`` / ``<prefix>_rows_pad`` or ``<prefix>_blk``
    / ``<prefix>_pad``."""
    if rows:
        names = (f"{prefix}_rows", f"{prefix}_rows_pad")
        return dot_rows_accumulation(x, wp, dot, window, out_hw, element, fill, widen, names, accumulators)
    return dot_conv_accumulation(x, wp, dot, window, out_hw, element, fill, widen, (f"{prefix}_blk", f"{prefix}_pad"))


# tiles of output channels per band: a parallel task runs one band over a band of rows.  One task
# per tile (band 1) cost 0.70 against 0.41 ms for 64 -> 256 at 56 x 56 (band 16; 4: 0.47, 64: 0.41);
# a band of 16 also beat 4 on the whole int8 ResNet-50 (29.3 against 32.9 ms, 1 thread), where the
# band's output planes are write streams
BAND_TILES = 16


# parallel tasks the row kernel keeps at least, where its bands and channel tiles allow
ROWS_MIN_TASKS = 16


def schedule_dot_rows(sch, params, dot: DotInstruction, names: tuple[str, str]) -> None:
    """The row kernel (``dot_rows_accumulation``): a register tile of output channels x pixel vectors
    of a band (``rows_band``); per step of ``depth`` input channels, the tile's pixel vectors are
    loaded once and each channel's weights broadcast once.  A parallel task runs a band of output
    rows for up to ``BAND_TILES`` tiles of channels (fewer where that leaves under
    ``ROWS_MIN_TASKS`` tasks), each tile over the whole band in turn (the band's packed input stays
    in cache, a tile's weights in L1; bands of one row take a tile of the row's vectors and the rows
    below it, up to 4 vectors, and run over a band of rows); the write-back, with any fused
    epilogue, per tile of channels over the band's rows, in whole vectors and one shorter one
    (``vectorize_whole_vectors``: the int8 ResNet-50, whose 56-pixel rows were one 56-lane vector,
    took 0.975 of its time at 1 and 2 threads)."""
    lanes = params.lanes
    inline_injective(sch)
    blk = sch.get_sblock(names[0])
    out = output_block(sch)
    band_rows, _, vectors, tile_m, ow, stride = (int(v) for v in sch.get(blk).annotations[ROWS_BAND_KEY])
    n, m, y, x, rco, rci = sch.get_loops(blk)
    xv, xl = sch.split(x, [None, dot.lanes])
    if band_rows == 1:  # one row per band: a tile of the row's vectors and the rows below it, up to 4
        vectors = loop_extent(sch, xv)
        rows = divisor_at_most(loop_extent(sch, y), max(1, 4 // vectors), 1)
        yo, yt = sch.split(y, [None, rows])
        per_tile = max(1, rows_accumulators(params, dot) // (rows * vectors))
        tile_m = divisor_at_most(loop_extent(sch, m), per_tile, 1)
        mb, mo, mt = sch.split(m, [None, max(1, divisor_at_most(loop_extent(sch, m) // tile_m, BAND_TILES, 1)), tile_m])
        sch.reorder(n, mb, yo, mo, rco, mt, yt, xv, xl, rci)
        outer, unrolled = (n, mb, yo), (mt, yt, xv)
    else:  # a band of rows as one: tiles of ``vectors`` along it, each over the channels in turn
        xo, xt = sch.split(xv, [None, vectors])
        tiles = loop_extent(sch, m) // tile_m
        bands = loop_extent(sch, n) * loop_extent(sch, y)
        band_tiles = divisor_at_most(tiles, max(1, min(BAND_TILES, tiles * bands // ROWS_MIN_TASKS)), 1)
        mb, mo, mt = sch.split(m, [None, band_tiles, tile_m])
        sch.reorder(n, y, mb, mo, xo, rco, mt, xt, xl, rci)  # a band's tasks in a row: one core reads its input
        outer, unrolled = (n, y, mb), (mt, xt)
    sch.set_scope(blk, 0, "local")  # the write-back reads the tile's accumulators where they are
    if band_rows > 1:  # the write-back over each band flat, as its accumulator: the band's padded end
        # left TVM's region inference through (y // r, y % r * OW + x) short of columns (14 x 14
        # as one band of 208: 12 of each row's 14); flat, a whole plane's index simplifies to the
        # band's pixel (a band of part of a plane's, b * r + p // OW, does not: ``rows_band``)
        sch.transform_block_layout(out, lambda b, k, y, x: (b, k, y // band_rows, y % band_rows * ow + x))
    sch.reverse_compute_at(out, mo)
    outer = sch.fuse(*outer)
    sch.parallel(outer)
    for loop in unrolled:
        sch.unroll(loop)
    init = sch.decompose_reduction(blk, rco)
    sch.vectorize(sch.get_loops(init)[-1])
    if lanes == dot.lanes and target_has(dot.feature):
        rebuild_dot(sch, blk, dot, broadcast_weight=True)
    vectorize_whole_vectors(sch, sch.get_loops(out)[-1], lanes)
    row = ow if band_rows > 1 and stride > 1 else None  # at stride 1 a band's input rows are one run
    schedule_rows_repack(sch, sch.get_sblock(names[1]), dot.depth, row)


def schedule_rows_repack(sch, block, depth: int, row: int | None = None) -> None:
    """The row kernel's repack ``[N, C/depth, OH / r, P * depth]``: one parallel task per packed row;
    each row interleaves ``depth`` input rows, as (pixel, channel) loops with the channel unrolled,
    which LLVM vectorises as contiguous loads and shuffles (a vector over the packed row read its
    pixels as a gather: 256 -> 64 at 56 x 56 took 0.62 ms, a third of it in the repack, against
    0.37), cut where the row's padding starts.  A strided conv's band of several output rows of
    ``row`` pixels runs its pixels as (row, pixel of the row) loops: with the band's pixel flat, its
    input row and column (``p // OW``, ``p % OW``) were computed per lane and its bytes loaded one
    by one (``vpinsrb``; ResNet-50's int8 256 -> 512 projection at 56 x 56, stride 2, with its
    residual: 0.60 -> 0.55 ms).  At stride 1 a band's input rows are one contiguous run, which the
    flat loop reads as such (split there too, the int8 ResNet-50 took 0.992 of its time where this
    takes 0.984)."""
    b, cb, yy, j = sch.get_loops(block)
    sch.parallel(sch.fuse(b, cb, yy))
    bounds = select_bounds(sch, block, loop_extent(sch, j))
    pixel, channel = sch.split(j, [None, depth])
    sch.unroll(channel)
    if not all(bound % depth == 0 for bound in bounds):
        return
    parts = partition_at(sch, pixel, [bound // depth for bound in bounds])
    if row and loop_extent(sch, parts[0]) % row == 0:  # the band's rows, before any padding
        sch.split(parts[0], [None, row])


def dot_conv_tile(channel_blocks: int, width: int, tile: tuple[int, int]) -> tuple[int, int]:
    """(channel blocks, pixels of a row) of the packed conv's register tile: at most ``tile[0]``
    blocks that divide ``channel_blocks`` and a divisor of the row ``width``, the most accumulators
    within ``tile[0] * tile[1]``, the more blocks on a tie (fewer broadcasts per product)."""
    budget = tile[0] * tile[1]
    shapes = [(b, divisor_at_most(width, budget // b, 1)) for b in range(1, tile[0] + 1) if channel_blocks % b == 0]
    return max(shapes, key=lambda shape: (shape[0] * shape[1], shape[0]))


def schedule_dot_conv(sch, params, dot: DotInstruction, names: tuple[str, str], tile: tuple[int, int]) -> None:
    """The packed dot-product conv (``names``: its accumulation and its packed input): a register tile
    of ``tile`` = (channel blocks of 16, output pixels) accumulators, the ``16 x depth`` product
    rebuilt onto ``dot`` where the target has it; the write-back (with any fused epilogue) per
    output row, while the accumulators are still in cache.  A tile of 4 to ``lanes`` pixels is
    stored to the row's accumulator transposed, channel-major (``transpose_tile_store``), so the
    write-back reads whole vectors of a channel's pixels (int8 ResNet-50: its stem conv 1.03 -> 0.94
    ms, the 3x3 convs at 56 x 56 0.574 -> 0.553; 0.979 / 0.986 of the model's time at 1 / 2 threads).
    Rows shorter than a vector (14 x 14, 7 x 7) are a task's whole plane, the accumulator laid out
    ``[.., lanes, OH, OW]`` and each channel's plane written back as one flat run (49 pixels: 3
    vectors and one lane, where a row was a 7-lane vector): 512 -> 2048 at 7 x 7 0.304 -> 0.276 ms,
    its residual form 0.359 -> 0.314; 0.984 / 0.992 of the int8 model's time)."""
    lanes = params.lanes  # the target's ScheduleParams
    inline_injective(sch)
    blk = sch.get_sblock(names[0])
    out = output_block(sch)
    n, ko, y, x, ki, rco, rr, rs, rci = sch.get_loops(blk)
    blocks, pixels = dot_conv_tile(loop_extent(sch, ko), loop_extent(sch, x), tile)
    transposed = lanes == dot.lanes and 4 <= pixels <= dot.lanes  # tiles of 7 or 14 pixels padded to 8 or 16
    plane = transposed and loop_extent(sch, x) < lanes  # rows shorter than a vector: written back a plane at a time
    xo, xi = sch.split(x, [None, pixels])
    ko, kt = sch.split(ko, [None, blocks])
    sch.reorder(n, ko, y, xo, rco, rr, rs, kt, xi, ki, rci)
    local = sch.cache_write(blk, 0, "local")
    sch.reverse_compute_at(local, xo)
    outer = sch.fuse(n, ko) if plane else sch.fuse(n, ko, y)
    sch.reverse_compute_at(out, outer)  # per output row (plane): the pixel loop is long enough for vectors
    sch.parallel(outer)
    sch.unroll(kt)
    sch.unroll(xi)
    init = sch.decompose_reduction(blk, rco)
    sch.vectorize(sch.get_loops(init)[-1])
    if transposed:  # the accumulator channel-major: the write-back reads whole vectors of pixels
        if plane:
            sch.transform_layout(local, ("write", 0), lambda b, k, yy, xx, c: (b, k, c, yy, xx))
        else:
            sch.transform_layout(local, ("write", 0), lambda b, k, yy, xx, c: (b, k, yy, c, xx))
        transpose_tile_store(sch, local, dot.lanes, plane)
    else:
        sch.vectorize(sch.get_loops(local)[-1])
    if lanes == dot.lanes and target_has(dot.feature):
        rebuild_dot(sch, blk, dot)
    if plane:  # a channel's rows as one flat run of pixels
        row, column = sch.get_loops(out)[-2:]
        vectorize_whole_vectors(sch, sch.fuse(row, column), lanes)
    elif transposed:
        vectorize_whole_vectors(sch, sch.get_loops(out)[-1], lanes)
    else:
        vectorize_rows(sch, out, lanes)
    schedule_conv_repack(sch, sch.get_sblock(names[1]))


def zip_transpose(vectors: list, lanes: int):
    """A tile of ``len(vectors)`` vectors of ``lanes`` (pixel p's channels) transposed by rounds of
    two-vector interleaves (``Shuffle``: vector i with vector i + half, the low halves and the high
    halves), as ``(lets, runs)``: the interleaves to bind in order, ``(var, value)``, and for each
    channel a ``(var, first lane)`` whose next ``len(vectors)`` lanes are that channel's pixels.
    The tile is padded to a power of two with copies of its last vector: log2 of it rounds of that
    many shuffles (an 8 x 16 tile: 24, which LLVM emits as ``vpermt2d`` and ``vpunpck*``)."""
    pixels, half, dtype = len(vectors), lanes // 2, f"{vectors[0].source.dtype}x{lanes}"
    count = 1 << (pixels - 1).bit_length()
    current = list(vectors) + [vectors[-1]] * (count - pixels)
    labels = [[(p, c) for c in range(lanes)] for p in range(count)]
    lets = []
    for round_ in range(count.bit_length() - 1):
        h, nxt, nxt_labels = count // 2, [], []
        for i in range(h):
            for part in (range(half), range(half, lanes)):
                order = [j for k in part for j in (k, lanes + k)]
                var = tirx.Var(f"zip{round_}_{len(nxt)}", dtype)
                lets.append((var, tirx.Shuffle([current[i], current[i + h]], [tirx.const(j, "int32") for j in order])))
                nxt.append(var)
                pair = labels[i] + labels[i + h]
                nxt_labels.append([pair[j] for j in order])
        current, labels = nxt, nxt_labels
    runs = {}
    for var, lab in zip(current, labels):
        for start in range(0, lanes, count):
            run = lab[start : start + pixels]
            if run != [(p, run[0][1]) for p in range(pixels)]:
                raise AssertionError(f"the interleaves did not transpose the tile: {run}")
            runs[run[0][1]] = (var, start)
    return lets, [runs[c] for c in range(lanes)]


def transpose_tile_store(sch, block, lanes: int, plane: bool = False) -> None:
    """Rebuild the packed conv's tile store (``block``: a register tile's ``[.., pixels, lanes]``
    accumulators copied to the row's accumulator, laid out ``[.., lanes, OW]``) as ``pixels`` vector
    loads, their transpose (``zip_transpose``) and ``lanes`` stores of ``pixels`` consecutive pixels.
    The write-back then reads each channel's row as whole vectors, where it gathered one lane of every
    pixel's vector (``vmovd``/``vpinsrd``: 8-10% of a 64-channel 3x3 int8 conv at 56 x 56, a quarter
    of the stem's).  The block's two inner loops are replaced by hand, as ``rebuild_dot`` does: TVM
    has no schedule primitive for a transpose."""
    from tvm import ir, s_tir
    from tvm.sym import Analyzer

    pixel_loop, lane_loop = sch.get_loops(block)[-2:]
    pixels = int(sch.get(pixel_loop).extent)
    if int(sch.get(lane_loop).extent) != lanes:
        raise ValueError(f"the tile store's inner loop is not {lanes} lanes")
    realize = sch.get(lane_loop).body
    old = realize.block
    src, dst = old.body.value.source, old.body.buffer
    b, k, y, x, c = (iv.var for iv in old.iter_vars)
    loads = [tirx.BufferLoad(src, [b, k, y, x + p, tirx.Ramp(c, 1, lanes)]) for p in range(pixels)]
    lets, runs = zip_transpose(loads, lanes)
    stores = []
    for channel, (var, start) in enumerate(runs):
        value = var if pixels == lanes else tirx.Shuffle([var], [tirx.const(start + p, "int32") for p in range(pixels)])
        at = [b, k, c + channel, y] if plane else [b, k, y, c + channel]  # (``plane``: [.., lanes, OH, OW])
        stores.append(tirx.BufferStore(dst, value, [*at, tirx.Ramp(x, 1, pixels)]))
    body = tirx.SeqStmt([*(tirx.Bind(var, value) for var, value in lets), *stores])  # TVM 0.27: Bind, no LetStmt

    def region(buffer, indices, extents):
        return tirx.BufferRegion(buffer, [ir.Range.from_min_extent(i, e) for i, e in zip(indices, extents)])

    written = ([b, k, c, y, x], [1, 1, lanes, 1, pixels]) if plane else ([b, k, y, c, x], [1, 1, 1, lanes, pixels])
    new = s_tir.SBlock(
        old.iter_vars,
        [region(src, [b, k, y, x, c], [1, 1, 1, pixels, lanes])],
        [region(dst, *written)],
        old.name_hint,
        body,
        annotations=old.annotations,
    )
    zeroed = Analyzer()  # the two loops' variables are 0 in the bindings
    for loop in (pixel_loop, lane_loop):
        var = sch.get(loop).loop_var
        zeroed.bind(var, tirx.const(0, str(var.ty)))
    values = [zeroed.simplify(v) for v in realize.iter_values]
    sch.state.replace(sch.get_sref(pixel_loop), s_tir.SBlockRealize(values, realize.predicate, new), {old: new})


def schedule_conv_repack(sch, block) -> None:
    """The packed conv's input ``[N, C/depth, H + pads, W + pads, depth]``: one parallel task per
    padded row, (pixel, channel) loops with the channel unrolled, which LLVM vectorises as
    contiguous loads and shuffles, the pixel loop cut where the padding starts and ends. An
    unpadded plane of rows shorter than ``REPACK_PLANE_BELOW`` (a 1x1 conv at 7 x 7) is one task
    per channel block, its rows one loop: a 7-pixel row per task cost 12% of the int8 ResNet-50's
    2048 -> 512 conv at 7 x 7 (0.311 -> 0.275 ms, Zen 4, 1 thread)."""
    b, cb, yy, xx, ci = sch.get_loops(block)
    bounds = select_bounds(sch, block, loop_extent(sch, xx), axis=-2)
    unpadded = not bounds and not select_bounds(sch, block, loop_extent(sch, yy), axis=-3)
    if unpadded and loop_extent(sch, xx) < REPACK_PLANE_BELOW:
        sch.parallel(sch.fuse(b, cb))
        sch.fuse(yy, xx)
        sch.unroll(ci)
        return
    sch.parallel(sch.fuse(b, cb, yy))
    sch.unroll(ci)
    partition_at(sch, xx, bounds)


# an unpadded packed conv input whose rows are shorter than this is repacked a plane per task
REPACK_PLANE_BELOW = 16


# reductions over A's rows that a matmul's write-back reads (a weight zero point's correction,
# ``quantization_gemm.vnni_matmul_integer``); TVM places a block under a tile loop only with all its
# producers there, so with these the write-back is a pass after the product, not per tile
ROW_SUMS = ("qmatmul_rowsum",)


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
    names = [block_name(sch, b) for b in child_blocks(sch)]
    row_sums = [sch.get_sblock(n) for n in ROW_SUMS if n in names]
    if not row_sums:  # the write-back per tile, while the tile's accumulators are in cache
        sch.reverse_compute_at(out, mo)
    outer = sch.fuse(*lead, no, mo)
    sch.parallel(outer)
    sch.unroll(mi)
    sch.unroll(ni)
    init = sch.decompose_reduction(blk, rco)
    sch.vectorize(sch.get_loops(init)[-1])
    sch.vectorize(sch.get_loops(local)[-1])
    for block in row_sums:  # a task per run of rows; the write-back then one parallel pass of its own
        sch.parallel(sch.fuse(*sch.get_loops(block)[:-1]))
    if row_sums and len(sch.get_loops(out)) > 1:
        sch.parallel(sch.fuse(*sch.get_loops(out)[:-1]))
    last = sch.get_loops(out)[-1]
    if loop_extent(sch, last) % dot.lanes == 0 and loop_extent(sch, last) > dot.lanes:
        sch.vectorize(sch.split(last, [None, dot.lanes])[1])
    if lanes == dot.lanes and target_has(dot.feature):
        rebuild_dot(sch, blk, dot, weight_words=True)
