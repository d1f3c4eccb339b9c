"""The TVM lowering record of an op, and the decorator that adds it to the op registry.

Each lowering receives a ``LowerContext`` (attributes, operand/result types, compile-time values of
its static operands) and the TE tensors of its dynamic operands, and returns the result tensor(s).
What belongs to the op itself (it is a view, its fusion kind, its FLOP count) lives on its
``OpDef`` (``compiler.ops``); the ``OpLowering`` holds the TVM facts: the builder, which operands
must be compile-time constants (or may come at run time), weight prepacking, and ``kind``, the
schedule family that fits (``injective``, ``reduce``, ``conv``, ``matmul``, ``pool``, ``extern``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from compiler.ops import add_lowering, get_op, ops_with_lowering

from ..errors import CodegenError


@dataclass
class LowerContext:
    """Everything a lowering function may look at besides its TE operands."""

    op: str
    attrs: dict[str, Any]
    in_types: list  # (shape tuple, numpy dtype) per operand, None for absent optional operands
    out_types: list  # (shape tuple, numpy dtype) per result
    statics: dict[int, np.ndarray] = field(default_factory=dict)
    packed: frozenset = frozenset()  # operand indices already transformed by the op's prepack hook
    guards: list = field(default_factory=list)  # (predicate, message) pairs checked at run time
    schedule: Any = None  # the target's codegen.target.ScheduleParams (None: x86's tiles)
    fused_operands: frozenset = frozenset()  # operand indices computed by an earlier op of the same kernel

    def attr(self, name: str, default=None):
        return self.attrs.get(name, default)

    def static(self, index: int, default=None):
        """The compile-time value of operand ``index`` (None/absent -> default)."""
        value = self.statics.get(index)
        return default if value is None else value

    def out_dtype(self, index: int = 0) -> str:
        return str(np.dtype(self.out_types[index][1]))

    def out_shape(self, index: int = 0) -> tuple:
        """Result ``index``'s shape for ``te.compute``: ints, or int64 constants for a tensor of
        more than 2^31 - 1 elements (``te_util.index_shape``: 64-bit loops and offsets)."""
        from .te_util import index_shape

        return index_shape(self.out_types[index][0])

    def require(self, predicate: Callable, message: str) -> None:
        """Check a run-time operand when the kernel starts: ``predicate(read)`` must be true.

        ``read(tensor, *index)`` loads one element of a kernel input (a run-time operand's TE tensor)
        as a TIR expression. When the predicate is false the kernel returns an error with ``message``
        (the library's run function then fails with it) instead of computing a wrong result.
        """
        self.guards.append((predicate, f"{self.op}: {message}"))

    def fail(self, why: str) -> CodegenError:
        return CodegenError(f"{self.op}: {why}")


@dataclass(frozen=True)
class OpLowering:
    """How to lower one op to TVM: the TE builder and the facts the planner and scheduler need
    beyond the op's own (``OpDef.view``, ``OpDef.fusion``, ``OpDef.count_flops``)."""

    op: str
    build: Callable
    static_operands: tuple[int, ...] = ()
    kind: str = "injective"  # the schedule family (codegen.tvm.schedule)
    prepack: tuple = ()  # (operand index, fn(attrs, in_types, array) -> array) for constant operands
    # static operands that may also come at run time: the lowering then receives their TE tensor
    # (``ctx.static(k)`` is None), takes what it can from the result types, and checks the values
    # with ``ctx.require`` so that a value the library was not compiled for fails cleanly
    runtime: tuple[int, ...] = ()
    # fn(attrs, in_types, constant) -> bool: whether the op as it is runs on this lowering's fast
    # kernel, asked by codegen-prepare's rewrites before they turn it into one that does (in_types:
    # (shape, dtype) per operand, None where absent; constant(i): operand i's value, or None)
    native: Callable | None = None


BACKEND = "tvm"  # the name these lowerings are registered under in the op registry (OpDef.lowerings)


def lowering(
    *ops: str,
    static: tuple[int, ...] = (),
    kind: str = "injective",
    prepack: dict | None = None,
    runtime: tuple[int, ...] = (),
    native: Callable | None = None,
):
    """Decorator adding ``fn(ctx, *operands)`` to the op registry as the TVM lowering of each op in
    ``ops`` (a second lowering of an op raises: ``compiler.ops.add_lowering``)."""

    def wrap(fn):
        for op in ops:
            add_lowering(
                op,
                BACKEND,
                OpLowering(
                    op, fn, tuple(static), kind, tuple((prepack or {}).items()), tuple(sorted(set(runtime))), native
                ),
            )
        return fn

    return wrap


def get_lowering(op: str) -> OpLowering | None:
    """The TVM lowering of ``op`` from the op registry (every lowering module loaded first), or None."""
    op_def = get_op(op)
    return None if op_def is None else op_def.lowering(BACKEND)


def supported_ops() -> set[str]:
    """Names of the ops that have a TVM lowering."""
    return {op.name for op in ops_with_lowering(BACKEND)}
