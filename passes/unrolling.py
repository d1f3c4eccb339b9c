"""What the control-flow passes share: copying a nested graph's nodes in front of a node, building
wide ``Concat``s, replacing a node's results, and asking whether code is safe to run speculatively.

Used by ``unroll-scans``, ``unroll-loops``, ``unroll-recurrent`` and ``select-ifs``; every mutation
goes through the caller's ``Rewriter``.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from compiler.ir.core import Graph, Node, Value
from compiler.ir.types import TensorType
from compiler.ops import get_op
from compiler.rewrite import Rewriter

CONCAT_FANIN = 32  # inputs per Concat node: a kernel call takes a bounded number of buffers


def concat(b, parts: list, axis: int):
    """``Concat(parts, axis)`` as a tree of Concats of at most ``CONCAT_FANIN`` inputs each
    (``b``: the Rewriter or Builder to create them with)."""
    while len(parts) > CONCAT_FANIN:
        parts = [
            chunk[0] if len(chunk) == 1 else b.op("Concat", chunk, {"axis": axis})
            for chunk in (parts[i : i + CONCAT_FANIN] for i in range(0, len(parts), CONCAT_FANIN))
        ]
    return parts[0] if len(parts) == 1 else b.op("Concat", parts, {"axis": axis})


def clone_body(rw: Rewriter, body: Graph, args: list, step: int, nodes: list | None = None) -> list:
    """Copy ``body``'s nodes at ``rw``'s insertion point with its params bound to ``args``; returns
    its outputs (the copies are appended to ``nodes`` when given).  Copies are named ``<name>_t<step>``."""
    mapping = {id(p): a for p, a in zip(body.params, args)}
    for inner in body.nodes:
        clone = rw.insert(_copy_node(inner, mapping, step))
        if nodes is not None:
            nodes.append(clone)
    return [mapping.get(id(v), v) for v in body.outputs]


def _copy_node(inner: Node, mapping: dict, step: int) -> Node:
    """A copy of ``inner`` reading ``mapping``'s replacements; nested graphs are copied too."""
    operands = [None if v is None else mapping.get(id(v), v) for v in inner.operands]
    attrs = {}
    for key, value in inner.attrs.items():
        if isinstance(value, Graph):
            value = _copy_graph(value, mapping, step)
        elif isinstance(value, list) and any(isinstance(x, Graph) for x in value):
            value = [_copy_graph(x, mapping, step) if isinstance(x, Graph) else x for x in value]
        attrs[key] = value
    clone = Node(
        inner.op,
        operands,
        [r.type for r in inner.results],
        attrs,
        [f"{r.name}_t{step}" if r.name else "" for r in inner.results],
        name=f"{inner.name}_t{step}" if inner.name else "",
    )
    for old, new in zip(inner.results, clone.results):
        mapping[id(old)] = new
    return clone


def _copy_graph(sub: Graph, mapping: dict, step: int) -> Graph:
    """A deep copy of nested graph ``sub`` (its reads of outer values go through ``mapping``);
    the copy is detached, so it is built directly."""
    copy = Graph(sub.name)
    for p in sub.params:
        mapping[id(p)] = copy.add_param(p.type, p.name)
    for inner in sub.nodes:
        copy.append(_copy_node(inner, mapping, step))
    copy.outputs = [mapping.get(id(v), v) for v in sub.outputs]
    return copy


def replace_results(rw: Rewriter, node: Node, results: list) -> None:
    """Redirect ``node``'s results to ``results`` and erase it; a result that is a graph output
    keeps its name (through an ``Identity`` when the new value is a parameter or another output)."""
    rw.set_insertion_point_before(node)
    for old, new in zip(node.results, results):
        if not old.has_uses():
            continue
        if old.name and any(not isinstance(u.user, Node) for u in old.uses):
            if new.is_param or any(not isinstance(u.user, Node) for u in new.uses):
                new = rw.op("Identity", [new])
            new.name = old.name
        rw.replace_value(old, new)
    rw.erase_node(node)


def rollback(rw: Rewriter, node: Node, marker: Node | None) -> None:
    """Erase the nodes inserted before ``node`` since ``marker`` (its previous node then)."""
    while node.prev is not marker:
        rw.erase_node(node.prev)


def speculation_problem(nodes: Iterable[Node]) -> str | None:
    """Why ``nodes`` cannot safely run when their results are then discarded, or None: an op that
    may trap (``OpDef.may_trap``: indices, shapes, divisors) with a run-time operand after its first."""
    for n in nodes:
        op_def = get_op(n.op)
        if op_def is None or not op_def.may_trap:
            continue
        if n.op in ("Div", "Mod"):
            if isinstance(n.results[0].type, TensorType) and n.results[0].type.dtype.np.kind in "iu":
                divisor = n.operands[1].const_value
                if divisor is None or not np.all(divisor):
                    return f"integer {n.op} by a run-time divisor could trap on a zero never meant to reach it"
            continue
        if any(v is not None and v.const_value is None for v in n.operands[1:]):
            return f"{n.op} with a run-time index or shape operand could fail on values never meant to reach it"
    return None


def scalar_bool(b, cond: Value) -> Value:
    """``cond`` as a rank-0 bool (a Loop's or If's condition may be a one-element tensor)."""
    if isinstance(cond.type, TensorType) and cond.type.rank != 0:
        return b.op("Reshape", [cond, b.constant(np.zeros(0, np.int64))])
    return cond
