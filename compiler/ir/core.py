"""Ember's SSA graph IR: ``Value``, ``Use``, ``Node`` and ``Graph``.

Invariants kept by this module (the verifier checks the rest):

- every ``Value`` has exactly one definition: a graph parameter or a node result;
- ``Value.uses`` lists every place that reads it: a node operand or a graph output;
- operands change only through ``Node.set_operand`` / ``Node.operands = ...``,
  which keep the use lists right;
- nodes live in an intrusive doubly linked list per graph, so a walk tolerates
  the removal of the node it stands on;
- ``Node.erase()`` raises while any result still has uses.

Nested graphs (``If`` branches, ``Loop``/``Scan`` bodies) are attributes of type
``Graph``; their nodes may read values of enclosing graphs directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from .types import Type


class IRError(Exception):
    """Misuse of the IR mutation API (a bug in a pass, not bad user input)."""


@dataclass(frozen=True, eq=True)
class Use:
    """One read of a value: operand ``index`` of ``user`` (a Node), or output ``index`` of a Graph."""

    user: "Node | Graph"
    index: int


class Value:
    """An SSA value: defined once (graph parameter or node result), read by its uses."""

    __slots__ = ("name", "type", "producer", "index", "graph", "_uses")

    def __init__(self, type: Type, name: str = "", producer: "Node | None" = None, index: int = 0):
        self.name = name
        self.type = type
        self.producer = producer
        self.index = index
        self.graph: Graph | None = None  # set for graph parameters
        self._uses: list[Use] = []

    @property
    def uses(self) -> tuple[Use, ...]:
        return tuple(self._uses)

    @property
    def users(self) -> list["Node"]:
        """Distinct nodes that read this value (graph outputs excluded)."""
        seen: dict[int, Node] = {}
        for use in self._uses:
            if isinstance(use.user, Node):
                seen.setdefault(id(use.user), use.user)
        return list(seen.values())

    def has_uses(self) -> bool:
        return bool(self._uses)

    @property
    def is_param(self) -> bool:
        return self.producer is None

    @property
    def const_value(self):
        """The numpy array if this value is produced by a ``Constant`` node, else None."""
        p = self.producer
        if p is not None and p.op == "Constant":
            return p.attrs.get("value")
        return None

    def replace_all_uses_with(self, new: "Value") -> None:
        """Redirect every use of this value (operands and graph outputs) to ``new``."""
        if new is self:
            return
        for use in list(self._uses):
            if isinstance(use.user, Node):
                use.user.set_operand(use.index, new)
            else:
                use.user.set_output(use.index, new)

    def _add_use(self, use: Use) -> None:
        self._uses.append(use)

    def _remove_use(self, use: Use) -> None:
        try:
            self._uses.remove(use)
        except ValueError:
            raise IRError(f"use {use} missing from the use list of {self}") from None

    def __repr__(self) -> str:
        return f"%{self.name or '?'}: {self.type}"

    __hash__ = object.__hash__

    def __eq__(self, other):
        return self is other


class Node:
    """An operation: ``results = op(operands) {attrs}``; attributes may hold nested graphs."""

    def __init__(
        self,
        op: str,
        operands: Sequence[Value | None],
        result_types: Sequence[Type],
        attrs: dict[str, Any] | None = None,
        result_names: Sequence[str] | None = None,
        name: str = "",
    ):
        self.op = op
        self.name = name
        self.attrs: dict[str, Any] = dict(attrs or {})
        self.graph: Graph | None = None
        self.prev: Node | None = None
        self.next: Node | None = None
        self._operands: list[Value | None] = []
        names = list(result_names or [""] * len(result_types))
        self.results: tuple[Value, ...] = tuple(Value(t, names[i], self, i) for i, t in enumerate(result_types))
        for operand in operands:
            self._append_operand(operand)
        for sub in self.subgraphs:
            sub.parent = self

    # operands -------------------------------------------------------------
    @property
    def operands(self) -> tuple[Value | None, ...]:
        return tuple(self._operands)

    @operands.setter
    def operands(self, new: Sequence[Value | None]) -> None:
        for i, old in enumerate(self._operands):
            if old is not None:
                old._remove_use(Use(self, i))
        self._operands = []
        for v in new:
            self._append_operand(v)

    def set_operand(self, index: int, value: Value | None) -> None:
        old = self._operands[index]
        if old is value:
            return
        if value is not None and not isinstance(value, Value):
            raise IRError(f"operand of {self.op} must be a Value or None, got {type(value).__name__}")
        if old is not None:
            old._remove_use(Use(self, index))
        self._operands[index] = value
        if value is not None:
            value._add_use(Use(self, index))

    def _append_operand(self, value: Value | None) -> None:
        if value is not None and not isinstance(value, Value):
            raise IRError(f"operand of {self.op} must be a Value or None, got {type(value).__name__}")
        self._operands.append(value)
        if value is not None:
            value._add_use(Use(self, len(self._operands) - 1))

    @property
    def result(self) -> Value:
        """The single result (raises if the node has several)."""
        if len(self.results) != 1:
            raise IRError(f"{self.op} has {len(self.results)} results, not one")
        return self.results[0]

    # nested graphs --------------------------------------------------------
    @property
    def subgraphs(self) -> list["Graph"]:
        out = []
        for v in self.attrs.values():
            if isinstance(v, Graph):
                out.append(v)
            elif isinstance(v, list):
                out.extend(x for x in v if isinstance(x, Graph))
        return out

    # placement ------------------------------------------------------------
    def erase(self, *, safe: bool = True) -> None:
        """Unlink from the graph and drop operand uses; raises while results have uses."""
        if safe:
            for r in self.results:
                if r.has_uses():
                    users = ", ".join(_describe_use(u) for u in r.uses)
                    raise IRError(f"cannot erase {self.describe()}: result {r!r} still used by {users}")
        self.operands = []
        for sub in self.subgraphs:
            sub.drop_all_references()
        if self.graph is not None:
            self.graph._unlink(self)

    def is_before(self, other: "Node") -> bool:
        """True if ``self`` comes before ``other`` in the same graph."""
        assert self.graph is other.graph and self.graph is not None
        return self.graph._order(self) < self.graph._order(other)

    def describe(self) -> str:
        """Short human description used by diagnostics: ``node 'conv1' (Conv)``."""
        label = self.name or (self.results[0].name if self.results else "")
        return f"node '{label}' ({self.op})" if label else f"node ({self.op})"

    def __repr__(self) -> str:
        return f"<Node {self.op} {self.name}>"


def _describe_use(use: Use) -> str:
    if isinstance(use.user, Node):
        return f"{use.user.describe()} operand {use.index}"
    return f"graph output {use.index}"


class Graph:
    """A function: typed parameters, nodes in a valid (topological) order, and outputs."""

    def __init__(self, name: str = "main"):
        self.name = name
        self.params: list[Value] = []
        self._outputs: list[Value] = []
        self.first: Node | None = None
        self.last: Node | None = None
        self.parent: Node | None = None  # the node whose attribute holds this graph
        self._size = 0
        self._order_cache: dict[int, int] | None = None
        self.metadata: dict[str, Any] = {}

    # parameters and outputs ----------------------------------------------
    def add_param(self, type: Type, name: str = "") -> Value:
        v = Value(type, name)
        v.graph = self
        self.params.append(v)
        return v

    @property
    def outputs(self) -> tuple[Value, ...]:
        return tuple(self._outputs)

    @outputs.setter
    def outputs(self, values: Sequence[Value]) -> None:
        for i, old in enumerate(self._outputs):
            old._remove_use(Use(self, i))
        self._outputs = []
        for i, v in enumerate(values):
            if not isinstance(v, Value):
                raise IRError(f"graph output must be a Value, got {type(v).__name__}")
            self._outputs.append(v)
            v._add_use(Use(self, i))

    def set_output(self, index: int, value: Value) -> None:
        old = self._outputs[index]
        old._remove_use(Use(self, index))
        self._outputs[index] = value
        value._add_use(Use(self, index))

    # node list ------------------------------------------------------------
    @property
    def nodes(self) -> Iterator[Node]:
        """Nodes in order; removing the current node while iterating is safe."""
        node = self.first
        while node is not None:
            nxt = node.next
            yield node
            node = nxt

    def __len__(self) -> int:
        return self._size

    def append(self, node: Node) -> Node:
        return self._link(node, self.last, None)

    def insert_before(self, anchor: Node, node: Node) -> Node:
        self._check_member(anchor)
        return self._link(node, anchor.prev, anchor)

    def insert_after(self, anchor: Node, node: Node) -> Node:
        self._check_member(anchor)
        return self._link(node, anchor, anchor.next)

    def prepend(self, node: Node) -> Node:
        return self._link(node, None, self.first)

    def move_before(self, anchor: Node, node: Node) -> None:
        if anchor is node:
            return
        self._check_member(anchor)
        self._unlink(node)
        self.insert_before(anchor, node)

    def move_nodes_before(self, anchor: Node, source: "Graph") -> list[Node]:
        """Move every node of ``source`` (a nested graph, in order) to just before ``anchor`` in this
        graph; returns the moved nodes.  Uses are kept: a moved node still reads the same values, so
        the caller rebinds ``source``'s parameters first when they stand for outer values."""
        self._check_member(anchor)
        if source is self:
            raise IRError(f"cannot move graph '{self.name}''s nodes into itself")
        moved = list(source.nodes)
        for node in moved:
            source._unlink(node)
            self._link(node, anchor.prev, anchor)
        return moved

    def _check_member(self, node: Node) -> None:
        if node.graph is not self:
            raise IRError(f"{node.describe()} is not in graph '{self.name}'")

    def _link(self, node: Node, prev: Node | None, nxt: Node | None) -> Node:
        if node.graph is not None:
            raise IRError(f"{node.describe()} is already in graph '{node.graph.name}'")
        node.graph, node.prev, node.next = self, prev, nxt
        if prev is None:
            self.first = node
        else:
            prev.next = node
        if nxt is None:
            self.last = node
        else:
            nxt.prev = node
        self._size += 1
        self._order_cache = None
        return node

    def _unlink(self, node: Node) -> None:
        self._check_member(node)
        if node.prev is None:
            self.first = node.next
        else:
            node.prev.next = node.next
        if node.next is None:
            self.last = node.prev
        else:
            node.next.prev = node.prev
        node.graph = None
        self._size -= 1
        self._order_cache = None
        # keep node.next so that an iterator standing on this node can continue

    def _order(self, node: Node) -> int:
        if self._order_cache is None:
            self._order_cache = {id(n): i for i, n in enumerate(self.nodes)}
        return self._order_cache[id(node)]

    def drop_all_references(self) -> None:
        """Drop every operand use held by this graph's nodes (used when discarding a subgraph)."""
        for node in self.nodes:
            node.operands = []
            for sub in node.subgraphs:
                sub.drop_all_references()
        self.outputs = []

    # queries --------------------------------------------------------------
    def walk(self) -> Iterator[Node]:
        """All nodes, including those of nested graphs (pre-order)."""
        for node in self.nodes:
            yield node
            for sub in node.subgraphs:
                yield from sub.walk()

    def find(self, name: str) -> Value | None:
        """A parameter or node result by name (this graph only)."""
        for v in self.params:
            if v.name == name:
                return v
        for node in self.nodes:
            for r in node.results:
                if r.name == name:
                    return r
        return None

    def ancestors(self) -> Iterator["Graph"]:
        """Enclosing graphs, innermost first."""
        node = self.parent
        while node is not None and node.graph is not None:
            yield node.graph
            node = node.graph.parent

    def sort_topologically(self) -> None:
        """Reorder nodes so that each comes after the producers of its operands (stable)."""
        from .topo import topological_order

        order = topological_order(self)
        for node in order:
            self._unlink(node)
        for node in order:
            self.append(node)

    def __repr__(self) -> str:
        return f"<Graph {self.name}: {len(self.params)} params, {len(self)} nodes>"
