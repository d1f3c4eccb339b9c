"""Static memory planning: give every activation storage an offset in one arena.

Lifetimes are measured in kernel-call steps: a storage is live from the step that writes it (graph
inputs: step -1) to the last step that reads it (graph outputs: the final copy-out step).  A run-time
``If`` is numbered in program order, both branches, each branch's result copies a step of their own
(``codegen.branches.linear_steps``): the two branches' temporaries never overlap, so they share bytes. Storages
whose lifetimes overlap never share bytes; the others reuse memory, placed largest first at the
lowest offset that fits (greedy best-fit). All offsets are 64-byte aligned.
"""

from __future__ import annotations

from dataclasses import dataclass

from .branches import linear_steps
from .errors import CodegenError
from .plan import ALIGN_BYTES as ALIGN
from .plan import Plan


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass
class MemoryPlan:
    """``offsets[storage id]`` in an arena of ``arena_bytes``; ``naive_bytes`` is without reuse."""

    offsets: dict[int, int]
    arena_bytes: int
    naive_bytes: int


def plan_memory(plan: Plan) -> MemoryPlan:
    """Assign arena offsets to every non-constant storage of ``plan``."""
    program = list(linear_steps(plan.program, lambda i: plan.calls[i].inputs + plan.calls[i].outputs))
    end = len(program)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    size: dict[int, int] = {}

    def touch(bid: int, step: int) -> None:
        buf = plan.buffers[bid]
        if buf.kind == "const":
            return
        s = buf.storage
        size[s] = max(size.get(s, 0), _align(buf.offset + buf.nbytes))  # a Concat's slices end inside it
        first[s] = min(first.get(s, step), step)
        last[s] = max(last.get(s, step), step)

    for bid in plan.inputs:
        touch(bid, -1)
    for step, touched in enumerate(program):
        for bid in touched:
            touch(bid, step)
    for bid in plan.outputs:
        touch(bid, end)
    for buf in plan.buffers:  # views keep their storage alive as long as any view is used
        if buf.kind != "const" and buf.storage in first and buf.id != buf.storage:
            pass

    placed: list[tuple[int, int, int, int]] = []  # (offset, size, first, last)
    offsets: dict[int, int] = {}
    for s in sorted(size, key=lambda s: (-size[s], first[s])):
        conflicts = sorted((o, n) for o, n, f, end in placed if not (end < first[s] or last[s] < f))
        offset = 0
        for o, n in conflicts:
            if offset + size[s] <= o:
                break
            offset = max(offset, o + n)
        offsets[s] = offset
        placed.append((offset, size[s], first[s], last[s]))
    arena = _align(max((o + n for o, n, _, _ in placed), default=0))
    if arena > (1 << 63) - 1:  # Python ints never wrap: the C constants must not either
        raise CodegenError(f"the activation arena needs {arena} bytes, which does not fit 64 bits")
    return MemoryPlan(offsets, arena, sum(size.values()))
