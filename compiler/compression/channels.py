"""Channel groups for structured pruning: which output channels of which ops must go together.

A *producer* is an op with one constant weight (``OpDef.weight_axes``: Conv with ``group = 1``,
Gemm, MatMul); each makes a group of channels.  The walk follows every channel through the ops
that keep channels apart:

- ``channelwise`` ops (pools, BatchNormalization: ``OpDef.channelwise``), whose per-channel
  operands are sliced with them;
- elementwise ops: channels of two operands meet, so their groups are tied (a residual ``Add``
  prunes its two branches together); a constant operand with one entry per channel is sliced;
- ``Concat`` along the channel axis (channels keep their own groups);
- ``Flatten`` of ``[N, C, H, W]`` to ``[N, C*H*W]`` (each channel becomes a run of ``H*W``
  features, which the next Gemm's weight loses together);
- producers, which read them as input channels (their weight is sliced along its input axis).

Any other use, a graph output, or a mismatch blocks every group whose channels reach it: those
keep all their channels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ir.core import Graph, Node, Value
from ..ir.types import TensorType
from ..ops import Trait, get_op


@dataclass
class Slots:
    """What the channel axis of one value holds: ``(group, channel)`` per position."""

    axis: int
    slots: list[tuple[int, int]]


@dataclass
class ChannelGroups:
    """The groups of a graph, their producers, ties and blocks (union-find over group ids)."""

    producers: list[list[tuple[Node, int]]] = field(default_factory=list)  # (node, weight operand)
    sizes: list[int] = field(default_factory=list)
    parent: list[int] = field(default_factory=list)
    blocked: set[int] = field(default_factory=set)
    values: dict[int, Slots] = field(default_factory=dict)  # id(value) -> its channel slots

    def new(self, node: Node, weight: int, size: int) -> int:
        self.producers.append([(node, weight)])
        self.sizes.append(size)
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def find(self, g: int) -> int:
        while self.parent[g] != g:
            self.parent[g] = self.parent[self.parent[g]]
            g = self.parent[g]
        return g

    def tie(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra
            self.producers[ra] += self.producers[rb]
            if rb in self.blocked:
                self.blocked.add(ra)

    def block(self, v: Value | None) -> None:
        slots = self.values.get(id(v)) if v is not None else None
        for g, _ in slots.slots if slots else []:
            self.blocked.add(self.find(g))

    def is_blocked(self, g: int) -> bool:
        return any(self.find(b) == self.find(g) for b in self.blocked)

    def roots(self) -> list[int]:
        return sorted({self.find(g) for g in range(len(self.parent))})


def shape_of(v: Value | None):
    """The value's shape when its rank is known (a dim may be a symbol, such as the batch), else None."""
    return (
        tuple(v.type.shape) if v is not None and isinstance(v.type, TensorType) and v.type.shape is not None else None
    )


def producer_weight(node: Node) -> tuple[int, int] | None:
    """``(weight operand, output axis)`` of a node that makes a channel group, else None."""
    op_def = get_op(node.op)
    if op_def is None or op_def.weight_axes is None:
        return None
    axes = op_def.weight_axes(node.attrs)
    if len(axes) != 1 or node.attrs.get("group", 1) != 1 or node.attrs.get("transA", 0):
        return None
    ((index, axis),) = axes.items()
    w = node.operands[index] if index < len(node.operands) else None
    if w is None or w.const_value is None or shape_of(node.results[0]) is None or shape_of(node.operands[0]) is None:
        return None
    rank = np.ndim(w.const_value)
    if rank > 2 and axis % rank != 0:
        return None  # a batched MatMul weight: not a kernel with output channels first
    return index, axis % rank


def input_axis(weight_rank: int, out_axis: int) -> int:
    """The weight's input-channel axis: 1 for a Conv kernel, the other axis of a 2-D weight."""
    return 1 if weight_rank > 2 else 1 - out_axis


def find_groups(graph: Graph) -> ChannelGroups:
    """Walk ``graph`` once, making and tying channel groups (see the module docstring)."""
    cg = ChannelGroups()
    for node in graph.nodes:
        _visit(cg, node)
    for v in graph.outputs:
        cg.block(v)
    return cg


def _visit(cg: ChannelGroups, node: Node) -> None:
    op_def = get_op(node.op)
    carried = [v for v in node.operands if v is not None and id(v) in cg.values]
    producer = producer_weight(node)
    if producer is not None:
        index, axis = producer
        x = node.operands[0]
        weight_rank = np.ndim(node.operands[index].const_value)
        expected = 1 if weight_rank > 2 else len(shape_of(x)) - 1  # where the weight reads channels
        for v in carried:
            if v is not x or cg.values[id(x)].axis != expected:
                cg.block(v)
        y = node.results[0]
        rank = len(shape_of(y))
        size = np.shape(node.operands[index].const_value)[axis]
        g = cg.new(node, index, size)
        cg.values[id(y)] = Slots(1 if rank > 2 else rank - 1, [(g, c) for c in range(size)])
        return
    if not carried:
        return
    first = cg.values[id(carried[0])]
    if op_def is not None and op_def.channelwise and node.operands[0] is carried[0] and first.axis == 1:
        size = len(first.slots)
        if all(
            v is None or (v.const_value is not None and np.shape(v.const_value) == (size,)) for v in node.operands[1:]
        ):
            cg.values[id(node.results[0])] = Slots(1, list(first.slots))
            return
    elif op_def is not None and op_def.has(Trait.ELEMENTWISE) and len(node.results) == 1:
        if _elementwise(cg, node, carried, first):
            return
    elif node.op == "Concat" and len(carried) == len(node.operands):
        rank = len(shape_of(node.results[0]) or ())
        axes = {cg.values[id(v)].axis for v in carried}
        if rank and axes == {node.attrs.get("axis", 0) % rank}:
            cg.values[id(node.results[0])] = Slots(first.axis, [s for v in carried for s in cg.values[id(v)].slots])
            return
    elif op_def is not None and op_def.view and len(node.operands) == 1 and first.axis == 1:
        x, y = shape_of(node.operands[0]), shape_of(node.results[0])
        static = x is not None and all(isinstance(d, int) for d in x[1:])
        if static and y is not None and tuple(y) == (x[0], int(np.prod(x[1:], dtype=np.int64))):
            per_channel = int(np.prod(x[2:], dtype=np.int64))  # each channel becomes a run of features
            cg.values[id(node.results[0])] = Slots(1, [s for s in first.slots for _ in range(per_channel)])
            return
    for v in carried:
        cg.block(v)


def _elementwise(cg: ChannelGroups, node: Node, carried: list[Value], first: Slots) -> bool:
    y = shape_of(node.results[0])
    if y is None:
        return False
    axis_from_end = len(y) - first.axis
    for v in node.operands:
        if v is None or v in carried:
            continue
        s = shape_of(v)
        at = len(s) - axis_from_end if s is not None else None
        if s is None or (at >= 0 and s[at] != 1 and v.const_value is None):
            return False  # a run-time operand with its own channels: cannot slice it
    for v in carried[1:]:
        other = cg.values[id(v)]
        if shape_of(v) != y or other.axis != first.axis or len(other.slots) != len(first.slots):
            return False
        for (ga, ca), (gb, cb) in zip(first.slots, other.slots):
            if ca != cb or cg.sizes[cg.find(ga)] != cg.sizes[cg.find(gb)]:
                return False
            cg.tie(ga, gb)
    if shape_of(carried[0]) != y:
        return False
    cg.values[id(node.results[0])] = Slots(first.axis, list(first.slots))
    return True
