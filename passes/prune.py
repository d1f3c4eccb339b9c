"""``prune``: zero the smallest weights, or remove whole output channels.

- ``prune{method=magnitude,sparsity=0.5}``: in every constant weight of an op that declares one
  (``OpDef.weight_axes``: Conv, Gemm, MatMul), the ``sparsity`` fraction with the smallest
  magnitude becomes 0 (shapes unchanged; the weights compress accordingly).
- ``prune{method=channel,ratio=0.25}``: output channels of Conv/Gemm/MatMul, ranked by the L1 norm
  of their weights, are removed along with everything that reads them
  (``compiler/compression/channels.py`` finds the groups of channels that must go together)::

      Conv(x, W[M], b[M]) -> BatchNormalization(scale[M], ...) -> Relu -> Conv(., V[K, M])
        ->  Conv(x, W[keep], b[keep]) -> BatchNormalization(scale[keep], ...) -> Relu
            -> Conv(., V[:, keep])

  Channels tied by an elementwise op (a residual Add) are ranked and pruned together; Concat keeps
  each input's channels in place.  Groups that reach a graph output or an op the walk does not
  know keep all their channels.

Statistics: ``weights`` and ``zeroed`` (magnitude); ``groups`` and ``channels-removed`` (channel).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from compiler.compression.channels import ChannelGroups, find_groups, input_axis, producer_weight
from compiler.diagnostics import EmberError
from compiler.ir.core import Graph, Node, Value
from compiler.ops import get_op
from compiler.passes import Pass, PassResult
from compiler.rewrite import Rewriter

from .dce import eliminate_dead_code
from .quantize import erase_if_unused, is_float32, weight_operands

METHODS = ("magnitude", "channel")


@dataclass(frozen=True)
class PrunePass(Pass):
    """Zero small weights or remove output channels (see the module docstring)."""

    name = "prune"
    lossy: ClassVar[bool] = True
    method: str = "magnitude"
    sparsity: float = 0.5
    ratio: float = 0.25

    def run(self, graph: Graph) -> PassResult:
        if self.method not in METHODS:
            raise EmberError(f"prune: unknown method '{self.method}' (methods: {', '.join(METHODS)})")
        if self.method == "magnitude":
            return self._magnitude(graph)
        return self._channels(graph)

    # magnitude -----------------------------------------------------------------
    def _magnitude(self, graph: Graph) -> PassResult:
        rw = Rewriter(graph, rule_name=self.name)
        total = zeroed = 0
        for node in list(graph.nodes):
            for index in weight_operands(node):
                w = node.operands[index] if index < len(node.operands) else None
                if w is None or w.const_value is None or not is_float32(w):
                    continue
                array = np.array(w.const_value, dtype=np.float32)
                count = int(self.sparsity * array.size)
                if count:
                    array.reshape(-1)[np.argsort(np.abs(array), axis=None, kind="stable")[:count]] = 0
                total += array.size
                zeroed += int((array == 0).sum())
                rw.set_insertion_point_before(node)
                rw.set_operand(node, index, rw.constant(array, name=f"{w.name}_pruned" if w.name else ""))
                erase_if_unused(rw, w)
        return PassResult(total > 0, {"weights": total, "zeroed": zeroed})

    # channels ------------------------------------------------------------------
    def _channels(self, graph: Graph) -> PassResult:
        groups = find_groups(graph)
        kept = self._choose(groups)
        if not kept:
            return PassResult(False, {"groups": 0, "channels-removed": 0})
        removed = sum(groups.sizes[g] - len(k) for g, k in kept.items())
        rebuild(graph, groups, kept, self.name)
        return PassResult(True, {"groups": len(kept), "channels-removed": removed})

    def _choose(self, groups: ChannelGroups) -> dict[int, np.ndarray]:
        """The channels each prunable group keeps: all but the ``ratio`` with the least L1 weight."""
        kept = {}
        for root in groups.roots():
            size = groups.sizes[root]
            drop = int(self.ratio * size)
            if groups.is_blocked(root) or drop == 0 or drop >= size:
                continue
            score = np.zeros(size)
            for node, index in groups.producers[root]:
                w = np.abs(np.asarray(node.operands[index].const_value, dtype=np.float64))
                axis = producer_weight(node)[1]
                per_channel = w.sum(axis=tuple(d for d in range(w.ndim) if d != axis))
                score += per_channel / max(per_channel.mean(), 1e-30)  # layers weigh alike
            kept[root] = np.sort(np.argsort(score, kind="stable")[drop:])
        return kept


def rebuild(graph: Graph, groups: ChannelGroups, kept: dict[int, np.ndarray], rule_name: str) -> None:
    """Rebuild every node that touches a pruned channel with sliced weights, then drop the old ones."""
    rw = Rewriter(graph, rule_name=rule_name)

    def positions(v: Value | None) -> np.ndarray | None:
        slots = groups.values.get(id(v)) if v is not None else None
        if slots is None:
            return None
        keep = [i for i, (g, c) in enumerate(slots.slots) if groups.find(g) not in kept or c in kept[groups.find(g)]]
        return np.asarray(keep) if len(keep) < len(slots.slots) else None

    new_of: dict[int, Value] = {}
    replaced: list[tuple[Node, Node]] = []
    for node in list(graph.nodes):
        out_keep = positions(node.results[0]) if node.results else None
        in_keep = [positions(v) for v in node.operands]
        if out_keep is None and all(k is None for k in in_keep):
            continue
        rw.set_insertion_point_before(node)
        operands = [new_of.get(id(v), v) if v is not None else None for v in node.operands]
        for index, v in enumerate(node.operands):
            sliced = _sliced_constant(node, index, v, out_keep, in_keep, groups)
            if sliced is not None:
                operands[index] = rw.constant(sliced, name=f"{v.name}_pruned" if v.name else "")
        names = [r.name for r in node.results]
        new = rw.node(node.op, operands, dict(node.attrs), num_results=len(node.results), names=names)
        new.name = node.name
        new_of.update((id(old), r) for old, r in zip(node.results, new.results))
        replaced.append((node, new))
    for old, new in reversed(replaced):
        for a, b in zip(old.results, new.results):
            if a.type == b.type:
                rw.replace_value(a, b)
    eliminate_dead_code(graph)


def _sliced_constant(node: Node, index: int, v: Value | None, out_keep, in_keep, groups) -> np.ndarray | None:
    """The constant operand ``index`` of ``node`` cut to the kept channels, or None to keep it."""
    if v is None or v.const_value is None:
        return None
    array = np.asarray(v.const_value)
    producer = producer_weight(node)
    op_def = get_op(node.op)
    x_keep = in_keep[0] if in_keep else None
    if producer is not None and index == producer[0]:
        out = np.take(array, out_keep, axis=producer[1]) if out_keep is not None else array
        if x_keep is not None:
            out = np.take(out, x_keep, axis=input_axis(array.ndim, producer[1]))
        return out if out is not array else None
    if producer is not None and index == op_def.bias_operand and out_keep is not None and array.ndim == 1:
        return array[out_keep] if array.shape[0] == len(groups.values[id(node.results[0])].slots) else None
    if op_def.channelwise and index > 0 and x_keep is not None:
        return array[x_keep]
    slots = groups.values.get(id(node.results[0]))
    if out_keep is not None and slots is not None and producer is None and array.ndim:
        at = array.ndim - (len(node.results[0].type.shape) - slots.axis)
        if at >= 0 and array.shape[at] == len(slots.slots):
            return np.take(array, out_keep, axis=at)
    return None
