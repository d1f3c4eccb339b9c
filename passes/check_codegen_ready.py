"""``check-codegen-ready``: fail, naming the node, when control flow is left that code generation
cannot take; changes nothing.  An ``If`` with a run-time condition is compiled as real branches
unless ``branch_problem`` says why not.

Code generation needs straight-line code and If branches.  After ``codegen-prepare``'s rewrites, a top-level
``RNN``/``GRU``/``LSTM``, ``If`` or ``Loop`` that is left could not be written out, and this pass
raises a ``CodegenError`` saying why (``recurrent_problem``, ``branch_problem``, ``loop_problem``):

    RNN(x) with a symbolic sequence length  ->  error "the sequence length must be static ..."
    If(c) with branch outputs f32[2] / f32[3] ->  error "its branches produce values of different ..."
    Loop(M, c) with a run-time M and c      ->  error "its condition and its trip count are ..."

Other ops without a lowering are left to the planner, which lists them all at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.ir.core import Graph, Node
from compiler.ops.kernels_recurrent import GATES
from compiler.passes import Pass, PassResult

from .select_ifs import branch_problem
from .unroll_loops import loop_problem
from .unroll_recurrent import recurrent_problem, runs_as_one_kernel


def codegen_problem(node: Node) -> str | None:
    """Why the top-level control-flow ``node`` cannot be compiled, or None for other nodes."""
    if node.op in GATES:
        if runs_as_one_kernel(node):
            return None
        return recurrent_problem(node) or "it was not written out per step"
    if node.op == "If":
        return branch_problem(node)  # None: compiled as real branches (codegen/branches.py)
    if node.op == "Loop":
        return loop_problem(node) or (
            "its condition is computed at run time and it has scan outputs or "
            "no constant trip count, or its body is unsafe to run past the "
            "condition, or it runs too long"
        )
    return None


@dataclass(frozen=True)
class CheckCodegenReadyPass(Pass):
    """Raise ``CodegenError`` for the first control-flow node left (see the module docstring)."""

    name = "check-codegen-ready"

    def run(self, graph: Graph) -> PassResult:
        from codegen.errors import CodegenError  # what compile drivers report (no TVM import)

        for node in graph.nodes:
            why = codegen_problem(node)
            if why is None:
                continue
            if node.op in GATES:  # the reason names the problem in the recurrent op's own words
                raise CodegenError(why, node=node.name, op=node.op)
            how = (
                "code generation runs an If as real branches, or computes tiny branches both ways"
                if node.op == "If"
                else "code generation needs control flow written out as straight-line code"
            )
            raise CodegenError(f"cannot be compiled: {why}; {how}", node=node.name, op=node.op)
        return PassResult(False)
