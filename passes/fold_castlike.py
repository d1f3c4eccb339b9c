"""``fold-castlike``: ``CastLike`` of a constant becomes a constant of the other operand's dtype.

    CastLike(Constant c, x)  ->  Constant(c as dtype(x))

Only ``x``'s type matters, not its value, so this folds even where ``x`` is computed at run time;
ONNX function bodies build their constants this way (``-inf`` in the input's dtype for masks and
pads), and ``expand-functions`` leaves many of them behind.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.ir.core import Graph
from compiler.ir.types import TensorType
from compiler.passes import Pass, PassResult
from compiler.rewrite import Rewriter


@dataclass(frozen=True)
class FoldCastLikePass(Pass):
    """Fold ``CastLike`` of a constant (see the module docstring)."""

    name = "fold-castlike"

    def run(self, graph: Graph) -> PassResult:
        rw = Rewriter(graph, rule_name=self.name)
        count = 0
        for node in list(graph.nodes):
            if node.op != "CastLike" or node.operands[0] is None or node.operands[0].const_value is None:
                continue
            like = node.operands[1].type
            if not isinstance(like, TensorType):
                continue
            rw.set_insertion_point_before(node)
            value = np.asarray(node.operands[0].const_value).astype(like.dtype.np)
            rw.replace_node(node, [rw.constant(value, name=node.result.name)])
            count += 1
        return PassResult(count > 0, {"folded": count})
