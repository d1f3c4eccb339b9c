"""GPU schedules for CUDA kernels: TVM's DLight rules, with Ember's before them where DLight's
choice was measured to be poor on an H200 (docs/cuda.md, "What the GPU runs changed"):

- ``SmallReduction``: a reduction over a few values per output (depthwise convolution, pooling)
  gets one thread per output, its epilogue in the same kernel;
- ``TensorCoreMatmul`` (``tensor_core.py``): float16 and bfloat16 products on tensor cores, tiles
  sized to the problem;
- ``SizedMatmul``: DLight's ``gpu.Matmul`` with its thread-block tile sized to the problem
  (``matmul_tile``), a matrix-vector product scheduled by ``schedule_matvec``, and DLight's own
  tensor-core rule kept out (one 128 x 128 tile for every problem).
"""

from __future__ import annotations

import tvm
from tvm import s_tir, tirx
from tvm.s_tir import dlight as dl
from tvm.s_tir.dlight.analysis import get_root_block
from tvm.s_tir.dlight.gpu.matmul import get_index_map, get_reduction_blocks

from .tensor_core import TensorCoreMatmul

# Multiprocessors of each architecture's largest data-centre part (A100, A40/RTX 3090, L40, H100/H200):
# a matmul's grid should give every one of them a thread block.
SM_COUNT = {"sm_80": 108, "sm_86": 84, "sm_89": 142, "sm_90": 132}

# how far a tile may pad a matmul's rows: 49 rows (a 7 x 7 map) on 16-row tiles are 64, 1.31
MAX_ROW_PADDING = 1.35

# Thread-block tiles, largest first, as DLight Matmul configs (threads x, threads y, per-thread rows,
# per-thread columns): a tile is (threads x * rows) x (threads y * columns) of the output.
MATMUL_TILES = (
    (16, 16, 8, 8),
    (16, 16, 4, 8),
    (16, 16, 4, 4),
    (16, 8, 8, 4),
    (8, 16, 4, 4),
    (16, 8, 4, 4),
    (8, 16, 2, 4),
    (8, 16, 2, 2),
    (8, 8, 2, 2),
)


def matmul_tile(batch: int, m: int, n: int, sm_count: int) -> tuple[int, int, int, int] | None:
    """The tile for a ``batch`` x ``m`` x ``n`` output: the largest that gives every multiprocessor a
    block, else the one with the most blocks. DLight's fixed 32 x 64 left BERT's 128 x 768
    projections at batch 1 with 48 blocks on 132 multiprocessors, and ResNet-50's 3x3 convolutions
    on 14 x 14 and 7 x 7 maps (196 and 49 rows) with 28 and 16.

    A tile divides the columns (``n``). The rows (pixels, tokens) may be padded by up to
    ``MAX_ROW_PADDING``: TVM 0.27's CUDA code for a guard on padded columns does not compile for some
    sizes (a ``ushort4`` assigned to a ``float4``). None (keep DLight's tile) where no tile fits."""

    def blocks(tile):
        return batch * -(-m // (tile[0] * tile[2])) * (n // (tile[1] * tile[3]))

    def row_padding(tile):
        rows = tile[0] * tile[2]
        return -(-m // rows) * rows / m

    fits = [t for t in MATMUL_TILES if n % (t[1] * t[3]) == 0 and row_padding(t) <= MAX_ROW_PADDING]
    for tile in fits:
        if blocks(tile) >= sm_count:
            return tile
    return max(fits, key=blocks) if fits else None


class SizedMatmul(dl.gpu.Matmul):
    """DLight's ``gpu.Matmul`` (shared-memory tiles, register micro-tiles) with its thread-block tile
    chosen per problem by ``matmul_tile``, on SIMT cores (see ``apply``)."""

    def __init__(self, sm_count: int):
        super().__init__()
        self.sm_count = sm_count
        self.tile = None
        # DLight tries its tensor-core rule (MatmulTensorization, wmma) on sm_70+ for fp16 and int8
        # products, with one 128 x 128 tile whatever the problem (6 blocks for BERT-base's 128 x 768
        # projections on 132 multiprocessors). 16-bit products reach this rule only where
        # TensorCoreMatmul's sized tiles did not take them or tensor_cores=0 keeps them off, so the rule
        # is asked with an architecture below tensor cores: the target only gates that attempt; code is
        # built for the real one
        self.simt_target = tvm.target.Target({"kind": "cuda", "arch": "sm_60"})

    def get_configs(self, target):
        config = super().get_configs(target)
        if self.tile is not None and target.kind.name == "cuda":
            config.block_size_x, config.block_size_y, config.micro_size_x, config.micro_size_y = self.tile
        return config

    def apply(self, func, target, tunable):
        self.tile = None
        if _is_matvec(func):
            # a matrix-vector product (a classifier's Gemm at batch 1): DLight's reduction rule ran
            # all 1,000 outputs of ResNet-50's Gemm in one thread block (1.5 ms of the model's 5.7 ms
            # on an H200), and its matmul rule does not take the prepacked panels
            try:
                return schedule_matvec(func)
            except Exception:  # noqa: BLE001 - DLight's fallback binds any loop nest
                return dl.gpu.Fallback().apply(func, target, tunable)
        sizes = _matmul_sizes(func)
        if sizes is not None:
            self.tile = matmul_tile(*sizes, self.sm_count)
        try:
            return super().apply(func, self.simt_target, tunable)
        except Exception:
            if self.tile is None:
                raise
            self.tile = None  # DLight's own tile
            return super().apply(func, self.simt_target, tunable)


def schedule_matvec(func, outputs_per_block: int = 32, k_threads: int = 32):
    """A matrix-vector product on many multiprocessors: each thread block computes 32 outputs, one
    per ``threadIdx.x`` (a warp reads 32 consecutive values of a row of B or of its prepacked
    panels), and splits K over 32 ``threadIdx.y``, summed across threads through shared memory.
    Injective blocks after it are inlined where they can be, else bound as their own kernels."""
    sch = s_tir.Schedule(func)
    reduction = get_reduction_blocks(sch, sch.get_child_blocks(get_root_block(sch)))[0]
    spatial, reduce = _loops_by_kind(sch, reduction)
    j, k = _fused(sch, spatial), _fused(sch, reduce)
    jo, ji = sch.split(j, [None, outputs_per_block])
    ko, ki = sch.split(k, [None, k_threads])
    sch.reorder(jo, ji, ki, ko)
    sch.bind(jo, "blockIdx.x")
    sch.bind(ji, "threadIdx.x")
    sch.bind(ki, "threadIdx.y")
    others = [b for b in sch.get_child_blocks(get_root_block(sch)) if not sch.get(b).same_as(sch.get(reduction))]
    for block in others[:-1]:  # intermediates (a crop of padded columns): into their consumers
        try:
            sch.compute_inline(block)
        except Exception:  # noqa: BLE001 - kept as its own kernel below
            pass
    for block in sch.get_child_blocks(get_root_block(sch)):
        if sch.get(block).same_as(sch.get(reduction)):
            continue
        bo, bi = sch.split(_fused(sch, sch.get_loops(block)), [None, 256])
        sch.bind(bo, "blockIdx.x")
        sch.bind(bi, "threadIdx.x")
    return sch


def _loops_by_kind(sch, block) -> tuple[list, list]:
    """The block's spatial loops and its reduction loops, each outermost first."""
    kinds = [iv.iter_type for iv in sch.get(block).iter_vars]
    loops = sch.get_loops(block)
    spatial = [loop for loop, kind in zip(loops, kinds) if kind == tirx.IterVar.DataPar]
    return spatial, [loop for loop, kind in zip(loops, kinds) if kind != tirx.IterVar.DataPar]


def _fused(sch, loops):
    """``loops`` (nested, outermost first) as one loop."""
    return sch.fuse(*loops) if len(loops) > 1 else loops[0]


def _one_reduction(func):
    """The reduction block (its statement) of a PrimFunc that has exactly one, else None."""
    if not isinstance(func, tirx.PrimFunc):
        return None
    sch = s_tir.Schedule(func)
    reductions = get_reduction_blocks(sch, sch.get_child_blocks(get_root_block(sch)))
    return sch.get(reductions[0]) if reductions and len(reductions) == 1 else None


def _is_matvec(func) -> bool:
    """Whether ``func``'s one reduction is a product of two operands into a vector of 128 or more
    values (every spatial dimension but the last is 1)."""
    try:
        block = _one_reduction(func)
        if block is None:
            return False
        spatial = [iv.dom.extent for iv in block.iter_vars if iv.iter_type == tirx.IterVar.DataPar]
        if not spatial or not all(isinstance(e, tirx.IntImm) for e in spatial):
            return False
        leading = 1
        for extent in spatial[:-1]:
            leading *= int(extent)
        body = block.body
        return (
            leading == 1
            and int(spatial[-1]) >= 128
            and len(block.reads) == 2
            and isinstance(body, tirx.BufferStore)
            and isinstance(body.value, tirx.Add)
            and isinstance(body.value.b, tirx.Mul)
        )
    except Exception:  # noqa: BLE001 - a form the analysis does not take is not a matvec
        return False


def _matmul_sizes(func) -> tuple[int, int, int] | None:
    """(batch, rows, columns) of a matmul-like PrimFunc's output, as DLight's Matmul normalises it."""
    try:
        block = _one_reduction(func)
        if block is None:
            return None
        maps = get_index_map(block)
        if not maps:
            return None
        batch, m, n, _ = maps[0].map_shape([iv.dom.extent for iv in block.iter_vars])
        return int(batch), int(m), int(n)
    except Exception:  # a form DLight's Matmul will not take either
        return None


class SmallReduction(dl.gpu.Fallback):
    """A reduction over a few values per output (a depthwise 3x3 convolution: 9) on many outputs, one
    thread per output with its reduction serial (``schedule_per_output``). DLight's reduction rules gave
    each output a block of 256 threads: MobileNetV2's 32 x 112 x 112 depthwise layer launched 401,408
    blocks. Products DLight's matmul rule takes (convolutions with few input channels) and other
    functions are left to the next rules."""

    MAX_REDUCTION = 64  # values summed per output
    MIN_OUTPUTS = 4096

    def apply(self, func, target, tunable):
        sizes = _reduction_sizes(func)
        if sizes is None or sizes[1] > self.MAX_REDUCTION or sizes[0] < self.MIN_OUTPUTS:
            return None
        if _matmul_sizes(func) is not None:  # a GEMM (a convolution with few input channels): tiled
            return None
        try:
            return schedule_per_output(func)
        except Exception:  # noqa: BLE001 - DLight's fallback: the same, with the epilogue as its own kernel
            return super().apply(func, target, tunable)


def schedule_per_output(func, threads: int = 256, emulate: bool = False):
    """One thread per output of the function's one reduction, its reduction serial; injective blocks
    before it (padding) are inlined into its reads and those after it (bias, clip) computed by the
    same thread, so that the whole function is one kernel. The thread's value stays in a register
    until its one store (a reduction into the output itself stored at every step: a max pool's 3x3
    window, 10 global stores per output). ``emulate``: the same loops without the thread bindings,
    which build for the CPU (tests compare them with the unscheduled function)."""
    sch = s_tir.Schedule(func)
    root = get_root_block(sch)
    reduction = get_reduction_blocks(sch, sch.get_child_blocks(root))[0]
    for block in sch.get_child_blocks(root):
        if not sch.get(block).same_as(sch.get(reduction)):
            try:
                sch.compute_inline(block)
            except Exception:  # noqa: BLE001 - a consumer of the reduction: computed at it below
                pass
    bx, tx = sch.split(_fused(sch, _loops_by_kind(sch, reduction)[0]), [None, threads])
    if not emulate:
        sch.bind(bx, "blockIdx.x")
        sch.bind(tx, "threadIdx.x")
    consumers = sch.get_consumers(reduction)
    if not consumers:  # the output itself: summed in a register, stored once (not at every step)
        consumers = [sch.cache_write(reduction, 0, "global")]
    for block in consumers:
        sch.reverse_compute_at(block, tx)
    sch.set_scope(reduction, 0, "local")  # each thread's output value, read by its own epilogue
    return sch


def _reduction_sizes(func) -> tuple[int, int] | None:
    """(outputs, values reduced per output) of a PrimFunc whose one reduction block has constant extents."""
    try:
        block = _one_reduction(func)
        if block is None:
            return None
        outputs, reduced = 1, 1
        for iv in block.iter_vars:
            if not isinstance(iv.dom.extent, tirx.IntImm):
                return None
            if iv.iter_type == tirx.IterVar.DataPar:
                outputs *= int(iv.dom.extent)
            else:
                reduced *= int(iv.dom.extent)
        return outputs, reduced
    except Exception:  # noqa: BLE001 - a form the analysis does not take
        return None


def gpu_schedule(mod: tvm.IRModule, target: tvm.target.Target, tensor_cores: bool = True) -> tvm.IRModule:
    """Ember's and DLight's GPU rules, most specific first; the fallback binds what the others leave.
    ``tensor_cores=False`` leaves 16-bit products on SIMT cores."""
    sm_count = SM_COUNT.get(str(target.attrs.get("arch", "")), 108)
    first = [TensorCoreMatmul(sm_count)] if tensor_cores else []
    with target:
        return dl.ApplyDefaultSchedule(
            *first,
            SmallReduction(),
            SizedMatmul(sm_count),
            dl.gpu.GEMV(),
            dl.gpu.Reduction(),
            dl.gpu.GeneralReduction(),
            dl.gpu.Fallback(),
        )(mod)
