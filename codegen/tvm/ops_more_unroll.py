"""Unroll ``Scan`` nodes with a static trip count into straight-line graph code before codegen.

Code generation has no loops over nested graphs, but with static shapes a ``Scan`` runs a known
number of steps ``T`` (the scan axis of its first scan input), so it can be written out:

    Scan(s..., x...){body}  ->  for t in 0..T-1:
                                    x_t = Gather(x, t or T-1-t, axis=scan_input_axis)
                                    s..., y_t... = clone of body(s..., x_t...)
                                y = Concat(Unsqueeze(y_t, axis) for t in order, axis)

Body nodes may read outer values directly; the clones read the same values.  Scans with nested
graphs in their bodies, a non-static trip count, or more than ``MAX_UNROLL`` steps are left alone
(the planner then names them as unsupported).
"""

from __future__ import annotations

import numpy as np

from compiler.ir.builder import Builder
from compiler.ir.core import Graph, Node
from compiler.ir.types import TensorType

MAX_UNROLL = 64


def _trip_count(node: Node, n_state: int, axes: list[int]) -> int | None:
    scan_in = node.operands[n_state:]
    if not scan_in or not isinstance(scan_in[0].type, TensorType) or scan_in[0].type.shape is None:
        return None
    shape = scan_in[0].type.shape
    length = shape[axes[0] % len(shape)]
    return length if isinstance(length, int) and 0 < length <= MAX_UNROLL else None


def _clone_body(graph: Graph, anchor: Node, body: Graph, args: list, step: int) -> list:
    """Copy ``body``'s nodes before ``anchor`` with its params bound to ``args``; returns its outputs."""
    mapping = {id(p): a for p, a in zip(body.params, args)}
    for inner in body.nodes:
        operands = [None if v is None else mapping.get(id(v), v) for v in inner.operands]
        clone = Node(inner.op, operands, [r.type for r in inner.results], dict(inner.attrs),
                     [f"{r.name}_t{step}" if r.name else "" for r in inner.results],
                     name=f"{inner.name}_t{step}" if inner.name else "")
        graph.insert_before(anchor, clone)
        for old, new in zip(inner.results, clone.results):
            mapping[id(old)] = new
    return [mapping.get(id(v), v) for v in body.outputs]


def unroll_scan(graph: Graph, node: Node) -> bool:
    """Replace one ``Scan`` by its unrolled steps; False when it cannot be unrolled."""
    body = node.attrs["body"]
    if any(n.subgraphs for n in body.walk()):
        return False
    n_scan = int(node.attrs["num_scan_inputs"])
    n_state = len(node.operands) - n_scan
    in_axes = list(node.attrs.get("scan_input_axes") or [0] * n_scan)
    in_dirs = list(node.attrs.get("scan_input_directions") or [0] * n_scan)
    n_out = len(body.outputs) - n_state
    out_axes = list(node.attrs.get("scan_output_axes") or [0] * n_out)
    out_dirs = list(node.attrs.get("scan_output_directions") or [0] * n_out)
    steps = _trip_count(node, n_state, in_axes)
    if steps is None:
        return False
    b = Builder(graph, before=node)
    state = list(node.operands[:n_state])
    collected: list[list] = [[] for _ in range(n_out)]
    for t in range(steps):
        slices = []
        for x, axis, direction in zip(node.operands[n_state:], in_axes, in_dirs):
            index = b.constant(np.array(steps - 1 - t if direction else t, np.int64))
            slices.append(b.op("Gather", [x, index], {"axis": int(axis)}))
        outs = _clone_body(graph, node, body, state + slices, t)
        state = outs[:n_state]
        for acc, v in zip(collected, outs[n_state:]):
            acc.append(v)
    results = list(state)
    for acc, axis, direction in zip(collected, out_axes, out_dirs):
        if direction:
            acc = acc[::-1]
        rank = (acc[0].type.rank if isinstance(acc[0].type, TensorType) else None)
        if rank is None:
            return False
        axis = int(axis) % (rank + 1)
        axes = b.constant(np.array([axis], np.int64))
        parts = [b.op("Unsqueeze", [v, axes]) for v in acc]
        results.append(parts[0] if len(parts) == 1 else b.op("Concat", parts, {"axis": axis}))
    for old, new in zip(node.results, results):
        old.replace_all_uses_with(new)
    node.erase()
    return True


def unroll_scans(graph: Graph) -> int:
    """Unroll every top-level ``Scan`` of ``graph`` that can be; returns how many were."""
    return sum(unroll_scan(graph, n) for n in list(graph.nodes) if n.op == "Scan")
