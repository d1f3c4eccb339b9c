"""``infer_types`` and ``check_contract``: result types and shape-contract problems of an op application."""

from __future__ import annotations

from typing import Any, Sequence

from ..ir.types import Type
from .registry import InferContext, get_op


class InferenceError(Exception):
    """Type inference rejected an op application; the message says why."""


def _context(op: str, operands: Sequence[Any], attrs: dict[str, Any], num_outputs: int, node: Any) -> InferContext:
    input_types = [v.type if v is not None else None for v in operands]
    consts = [v.const_value if v is not None else None for v in operands]
    return InferContext(op, input_types, attrs, num_outputs, consts, node)


def check_contract(
    op: str, operands: Sequence[Any], attrs: dict[str, Any], num_outputs: int, node: Any = None
) -> list[str]:
    """Why ``op`` applied to ``operands`` (Values or None) breaks the op's shape contract; empty when it
    holds or when the op has none.  Only static dims and constant operands are judged."""
    op_def = get_op(op)
    if op_def is None or op_def.contract is None:
        return []
    return op_def.check_contract(_context(op, operands, attrs, num_outputs, node))


def infer_types(
    op: str, operands: Sequence[Any], attrs: dict[str, Any], num_outputs: int, node: Any = None
) -> list[Type | None]:
    """Result types of ``op`` applied to ``operands`` (Values or None); None entries are unknown."""
    op_def = get_op(op)
    if op_def is None or op_def.infer is None:
        return [None] * num_outputs
    ctx = _context(op, operands, attrs, num_outputs, node)
    try:
        types = list(op_def.infer(ctx))
    except InferenceError:
        raise
    except Exception as exc:
        raise InferenceError(str(exc) or type(exc).__name__) from None
    return (types + [None] * num_outputs)[:num_outputs]
