"""What may join a fused group, by each op's fusion kind (``OpDef.fusion``), TVM FuseOps-style.

A group has the kind of its strongest member: ``ELEMENTWISE`` < ``INJECTIVE`` < ``REDUCTION``, or
``ANCHOR`` (Conv, MatMul, Gemm: out-elementwise-fusable).  A consumer joins a group of kind K when

    K elementwise/injective + consumer elementwise/injective  ->  injective group (chains, diamonds)
    K elementwise/injective + consumer reduction              ->  reduction group (producers inlined)
    K reduction             + consumer elementwise            ->  reduction group (epilogue: Softmax * s)
    K anchor                + consumer elementwise            ->  anchor group (epilogue: Conv + b, Relu),
                                                                  when it keeps the anchor's shape
                                                                  and has one result

and nothing else.  An anchor or reduction group nests at most ``MAX_TRANSCENDENTAL_NESTING``
transcendental ops (``Trait.TRANSCENDENTAL``: e^, log, tanh, erf and the activations built on
them) in any chain of its members: each is a long polynomial in compiled code, and a deeper chain
makes the kernel's expression too large to build (``codegen/tvm/let_binding.py`` then materialises
the chain part-way, which the conv, matmul and reduction schedules do not take; a generic kernel
does).  The rest of such a chain starts a group of its own.

An op that may trap on a run-time index, shape or divisor (``OpDef.may_trap``) joins only when no
integer or boolean operand of it is computed in the group: its kernel checks those values before it
runs, so they must be kernel inputs (GatherElements' indices, an integer Div's divisor). An anchor
never joins a group (it seeds its own; injective producers folded into Conv/MatMul loads,
Pad/Transpose/Slice/Concat, are a TODO: the conv and matmul schedules expect a placeholder as their
data operand), a reduction never joins a reduction or an anchor group, and opaque ops, views (buffer
aliases in codegen), constants, ops with nested graphs and impure ops fuse with nothing.
"""

from __future__ import annotations

from compiler.ir.core import Node
from compiler.ir.types import DType, TensorType
from compiler.ops import Fusion, Trait, get_op

_RANK = {Fusion.ELEMENTWISE: 0, Fusion.INJECTIVE: 1, Fusion.REDUCTION: 2}


def fusion_kind(node: Node) -> Fusion:
    """``node``'s fusion kind, ``OPAQUE`` for anything that cannot be part of a group."""
    op_def = get_op(node.op)
    if op_def is None or op_def.view or node.subgraphs or not node.results:
        return Fusion.OPAQUE
    if not op_def.has(Trait.PURE) or op_def.has(Trait.RANDOM):
        return Fusion.OPAQUE
    if any(not isinstance(r.type, TensorType) or r.type.dtype == DType.STRING for r in node.results):
        return Fusion.OPAQUE
    return op_def.fusion


def joined_kind(group_kind: Fusion, anchor: Node, consumer: Node, prologues: bool = True) -> Fusion | None:
    """The group's kind once ``consumer`` joins a group of ``group_kind`` seeded by ``anchor``,
    or None when it may not join (see the module docstring). Without ``prologues`` a reduction
    joins no group: the GPU schedules (DLight) refuse a reduction with injective producers inlined
    (DenseNet's Concat + BatchNormalization + Relu + GlobalAveragePool)."""
    kind = fusion_kind(consumer)
    if not prologues and kind == Fusion.REDUCTION:
        return None
    if kind == Fusion.OPAQUE or kind == Fusion.ANCHOR:
        return None
    if group_kind == Fusion.ANCHOR:
        if kind != Fusion.ELEMENTWISE or len(consumer.results) != 1:
            return None
        return group_kind if consumer.results[0].type.shape == anchor.results[0].type.shape else None
    if group_kind == Fusion.REDUCTION:
        return group_kind if kind == Fusion.ELEMENTWISE else None
    return max(group_kind, kind, key=_RANK.__getitem__)


MAX_TRANSCENDENTAL_NESTING = 2  # Mish written out (Softplus, Tanh, Mul) after a conv is two


def transcendental_depth(node: Node, depth_of: dict[int, int]) -> int:
    """How many transcendental ops nest in ``node``'s value within a group: ``node`` itself, if it is
    one, plus the most of its operands' producers (``depth_of``: member id -> depth; others 0)."""
    op_def = get_op(node.op)
    own = int(op_def is not None and op_def.has(Trait.TRANSCENDENTAL))
    inner = [depth_of.get(id(v.producer), 0) for v in node.operands if v is not None and v.producer is not None]
    return own + max(inner, default=0)


def nests_too_deep(group_kind: Fusion, depth: int) -> bool:
    """Whether a member ``depth`` transcendental ops deep may not be part of a group of this kind."""
    return group_kind in (Fusion.ANCHOR, Fusion.REDUCTION) and depth > MAX_TRANSCENDENTAL_NESTING


def reads_checked_value(consumer: Node, members: set[int]) -> bool:
    """Whether ``consumer`` may trap on a non-float operand that a member of the group computes
    (a kernel checks such values, indices, shapes and integer divisors, among its inputs)."""
    op_def = get_op(consumer.op)
    if op_def is None or not op_def.may_trap:
        return False
    return any(
        v is not None
        and v.producer is not None
        and id(v.producer) in members
        and isinstance(v.type, TensorType)
        and not v.type.dtype.is_float
        for v in consumer.operands
    )


def single_output(group_kind: Fusion) -> bool:
    """Whether a group of this kind must have one output: the conv and matmul schedules tile one
    write-back, so an anchor group keeps one result (an intermediate used outside stops it)."""
    return group_kind == Fusion.ANCHOR
