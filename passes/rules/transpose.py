"""Transposes sunk towards the outputs, where they meet and cancel (all exact).

Every rule is rooted at a ``Transpose`` ``t = Transpose(x, perm=p)`` whose only reader is the node
it moves past (a Transpose read twice would be duplicated, not moved, so it stays). Which ops a
Transpose moves past is asked of the op (``Trait.ELEMENTWISE``, ``Trait.REDUCTION``), never listed.

Rewrites:

- ``U(t, ...)`` -> ``Transpose(U(x, ...), p)`` for a pure elementwise ``U`` with no ``axis``
  attribute whose other operands are each ``t`` again, a scalar, a constant (permuted at compile
  time: ``c`` -> ``Transpose(c broadcast to rank r, inverse(p))``) or another single-use
  ``Transpose(y, p)`` with the same ``p`` (which is dropped);
- ``Reduce(t, axes=A, keepdims=1)`` -> ``Transpose(Reduce(x, axes=p[A]), p)``; with ``keepdims=0``
  the outer permutation is ``p`` restricted to the dims kept (the identity drops it); likewise
  ``ArgMax``/``ArgMin`` with ``axis``;
- ``Transpose(x, p)`` -> ``Reshape(x, shape)`` when ``p`` only moves size-1 dims (the dims larger
  than 1 keep their order), so the copy becomes a view (static shapes only).

``Transpose∘Transpose`` and identity permutations are the ``shape`` rules' (``transpose-transpose``,
``transpose-identity``); ``sink-transposes`` runs them with these so that sunk Transposes cancel.
"""

from __future__ import annotations

import numpy as np

from compiler.ir.core import Node, Value
from compiler.ops import Trait, all_ops, get_op
from compiler.rewrite import MatchResult, NodeRule, RuleSet

from .common import attr, is_graph_output, normalized_axes, tensor_type


def perm_of(node: Node, rank: int) -> list[int]:
    """The node's permutation (ONNX's default reverses the dims)."""
    perm = node.attrs.get("perm")
    return [int(i) for i in perm] if perm is not None else list(range(rank))[::-1]


def inverse(perm: list[int]) -> list[int]:
    out = [0] * len(perm)
    for i, p in enumerate(perm):
        out[p] = i
    return out


def _sole_reader(t: Node) -> Node | MatchResult:
    """The one node reading ``t``'s result (possibly at several operands), else a failure saying why."""
    result = t.results[0]
    if is_graph_output(result):
        return MatchResult.fail("the transposed value is a graph output")
    readers = {id(u.user): u.user for u in result.uses}
    if len(readers) != 1:
        return MatchResult.fail(f"the transposed value has {len(readers)} readers, not one")
    return next(iter(readers.values()))


def _rank(v: Value | None) -> int | None:
    t = tensor_type(v)
    return None if t is None else t.rank


def _permuted_constant(array: np.ndarray, rank: int, perm: list[int]) -> np.ndarray:
    """``c'`` with ``Transpose(c', perm)`` equal to ``array`` broadcast to ``rank`` dims."""
    shaped = array.reshape((1,) * (rank - array.ndim) + array.shape)
    return np.ascontiguousarray(np.transpose(shaped, inverse(perm)))


def sinkable_elementwise(node: Node) -> MatchResult:
    op_def = get_op(node.op)
    if op_def is None or not (op_def.has(Trait.ELEMENTWISE) and op_def.has(Trait.PURE)):
        return MatchResult.fail(f"{node.op} is not a pure elementwise op")
    if "axis" in op_def.attrs or len(node.results) != 1 or node.subgraphs:
        return MatchResult.fail(f"{node.op} has an axis or several results")
    return MatchResult.success()


def _sink_through_elementwise(t: Node, rw) -> bool | MatchResult:
    user = _sole_reader(t)
    if isinstance(user, MatchResult):
        return user
    verdict = sinkable_elementwise(user)
    if not verdict:
        return verdict
    rank = _rank(t.results[0])
    if rank is None or _rank(user.results[0]) != rank:
        return MatchResult.fail("the rank is unknown or the elementwise op broadcasts the transposed value")
    perm = perm_of(t, rank)
    rw.set_insertion_point_before(user)
    operands: list[Value | None] = []
    dropped: list[Node] = []
    for v in user.operands:
        producer = v.producer if v is not None else None
        if v is None or v is t.results[0]:
            operands.append(t.operands[0] if v is not None else None)
        elif _rank(v) == 0:
            operands.append(v)
        elif v.const_value is not None and _rank(v) is not None and _rank(v) <= rank:
            operands.append(rw.constant(_permuted_constant(np.asarray(v.const_value), rank, perm)))
        elif (
            producer is not None
            and producer.op == "Transpose"
            and _rank(v) == rank
            and perm_of(producer, rank) == perm
            and not isinstance(_sole_reader(producer), MatchResult)
        ):
            operands.append(producer.operands[0])
            dropped.append(producer)
        else:
            return MatchResult.fail(f"operand {v.name or '?'} of {user.op} is neither constant nor transposed alike")
    inner = rw.op(user.op, operands, dict(user.attrs))
    rw.replace_node(user, rw.op("Transpose", [inner], {"perm": perm}))
    for node in [t, *{id(n): n for n in dropped}.values()]:
        if not node.results[0].has_uses():
            rw.erase_node(node)
    return True


def _sink_through_reduction(t: Node, rw) -> bool | MatchResult:
    user = _sole_reader(t)
    if isinstance(user, MatchResult):
        return user
    op_def = get_op(user.op)
    if op_def is None or not op_def.has(Trait.REDUCTION) or user.operands[0] is not t.results[0]:
        return MatchResult.fail(f"{user.op} is not a reduction of the transposed value")
    rank = _rank(t.results[0])
    if rank is None:
        return MatchResult.fail("unknown rank")
    perm = perm_of(t, rank)
    single_axis = "axis" in op_def.attrs
    if single_axis:
        axis = int(attr(user, "axis"))
        axes = [axis + rank if axis < 0 else axis]
    else:
        axes = normalized_axes(user, rank)
        if not axes:
            return MatchResult.fail("the axes are not constant (or empty)")
    new_axes = sorted(perm[a] for a in axes)
    attrs = dict(user.attrs)
    operands = list(user.operands)
    operands[0] = t.operands[0]
    rw.set_insertion_point_before(user)
    if single_axis:
        attrs["axis"] = new_axes[0]
    elif "axes" in attrs:
        attrs["axes"] = new_axes
    else:
        operands[1] = rw.constant(np.array(new_axes, np.int64))
    if attr(user, "keepdims"):
        outer = perm
    else:
        kept = [k for k in range(rank) if k not in new_axes]
        outer = [kept.index(perm[i]) for i in range(rank) if i not in axes]
    inner = rw.op(user.op, operands, attrs)
    replacement = inner if outer == list(range(len(outer))) else rw.op("Transpose", [inner], {"perm": outer})
    rw.replace_node(user, replacement)
    rw.erase_node(t)
    return True


def _transpose_as_reshape(t: Node, rw) -> bool | MatchResult:
    t_in, t_out = tensor_type(t.operands[0]), tensor_type(t.results[0])
    if t_in is None or t_out is None or not t_in.is_static or not t_out.is_static:
        return MatchResult.fail("the shapes are not static")
    shape = tuple(t_in.shape)
    perm = perm_of(t, len(shape))
    moved = [p for p in perm if shape[p] != 1]
    if moved != sorted(moved):
        return MatchResult.fail("the permutation reorders dims larger than 1")
    rw.replace_node(t, rw.op("Reshape", [t.operands[0], rw.constant(np.array(t_out.shape, np.int64))]))
    return True


def _names_perm(t: Node) -> MatchResult:
    return MatchResult.success() if _rank(t.operands[0]) is not None else MatchResult.fail("unknown rank")


sink_elementwise = NodeRule("Transpose", _sink_through_elementwise, check=_names_perm, name="transpose-elementwise")
sink_reduction = NodeRule("Transpose", _sink_through_reduction, check=_names_perm, name="transpose-reduction")
as_reshape = NodeRule("Transpose", _transpose_as_reshape, name="transpose-as-reshape", benefit=2)

RULES = RuleSet([as_reshape, sink_elementwise, sink_reduction], name="transpose")


def rules(fast_math: bool = False) -> RuleSet:
    """The transpose-sinking rules (all exact, so ``fast_math`` changes nothing)."""
    return RULES


def sinkable_ops() -> list[str]:
    """The ops a Transpose moves past, as the registry declares them (for docs and tests)."""
    return sorted(
        o.name
        for o in all_ops()
        if (o.has(Trait.ELEMENTWISE) and o.has(Trait.PURE) and "axis" not in o.attrs) or o.has(Trait.REDUCTION)
    )
