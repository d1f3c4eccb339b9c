"""``expand-functions{backend=tvm,max-rounds=4}``: replace composite ops that have no lowering for the
backend by their ONNX function bodies.

ONNX defines many composite ops (``Attention``, ``RMSNormalization``, ``GroupNormalization``,
``NegativeLogLikelihoodLoss``, ``SoftmaxCrossEntropyLoss``, ``Celu``, ``Swish``, window
functions...) by a function body, possibly context-dependent (built from the node's attributes
and input types).  The interpreter runs these ops directly, so the importer keeps them as single
nodes; code generation needs every op lowered:

    Op(x, ...) {attrs}  ->  body nodes of Op's FunctionProto for (attrs, types of x, ...)

when ``get_op(Op).lowering(backend)`` is None.  The body comes from
``compiler.onnx_functions.function_body_graph`` (constant operands are copied into it, so bodies
that branch on them see their values) and is inlined with ``Rewriter.inline_region``.  Expansion
repeats ``max-rounds`` times (a body may use another composite op).  A node whose body cannot be
built is left alone: the planner then names it as unsupported.  Shape-only ops (Shape, Size:
folded from static types) are never expanded.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.diagnostics import EmberError
from compiler.ir.core import Graph, Node
from compiler.onnx_functions import FunctionExpansionError, function_body_graph, schema_with_function
from compiler.ops import Trait, get_op
from compiler.passes import Pass, PassResult
from compiler.rewrite import Rewriter


def needs_expansion(node: Node, backend: str = "tvm") -> bool:
    """A default-domain op without a lowering for ``backend``, not folded from static types, that
    has an ONNX function body."""
    if "." in node.op or node.subgraphs:
        return False
    op_def = get_op(node.op)
    if op_def is not None and (op_def.lowering(backend) is not None or op_def.has(Trait.SHAPE_ONLY)):
        return False
    from onnx import defs

    return schema_with_function(node.op, "", defs.onnx_opset_version()) is not None


def expand_node(rw: Rewriter, node: Node) -> bool:
    """Replace ``node`` by its function body; False (nothing changed) when the body cannot be built."""
    try:
        body = function_body_graph(node)
    except (FunctionExpansionError, EmberError):
        return False
    dynamic = [v for v in node.operands if v is not None and v.const_value is None]
    results = rw.inline_region(node, body, dynamic, name_prefix=f"{node.name or node.op}/")
    for old, new in zip(node.results, results):
        if old.has_uses():
            rw.replace_value(old, new)
    rw.erase_node(node)
    return True


@dataclass(frozen=True)
class ExpandFunctionsPass(Pass):
    """Expand composite ops without a lowering into their ONNX function bodies (see the module docstring)."""

    name = "expand-functions"
    backend: str = "tvm"
    max_rounds: int = 4

    def run(self, graph: Graph) -> PassResult:
        rw = Rewriter(graph, rule_name=self.name)
        count = 0
        for _ in range(self.max_rounds):
            todo = [n for n in graph.nodes if needs_expansion(n, self.backend)]
            expanded = sum(expand_node(rw, n) for n in todo)
            count += expanded
            if not expanded:
                break
        return PassResult(count > 0, {"expanded": count})
