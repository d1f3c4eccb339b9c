"""Tensor-core products for CUDA: float16 and bfloat16 operands (``convert-float16`` /
``convert-bfloat16`` models: matmuls, and the convolutions DLight's analysis rewrites as GEMMs) on
the warp-level ``wmma`` 16 x 16 x 16 instructions (``wmma.py``), accumulated in float32 as the
lowerings' TE does.

The schedule (``schedule_tensor_core``), for ``C[S, I, J] += A[S, I, K] * B[S, J, K]`` after DLight's
normalisation (``reindex`` + ``transform_layout``, which also unpacks prepacked weight panels and
a convolution's windows):

- the output is padded to whole thread-block tiles (``TensorCoreTile``: warps x fragments of 16 x 16
  per warp), each tile one thread block of ``32 x warps`` threads;
- per step of ``depth`` along K, the block copies its A rows and B columns into shared memory,
  rows padded by 8 halves (``wmma``'s leading dimension stays a multiple of 8). B is kept as
  [N, K] where its source is contiguous along K, else as [K, N] (weight panels, convolution
  weights); each copy is 16-byte vectors where its source is contiguous along the copied axis,
  else one value per thread and step (a convolution's A, read through its window);
- each warp loads its fragments and runs ``wmma::mma_sync`` into float32 accumulators, stores them
  to shared memory, and its 32 threads write its part of the tile out with the epilogue (bias,
  activation, cast back to 16 bits) inlined.

The tile is sized to the problem (``tensor_core_tile``) as the SIMT matmul's is: one 128 x 128
tile gave BERT-base's 128 x 768 projections at batch 1 6 thread blocks for 132 multiprocessors.

``emulate=True`` builds the same loop nest without thread bindings, fragments or ``tensorize``
(plain loops in global memory that compute what the intrinsics' descriptions say), so that a CPU
can run it. TVM's schedule primitives preserve meaning by construction, so that check guards the
rule's reach (which kernels it takes, that the schedule applies to them) more than arithmetic; what
runs on a GPU only (thread bindings, the ``wmma`` calls) needs a GPU to check.
"""

from __future__ import annotations

from dataclasses import dataclass

import tvm
from tvm import s_tir, tirx
from tvm.s_tir.dlight.analysis import get_root_block
from tvm.s_tir.dlight.gpu.base import GPUScheduleRule
from tvm.s_tir.dlight.gpu.matmul import (
    auto_inline_consumer_chain,
    auto_inline_producers,
    get_index_map,
    get_reduction_blocks,
)

from . import wmma

WMMA = 16  # the fragment's M, N and K
WARP = 32
VECTOR_HALVES = 8  # one 16-byte copy of 16-bit values into shared memory
ROW_PAD_HALVES = 8  # shared A/B rows: K step + 8 halves

# dynamic shared memory a block may take on every supported architecture (sm_86/sm_89: 99 KiB)
MAX_SHARED_BYTES = 99 * 1024
# (operand types, accumulator type) the 16 x 16 x 16 ``wmma`` instructions take on sm_80 and later
_WMMA_TYPES = [({"float16"}, "float32"), ({"float16"}, "float16"), ({"bfloat16"}, "float32")]
MAX_PADDING = 1.35  # padded tile area over the output's, as for the SIMT matmul's rows


@dataclass(frozen=True)
class TensorCoreTile:
    """A thread block's share of the output: ``warps_m x warps_n`` warps, each ``frags_m x frags_n``
    fragments of 16 x 16; K advances ``k_frags`` fragments (``depth``) per shared-memory step."""

    warps_m: int
    warps_n: int
    frags_m: int
    frags_n: int
    k_frags: int = 4

    @property
    def rows(self) -> int:
        return self.warps_m * self.frags_m * WMMA

    @property
    def cols(self) -> int:
        return self.warps_n * self.frags_n * WMMA

    @property
    def depth(self) -> int:
        return self.k_frags * WMMA

    @property
    def warps(self) -> int:
        return self.warps_m * self.warps_n

    def shared_bytes(self) -> int:
        """Shared memory of one block: the A and B steps (16-bit) and the accumulator tile (float32)."""
        step = (self.rows + self.cols) * (self.depth + ROW_PAD_HALVES) * 2
        return step + self.rows * self.cols * 4


# largest first; 128 x 128 would need 100 KiB of shared memory, over sm_86's 99
TENSOR_CORE_TILES = (
    TensorCoreTile(4, 2, 2, 2),  # 128 x 64, 8 warps
    TensorCoreTile(2, 4, 2, 2),  # 64 x 128
    TensorCoreTile(2, 2, 2, 2),  # 64 x 64, 4 warps
    TensorCoreTile(2, 2, 1, 2),  # 32 x 64
    TensorCoreTile(2, 2, 1, 1),  # 32 x 32
    TensorCoreTile(1, 2, 1, 1),  # 16 x 32, 2 warps
)


def tensor_core_tile(batch: int, m: int, n: int, sm_count: int) -> TensorCoreTile:
    """The largest tile that gives every multiprocessor a block and pads the output by at most
    ``MAX_PADDING``; else, of those within the padding, the one with the most blocks; else the
    smallest tile (least padding)."""

    def blocks(tile):
        return batch * -(-m // tile.rows) * -(-n // tile.cols)

    def padding(tile):
        return (-(-m // tile.rows) * tile.rows) * (-(-n // tile.cols) * tile.cols) / (m * n)

    fits = [t for t in TENSOR_CORE_TILES if padding(t) <= MAX_PADDING and t.shared_bytes() <= MAX_SHARED_BYTES]
    for tile in fits:
        if blocks(tile) >= sm_count:
            return tile
    return max(fits, key=blocks) if fits else TENSOR_CORE_TILES[-1]


def tensor_core_operands(func) -> tuple[int, int, int] | None:
    """(batch, rows, columns) of ``func``'s output if its one reduction is a float16 x float16 product
    accumulated in float32 or float16, or a bfloat16 x bfloat16 one accumulated in float32 (what the
    ``wmma`` instructions take), that DLight's analysis normalises to a GEMM with I, J and K
    of at least 16 each; else None."""
    try:
        if not isinstance(func, tirx.PrimFunc):
            return None
        sch = s_tir.Schedule(func)
        reductions = get_reduction_blocks(sch, sch.get_child_blocks(get_root_block(sch)))
        if not reductions or len(reductions) != 1:
            return None
        block = sch.get(reductions[0])
        if len(block.reads) != 2 or len(block.writes) != 1:
            return None
        operands = {str(r.source.dtype) for r in block.reads}
        if (operands, str(block.writes[0].source.dtype)) not in _WMMA_TYPES:
            return None
        maps = get_index_map(block)
        if not maps:
            return None
        sizes = maps[0].map_shape([iv.dom.extent for iv in block.iter_vars])
        if not all(isinstance(s, tirx.IntImm) for s in sizes):
            return None
        batch, m, n, k = (int(s) for s in sizes)
        if min(m, n, k) < WMMA:
            return None
        return batch, m, n
    except Exception:  # noqa: BLE001 - a form the analysis does not take is not a tensor-core GEMM
        return None


def schedule_tensor_core(func, tile: TensorCoreTile, emulate: bool = False) -> s_tir.Schedule:
    """``func``'s product on tensor cores with ``tile`` (module docstring); ``emulate``: the same loops
    for a CPU (no threads, fragments or intrinsics)."""
    sch = s_tir.Schedule(func)
    main = get_reduction_blocks(sch, sch.get_child_blocks(get_root_block(sch)))[0]
    out_dtype = str(sch.get(main).writes[0].source.dtype)
    in_dtype = str(sch.get(main).reads[0].source.dtype)
    a_axis, b_axis = copy_axes(func)

    # C[S, I, J] += A[S, I, K] * B[S, J, K], padded to whole tiles and K steps
    reindexed = [sch.reindex(main, ("read", 0)), sch.reindex(main, ("read", 1)), sch.reindex(main, ("write", 0))]
    product_map, *operand_maps = get_index_map(sch.get(main))
    for block, (kind, where), index_map in zip(reindexed, (("write", 0), ("write", 0), ("read", 0)), operand_maps):
        sch.transform_layout(block, (kind, where), index_map)
    sch.transform_block_layout(main, product_map)
    b_along_k = b_axis != "spatial"
    if not b_along_k:  # B in shared memory as [K, J], so that its copy reads whole vectors
        sch.transform_layout(reindexed[1], ("write", 0), lambda s, j, k: (s, k, j))
    sch.pad_einsum(main, [1, tile.rows, tile.cols, tile.depth])

    # 16 x 16 x 16 fragments, the unit of every intrinsic below
    batch, i, j, k = sch.get_loops(main)
    i, i16 = sch.split(i, [None, WMMA])
    j, j16 = sch.split(j, [None, WMMA])
    k, k16 = sch.split(k, [None, WMMA])
    sch.reorder(i, j, k, i16, j16, k16)
    fragment = sch.blockize(i16)

    i_block, i_warp, i_frag = sch.split(i, [None, tile.warps_m, tile.frags_m])
    j_block, j_warp, j_frag = sch.split(j, [None, tile.warps_n, tile.frags_n])
    k_step, k_frag = sch.split(k, [None, tile.k_frags])
    sch.reorder(i_block, j_block, i_warp, j_warp, k_step, k_frag, i_frag, j_frag)
    warp = sch.fuse(i_warp, j_warp)
    for loop in (k_frag, i_frag, j_frag):  # fragments indexed by constants: registers, not local memory
        sch.unroll(loop)
    if not emulate:
        sch.bind(batch, "blockIdx.z")
        sch.bind(i_block, "blockIdx.y")
        sch.bind(j_block, "blockIdx.x")
        sch.bind(warp, "threadIdx.y")

    shared = "global" if emulate else "shared.dyn"

    def stage_in_shared(index, contiguous):
        block = sch.cache_read(fragment, index, shared)
        sch.compute_at(block, k_step)
        copy = sch.fuse(*sch.get_loops(block)[-2:])
        # a vector only where the source is contiguous along the copy's inner axis: TVM 0.27 writes
        # a gather of 8 halves as make_uint4 of 8 values, which does not compile
        _, ty, tx, vector = sch.split(copy, [None, tile.warps, WARP, VECTOR_HALVES if contiguous else 1])
        if not emulate:
            sch.bind(ty, "threadIdx.y")
            sch.bind(tx, "threadIdx.x")
            if contiguous:
                sch.vectorize(vector)
        sch.storage_align(block, 0, axis=-2, factor=WMMA, offset=ROW_PAD_HALVES)
        auto_inline_producers(sch, block)  # the reindex and padding blocks read straight from global
        return block

    stage_in_shared(0, a_axis == "reduction")
    stage_in_shared(1, b_axis is not None)  # along K, or along J and transposed above

    loads = []
    for index, scope in ((0, "wmma.matrix_a"), (1, "wmma.matrix_b")):
        block = sch.cache_read(fragment, index, "global" if emulate else scope)
        sch.compute_at(block, k_frag)
        loads.append(block)

    # static shared memory: merged into the dynamic allocation with the float16 steps, TVM 0.27's
    # access pointers for the float32 fragments' stores fail its type check
    acc_shared = sch.cache_write(fragment, 0, "global" if emulate else "shared")
    acc = sch.cache_write(fragment, 0, "global" if emulate else "wmma.accumulator")
    # (its rows are not padded: a storage_align on this block is lost when ``tensorize`` replaces it)
    sch.reverse_compute_at(acc, warp)
    sch.reverse_compute_at(acc_shared, warp)
    store = _fragment_loops(sch, acc)
    init_outer = sch.decompose_reduction(fragment, k_step)
    for loop in sch.get_loops(init_outer)[-2:]:
        sch.unroll(loop)
    init = sch.get_child_blocks(init_outer)[0]

    if not emulate:
        intrinsics = wmma.intrinsics(in_dtype, out_dtype, b_along_k, "shared.dyn", "shared")
        sch.tensorize(_fragment_loops(sch, loads[0]), intrinsics["load_a"])
        sch.tensorize(_fragment_loops(sch, loads[1]), intrinsics["load_b"])
        sch.tensorize(sch.get_loops(init)[-2], intrinsics["init"])
        sch.tensorize(store, intrinsics["store"])
        sch.tensorize(sch.get_loops(sch.get_child_blocks(fragment)[0])[-3], intrinsics["compute"])

    # the warp's tile from shared memory to the output, with the epilogue
    auto_inline_consumer_chain(sch, acc_shared)
    _, tx, vector = sch.split(sch.fuse(*sch.get_loops(acc_shared)[-2:]), [None, WARP, 4])
    if not emulate:
        sch.bind(tx, "threadIdx.x")
        sch.vectorize(vector)
    return sch


def copy_axes(func) -> tuple[str | None, str | None]:
    """Along which axis each of A and B can be copied into shared memory in vectors of
    ``VECTOR_HALVES``: "reduction" (K), "spatial" (I for A, J for B) or None (neither: a
    convolution's window, a weight in bfloat16 pairs). Read from a probe schedule: each operand
    reindexed with its producers (padding, weight packing, casts) inlined, so that it reads the
    kernel's parameters directly."""
    sch = s_tir.Schedule(func)
    main = get_reduction_blocks(sch, sch.get_child_blocks(get_root_block(sch)))[0]
    kinds = {iv.var: iv.iter_type for iv in sch.get(main).iter_vars}
    axes = []
    for index in (0, 1):
        copy = sch.reindex(main, ("read", index))
        try:
            auto_inline_producers(sch, copy)
        except Exception:  # noqa: BLE001 - a producer left in place: judged on what it reads
            pass
        block = sch.get(copy)
        # dimension d of the reindexed operand is the product's iterator at index d of its read
        product_read = next(r for r in sch.get(main).reads if r.source.same_as(block.writes[0].source))
        by_kind: dict[str, list] = {"reduction": [], "spatial": []}
        for iv, dim in zip(block.iter_vars, product_read.region):
            kind = next((k for v, k in kinds.items() if v.same_as(dim.min)), None)
            if kind is not None and int(iv.dom.extent) > 1:
                by_kind["spatial" if kind == tirx.IterVar.DataPar else "reduction"].append(iv)
        axes.append(next((k for k, ivs in by_kind.items() if ivs and _runs_of_vectors(block, ivs[-1])), None))
    return axes[0], axes[1]


def _runs_of_vectors(block, iv) -> bool:
    """Whether every read of ``block`` is of 16-bit values and advances by one element along its last
    dimension, and stays in the rest, over each aligned run of ``VECTOR_HALVES`` values of the
    iterator ``iv`` (the innermost of the normalised K, I or J it belongs to)."""
    from tvm.ir import Range
    from tvm.sym import Analyzer

    if int(iv.dom.extent) % VECTOR_HALVES:
        return False
    dtype = str(iv.var.ty)
    run, lane = tirx.Var("run", dtype), tirx.Var("lane", dtype)
    start, within = Analyzer(), Analyzer()
    for analyzer in (start, within):
        analyzer.bind(run, Range(0, int(iv.dom.extent) // VECTOR_HALVES))
    within.bind(lane, Range(0, VECTOR_HALVES))
    start.bind(iv.var, run * VECTOR_HALVES)
    within.bind(iv.var, run * VECTOR_HALVES + lane)
    for read in block.reads:
        if tvm.DataType(str(read.source.dtype)).bits != 16:  # e.g. bfloat16 pairs in int32: shifts
            return False  # of 8 int32 lanes, which TVM writes as ``make_longlong4`` of 8 values
        for d, dim in enumerate(read.region):
            step = within.simplify(within.simplify(dim.min) - start.simplify(dim.min))
            want = lane if d == len(read.region) - 1 else 0
            if not within.can_prove_equal(step, want):
                return False
    return True


def _fragment_loops(sch, block):
    """Split ``block``'s two innermost loops into 16 x 16 fragments (outer loops unrolled) and return
    the first loop of a fragment, the one ``tensorize`` replaces."""
    i, j = sch.get_loops(block)[-2:]
    i_outer, i16 = sch.split(i, [None, WMMA])
    j_outer, j16 = sch.split(j, [None, WMMA])
    sch.reorder(i_outer, j_outer, i16, j16)
    sch.unroll(i_outer)
    sch.unroll(j_outer)
    return i16


class TensorCoreMatmul(GPUScheduleRule):
    """16-bit products on tensor cores (``schedule_tensor_core``) on the architectures that have them
    (every one Ember builds for: sm_80 and later); other functions, and any this schedule does not
    take, are left to the SIMT rules after it."""

    def __init__(self, sm_count: int):
        super().__init__()
        self.sm_count = sm_count

    def apply(self, func, target, tunable):
        sizes = _has_tensor_cores(target) and tensor_core_operands(func)
        if not sizes:
            return None
        try:
            return schedule_tensor_core(func, tensor_core_tile(*sizes, self.sm_count))
        except Exception:  # noqa: BLE001 - a form the tiling does not take: the SIMT matmul rule
            return None


def _sm_version(target) -> int:
    arch = str(target.attrs.get("arch", ""))
    return int(arch[3:]) if arch.startswith("sm_") and arch[3:].isdigit() else 0


def tensor_core_capable(func, target) -> bool:
    """Whether ``TensorCoreMatmul`` would take ``func`` for ``target``."""
    return _has_tensor_cores(target) and tensor_core_operands(func) is not None


def _has_tensor_cores(target) -> bool:
    return target.kind.name == "cuda" and _sm_version(target) >= 70
