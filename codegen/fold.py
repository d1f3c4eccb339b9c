"""Compile-time evaluation of a node whose operands are all constants, via Ember's interpreter."""

from __future__ import annotations

import numpy as np


def evaluate_node(node, operand_values: list) -> list[np.ndarray]:
    """Run ``node`` alone through ``compiler.interpret`` on the given constant operands."""
    from compiler import interpret
    from compiler.ir.core import Graph, Node

    g = Graph("fold")
    params = []
    for k, (value, data) in enumerate(zip(node.operands, operand_values)):
        params.append(None if value is None else g.add_param(value.type, f"in{k}"))
    clone = Node(node.op, params, [r.type for r in node.results], dict(node.attrs),
                 [f"out{i}" for i in range(len(node.results))], name=node.name)
    g.append(clone)
    g.outputs = list(clone.results)
    feeds = {f"in{k}": data for k, data in enumerate(operand_values) if data is not None}
    out = interpret(g, feeds)
    return [np.asarray(out[f"out{i}"]) for i in range(len(node.results))]
