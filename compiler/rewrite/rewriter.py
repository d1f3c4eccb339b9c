"""``Rewriter``: the one object through which pattern rewrites mutate the graph.

It is a ``Builder`` (``rw.op(...)``, ``rw.constant(...)`` create nodes at its
insertion point, by default just before the node being rewritten) plus the
mutations a rule needs (``replace_node``, ``replace_value``, ``erase_node``,
``set_operand``).  Each mutation notifies every ``RewriteListener``: the greedy
driver uses this to keep its worklist right; statistics and provenance hang
off the same hooks.
"""

from __future__ import annotations

from typing import Sequence

from ..ir.builder import Builder
from ..ir.core import Graph, IRError, Node, Value
from ..ir.types import TensorType


class RewriteListener:
    """Hooks called by ``Rewriter`` after each mutation (all default to no-ops)."""

    def node_inserted(self, node: Node) -> None:
        pass

    def node_erased(self, node: Node) -> None:
        pass

    def value_replaced(self, old: Value, new: Value) -> None:
        pass

    def operand_changed(self, node: Node, index: int) -> None:
        pass


class Rewriter(Builder):
    """A Builder whose mutations notify ``listeners``; ``rule_name`` tags created nodes (provenance)."""

    def __init__(self, graph: Graph, listeners: Sequence[RewriteListener] = (), *, rule_name: str = ""):
        super().__init__(graph)
        self.listeners = list(listeners)
        self.rule_name = rule_name

    # creation ----------------------------------------------------------------
    def insert(self, node: Node) -> Node:
        super().insert(node)
        if self.rule_name:
            node.provenance = self.rule_name  # which rule created it (debugging aid)
        for listener in self.listeners:
            listener.node_inserted(node)
        return node

    # mutation ----------------------------------------------------------------
    def replace_value(self, old: Value, new: Value) -> None:
        """Redirect every use of ``old`` to ``new``; a graph output keeps its name and its place.

        Outputs are sacred: when ``old`` is an output of a top-level graph and ``new`` cannot take
        its name (``new`` is a parameter or already an output), the output becomes
        ``Identity(new)`` named like ``old``, built at the insertion point; otherwise ``new`` is
        renamed to ``old``'s name."""
        if old is new:
            return
        if old.type is not None and new.type is not None and not old.type.is_compatible(new.type):
            raise IRError(f"replacing %{old.name} of type {old.type} by %{new.name} of incompatible type {new.type}")
        if needs_output_copy(old, new):
            new = self.node(
                "Identity", [new], result_types=[old.type or new.type], names=[old.name], name=old.name
            ).results[0]
        users = old.users
        if _is_output(old) and not new.is_param and not _is_output(new):
            new.name = old.name or new.name
        refined = _meet(old.type, new.type)
        if refined is not None and refined != new.type and not new.is_param:
            new.type = refined  # the two are one value: what either type knows holds for both
        old.replace_all_uses_with(new)
        for listener in self.listeners:
            listener.value_replaced(old, new)
            for user in users:
                for i, v in enumerate(user.operands):
                    if v is new:
                        listener.operand_changed(user, i)

    def replace_node(self, node: Node, new_values: Sequence[Value] | Value) -> None:
        """Replace each result of ``node`` by the matching new value, then erase ``node``."""
        if isinstance(new_values, Value):
            new_values = [new_values]
        if len(new_values) != len(node.results):
            raise IRError(f"{node.describe()} has {len(node.results)} results, got {len(new_values)} replacements")
        for old, new in zip(node.results, new_values):
            self.replace_value(old, new)
        self.erase_node(node)

    def erase_node(self, node: Node) -> None:
        """Erase ``node`` (its results must be unused); operand producers are reported as changed."""
        producers = [v.producer for v in node.operands if v is not None and v.producer is not None]
        node.erase()
        for listener in self.listeners:
            listener.node_erased(node)
            for p in producers:
                listener.operand_changed(p, -1)

    def inline_region(
        self, node: Node, region: Graph, args: Sequence[Value | None] = (), *, name_prefix: str = ""
    ) -> list[Value]:
        """Move the nodes of ``region`` (a nested graph, or a detached graph built for ``node``) into
        ``node``'s graph just before ``node``, its parameters bound to ``args``; returns the values
        ``region`` returned (a returned parameter as its argument).  ``region`` is left empty, with
        no outputs.  Listeners see each moved node as inserted; ``name_prefix`` is put before the
        names of moved nodes.  The caller then replaces ``node`` (``replace_node``)."""
        if len(args) != len(region.params):
            raise IRError(f"inlining into {node.describe()}: {len(region.params)} parameters, {len(args)} arguments")
        bound = {id(p): a for p, a in zip(region.params, args)}
        for param, actual in zip(region.params, args):
            if actual is not None:
                param.replace_all_uses_with(actual)
        results = [bound.get(id(v), v) for v in region.outputs]
        region.outputs = []
        moved = node.graph.move_nodes_before(node, region)
        for inner in moved:
            if name_prefix and inner.name:
                inner.name = f"{name_prefix}{inner.name}"
            if self.rule_name:
                inner.provenance = self.rule_name
            for listener in self.listeners:
                listener.node_inserted(inner)
        return results

    def set_operand(self, node: Node, index: int, value: Value | None) -> None:
        node.set_operand(index, value)
        for listener in self.listeners:
            listener.operand_changed(node, index)


def _is_output(v: Value) -> bool:
    return any(isinstance(u.user, Graph) for u in v.uses)


def _meet(a, b):
    """The tensor type that knows every dim either of two compatible tensor types knows, or None."""
    if not (isinstance(a, TensorType) and isinstance(b, TensorType)) or a.dtype != b.dtype:
        return None
    if a.shape is None or b.shape is None:
        return b if a.shape is None else a
    if len(a.shape) != len(b.shape):
        return None

    def dim(x, y):
        if isinstance(x, int) or isinstance(y, int):
            return x if isinstance(x, int) else y
        return x if x is not None else y

    return TensorType(b.dtype, tuple(dim(x, y) for x, y in zip(a.shape, b.shape)))


def needs_output_copy(old: Value, new: Value) -> bool:
    """Whether replacing ``old`` by ``new`` would rename or merge a graph output: ``old`` is a
    named output of a top-level graph and ``new`` is a parameter or another output (so replacing
    takes an ``Identity`` that keeps ``old``'s name)."""
    if old is new or not old.name:
        return False
    graphs = [u.user for u in old.uses if isinstance(u.user, Graph) and u.user.parent is None]
    if not graphs:
        return False
    return new.is_param or _is_output(new)
