"""``dce``: dead code elimination.

Rewrites:
- ``%y = Op(...)`` with no use of any result -> removed, when ``Op`` is pure and not random
  (ops with side effects, unknown ops and ops without results stay);
- the same inside nested graphs (If branches, Loop/Scan bodies).

Nodes are visited last to first, so a dead chain disappears in one run.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler import Graph, Node
from compiler.ops import Trait, get_op
from compiler.passes import Pass, PassResult
from compiler.rewrite import Rewriter


def is_removable_when_unused(node: Node) -> bool:
    """True if ``node`` has results, none used, and its op is pure and not random."""
    if not node.results or any(r.has_uses() for r in node.results):
        return False
    op_def = get_op(node.op)
    return op_def is not None and op_def.has(Trait.PURE) and not op_def.has(Trait.RANDOM)


def eliminate_dead_code(graph: Graph) -> int:
    """Erase dead nodes of ``graph`` and its nested graphs; returns how many were erased."""
    erased = 0
    rw = Rewriter(graph, rule_name="dce")
    for node in reversed(list(graph.nodes)):
        if is_removable_when_unused(node):
            rw.erase_node(node)
            erased += 1
            continue
        for sub in node.subgraphs:
            erased += eliminate_dead_code(sub)
    return erased


@dataclass(frozen=True)
class DeadCodeEliminationPass(Pass):
    """Remove pure nodes whose results are never used (see the module docstring)."""

    name = "dce"

    def run(self, graph: Graph) -> PassResult:
        erased = eliminate_dead_code(graph)
        return PassResult(erased > 0, {"erased": erased})
