"""Topological ordering of a graph's nodes (captures of nested graphs count as operands)."""

from __future__ import annotations

from typing import Iterator

import networkx as nx

from .core import Graph, Node, Value


def captured_values(node: Node) -> Iterator[Value]:
    """Values of enclosing scopes read by ``node``'s nested graphs."""
    for sub in node.subgraphs:
        local = {id(p) for p in sub.params}
        for inner in sub.walk():
            for r in inner.results:
                local.add(id(r))
        for inner in sub.walk():
            for v in inner.operands:
                if v is not None and id(v) not in local:
                    yield v
        for v in sub.outputs:
            if id(v) not in local:
                yield v


def node_inputs(node: Node) -> Iterator[Value]:
    """Every value ``node`` reads: its operands and its nested graphs' captures."""
    yield from (v for v in node.operands if v is not None)
    yield from captured_values(node)


def dependency_graph(graph: Graph) -> nx.DiGraph:
    """A networkx DiGraph over ``graph``'s nodes: an edge producer -> consumer."""
    dg = nx.DiGraph()
    members = {id(n): n for n in graph.nodes}
    for n in graph.nodes:
        dg.add_node(id(n))
    for n in graph.nodes:
        for v in node_inputs(n):
            p = v.producer
            if p is not None and id(p) in members and p is not n:
                dg.add_edge(id(p), id(n))
    return dg


def topological_order(graph: Graph) -> list[Node]:
    """Nodes ordered so producers come first; ties keep the current order. Raises on a cycle."""
    dg = dependency_graph(graph)
    position = {id(n): i for i, n in enumerate(graph.nodes)}
    members = {id(n): n for n in graph.nodes}
    try:
        order = list(nx.lexicographical_topological_sort(dg, key=lambda k: position[k]))
    except nx.NetworkXUnfeasible:
        cycle = nx.find_cycle(dg)
        names = " -> ".join(members[a].describe() for a, _ in cycle)
        raise ValueError(f"the graph has a cycle: {names}") from None
    return [members[k] for k in order]
