"""``fuse``: each group of ops that can run as one kernel becomes an ``ember.Fused`` node whose body
is the group.

    y = Relu(Add(Conv(x, w), b))           ->  y = ember.Fused(x, w, b) {body: Conv, Add, Relu}
    y = Mul(x, Sigmoid(x))      (a diamond) ->  y = ember.Fused(x) {body: Sigmoid, Mul}
    y = Relu(Add(Conv(x, w), x)) (residual) ->  y = ember.Fused(x, w) {body: Conv, Add, Relu}
    e = Exp(x); s = ReduceSum(e)            ->  e, s = ember.Fused(x) {body: Exp, ReduceSum}
                                                (e used elsewhere too: a second result)

Groups grow from a seed (anchors first, then every other node not yet in a group, in graph order)
by consumers, in graph order, as ``passes/fuse_rules.py`` allows by fusion kind.  A consumer joins
only when none of its operands from outside the group depends on the group: every path from the
group to it stays inside, so diamonds fuse and a group never waits on its own result.  A member's
value used outside the group (or returned by the graph) is a result of the group; an anchor group
sheds its last members until one result is left, then takes in the elementwise producers of its
shape that only its epilogue reads (``Q(DQ(QLinearConv) + DQ(skip))``: the skip's ``DQ``).  A
group that would close a cycle with other groups is dissolved.  Single nodes stay as they are;
constants stay outside, as group inputs.

Code generation lowers each ``ember.Fused`` node as one kernel call (``codegen/plan.py``); the
interpreter runs its body.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import networkx as nx

from compiler.ir.core import Graph, Node, Value
from compiler.ir.topo import node_inputs
from compiler.ops import Fusion
from compiler.passes import Pass, PassResult
from compiler.rewrite import Rewriter

from .fuse_rules import (
    fusion_kind,
    joined_kind,
    nests_too_deep,
    reads_checked_value,
    single_output,
    transcendental_depth,
)

FUSED_OP = "ember.Fused"
SEARCH_LIMIT = 4096  # nodes visited to prove an operand independent of a group (beyond: assume it depends)


@dataclass
class FusedGroup:
    """A group being formed: its seed, its kind and its members in graph order."""

    seed: Node
    kind: Fusion
    members: list[Node] = field(default_factory=list)

    def ids(self) -> set[int]:
        return {id(m) for m in self.members}


def group_outputs(members: list[Node]) -> list[Value]:
    """The members' values used outside the group or returned by the graph, in graph order."""
    inside = {id(m) for m in members}
    return [
        r
        for m in members
        for r in m.results
        if any(not isinstance(u.user, Node) or id(u.user) not in inside for u in r.uses)
    ]


def group_inputs(members: list[Node]) -> list[Value]:
    """The values the members read that no member produces, in order of first use."""
    inside = {id(m) for m in members}
    seen: set[int] = set()
    out = []
    for m in members:
        for v in m.operands:
            if v is None or id(v) in seen or (v.producer is not None and id(v.producer) in inside):
                continue
            seen.add(id(v))
            out.append(v)
    return out


class _Grouper:
    """Forms the groups of one graph (not yet rewritten)."""

    def __init__(self, graph: Graph, prologues: bool = True):
        self.graph = graph
        self.prologues = prologues
        self.nodes = list(graph.nodes)
        self.pos = {id(n): i for i, n in enumerate(self.nodes)}
        self.group_of: dict[int, FusedGroup] = {}

    def depends_on(self, start: Node, members: set[int], lowest: int) -> bool:
        """Whether ``start`` (outside the group) reads, through any path, a member's value."""
        stack, seen = [start], set()
        while stack:
            n = stack.pop()
            if id(n) in members:
                return True
            if id(n) in seen or self.pos.get(id(n), -1) < lowest:
                continue  # nodes before the group's first member cannot depend on it
            seen.add(id(n))
            if len(seen) > SEARCH_LIMIT:
                return True
            stack.extend(v.producer for v in node_inputs(n) if v.producer is not None)
        return False

    def may_join(self, group: FusedGroup, members: set[int], consumer: Node) -> Fusion | None:
        if id(consumer) in members or id(consumer) in self.group_of or consumer.graph is not self.graph:
            return None
        kind = joined_kind(group.kind, group.seed, consumer, self.prologues)
        if kind is None or reads_checked_value(consumer, members):
            return None
        lowest = self.pos[id(group.seed)]
        for v in node_inputs(consumer):
            p = v.producer
            if p is not None and id(p) not in members and self.depends_on(p, members, lowest):
                return None  # a path from the group to the consumer leaves the group
        return kind

    def grow(self, seed: Node) -> FusedGroup:
        group = FusedGroup(seed, fusion_kind(seed), [seed])
        members = {id(seed)}
        depth_of = {id(seed): transcendental_depth(seed, {})}
        queue: list[tuple[int, int, Node]] = []

        def push_users(node: Node) -> None:
            for r in node.results:
                for user in r.users:
                    if id(user) in self.pos:
                        heapq.heappush(queue, (self.pos[id(user)], id(user), user))

        push_users(seed)
        while queue:
            _, _, consumer = heapq.heappop(queue)
            kind = self.may_join(group, members, consumer)
            if kind is None:
                continue
            depth = transcendental_depth(consumer, depth_of)
            if nests_too_deep(kind, depth):
                continue
            depth_of[id(consumer)] = depth
            group.kind = kind
            group.members.append(consumer)
            members.add(id(consumer))
            push_users(consumer)
        group.members.sort(key=lambda n: self.pos[id(n)])
        while single_output(group.kind) and len(group.members) > 1 and len(group_outputs(group.members)) > 1:
            group.members.pop()  # the last member feeds no other member: dropping it keeps the group closed
        if group.kind == Fusion.ANCHOR and self.prologues:  # the GPU schedules get no computed operands
            self.absorb_epilogue_producers(group)
        return group

    def absorb_epilogue_producers(self, group: FusedGroup) -> None:
        """An anchor group takes in each elementwise producer that only its epilogue reads (a residual
        Add's ``DequantizeLinear(skip)``): the write-back then loads the producer's operands and
        computes it, instead of a kernel of its own writing the whole tensor (as float32, four
        times the uint8 it reads).  Only a producer of the anchor's whole shape: a smaller one (an
        SE gate's ``Sigmoid`` of ``[N, C, 1, 1]``) would be recomputed for every output element.
        The anchor's own operands stay placeholders (its schedule reads them as such).  Such a
        producer cannot depend on the group: its consumer would not have joined."""
        members = group.ids()
        shape = group.seed.results[0].type.shape
        for member in group.members[1:]:
            for v in member.operands:
                p = None if v is None else v.producer
                if (
                    p is None
                    or id(p) in members
                    or id(p) in self.group_of
                    or id(p) not in self.pos
                    or fusion_kind(p) != Fusion.ELEMENTWISE
                    or len(p.results) != 1
                    or p.results[0].type.shape != shape
                    or any(not isinstance(u.user, Node) or id(u.user) not in members for u in p.results[0].uses)
                    or any(u.user is group.seed for u in p.results[0].uses)  # the anchor reads it too
                ):
                    continue
                group.members.append(p)
                members.add(id(p))
        group.members.sort(key=lambda n: self.pos[id(n)])

    def form_groups(self) -> list[FusedGroup]:
        seeds = [n for n in self.nodes if fusion_kind(n) == Fusion.ANCHOR]
        seeds += [n for n in self.nodes if fusion_kind(n) not in (Fusion.ANCHOR, Fusion.OPAQUE)]
        groups = []
        for seed in seeds:
            if id(seed) in self.group_of:
                continue
            group = self.grow(seed)
            if len(group.members) < 2 or not group_outputs(group.members):
                continue  # a single node stays as it is; a dead group is dce's
            groups.append(group)
            for m in group.members:
                self.group_of[id(m)] = group
        return self.drop_cycles(groups)

    def drop_cycles(self, groups: list[FusedGroup]) -> list[FusedGroup]:
        """Dissolve the latest group of each cycle among fused nodes until none is left."""
        while True:
            dag = nx.DiGraph()
            for n in self.nodes:
                target = id(self.group_of.get(id(n), n))
                dag.add_node(target)
                for v in node_inputs(n):
                    if v.producer is not None and id(v.producer) in self.pos:
                        source = id(self.group_of.get(id(v.producer), v.producer))
                        if source != target:
                            dag.add_edge(source, target)
            try:
                cycle = nx.find_cycle(dag)
            except nx.NetworkXNoCycle:
                return groups
            in_cycle = {a for a, _ in cycle}
            victim = [g for g in groups if id(g) in in_cycle][-1]
            groups.remove(victim)
            for m in victim.members:
                del self.group_of[id(m)]


def fuse_group(rw: Rewriter, group: FusedGroup, index: int) -> Node:
    """Replace ``group``'s members by one ``ember.Fused`` node (placed after the last member)."""
    members = group.members
    inputs, outputs = group_inputs(members), group_outputs(members)
    body = Graph(f"fused_{index}_{members[0].op.lower()}")
    inner: dict[int, Value] = {id(v): body.add_param(v.type, v.name) for v in inputs}
    for m in members:
        copy = Node(
            m.op,
            [None if v is None else inner[id(v)] for v in m.operands],
            [r.type for r in m.results],
            dict(m.attrs),
            [r.name for r in m.results],
            m.name,
        )
        body.append(copy)
        inner.update((id(r), c) for r, c in zip(m.results, copy.results))
    body.outputs = [inner[id(v)] for v in outputs]
    fused = Node(FUSED_OP, inputs, [v.type for v in outputs], {"body": body}, [v.name for v in outputs])
    rw.set_insertion_point_after(members[-1])
    rw.insert(fused)
    for old, new in zip(outputs, fused.results):
        rw.replace_value(old, new)
    for m in reversed(members):
        rw.erase_node(m)
    return fused


@dataclass(frozen=True)
class FusePass(Pass):
    """Make each fusable group an ``ember.Fused`` node (see the module docstring).
    ``fuse{prologues=0}`` fuses no injective producer into a reduction and no elementwise producer into
    an anchor's epilogue (CUDA's preparation)."""

    name = "fuse"
    prologues: bool = True  # producers inlined into a reduction or an epilogue (off for CUDA's schedules)

    def run(self, graph: Graph) -> PassResult:
        groups = _Grouper(graph, self.prologues).form_groups()
        if not groups:
            return PassResult(False, {"groups": 0})
        rw = Rewriter(graph, rule_name=self.name)
        for index, group in enumerate(groups):
            fuse_group(rw, group, index)
        graph.sort_topologically()  # a group's results may be used before its last member's place
        return PassResult(True, {"groups": len(groups), "fused-nodes": sum(len(g.members) for g in groups)})
