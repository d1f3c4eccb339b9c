"""Small queries shared by the simplify rule sets (types, constants, uses)."""

from __future__ import annotations

import numpy as np

from compiler.ir.core import Graph, Node, Value
from compiler.ir.types import TensorType
from compiler.ops import get_op


def tensor_type(v: Value | None) -> TensorType | None:
    """The value's TensorType, or None for absent values and non-tensors."""
    return v.type if v is not None and isinstance(v.type, TensorType) else None


def static_shape(v: Value | None) -> tuple[int, ...] | None:
    """The fully static shape of ``v``, else None."""
    t = tensor_type(v)
    return tuple(t.shape) if t is not None and t.shape is not None and t.is_static else None


def same_type(a: Value, b: Value) -> bool:
    """True if both are tensors of the same dtype and the same known shape (symbols compared by name)."""
    ta, tb = tensor_type(a), tensor_type(b)
    return (
        ta is not None
        and tb is not None
        and ta.dtype == tb.dtype
        and ta.shape is not None
        and tb.shape is not None
        and tuple(ta.shape) == tuple(tb.shape)
        and None not in ta.shape
    )


def is_float(v: Value | None) -> bool:
    t = tensor_type(v)
    return t is not None and t.dtype.is_float


def is_graph_output(v: Value) -> bool:
    return any(isinstance(u.user, Graph) for u in v.uses)


def only_use_is(v: Value, node: Node) -> bool:
    """True if ``node`` is the only reader of ``v`` (and ``v`` is not a graph output)."""
    return bool(v.uses) and all(u.user is node for u in v.uses)


def splat(array: np.ndarray | None) -> float | None:
    """The single value of a non-empty constant whose elements are all equal, else None."""
    if array is None or array.size == 0 or array.dtype.kind not in "biuf":
        return None
    first = array.flat[0]
    return float(first) if np.all(array == first) else None


def attr(node: Node, name: str):
    """The node's attribute, falling back to the op's declared default."""
    op_def = get_op(node.op)
    return op_def.get_attr(node.attrs, name) if op_def is not None else node.attrs.get(name)


def const_ints(v: Value | None) -> list[int] | None:
    """A constant integer operand as a list, else None."""
    c = None if v is None else v.const_value
    return None if c is None or c.dtype.kind not in "iu" else [int(i) for i in c.reshape(-1)]


def normalized_axes(node: Node, rank: int | None, input_index: int = 1) -> list[int] | None:
    """The sorted, non-negative axes of a reduce/squeeze-like node (input or attribute), else None."""
    if rank is None:
        return None
    axes = const_ints(node.operands[input_index]) if len(node.operands) > input_index else None
    if axes is None:
        axes = node.attrs.get("axes")
    if axes is None:
        return None
    return sorted(a + rank if a < 0 else a for a in axes)


def broadcast_is_per_channel(array: np.ndarray, out_rank: int, channels: int, axis: int = 1) -> bool:
    """True if ``array`` broadcast against a rank-``out_rank`` tensor varies only along ``axis``."""
    if array.ndim > out_rank:
        return False
    shape = (1,) * (out_rank - array.ndim) + array.shape
    return all(d == 1 for i, d in enumerate(shape) if i != axis) and shape[axis] in (1, channels)


def per_channel_vector(array: np.ndarray, out_rank: int, channels: int, axis: int = 1) -> np.ndarray:
    """The per-channel factors of a ``broadcast_is_per_channel`` constant, as a 1-D array of ``channels``."""
    shape = (1,) * (out_rank - array.ndim) + array.shape
    return np.broadcast_to(array.reshape(shape[axis]), (channels,)).copy()


def close_to(value: float | None, target: float, rtol: float = 1e-5) -> bool:
    return value is not None and abs(value - target) <= rtol * abs(target)
