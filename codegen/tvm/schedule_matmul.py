"""The register-tiled schedule of ``matmul`` blocks (MatMul, Gemm and the products lowered like
them, ``lower/linalg.py``): a ``mi`` rows x ``lanes * nv`` columns tile of accumulators, K outside
the tile, column panels of B outside the row blocks, K in chunks where a panel is past L1
(``matmul_k_chunk``), the epilogue per task. bfloat16 products take ``lower/matmul_bf16.py``'s."""

from __future__ import annotations

from ..target import ScheduleParams
from .schedule_util import (
    block_name,
    child_blocks,
    divisor_at_most,
    inline_injective,
    loop_extent,
    vectorize_rows,
)

# the most bytes of accumulators (M rows x the tile's columns) that a K-chunked matmul keeps in its
# local buffer across chunks: it is read and written once per chunk, and should stay in L2
MM_CHUNK_ACCUMULATOR_BYTES = 128 << 10


# the fewest column panels (the parallel tasks of a K-chunked matmul) that keep two or more threads busy
MM_CHUNK_MIN_PANELS = 16


def matmul_k_chunk(params: ScheduleParams, k: int, m: int, tile_rows: int, columns: int, panels: int) -> int:
    """The reduction steps per chunk of a matmul's K loop, or 0 for none (``mm_chunk_bytes``).

    Unchunked, each row block of A runs the whole K loop against its column panel of B, a
    [K x ``columns``] panel that past L1 (BERT's K = 768 x 16 columns: 48 KiB) streams from L2
    once per row block. In chunks of at most ``params.mm_chunk_bytes`` of the panel, as few as fit
    and even, the chunk is read from L1 by every row block. Only where the panel is over one chunk,
    at least 4 row blocks share each chunk, the panel's accumulators (``m x columns``) fit
    ``MM_CHUNK_ACCUMULATOR_BYTES``, and there are ``MM_CHUNK_MIN_PANELS`` panels or more (the
    chunked loop is parallel over panels only)."""
    per_step = 4 * columns
    if not params.mm_chunk_bytes or k * per_step <= params.mm_chunk_bytes or panels < MM_CHUNK_MIN_PANELS:
        return 0
    if m < 4 * tile_rows or m * per_step > MM_CHUNK_ACCUMULATOR_BYTES:
        return 0
    chunks = -(-k * per_step // params.mm_chunk_bytes)  # the fewest that fit, evened out: 512 -> 2 x 256
    chunk = divisor_at_most(k, -(-k // chunks), 64)
    return chunk if chunk >= 64 and chunk < k else 0


def schedule_matmul(sch, params: ScheduleParams) -> None:
    """Register-tiled schedule for ``matmul`` blocks: [mi x lanes*nv] tile, k outside it."""
    lanes = params.lanes
    try:
        sch.get_sblock("bfmatmul_amx")
    except Exception:
        pass
    else:
        from .lower.matmul_amx import schedule_amx_matmul

        return schedule_amx_matmul(sch, params, "bfmatmul_abits")
    try:
        sch.get_sblock("bfmatmul_blk")
    except Exception:
        pass
    else:
        from .lower.matmul_bf16 import schedule_bf16_matmul

        return schedule_bf16_matmul(sch, params)
    inline_injective(sch)
    mm = sch.get_sblock("matmul")
    loops = sch.get_loops(mm)
    *batch, m, n, k = loops
    mext, next_ = loop_extent(sch, m), loop_extent(sch, n)
    while next_ % lanes and lanes > 4:
        lanes //= 2  # e.g. N = 1000: 8-lane vectors
    if next_ % lanes:
        raise ValueError("N not a multiple of the vector width")
    nv = params.mm_vectors
    while nv > 1 and (next_ // lanes) % nv:
        nv //= 2
    mi_size = divisor_at_most(mext, params.mm_rows(nv), 1)
    mo, mi = sch.split(m, [None, mi_size])
    no, nvo, nvi = sch.split(n, [None, nv, lanes])
    panels = next_ // (nv * lanes)
    for loop in batch:
        panels *= loop_extent(sch, loop)
    chunk = matmul_k_chunk(params, loop_extent(sch, k), mext, mi_size, nv * lanes, panels)
    if chunk:
        # K in chunks outside the row blocks: a chunk of the column panel stays in L1 while every
        # row block of A passes by; the panel's accumulators live in a local buffer across chunks
        ko, k = sch.split(k, [None, chunk])
        sch.reorder(*batch, no, ko, mo, k, mi, nvo, nvi)
        acc = sch.cache_write(mm, 0, "local")
        sch.reverse_compute_at(acc, no)
        outer = sch.fuse(*batch, no)
    else:
        # Column panel outside the row blocks: a [K x 16*nv] panel of B stays in cache while every
        # row block of A passes by (rows outside would stream all of B once per row block).
        sch.reorder(*batch, no, mo, k, mi, nvo, nvi)
        acc = sch.cache_write(mm, 0, "local")
        sch.reverse_compute_at(acc, mo)
        outer = sch.fuse(*batch, no, mo)
    epilogues = [block for block in child_blocks(sch) if not block_name(sch, block).startswith("matmul")]
    for block in epilogues:
        sch.reverse_compute_at(block, outer)
        vectorize_rows(sch, block, lanes)
    sch.parallel(outer)
    sch.vectorize(nvi)
    sch.unroll(nvo)
    sch.unroll(mi)
    sch.decompose_reduction(mm, ko if chunk else k)
    sch.vectorize(sch.get_loops(acc)[-1])
    init = sch.get_sblock("matmul_init")
    sch.vectorize(sch.get_loops(init)[-1])
    from .schedule import schedule_spatial  # the generic schedules' module imports this one

    # a run-time B packed into panels, a half or integer A (and B) widened to float32 (lower/linalg.py),
    # before the product
    for name in ("matmul_bpack", "matmul_awide", "matmul_bwide"):
        try:
            stage = sch.get_sblock(name)
        except Exception:
            continue
        schedule_spatial(sch, stage, lanes)
