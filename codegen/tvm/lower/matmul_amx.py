"""MatMul by a constant weight and 1x1 convs on AMX tiles, for x86 CPUs with AMX: bfloat16
(``tdpbf16ps``), MatMulInteger's uint8 x int8 (``tdpbusd``) and QLinearConv's int8 x uint8
(``tdpbsud``).

On those CPUs (Intel's Xeons from Sapphire Rapids on) ``vdpbf16ps`` issues at a quarter of the FMA's
rate (``benchmarks/dot_throughput.c``), while one ``tdpbf16ps`` multiplies a 16 x 32 tile of A by a
32 x 16 tile of B into a 16 x 16 float32 tile. What ``convert-bfloat16`` leaves of a Linear layer,
``MatMul(a[..., M, K], b[K, N])`` with bfloat16 operands and result and ``b`` constant, runs there
when the rows (all of A's leading dims together) are a multiple of 16 and K of 32:

    weight       matmul_bf16.py's K-pair words [ceil(N/16), K/2, 16] int32: one 16 x 16-word slab
                 is a B tile as the instruction wants it (pairs of K along each 64-byte row)
    accumulator  [rows, ceil(N/16) * 16] float32, written by the tiles (``bfmatmul_amx``, a TIR
                 extern: TVM has no tile type), then rounded once to bfloat16 with any fused epilogue

MatMulInteger (``quantization_gemm.vnni_matmul_integer``, a per-tensor zero point of A, none of B)
takes the same kernel when its rows are a multiple of 16 and K of 64: its weight words
``[ceil(N/16), K/4 + 1, 16]`` hold 4 bytes of K each, so 16 rows of them are again a B tile, and the
int32 accumulator is corrected for A's zero point afterwards as before.

A bfloat16 1x1 conv on the row kernel's layouts (``dot_kernels.rows_layout_fits``) with 32k input
and 16k output channels takes them too (``amx_bf16_rows_conv``): its weight ``[K, C/2, 1, 1, 2]``
gives A tiles of 16 output channels, its packed input ``[N, C/2, OH, OW16 * 2]`` B tiles of 16
channel pairs x 16 pixels, and an accumulator tile is 16 output channels x 16 pixels of the NCHW
result, which the conv's bias, rounding and fused epilogue read as before. QLinearConv's 1x1 row
kernel takes them from 128 input channels (``amx_int8_rows_conv_fits``), its weight
``[K, C/4 + slots, 1, 1, 4]`` and packed input ``[N, C/4, OH, OW16 * 4]`` giving the tiles in the
same way, and its requantization reading the int32 accumulator as before.

Each parallel task computes a block of up to 2 x 2 output tiles (32 rows x 32 columns): it loads the
tile configuration (per thread state), zeroes its accumulator tiles, and per 64 bytes of K loads 2 A
and 2 B tiles and issues 4 products. bfloat16 products are exact in float32 and accumulate there, as
the reference does; integer ones are exact. The first kernel to use the tiles asks the OS for them
(``ember_amx_ready`` in ``codegen/aot/ember_runtime.c``: Linux's ``arch_prctl(ARCH_REQ_XCOMP_PERM)``);
where it refuses, the run fails with that message instead of faulting.
"""

from __future__ import annotations

import math

import numpy as np
from tvm import te, tirx
from tvm.script.ir_builder import tirx as T

from ..schedule import schedule_spatial
from ..schedule_util import inline_injective, output_block, vectorize_rows, vectorize_whole_vectors
from ..te_util import round_to_bf16
from ..tir_util import check, emit
from .dot_kernels import schedule_rows_repack

TILE_ROWS = 16  # rows of every tile
TILE_BYTES = 64  # bytes of K in one A tile row: 32 bfloat16 or 64 uint8
TILE_COLUMNS = 16  # float32 or int32 columns of an accumulator tile (and pixels of a conv's B tile)
C_TILES, A_TILES, B_TILES = 0, 4, 6  # tile registers: up to 4 accumulators, 2 A, 2 B
AMX_READY = "ember_amx_ready"  # the runtime's one-time request for the tiles (ember_runtime.c)


def amx_bf16_matmul_fits(schedule, a_shape, k: int) -> bool:
    """Whether a bfloat16 MatMul with left operand ``a_shape`` ([..., M, K]) takes the AMX kernel."""
    rows = math.prod(int(d) for d in a_shape[:-1])
    return bool(schedule is not None and schedule.bf16_amx and rows % TILE_ROWS == 0 and k % (TILE_BYTES // 2) == 0)


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


def amx_int8_matmul_fits(schedule, a_shape, k: int) -> bool:
    """Whether a MatMulInteger with uint8 left operand ``a_shape`` takes the AMX kernel."""
    rows = math.prod(int(d) for d in a_shape[:-1])
    return bool(schedule is not None and schedule.int8_amx and rows % TILE_ROWS == 0 and k % TILE_BYTES == 0)


def _flat_rows(a, element, name: str):
    """``a`` [..., M, K] as [rows, K] (``element`` of each value), materialised for the tiles to read."""
    *lead, m, k = (int(d) for d in a.shape)

    def value(r, c):
        index, rest = [], r
        for extent in reversed([*lead, m]):
            index.insert(0, rest % extent)
            rest = rest // extent
        return element(a(*index, c))

    return te.compute((math.prod(lead) * m, k), value, name=name)


def _tile_block(bm: int, bn: int, steps: int, a_at, b_at, c_at, strides, product: str) -> None:
    """One task's block: ``bm x bn`` accumulator tiles zeroed, then per step ``bm`` A tiles
    (``a_at(i, step)``) and ``bn`` B tiles (``b_at(j, step)``) loaded and multiplied, then stored at
    ``c_at(i, j)``; ``strides`` are the A, B and C row strides in bytes. The tile configuration is
    loaded first and released last (per thread state)."""
    cfg = T.alloc_buffer((64,), "uint8", scope="local")
    _config(cfg, bm * bn)
    _tile("ldtilecfg", T.address_of(cfg[0]))
    for t in range(bm * bn):
        _tile("tilezero", _reg(C_TILES + t))
    a_stride, b_stride, c_stride = (tirx.const(v, "int64") for v in strides)
    with T.serial(0, steps) as step:
        for i in range(bm):
            _tile("tileloadd64", _reg(A_TILES + i), a_at(i, step), a_stride)
        for j in range(bn):
            _tile("tileloadd64", _reg(B_TILES + j), b_at(j, step), b_stride)
        for i in range(bm):
            for j in range(bn):
                _tile(product, _reg(C_TILES + i * bn + j), _reg(A_TILES + i), _reg(B_TILES + j))
    for i in range(bm):
        for j in range(bn):
            _tile("tilestored64", _reg(C_TILES + i * bn + j), c_at(i, j), c_stride)
    _tile("tilerelease")


def _pairs(count: int) -> int:
    """Tiles per block along an axis of ``count`` tiles: 2 where they pair up."""
    return 2 if count % 2 == 0 else 1


def _tiles_ready(op: str, acc) -> None:
    """Fail the run where the OS refuses the tiles; and mark the whole accumulator as written: the
    tiles write it through pointers, which TVM does not see, and it would otherwise shrink the buffer
    to what the epilogue reads (an output row of 56 of a 64-wide accumulator) under the tiles' feet."""
    check(tirx.call_extern("int32", AMX_READY) == 0, f"{op}: the OS did not enable this CPU's AMX tiles")
    for corner in ([0] * len(acc.shape), [int(d) - 1 for d in acc.shape]):
        T.buffer_store(acc, tirx.const(0, acc.dtype), corner)


def amx_accumulator(a2, bp, product: str, acc_dtype: str, element_bytes: int, op: str, name: str):
    """``[rows, ceil(N/16) * 16]`` = ``a2 [rows, K] @ b``, ``b`` in 16-column slabs of 64-byte rows
    (``bp [ceil(N/16), K * element_bytes / 4 (+ more), 16]`` words), on tiles (module docstring);
    ``product`` the tile instruction, ``op`` named in the error where the OS refuses the tiles."""
    rows, k = (int(d) for d in a2.shape)
    nb = int(bp.shape[0])
    width, step_k = nb * TILE_COLUMNS, TILE_BYTES // element_bytes
    bm, bn = _pairs(rows // TILE_ROWS), _pairs(nb)
    blocks_n = nb // bn
    tasks = (rows // TILE_ROWS // bm) * blocks_n

    def body(ins, outs):
        x, w, acc = ins[0], ins[1], outs[0]
        _tiles_ready(op, acc)
        with T.parallel(0, tasks) as task:
            row0 = task // blocks_n * bm * TILE_ROWS
            col0 = task % blocks_n * bn  # in column tiles
            _tile_block(
                bm,
                bn,
                k // step_k,
                lambda i, step: T.address_of(x[row0 + i * TILE_ROWS, step * step_k]),
                lambda j, step: T.address_of(w[col0 + j, step * TILE_ROWS, 0]),
                lambda i, j: T.address_of(acc[row0 + i * TILE_ROWS, (col0 + j) * TILE_COLUMNS]),
                (element_bytes * k, TILE_BYTES, 4 * width),
                product,
            )

    acc = te.extern(
        [(rows, width)],
        [a2, bp],
        lambda ins, outs: emit(lambda: body(ins, outs)),
        name=name,
        dtype=[acc_dtype],
    )
    return acc[0] if isinstance(acc, (list, tuple)) else acc


def amx_bf16_rows_conv_fits(schedule, channels: int, out_channels: int) -> bool:
    """Whether a bfloat16 1x1 conv on the row kernel's layouts takes the AMX tiles: 32k input and 16k
    output channels. Unlike the int8 convs', 64 input channels pay too: against the widened float32
    kernels the bf16 ResNet-50 took 1.07x its time when they were left off the tiles."""
    return bool(schedule is not None and schedule.bf16_amx and channels % 32 == 0 and out_channels % 16 == 0)


def amx_int8_rows_conv_fits(schedule, channels: int, out_channels: int) -> bool:
    """Whether QLinearConv's 1x1 row kernel takes the AMX tiles: 64k input channels, 128 at least, and
    16k output channels. With 64 input channels the products are too few for the accumulator's
    round trip through memory: int8 ResNet-50's 64 -> 256 conv at 56 x 56 took 0.54 ms on the tiles
    against 0.26 with ``vpdpbusd``, and 64 -> 64 0.11 against 0.09, where from 128 channels up every
    1x1 conv ran faster (256 -> 64 at 56 x 56 0.19 against 0.25-0.31, 512 -> 256 at 28 x 28 0.19
    against 0.41, 1024 -> 256 at 14 x 14 0.12 against 0.19; ``ember bench --profile``, 1 thread)."""
    return bool(
        schedule is not None and schedule.int8_amx and channels % 64 == 0 and channels >= 128 and out_channels % 16 == 0
    )


def _rows_conv(data, wp, units: int, product: str, acc_dtype: str, op: str, name: str):
    """The row kernel's accumulation ``[N, K, OH, OW16]`` on tiles: A tiles are 16 output channels of
    the weight ``[K, units (+ slots), 1, 1, depth]`` (a row of it is one output channel's, 4 bytes a
    unit), B tiles 16 units x 16 pixels of the packed input ``[N, units, OH, OW16 * depth]``
    (``dot_kernels.rows_packed_input``), and an accumulator tile is 16 output channels x 16 pixels
    of the NCHW-ordered result."""
    n, _, oh, row = (int(d) for d in data.shape)
    k = int(wp.shape[0])
    per_pixel = TILE_BYTES // TILE_COLUMNS // np.dtype(str(data.dtype)).itemsize  # elements of a pixel's unit
    owp = row // per_pixel
    chunks = oh * owp // TILE_COLUMNS  # 16-pixel pieces of a plane
    bm, bn = _pairs(k // TILE_ROWS), _pairs(chunks)
    per_image = (k // TILE_ROWS // bm) * (chunks // bn)
    plane = oh * owp  # pixels of a (padded) plane

    def body(ins, outs):
        x, w, acc = ins[0], ins[1], outs[0]
        _tiles_ready(op, acc)
        with T.parallel(0, n * per_image) as task:
            b, rest = task // per_image, task % per_image
            m0 = rest // (chunks // bn) * bm * TILE_ROWS
            p0 = rest % (chunks // bn) * bn  # in 16-pixel pieces

            def pixel(j):  # (row, column) of piece p0 + j
                piece = p0 + j
                return piece // (owp // TILE_COLUMNS), piece % (owp // TILE_COLUMNS) * TILE_COLUMNS

            _tile_block(
                bm,
                bn,
                units // TILE_ROWS,
                lambda i, step: T.address_of(w[m0 + i * TILE_ROWS, step * TILE_ROWS, 0, 0, 0]),
                lambda j, step: T.address_of(x[b, step * TILE_ROWS, pixel(j)[0], pixel(j)[1] * per_pixel]),
                lambda i, j: T.address_of(acc[b, m0 + i * TILE_ROWS, pixel(j)[0], pixel(j)[1]]),
                (4 * int(wp.shape[1]), 4 * plane, 4 * plane),
                product,
            )

    acc = te.extern(
        [(n, k, oh, owp)],
        [data, wp],
        lambda ins, outs: emit(lambda: body(ins, outs)),
        name=name,
        dtype=[acc_dtype],
    )
    return acc[0] if isinstance(acc, (list, tuple)) else acc


def amx_bf16_rows_conv(data, wp):
    """A bfloat16 1x1 conv's float32 row accumulation on tiles (``tdpbf16ps``; channel pairs)."""
    return _rows_conv(data, wp, int(data.shape[1]), "tdpbf16ps", "float32", "Conv", "bfconv_amx")


def amx_int8_rows_conv(data, wp, units: int):
    """QLinearConv's int32 row accumulation on tiles: int8 weights by the uint8 packed input
    (``tdpbsud``; ``units`` channel quads, the weight's sum slots after them left out)."""
    return _rows_conv(data, wp, units, "tdpbsud", "int32", "QLinearConv", "qconv_amx")


def schedule_amx_rows_conv(sch, params, pad: str, depth: int) -> None:
    """A row conv on tiles: the extern as written; the repack (``pad``) and the write-back around it."""
    inline_injective(sch)
    out = output_block(sch)  # before the repack's partition adds blocks
    schedule_rows_repack(sch, sch.get_sblock(pad), depth)
    *outer, row = sch.get_loops(out)
    sch.parallel(sch.fuse(*outer))
    vectorize_whole_vectors(sch, row, params.lanes)


def flat_row(index, lead, m: int):
    """The accumulator row of output ``index`` ([..., m, n]): its leading dims and row as one."""
    flat = 0
    for d, extent in zip(index[:-2], lead):
        flat = flat * extent + d
    return flat * m + index[-2]


def amx_bf16_matmul(ctx, a, bp):
    """``a @ b`` for the packed bfloat16 ``b`` on AMX tiles (module docstring)."""
    *lead, m, _ = (int(d) for d in a.shape)
    # the tiles read A's bits: TVM stores bfloat16 as uint16 and would retype a pointer into ``a``
    bits = _flat_rows(a, lambda v: tirx.reinterpret("uint16", v), "bfmatmul_abits")
    acc = amx_accumulator(bits, bp, "tdpbf16ps", "float32", 2, "MatMul", "bfmatmul_amx")
    return te.compute(
        (*lead, m, ctx.out_shape()[-1]),
        lambda *i: round_to_bf16(acc[flat_row(i, lead, m), i[-1]]).astype("bfloat16"),
        name="bfmatmul_out",
    )


def amx_int8_accumulator(a, bp):
    """MatMulInteger's int32 ``sum_k a[..., m, k] b[k, n]`` on AMX tiles, as ``[rows, ceil(N/16) * 16]``."""
    rows = _flat_rows(a, lambda v: v, "qmatmul_abytes")
    return amx_accumulator(rows, bp, "tdpbusd", "int32", 1, "MatMulInteger", "qmatmul_amx")


def schedule_amx_matmul(sch, params, rows_block: str) -> None:
    """The tiles' extern runs as written (its own parallel tasks); A's rows before it
    (``rows_block``) and the rest after it (rounding or zero-point correction, any fused epilogue)
    are each one parallel, vectorised pass."""
    inline_injective(sch)
    schedule_spatial(sch, sch.get_sblock(rows_block), params.lanes)
    out = output_block(sch)
    loops = sch.get_loops(out)
    if len(loops) > 1:
        sch.parallel(sch.fuse(*loops[:-1]))
    vectorize_rows(sch, out, params.lanes)
