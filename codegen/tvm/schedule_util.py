"""Small schedule primitives shared by the CPU schedules (``schedule.py``, ``schedule_pixel_conv.py``)
and the lowerings that schedule their own stages (``lower/dot_kernels.py``)."""

from __future__ import annotations

from .index_width import INT32_MAX, PARALLEL_TASKS_MAX
from .te_util import MATERIALISE_KEY

PARALLEL_MIN_WORK = 1 << 14  # elements below which a parallel launch costs more than it saves


def child_blocks(sch):
    return sch.get_child_blocks(sch.get_sblock("root")) if _has_root(sch) else []


def _has_root(sch) -> bool:
    try:
        sch.get_sblock("root")
        return True
    except Exception:
        return False


def is_reduction(sch, block) -> bool:
    return any(int(iv.iter_type) != 0 for iv in sch.get(block).iter_vars)


def reductions_under(sch, parent) -> list:
    """The reduction blocks under ``parent`` (a loop or block), through the blocks that wrap them (a
    loop partition's)."""
    found = []
    for block in sch.get_child_blocks(parent):
        found += [block] if is_reduction(sch, block) else reductions_under(sch, block)
    return found


def loop_extent(sch, loop) -> int:
    return int(sch.get(loop).extent)


def block_name(sch, block) -> str:
    return sch.get(block).name_hint


def is_materialised(sch, block) -> bool:
    """Whether the lowering marked ``block`` to keep its own loop nest (``te_util.MATERIALISED``)."""
    return bool(int(sch.get(block).annotations.get(MATERIALISE_KEY, 0)))


def inline_injective(sch) -> None:
    """Inline every non-output spatial block (except those marked materialised) into its consumers."""
    changed = True
    while changed:
        changed = False
        outputs = {sch.get(b).name_hint for b in sch.get_output_blocks(sch.get_sblock("root"))}
        for block in child_blocks(sch):
            name = block_name(sch, block)
            if name in outputs or is_reduction(sch, block) or is_materialised(sch, block):
                continue
            try:
                sch.compute_inline(block)
                changed = True
                break
            except Exception:
                try:
                    sch.reverse_compute_inline(block)
                    changed = True
                    break
                except Exception:
                    continue


def divisor_at_most(n: int, limit: int, prefer_min: int = 1) -> int:
    """The largest divisor of ``n`` from ``limit`` down to ``prefer_min``, else 1."""
    for d in range(min(n, limit), prefer_min - 1, -1):
        if n % d == 0:
            return d
    return 1


def output_block(sch):
    """The one output block of the schedule's root (ValueError where there are several)."""
    outs = sch.get_output_blocks(sch.get_sblock("root"))
    if len(outs) != 1:
        raise ValueError("expected one output block")
    return outs[0]


def vectorize_rows(sch, block, lanes: int) -> None:
    """Vectorise the innermost (output row) loop of an NCHW write-back block: in whole vectors where
    they divide it, else, up to ``4 * lanes`` wide (7, 14, 28, 55), as one vector, which LLVM splits
    into whole registers and a masked part. Where LLVM left such a row scalar, its strided reads of a
    channel-blocked accumulator plus a fused residual Add cost more than a pass of their own (a
    one-node 256 -> 1024 1x1 conv at 14 x 14 with Add and Relu, its residual a graph input: 1.39 ->
    1.07 ms; inside the zoo's models LLVM had vectorised those rows already)."""
    last = sch.get_loops(block)[-1]
    extent = loop_extent(sch, last)
    try:
        if extent % lanes == 0 and extent > lanes:
            sch.vectorize(sch.split(last, [None, lanes])[1])
        elif extent % 8 == 0 and extent > 8:
            sch.vectorize(sch.split(last, [None, 8])[1])
        elif 1 < extent <= 4 * lanes:
            sch.vectorize(last)
    except Exception:
        pass


def vectorize_whole_vectors(sch, loop, lanes: int) -> None:
    """Vectorise ``loop`` (an NCHW write-back's output row) as whole ``lanes``-wide vectors and one
    shorter vector for the rest (a 56-pixel row: 3 x 16 + 8): a row vectorised as one 56-lane vector
    is legalised by LLVM with each per-channel scalar broadcast built by element inserts (``vinsertps``
    chains) and spills.  Rows of at most ``lanes`` are one vector."""
    extent = loop_extent(sch, loop)
    if extent <= lanes or extent % lanes == 0:
        if extent > lanes:
            loop = sch.split(loop, [None, lanes])[1]
        sch.vectorize(loop)
        return
    whole, rest = sch.loop_partition(loop, [extent // lanes * lanes, None])
    sch.vectorize(sch.split(whole, [None, lanes])[1])
    sch.vectorize(rest)


def select_bounds(sch, block, extent: int, axis: int = -1) -> list[int]:
    """Where along the block's ``axis`` (by default its innermost) its body's conditions (``v < c``,
    ``c <= v``...: a Concat's parts, a padded border) change: the sorted constants strictly inside
    (0, extent). Read from the body's TVMScript: TVM 0.27 exposes no TIR expression visitor to Python."""
    import re

    iters = sch.get(block).iter_vars
    if not iters:
        return []
    name = re.escape(iters[axis].var.name)
    text = str(sch.get(block).body)
    bounds = {int(c) for c in re.findall(rf"\b{name} (?:<|>=) (\d+)\b", text)}
    bounds |= {int(c) for c in re.findall(rf"\b(\d+) (?:<=|>) {name}\b", text)}
    bounds |= {int(c) + 1 for c in re.findall(rf"\b{name} (?:<=|>) (\d+)\b", text)}
    bounds |= {int(c) + 1 for c in re.findall(rf"\b(\d+) (?:<|>=) {name}\b", text)}
    return sorted(b for b in bounds if 0 < b < extent)


def partition_at(sch, loop, bounds: list[int]) -> list:
    """Cut ``loop`` (starting at 0) at the sorted ``bounds`` (``select_bounds``), so that each part's
    conditions are constant and TVM simplifies them away; nothing where there are none. Returns the
    parts (``[loop]`` when uncut)."""
    if not bounds:
        return [loop]
    return sch.loop_partition(loop, [b - a for a, b in zip([0, *bounds], bounds)] + [None])  # last part inferred


def parallel(sch, loop) -> None:
    """``sch.parallel(loop)``, unless the loop has within ``PARALLEL_TASKS_MAX`` of 2^31 - 1
    iterations, where LLVM code generation's split of an int32 loop into tasks would wrap (an
    [n, 1] tensor of nearly 2^31 elements): that loop stays serial."""
    if not INT32_MAX - PARALLEL_TASKS_MAX < loop_extent(sch, loop) <= INT32_MAX:
        sch.parallel(loop)
