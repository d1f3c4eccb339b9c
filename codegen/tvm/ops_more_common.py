"""Helpers shared by the ``ops_more_*`` lowering modules.

``lowering_if_missing`` registers like ``registry.lowering`` but leaves an op alone when another
module already lowers it: the core tables (elementwise, nn, tensor, reduce) load first and win,
so the conformance-driven lowerings here never shadow them.
"""

from __future__ import annotations

from .registry import has_lowering, lowering


def lowering_if_missing(*ops: str, **kw):
    """``@lowering(*ops, **kw)`` restricted to the ops that have no lowering yet."""
    missing = tuple(op for op in ops if not has_lowering(op))

    def wrap(fn):
        return lowering(*missing, **kw)(fn) if missing else fn

    return wrap


def ints(values) -> list[int]:
    """A static operand or attribute as a list of Python ints."""
    return [int(v) for v in (values.reshape(-1).tolist() if hasattr(values, "reshape") else values)]
