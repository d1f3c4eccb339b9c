"""``prepare-if-branches``: run ``codegen-prepare`` inside both branches of every top-level ``If``
that code generation will run as real branches.

    If(c){then: Conv, Add, Relu, ...}  ->  If(c){then: ember.Fused(Conv, Add, Relu) {body: ...}, ...}

``codegen-prepare``'s passes work on one graph's node list; an ``If`` that ``select-ifs`` keeps
(a run-time condition, branches that are not tiny) is compiled branch by branch
(``codegen/branches.py``), so each branch body gets the whole pipeline: contrib ops decomposed,
recurrent ops and loops written out, constants folded, nested ``If``s inlined, selected or
prepared in turn (the pipeline holds this pass), groups fused, and ``check-codegen-ready``, whose
``CodegenError`` names the node inside the branch.  An ``If`` that cannot run as branches
(``branch_problem``) is left for ``check-codegen-ready`` to name.  Run it after ``select-ifs`` and
before the top-level ``fuse``.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.diagnostics import EmberError
from compiler.ir.core import Graph
from compiler.passes import Pass, PassResult

from .select_ifs import BRANCHES, branch_problem

BRANCH_PIPELINE = "codegen-prepare"


@dataclass(frozen=True)
class PrepareIfBranchesPass(Pass):
    """Prepare each branch of every top-level run-time ``If`` for code generation (see the module docstring)."""

    name = "prepare-if-branches"

    def run(self, graph: Graph) -> PassResult:
        from compiler.pipeline import PassManager  # late: the pipeline module imports the pass registry

        modified, count = False, 0
        for node in list(graph.nodes):
            if node.op != "If" or node.operands[0].const_value is not None or branch_problem(node) is not None:
                continue
            count += 1
            for key in BRANCHES:
                # a branch reads outer values, so it verifies only inside its graph: the caller's
                # verification around this pass covers it
                try:
                    modified |= PassManager(BRANCH_PIPELINE, verify_each=False).run(node.attrs[key]).modified
                except EmberError as exc:
                    if isinstance(exc.__cause__, EmberError):  # the inner pass's own error names the node
                        raise exc.__cause__ from None
                    raise
        return PassResult(modified, {"ifs": count})
