"""Helpers for shape contracts: what a family module's ``contract`` functions share.

A contract function takes the ``InferContext`` of one node and returns the
reasons (naming the shapes) why the node breaks its op's contract, or nothing.
It only judges what is known: static dims and constant operands.  A dim that is
a symbol or unknown, an operand of unknown rank, or an absent optional operand
passes.  Contracts only cover what onnx's per-op inference (``infer_onnx.py``)
does not already refuse.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..ir.types import TensorType
from .registry import InferContext

Shape = tuple  # dims: int (static) or str / None (unknown)


def shape(ctx: InferContext, i: int) -> Shape | None:
    """Operand ``i``'s shape when its rank is known (dims may be unknown), else None."""
    if i >= len(ctx.input_types):
        return None
    t = ctx.input_types[i]
    if not isinstance(t, TensorType) or t.shape is None:
        return None
    return tuple(t.shape)


def static(d) -> bool:
    """Whether a dim is a known int."""
    return isinstance(d, (int, np.integer)) and not isinstance(d, bool)


def show(s: Sequence | None) -> str:
    """A shape as the messages print it: [1, 3, ?, 224]."""
    if s is None:
        return "[?]"
    return "[" + ", ".join(str(int(d)) if static(d) else (d if isinstance(d, str) else "?") for d in s) + "]"


def const_ints(ctx: InferContext, i: int) -> list[int] | None:
    """Operand ``i``'s value as ints when it is a constant, else None."""
    if i >= len(ctx.const_inputs) or ctx.const_inputs[i] is None:
        return None
    value = ctx.const_inputs[i]
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "iu":
        return None
    return [int(v) for v in value.reshape(-1)]


def attr(ctx: InferContext, name: str):
    """An attribute's value on the node, else the op's declared default."""
    if name in ctx.attrs:
        return ctx.attrs[name]
    from .registry import get_op

    op_def = get_op(ctx.op)
    return None if op_def is None else op_def.attr_default(name)


def numel(s: Shape | None) -> int | None:
    """The element count of a shape whose dims are all static, else None."""
    if s is None or not all(static(d) for d in s):
        return None
    return int(np.prod([int(d) for d in s], dtype=np.int64))


def unidirectional(what: str, s: Shape | None, target: Shape | None, target_what: str | None = None) -> str | None:
    """Why ``s`` does not broadcast to ``target`` (ONNX unidirectional broadcasting), or None.

    ``target_what`` names the target in the message (default: its shape)."""
    if s is None or target is None:
        return None
    target_what = target_what or show(target)
    if len(s) > len(target):
        return f"{what} {show(s)} has more dims than {target_what}"
    for a, b in zip(reversed(s), reversed(target)):
        if static(a) and static(b) and a != 1 and a != b:
            return f"{what} {show(s)} does not broadcast to {target_what}"
    return None


def length_problem(what: str, s: Shape | None, want, why: str) -> str | None:
    """Why a 1-D operand ``s`` does not have ``want`` entries (both known), or None."""
    if s is None or not static(want):
        return None
    if len(s) != 1:
        return f"{what} {show(s)} must be 1-D with {want} entries ({why})"
    if static(s[0]) and s[0] != want:
        return f"{what} {show(s)} has {s[0]} entries, not {want} ({why})"
    return None


def enum_problem(ctx: InferContext, name: str, allowed: Sequence[str]) -> str | None:
    """Why the string attribute ``name`` is none of ``allowed`` (absent: its default, which is), or None."""
    if name not in ctx.attrs:
        return None
    value = ctx.attrs[name]
    value = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
    if value in allowed:
        return None
    return f"attribute '{name}' is '{value}'; expected one of {', '.join(allowed)}"
