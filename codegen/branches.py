"""Run-time branches in a plan: an ``If`` whose condition is known only at run time.

A plan's program (``Plan.steps``) is a list of steps, each a kernel call (its index in
``Plan.calls``) or an ``IfStep``.  An ``IfStep`` reads its condition buffer (one bool) and runs one of
two ``Block``s: the block's own steps (kernel calls, nested ``IfStep``s), then its copies, which move
each branch result into the If's result buffer when the planner could not make the branch write
it in place.  ``Plan.calls`` keeps every call of every branch, in program order, so kernel
de-duplication, the profiler's call table and weight layout see one flat list; only the driver
(``codegen/aot/emit_c.py``) and the memory planner follow the tree.

Memory: ``linear_steps`` numbers the program in order, the not-taken branch included, and the
memory planner measures lifetimes in those numbers.  The two branches of an If occupy disjoint
step ranges, so their temporaries may share arena bytes (only one runs); a value read in either
branch, or written in one and read after the If, stays live across both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Union


@dataclass
class Block:
    """One branch of an ``IfStep``: its steps, then ``copies`` as (source, destination) buffer ids."""

    steps: list = field(default_factory=list)  # int (an index into Plan.calls) | IfStep
    copies: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class IfStep:
    """Run ``then`` when the one-element bool buffer ``cond`` is true, else ``orelse``."""

    node: str  # the If node's label, for comments and messages
    cond: int  # buffer id
    then: Block
    orelse: Block
    results: list[int] = field(default_factory=list)  # the If's result buffers


Step = Union[int, IfStep]


def linear_steps(steps: list, call_buffers) -> Iterator[list[int]]:
    """Per step of the program in order (both branches of every If), the buffer ids it touches:
    ``call_buffers(i)`` for call ``i``, the condition for an If's test, both sides of every copy
    for a branch's copies."""
    for step in steps:
        if isinstance(step, IfStep):
            yield [step.cond]
            for block in (step.then, step.orelse):
                yield from linear_steps(block.steps, call_buffers)
                if block.copies:
                    yield [b for pair in block.copies for b in pair]
        else:
            yield call_buffers(step)


def driver_reads(steps: list) -> set[int]:
    """Buffers the driver itself reads outside kernel calls: If conditions and copy sources."""
    out: set[int] = set()
    for step in steps:
        if isinstance(step, IfStep):
            out.add(step.cond)
            for block in (step.then, step.orelse):
                out.update(src for src, _ in block.copies)
                out |= driver_reads(block.steps)
    return out


def has_branches(steps: list) -> bool:
    return any(isinstance(s, IfStep) for s in steps)


def run_cost(steps: list, cost_of_call) -> int:
    """``cost_of_call(i)`` summed over one run: the larger branch of each If."""
    total = 0
    for step in steps:
        if isinstance(step, IfStep):
            total += max(run_cost(step.then.steps, cost_of_call), run_cost(step.orelse.steps, cost_of_call))
        else:
            total += cost_of_call(step)
    return total
