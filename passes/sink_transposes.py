"""``sink-transposes``: Transposes moved towards the outputs until they cancel or become views.

Runs the ``passes/rules/transpose.py`` rules with the ``shape`` rules for Transposes, greedily to
a fixed point (each rule's docstring entry lists the exact rewrite):

- ``transpose-elementwise``: ``U(Transpose(x, p), c)`` -> ``Transpose(U(x, c'), p)`` for pure
  elementwise ops, constants permuted at compile time, same-permutation Transposes on every operand;
- ``transpose-reduction``: ``Reduce(Transpose(x, p), axes)`` -> ``Transpose(Reduce(x, p[axes]), p')``;
- ``transpose-as-reshape``: a Transpose that only moves size-1 dims becomes a Reshape (a view);
- ``transpose-transpose`` / ``transpose-identity``: composed permutations, identities removed.

Useful alone on exported transformer graphs (a Transpose before a residual Add and a
LayerNorm-style reduction meets its inverse after it). Not in the default pipelines.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.ir.core import Graph
from compiler.passes import Pass, PassResult
from compiler.rewrite import RuleSet, apply_rules_counted

from .rules import shape, transpose


def sink_transposes_rules() -> RuleSet:
    """The sinking rules plus the ``shape`` rules that cancel and merge Transposes."""
    return transpose.rules() + RuleSet([shape.transpose_identity, shape.transpose_transpose])


@dataclass(frozen=True)
class SinkTransposesPass(Pass):
    """Sink Transposes past elementwise ops and reductions; cancel, merge or turn them into Reshapes."""

    name = "sink-transposes"

    def run(self, graph: Graph) -> PassResult:
        return PassResult(*apply_rules_counted(graph, sink_transposes_rules()))
