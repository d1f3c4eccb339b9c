"""Readers of shape parameters that may arrive at run time (views, Slice, Pad, Expand, Tile, ...).

A library has static shapes: every result type is known when it is compiled (from shape inference
or the model's declared output types). A parameter such as Reshape's ``shape`` or Slice's
``starts`` may still be a run-time input of the model. Such an operand becomes a kernel input: the
lowering computes with its value where the value matters (Slice's start and step, Pad's offsets)
and checks, with ``ctx.require``, that the value yields the result shape the library was compiled
for. Any other value makes the run fail with a message, never a wrong or out-of-bounds result.

Each lowering writes its index arithmetic once, over a ``get(tensor, i)`` reader, so that the
same formulas serve the kernel body (TE reads, ``te_get``), the run-time check (TIR buffer
loads, ``guard_get``) and constants (``const_get``); this module holds those readers.
"""

from __future__ import annotations

import numpy as np
from tvm import tirx

from ...tir_util import I64


def te_get(tensor, i):
    """Element ``i`` of a run-time operand as the kernel body reads it (int64)."""
    return tensor[i].astype(I64) if len(tensor.shape) else tensor().astype(I64)


def guard_get(read):
    """A reader of run-time operand elements for a ``ctx.require`` check (int64), over its ``read``."""
    return lambda tensor, i: (read(tensor, i) if len(tensor.shape) else read(tensor)).astype(I64)


def const_get(values):
    """A reader over a compile-time array, so static and run-time operands share one formula."""
    return lambda _tensor, i: tirx.const(int(np.asarray(values).reshape(-1)[i]), I64)


def pick(index, values):
    """``values[index]`` for a run-time ``index`` over a short static list (a Select chain)."""
    out = tirx.const(int(values[-1]) if values else 0, I64)
    for k in range(len(values) - 2, -1, -1):
        out = tirx.Select(index == k, tirx.const(int(values[k]), I64), out)
    return out


def norm_axis(a, rank: int):
    """A run-time axis ``a`` of a rank-``rank`` tensor, negative values counted from the end."""
    return tirx.Select(a < 0, a + rank, a)


def operand_length(ctx, k: int) -> int:
    """Number of elements of operand ``k`` (its static type)."""
    shape = ctx.in_types[k][0]
    return int(np.prod(shape)) if len(shape) else 1


def operand_getter(ctx, k, tensor):
    """(reader for the kernel body, reader maker for the guard, source) of operand ``k``."""
    if ctx.static(k) is not None:
        get = const_get(ctx.static(k))
        return get, (lambda _read: get), None
    return te_get, guard_get, tensor
