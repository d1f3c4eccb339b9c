"""bfloat16 MatMul by a constant weight on AMX tiles (``tdpbf16ps``), for x86 CPUs with AMX-BF16.

On those CPUs (Intel's Xeons from Sapphire Rapids on) ``vdpbf16ps`` issues at a quarter of the FMA's
rate (``benchmarks/dot_throughput.c``), while one ``tdpbf16ps`` multiplies a 16 x 32 tile of A by a
32 x 16 tile of B into a 16 x 16 float32 tile. What ``convert-bfloat16`` leaves of a Linear layer,
``MatMul(a[..., M, K], b[K, N])`` with bfloat16 operands and result and ``b`` constant, runs there
when the rows (all of A's leading dims together) are a multiple of 16 and K of 32:

    weight       matmul_bf16.py's K-pair words [ceil(N/16), K/2, 16] int32: one 16 x 16-word slab
                 is a B tile as the instruction wants it (pairs of K along each 64-byte row)
    accumulator  [rows, ceil(N/16) * 16] float32, written by the tiles (``bfmatmul_amx``, a TIR
                 extern: TVM has no tile type), then rounded once to bfloat16 with any fused epilogue

Each parallel task computes a block of up to 2 x 2 output tiles (32 rows x 32 columns): it loads the
tile configuration (per thread state), zeroes its accumulator tiles, and per 32 steps of K loads 2 A
and 2 B tiles and issues 4 ``tdpbf16ps``. Products are exact in float32 and accumulate there, as the
reference does. The first kernel to use the tiles asks the OS for them (``ember_amx_ready`` in
``codegen/aot/ember_runtime.c``: Linux's ``arch_prctl(ARCH_REQ_XCOMP_PERM)``); where it refuses, the
run fails with that message instead of faulting.
"""

from __future__ import annotations

import math

from tvm import te, tirx
from tvm.script.ir_builder import tirx as T

from ..dot_instructions import BF16
from ..schedule_util import inline_injective, output_block, vectorize_rows
from ..te_util import round_to_bf16
from ..tir_util import check, emit

TILE_ROWS = 16  # rows of every tile
TILE_K = 32  # bfloat16 elements of K in one A tile row (64 bytes)
C_TILES, A_TILES, B_TILES = 0, 4, 6  # tile registers: up to 4 accumulators, 2 A, 2 B
AMX_READY = "ember_amx_ready"  # the runtime's one-time request for the tiles (ember_runtime.c)


def amx_bf16_matmul_fits(schedule, a_shape, k: int) -> bool:
    """Whether a bfloat16 MatMul with left operand ``a_shape`` ([..., M, K]) takes the AMX kernel."""
    rows = math.prod(int(d) for d in a_shape[:-1])
    return bool(schedule is not None and schedule.bf16_amx and rows % TILE_ROWS == 0 and k % TILE_K == 0)


def _config(cfg, tiles: int) -> None:
    """Palette 1, ``tiles`` accumulators and the A and B tiles: 16 rows of 64 bytes each."""
    with T.serial(0, 64) as i:
        T.buffer_store(cfg, tirx.const(0, "uint8"), [i])
    T.buffer_store(cfg, tirx.const(1, "uint8"), [0])
    for tile in [*range(tiles), A_TILES, A_TILES + 1, B_TILES, B_TILES + 1]:
        T.buffer_store(cfg, tirx.const(64, "uint8"), [16 + 2 * tile])  # bytes per row (low byte of a u16)
        T.buffer_store(cfg, tirx.const(TILE_ROWS, "uint8"), [48 + tile])


def _tile(op: str, *args):
    T.evaluate(tirx.call_llvm_intrin("void", f"llvm.x86.{op}", *args))


def _reg(tile: int):
    return tirx.const(tile, "int8")


def amx_bf16_matmul(ctx, a, bp):
    """``a @ b`` for the packed ``b`` on AMX tiles (module docstring)."""
    *lead, m, k = (int(d) for d in a.shape)
    rows, nb = math.prod(lead) * m, int(bp.shape[0])
    width = nb * BF16.lanes
    row_tiles, col_tiles = rows // TILE_ROWS, nb
    bm = 2 if row_tiles % 2 == 0 else 1
    bn = 2 if col_tiles % 2 == 0 else 1
    blocks_n = col_tiles // bn
    tasks = (row_tiles // bm) * blocks_n

    def body(ins, outs):
        x, w, acc = ins[0], ins[1], outs[0]
        check(tirx.call_extern("int32", AMX_READY) == 0, "MatMul: the OS did not enable this CPU's AMX tiles")
        with T.parallel(0, tasks) as task:
            cfg = T.alloc_buffer((64,), "uint8", scope="local")
            _config(cfg, bm * bn)
            _tile("ldtilecfg", T.address_of(cfg[0]))
            row0 = task // blocks_n * bm * TILE_ROWS
            col0 = task % blocks_n * bn  # in column tiles
            for t in range(bm * bn):
                _tile("tilezero", _reg(C_TILES + t))
            with T.serial(0, k // TILE_K) as step:
                for i in range(bm):
                    a_tile = T.address_of(x[row0 + i * TILE_ROWS, step * TILE_K])
                    _tile("tileloadd64", _reg(A_TILES + i), a_tile, tirx.const(2 * k, "int64"))
                for j in range(bn):
                    b_tile = T.address_of(w[col0 + j, step * TILE_ROWS, 0])
                    _tile("tileloadd64", _reg(B_TILES + j), b_tile, tirx.const(64, "int64"))
                for i in range(bm):
                    for j in range(bn):
                        _tile("tdpbf16ps", _reg(C_TILES + i * bn + j), _reg(A_TILES + i), _reg(B_TILES + j))
            for i in range(bm):
                for j in range(bn):
                    c_tile = T.address_of(acc[row0 + i * TILE_ROWS, (col0 + j) * BF16.lanes])
                    _tile("tilestored64", _reg(C_TILES + i * bn + j), c_tile, tirx.const(4 * width, "int64"))
            _tile("tilerelease")

    # the tiles read A's bits: TVM stores bfloat16 as uint16 and would retype a pointer into ``a``
    def flat_bits(r, c):  # A as [rows, K]
        index, rest = [], r
        for extent in reversed([*lead, m]):
            index.insert(0, rest % extent)
            rest = rest // extent
        return tirx.reinterpret("uint16", a(*index, c))

    bits = te.compute((rows, k), flat_bits, name="bfmatmul_abits")
    acc = te.extern(
        [(rows, width)],
        [bits, bp],
        lambda ins, outs: emit(lambda: body(ins, outs)),
        name="bfmatmul_amx",
        dtype=["float32"],
    )
    acc = acc[0] if isinstance(acc, (list, tuple)) else acc
    n = ctx.out_shape()[-1]

    def rounded(*i):
        flat = 0  # the leading dims and the row, as one row of the accumulator
        for d, extent in zip(i[:-2], lead):
            flat = flat * extent + d
        return round_to_bf16(acc[flat * m + i[-2], i[-1]]).astype("bfloat16")

    return te.compute((*lead, m, n), rounded, name="bfmatmul_out")


def schedule_amx_matmul(sch, params) -> None:
    """The tiles' extern runs as written (its own parallel tasks); A's bits before it and the
    rounding with any fused epilogue after it are each one parallel, vectorised pass."""
    from ..schedule import schedule_spatial  # the generic schedules' module imports this one's callers

    inline_injective(sch)
    schedule_spatial(sch, sch.get_sblock("bfmatmul_abits"), params.lanes)
    out = output_block(sch)
    loops = sch.get_loops(out)
    if len(loops) > 1:
        sch.parallel(sch.fuse(*loops[:-1]))
    vectorize_rows(sch, out, params.lanes)
