"""``cse``: common subexpression elimination.

Rewrites:
- ``%a = Op(x, y) {attrs}; %b = Op(x, y) {attrs}`` -> uses of ``%b`` read ``%a``, ``%b`` removed,
  for pure, non-random ops without nested graphs;
- commutative ops match either operand order: ``Add(x, y)`` and ``Add(y, x)`` are one value;
- equal ``Constant`` nodes (same dtype, shape and bytes) are merged;
- inside nested graphs, a node may reuse an equal node of an enclosing graph that comes
  before the node holding the nested graph.
"""

from __future__ import annotations

import hashlib
from collections import ChainMap
from dataclasses import dataclass
from typing import Any

import numpy as np

from compiler import Graph, Node
from compiler.ops import Trait, get_op
from compiler.passes import Pass, PassResult
from compiler.rewrite import Rewriter


def _freeze(value: Any) -> Any:
    """A hashable stand-in for an attribute value (arrays by a cheap sample; ``_same_attrs`` confirms)."""
    if isinstance(value, np.ndarray):
        flat = value.reshape(-1)
        sample = flat[:: max(1, flat.size // 64)]
        return ("array", value.dtype.str, value.shape, hashlib.sha1(np.ascontiguousarray(sample).tobytes()).digest())
    if isinstance(value, (list, tuple)):
        return ("seq",) + tuple(_freeze(v) for v in value)
    if isinstance(value, float) and value != value:
        return ("nan",)
    return (type(value).__name__, value) if isinstance(value, (int, float, bool, str)) else ("repr", repr(value))


def node_key(node: Node) -> tuple | None:
    """A key equal for nodes that compute the same values, or None if ``node`` must not be merged."""
    op_def = get_op(node.op)
    if op_def is None or not op_def.has(Trait.PURE) or op_def.has(Trait.RANDOM) or node.subgraphs:
        return None
    if not node.results:
        return None
    operands = [id(v) if v is not None else None for v in node.operands]
    if op_def.has(Trait.COMMUTATIVE) and len(operands) == 2 and None not in operands:
        operands.sort()
    attrs = tuple(sorted((k, _freeze(v)) for k, v in node.attrs.items()))
    types = tuple(str(r.type) for r in node.results)
    return (node.op, tuple(operands), attrs, types)


def _same_attrs(a: Node, b: Node) -> bool:
    """Exact attribute equality (arrays compared element by element, NaN equal to NaN)."""
    for key, value in a.attrs.items():
        other = b.attrs[key]
        if isinstance(value, np.ndarray):
            if not np.array_equal(value, other, equal_nan=value.dtype.kind in "fc"):
                return False
        elif _freeze(value) != _freeze(other):
            return False
    return True


def _cse_graph(graph: Graph, table: ChainMap) -> int:
    merged = 0
    for node in graph.nodes:
        for sub in node.subgraphs:
            merged += _cse_graph(sub, table.new_child())
        key = node_key(node)
        if key is None:
            continue
        candidates: list[Node] = table.get(key, [])
        earlier = next((c for c in candidates if _same_attrs(node, c)), None)
        if earlier is None:
            table[key] = candidates + [node]  # a new list: enclosing scopes keep theirs
            continue
        Rewriter(graph).replace_node(node, list(earlier.results))  # keeps graph output names
        merged += 1
    return merged


@dataclass(frozen=True)
class CommonSubexpressionEliminationPass(Pass):
    """Merge nodes that compute the same values (see the module docstring)."""

    name = "cse"

    def run(self, graph: Graph) -> PassResult:
        merged = _cse_graph(graph, ChainMap())
        return PassResult(merged > 0, {"merged": merged})
