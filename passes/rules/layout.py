"""Blocked-layout propagation: ``ember.LayoutTransform`` back to NCHW sunk and cancelled (all exact).

``back(y)`` is ``ember.LayoutTransform(y){src = NCHW{c}c, dst = NCHW}``, ``fwd`` the inverse.

Rewrites:

- ``fwd(back(y))`` -> ``y`` (and ``back(fwd(x))`` -> ``x``), whatever else reads the inner value;
- ``U(back(y), ...)`` -> ``back(U(y, ...))`` for a pure elementwise ``U`` with no ``axis``
  attribute (asked of the op: ``Trait.ELEMENTWISE``) when ``back(y)`` has no other reader, the
  result has ``back(y)``'s shape, and every other operand is ``back(y)`` again, a scalar, another
  single-use ``back(z)`` in the same layout (residual ``Add``), or a constant that broadcasts per
  channel or not along channels at all (blocked at compile time: ``[C,1,1]`` -> ``[1,C/c,1,1,c]``);
- ``Concat(back(a), back(b), ..., axis=1)`` -> ``back(Concat(a, b, ..., axis=1))`` when every
  operand is a single-use ``back`` in the same layout: each operand's channels are whole blocks, so
  joining blocks is joining channels (dense blocks, YOLO's C2f, channel splits joined again).
"""

from __future__ import annotations

import numpy as np

from compiler.ir.core import Node, Value
from compiler.ops.ember_layout import PLAIN, lanes_of, to_blocked
from compiler.rewrite import MatchResult, NodeRule, RuleSet

from .common import is_graph_output, static_shape, tensor_type
from .transpose import sinkable_elementwise

TRANSFORM = "ember.LayoutTransform"


def _is_back(node: Node | None) -> bool:
    return node is not None and node.op == TRANSFORM and node.attrs["dst"] == PLAIN


def _sole_reader(node: Node) -> Node | None:
    result = node.results[0]
    readers = {id(u.user): u.user for u in result.uses}
    return None if is_graph_output(result) or len(readers) != 1 else next(iter(readers.values()))


def _cancel(node: Node, rw) -> bool | MatchResult:
    inner = node.operands[0].producer
    if inner is None or inner.op != TRANSFORM or inner.attrs["src"] != node.attrs["dst"]:
        return MatchResult.fail("the operand is not the inverse layout transform")
    rw.replace_node(node, inner.operands[0])
    if not inner.results[0].has_uses():
        rw.erase_node(inner)
    return True


def _blocked_constant(array: np.ndarray, shape: tuple[int, ...], lanes: int) -> np.ndarray | None:
    """``array`` (broadcasting against NCHW ``shape``) in the blocked layout, or None if it cannot be."""
    array = np.asarray(array)
    if array.ndim > 4:
        return None
    full = array.reshape((1,) * (4 - array.ndim) + array.shape)
    if full.shape[1] not in (1, shape[1]):
        return None
    return to_blocked(full, lanes)


def _sink(node: Node, rw) -> bool | MatchResult:
    if not _is_back(node):
        return MatchResult.fail("not a transform back to NCHW")
    user = _sole_reader(node)
    if user is None:
        return MatchResult.fail("the NCHW value has several readers or is a graph output")
    verdict = sinkable_elementwise(user)
    if not verdict:
        return verdict
    shape = static_shape(node.results[0])
    if shape is None or static_shape(user.results[0]) != shape:
        return MatchResult.fail("the elementwise op broadcasts the NCHW value to another shape")
    lanes = lanes_of(node.attrs["src"])
    rw.set_insertion_point_before(user)
    operands: list[Value | None] = []
    dropped: list[Node] = []
    for v in user.operands:
        producer = v.producer if v is not None else None
        t = tensor_type(v)
        if v is None or v is node.results[0]:
            operands.append(node.operands[0] if v is not None else None)
        elif t is not None and t.rank == 0:
            operands.append(v)
        elif (
            v.const_value is not None
            and (blocked := _blocked_constant(np.asarray(v.const_value), shape, lanes)) is not None
        ):
            operands.append(rw.constant(blocked))
        elif _is_back(producer) and producer.attrs == node.attrs and _sole_reader(producer) is user:
            operands.append(producer.operands[0])
            dropped.append(producer)
        else:
            return MatchResult.fail(f"operand {v.name or '?'} of {user.op} has no blocked form")
    inner = rw.op(user.op, operands, dict(user.attrs), name=user.name)  # profiles name it
    rw.replace_node(user, rw.op(TRANSFORM, [inner], dict(node.attrs)))
    for n in [node, *{id(d): d for d in dropped}.values()]:
        if not n.results[0].has_uses():
            rw.erase_node(n)
    return True


def _concat_channels(node: Node, rw) -> bool | MatchResult:
    if not _is_back(node):
        return MatchResult.fail("not a transform back to NCHW")
    user = _sole_reader(node)
    if user is None or user.op != "Concat":
        return MatchResult.fail("the NCHW value is not read by one Concat alone")
    if int(user.attrs.get("axis", 0)) not in (1, -3):
        return MatchResult.fail("the Concat is not along channels")
    producers = [v.producer if v is not None else None for v in user.operands]
    if not all(_is_back(p) and p.attrs == node.attrs and _sole_reader(p) is user for p in producers):
        return MatchResult.fail("not every operand is a single-use transform back from the same layout")
    rw.set_insertion_point_before(user)
    inner = rw.op("Concat", [p.operands[0] for p in producers], {"axis": 1}, name=user.name)
    rw.replace_node(user, rw.op(TRANSFORM, [inner], dict(node.attrs)))
    for p in {id(p): p for p in producers}.values():
        rw.erase_node(p)
    return True


cancel = NodeRule(TRANSFORM, _cancel, name="layout-transform-cancel", benefit=2)
sink = NodeRule(TRANSFORM, _sink, name="layout-transform-elementwise")

concat = NodeRule(TRANSFORM, _concat_channels, name="layout-transform-concat")

RULES = RuleSet([cancel, sink, concat], name="layout")


def rules(fast_math: bool = False) -> RuleSet:
    """The layout propagation rules (all exact)."""
    return RULES
