"""``inline-constant-ifs``: an ``If`` whose condition is a constant becomes the branch it takes.

    If(Constant c){then_branch, else_branch}  ->  the nodes of then_branch if c else else_branch

Branch nodes may read outer values directly, so they move into the enclosing graph unchanged
(``Rewriter.inline_region``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.ir.core import Graph
from compiler.passes import Pass, PassResult
from compiler.rewrite import Rewriter


@dataclass(frozen=True)
class InlineConstantIfsPass(Pass):
    """Inline the taken branch of every top-level ``If`` with a constant condition."""

    name = "inline-constant-ifs"

    def run(self, graph: Graph) -> PassResult:
        rw = Rewriter(graph, rule_name=self.name)
        count = 0
        for node in list(graph.nodes):
            if node.op != "If" or node.operands[0] is None or node.operands[0].const_value is None:
                continue
            taken = bool(np.asarray(node.operands[0].const_value).reshape(-1)[0])
            branch = node.attrs["then_branch" if taken else "else_branch"]
            if branch.params:
                continue
            rw.replace_node(node, rw.inline_region(node, branch))
            count += 1
        return PassResult(count > 0, {"inlined": count})
