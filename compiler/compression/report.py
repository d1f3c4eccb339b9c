"""What a compression step did: weight bytes and FLOPs before and after, and what stayed in float."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ir.core import Graph
from ..ir.types import TensorType
from ..ops import FlopContext, get_op


def weight_bytes(graph: Graph) -> int:
    """Bytes held by the graph's constants (nested graphs included)."""
    total = 0
    for node in graph.walk():
        if node.op == "Constant":
            value = node.attrs.get("value")
            total += int(np.asarray(value).nbytes) if value is not None else 0
    return total


def graph_flops(graph: Graph) -> int:
    """Sum of every node's ``OpDef.count_flops`` (static shapes only; others count 0)."""
    total = 0
    for node in graph.nodes:
        op_def = get_op(node.op)
        outs = [r.type.shape for r in node.results if isinstance(r.type, TensorType)]
        if (
            op_def is None
            or node.op == "Constant"
            or any(s is None or not all(isinstance(d, int) for d in s) for s in outs)
        ):
            continue
        ins = [
            v.type.shape if v is not None and isinstance(v.type, TensorType) and v.type.is_static else None
            for v in node.operands
        ]
        total += op_def.count_flops(FlopContext(node.op, node.attrs, ins, outs))
    return total


@dataclass
class CompressionReport:
    """Before/after sizes of one compression run and the nodes left alone, with why."""

    what: str
    weight_bytes_before: int
    flops_before: int
    weight_bytes_after: int = 0
    flops_after: int = 0
    left_float: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, what: str, graph: Graph) -> "CompressionReport":
        return cls(what, weight_bytes(graph), graph_flops(graph))

    def finish(self, graph: Graph) -> "CompressionReport":
        self.weight_bytes_after, self.flops_after = weight_bytes(graph), graph_flops(graph)
        return self

    def text(self) -> str:
        lines = [
            f"{self.what}:",
            f"  weights: {self.weight_bytes_before:,} -> {self.weight_bytes_after:,} bytes",
            f"  FLOPs:   {self.flops_before:,} -> {self.flops_after:,}",
        ]
        lines += [f"  {note}" for note in self.notes]
        lines += [f"  left in float: {where}: {why}" for where, why in self.left_float]
        return "\n".join(lines)
