"""Compile-time size checks: exact byte counts, the ``--max-tensor-bytes`` limit, and which kernels
may index a tensor of more than 2^31 - 1 elements. Each refusal is a CodegenError naming the node."""

from __future__ import annotations

import math

import numpy as np

from compiler.ir.types import DType, TensorType
from compiler.ops import Fusion, get_op

from .errors import CodegenError

# 16 GiB: ``ember compile --max-tensor-bytes``, ``compile_model(max_tensor_bytes=)``
DEFAULT_MAX_TENSOR_BYTES = 16 << 30
_INT64_MAX = (1 << 63) - 1


def is_static(value) -> bool:
    """Whether ``value`` is a tensor-like value whose shape is known in every dim."""
    shape = getattr(value.type, "shape", None)
    return shape is not None and all(isinstance(d, int) for d in shape)


def tensor_bytes(shape, dtype) -> int:
    """Bytes of a tensor of static ``shape`` and ``dtype`` in exact (unbounded) integer arithmetic."""
    return math.prod(int(d) for d in shape) * np.dtype(dtype).itemsize


def check_tensor_size(shape, dtype, what: str, node=None, max_tensor_bytes: int = DEFAULT_MAX_TENSOR_BYTES) -> int:
    """``tensor_bytes(shape, dtype)``, or a CodegenError naming ``what`` (and ``node``) when a dim is
    negative, a size does not fit 64 bits, or the tensor is above ``max_tensor_bytes``."""
    where = what  # the node and op are the error's own fields
    if any(int(d) < 0 for d in shape):
        raise CodegenError(f"{where} has a negative dim in shape {list(shape)}", node=node_name(node), op=_op(node))
    elements = math.prod(int(d) for d in shape)
    nbytes = elements * np.dtype(dtype).itemsize
    if nbytes > _INT64_MAX or elements > _INT64_MAX:
        raise CodegenError(
            f"{where}: shape {list(shape)} holds {elements} elements ({nbytes} bytes), which does not fit 64 bits",
            node=node_name(node),
            op=_op(node),
        )
    if nbytes > max_tensor_bytes:
        raise CodegenError(
            f"{where}: shape {list(shape)} of {np.dtype(dtype).name} takes {nbytes} bytes, above the limit of "
            f"{max_tensor_bytes} bytes (raise it with --max-tensor-bytes / max_tensor_bytes=)",
            node=node_name(node),
            op=_op(node),
        )
    return nbytes


INT32_MAX = (1 << 31) - 1
# the ops whose kernels index a tensor of more than 2^31 - 1 elements in 64 bits (check_index_width)
WIDE_FUSION = (Fusion.ELEMENTWISE, Fusion.REDUCTION)


def check_index_width(group, target_name: str = "x86-64") -> None:
    """Refuse (a CodegenError naming the node and op) the kernel of ``group`` when it touches a
    tensor of rank > 1 with more than 2^31 - 1 elements and cannot index it in 64 bits.

    Such a tensor gets int64 dims in TE (``codegen.tvm.te_util.index_shape``: 64-bit loops and
    flattened offsets; a 1-D one as well, in any kernel). A CPU kernel whose every op is
    elementwise or a reduction (``OpDef.fusion`` in ``WIDE_FUSION``: per-dimension indices) is
    built with the generic schedule, its lowered TIR checked for int32 index arithmetic that may
    wrap (``codegen.tvm.index_width``); the others (data movement, Conv, MatMul, pools, extern
    kernels) may compute indices in 32 bits, and CUDA kernels index threads in 32 bits."""
    wide = [
        v
        for n in group
        for v in (*n.operands, *n.results)
        if v is not None and is_static(v) and len(v.type.shape) > 1 and math.prod(v.type.shape) > INT32_MAX
    ]
    for node in group if wide else ():
        fusion = get_op(node.op).fusion
        if target_name == "cuda" or fusion not in WIDE_FUSION:
            why = "on --target cuda" if target_name == "cuda" else f"and {node.op} is {fusion.value}"
            raise CodegenError(
                f"value '{wide[0].name}' of shape {list(wide[0].type.shape)} holds more than 2^31 - 1 elements "
                f"in {len(wide[0].type.shape)} dims; compiled kernels index such tensors in 64 bits only on CPU "
                f"targets and where every op of the kernel is elementwise or a reduction, {why}, so this is not "
                "supported yet (reshape it to 1-D, or run the model with the interpreter)",
                node=node_name(node),
                op=node.op,
            )


def node_name(node) -> str | None:
    return None if node is None else (node.name or "")


def _op(node) -> str | None:
    return None if node is None else node.op


def check_graph_sizes(graph, max_tensor_bytes: int = DEFAULT_MAX_TENSOR_BYTES) -> None:
    """Refuse (CodegenError naming the node) any parameter or result with a static shape above
    ``max_tensor_bytes`` or beyond 64 bits; checked before any kernel is built or memory planned."""
    for p in graph.params:
        shape = getattr(p.type, "shape", None)
        if isinstance(p.type, TensorType) and shape is not None and all(isinstance(d, int) for d in shape):
            check_tensor_size(shape, p.type.dtype.np, f"input '{p.name}'", None, max_tensor_bytes)
    for node in graph.nodes:
        for r in node.results:
            shape = getattr(r.type, "shape", None)
            if not isinstance(r.type, TensorType) or shape is None or not all(isinstance(d, int) for d in shape):
                continue
            if r.type.dtype == DType.STRING:
                continue
            check_tensor_size(shape, r.type.dtype.np, f"value '{r.name}'", node, max_tensor_bytes)
