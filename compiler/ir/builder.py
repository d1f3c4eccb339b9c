"""``Builder``: creates nodes at an insertion point, inferring their result types."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .core import Graph, IRError, Node, Value
from .types import TensorType, Type


class Builder:
    """Creates nodes in ``graph`` at the insertion point (the end by default).

    ``b.op("Relu", [x])`` returns the result Value (a tuple for several
    results); types come from the op registry unless ``result_types`` is given.
    """

    def __init__(self, graph: Graph, *, before: Node | None = None, after: Node | None = None):
        self.graph = graph
        self._before = before
        self._after = after
        self._names: set[str] | None = None

    # insertion point -----------------------------------------------------
    def set_insertion_point_before(self, node: Node) -> None:
        self.graph, self._before, self._after = node.graph, node, None

    def set_insertion_point_after(self, node: Node) -> None:
        self.graph, self._before, self._after = node.graph, None, node

    def set_insertion_point_at_end(self, graph: Graph) -> None:
        self.graph, self._before, self._after = graph, None, None

    def insert(self, node: Node) -> Node:
        """Place an already-built node at the insertion point."""
        if self._before is not None:
            self.graph.insert_before(self._before, node)
        elif self._after is not None:
            self.graph.insert_after(self._after, node)
            self._after = node
        else:
            self.graph.append(node)
        return node

    # creation ------------------------------------------------------------
    def param(self, name: str, type: Type) -> Value:
        return self.graph.add_param(type, name)

    def node(
        self,
        op: str,
        operands: Sequence[Value | None] = (),
        attrs: dict[str, Any] | None = None,
        *,
        num_results: int | None = None,
        result_types: Sequence[Type] | None = None,
        names: Sequence[str] | None = None,
        name: str = "",
    ) -> Node:
        """Create, type and insert a node; returns the Node."""
        from ..ops import get_op, infer_types

        attrs = dict(attrs or {})
        if result_types is None:
            if num_results is None:
                op_def = get_op(op)
                num_results = op_def.outputs[0] if op_def is not None else 1
                num_results = max(num_results, 1) if op_def is None or op_def.outputs[1] != 0 else 0
            inferred = infer_types(op, operands, attrs, num_results)
            missing = [i for i, t in enumerate(inferred) if t is None]
            if missing:
                raise IRError(f"cannot infer the type of result {missing[0]} of {op}; pass result_types")
            result_types = inferred
        node = Node(op, operands, list(result_types), attrs, names, name)
        return self.insert(node)

    def op(
        self, op: str, operands: Sequence[Value | None] = (), attrs: dict[str, Any] | None = None, **kw
    ) -> Value | tuple[Value, ...]:
        """Create a node and return its result (or tuple of results)."""
        node = self.node(op, operands, attrs, **kw)
        return node.results[0] if len(node.results) == 1 else node.results

    def constant(self, array, name: str = "") -> Value:
        """A ``Constant`` node holding ``array`` (not copied when already an ndarray)."""
        array = array if isinstance(array, np.ndarray) else np.asarray(array)
        node = Node("Constant", [], [TensorType.of(array)], {"value": array}, [name])
        return self.insert(node).results[0]
