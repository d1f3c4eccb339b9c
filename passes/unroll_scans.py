"""``unroll-scans{max-steps=64}``: write out ``Scan`` nodes with a static trip count as straight-line code.

Code generation has no loops over nested graphs, but with static shapes a ``Scan`` runs a known
number of steps ``T`` (the scan axis of its first scan input), so it can be written out:

    Scan(s..., x...){body}  ->  for t in 0..T-1:
                                    x_t = Gather(x, t or T-1-t, axis=scan_input_axis)
                                    s..., y_t... = clone of body(s..., x_t...)
                                y = Concat(Unsqueeze(y_t, axis) for t in order, axis)

Body nodes may read outer values directly; the clones read the same values (nested graphs in
a body are copied).  Scans with a non-static trip count or more than ``max-steps`` steps are left
alone (``check-codegen-ready`` or the planner then names them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.ir.core import Graph, Node
from compiler.ir.types import TensorType
from compiler.passes import Pass, PassResult
from compiler.rewrite import Rewriter

from .unrolling import clone_body, concat, replace_results

MAX_UNROLL = 64


def _trip_count(node: Node, n_state: int, axes: list[int], max_steps: int) -> int | None:
    scan_in = node.operands[n_state:]
    if not scan_in or not isinstance(scan_in[0].type, TensorType) or scan_in[0].type.shape is None:
        return None
    shape = scan_in[0].type.shape
    length = shape[axes[0] % len(shape)]
    return length if isinstance(length, int) and 0 < length <= max_steps else None


def unroll_scan(rw: Rewriter, node: Node, max_steps: int = MAX_UNROLL) -> bool:
    """Replace one ``Scan`` by its unrolled steps; False (nothing changed) when it cannot be unrolled."""
    body = node.attrs["body"]
    n_scan = int(node.attrs["num_scan_inputs"])
    n_state = len(node.operands) - n_scan
    in_axes = list(node.attrs.get("scan_input_axes") or [0] * n_scan)
    in_dirs = list(node.attrs.get("scan_input_directions") or [0] * n_scan)
    n_out = len(body.outputs) - n_state
    out_axes = list(node.attrs.get("scan_output_axes") or [0] * n_out)
    out_dirs = list(node.attrs.get("scan_output_directions") or [0] * n_out)
    steps = _trip_count(node, n_state, in_axes, max_steps)
    if steps is None:
        return False
    ranks = [out.type.rank if isinstance(out.type, TensorType) else None for out in body.outputs[n_state:]]
    if any(r is None for r in ranks):
        return False
    rw.set_insertion_point_before(node)
    state = list(node.operands[:n_state])
    collected: list[list] = [[] for _ in range(n_out)]
    for t in range(steps):
        slices = []
        for x, axis, direction in zip(node.operands[n_state:], in_axes, in_dirs):
            index = rw.constant(np.array(steps - 1 - t if direction else t, np.int64))
            slices.append(rw.op("Gather", [x, index], {"axis": int(axis)}))
        outs = clone_body(rw, body, state + slices, t)
        state = outs[:n_state]
        for acc, v in zip(collected, outs[n_state:]):
            acc.append(v)
    results = list(state)
    for acc, axis, direction, rank in zip(collected, out_axes, out_dirs, ranks):
        if direction:
            acc = acc[::-1]
        axis = int(axis) % (rank + 1)
        axes = rw.constant(np.array([axis], np.int64))
        parts = [rw.op("Unsqueeze", [v, axes]) for v in acc]
        results.append(concat(rw, parts, axis))
    replace_results(rw, node, results)
    return True


@dataclass(frozen=True)
class UnrollScansPass(Pass):
    """Unroll every top-level ``Scan`` with a static trip count (see the module docstring)."""

    name = "unroll-scans"
    max_steps: int = MAX_UNROLL

    def run(self, graph: Graph) -> PassResult:
        rw = Rewriter(graph, rule_name=self.name)
        count = sum(unroll_scan(rw, n, self.max_steps) for n in list(graph.nodes) if n.op == "Scan")
        return PassResult(count > 0, {"unrolled": count})
