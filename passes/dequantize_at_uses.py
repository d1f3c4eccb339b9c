"""``dequantize-at-uses``: a DequantizeLinear of 8-bit values read by several ops, each of which
fuses it into its own kernel, becomes one copy per reader, so that no kernel writes the float32
tensor and every reader dequantizes the 8-bit one as it loads it.

    y = DequantizeLinear(x, s, z)          ->  y1 = DequantizeLinear(x, s, z)
    a = GlobalAveragePool(y)                   a = GlobalAveragePool(y1)
    b = Mul(y, g)                              y2 = DequantizeLinear(x, s, z)
                                               b = Mul(y2, g)

Applies where ``x`` is 8-bit, the DequantizeLinear has at least two readers and is no graph
output, and every reader is an op a fused group takes it into as a producer: elementwise,
injective or a reduction (``passes/fuse_rules.py``; an anchor such as Conv or MatMul reads its
operands as they are, and an opaque op fuses nothing).

Why: ``fuse`` puts a producer with several readers into the kernel before it, which then writes
the float32 values, four times the bytes of the 8-bit ones, for each reader to load again. In a
static QDQ EfficientNet-B0 every squeeze-and-excitation block dequantizes its depthwise conv's
output for both its pool and its gating Mul: the depthwise kernel wrote float32 activations of
up to 96 x 112 x 112. A dequantization costs a subtraction and a multiplication per element:
less than four bytes written and read back.

A code-generation preparation (``codegen-prepare``): it makes copies ``cse`` would merge.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.ir.core import Graph, Node
from compiler.ops import Fusion
from compiler.passes import Pass, PassResult
from compiler.rewrite import MatchResult, NodeRule, RuleSet, apply_rules_counted

from .fuse_rules import fusion_kind
from .integer_products import eight_bit

PROLOGUE_READERS = (Fusion.ELEMENTWISE, Fusion.INJECTIVE, Fusion.REDUCTION)


def _splittable(node: Node) -> MatchResult:
    x, (y,) = node.operands[0], node.results
    if not eight_bit(x):
        return MatchResult.fail("not 8-bit input")
    if any(not isinstance(u.user, Node) for u in y.uses):
        return MatchResult.fail("a graph output")
    if len(y.uses) < 2:
        return MatchResult.fail("one reader")
    if any(u.user.graph is not node.graph for u in y.uses):
        return MatchResult.fail("a reader in a nested graph")
    if any(fusion_kind(u.user) not in PROLOGUE_READERS for u in y.uses):
        return MatchResult.fail("a reader that takes no fused producer")
    return MatchResult.success()


def _split(node: Node, rw) -> bool:
    (y,) = node.results
    for use in list(y.uses)[1:]:
        rw.set_insertion_point_before(use.user)  # each copy just before its reader
        copy = rw.op("DequantizeLinear", list(node.operands), dict(node.attrs), name=node.name)
        rw.set_operand(use.user, use.index, copy)
    return True


RULES = RuleSet([NodeRule("DequantizeLinear", _split, check=_splittable, name="dequantize-at-uses")])


@dataclass(frozen=True)
class DequantizeAtUsesPass(Pass):
    """A DequantizeLinear of 8-bit values with several fusing readers -> one copy per reader
    (module docstring)."""

    name = "dequantize-at-uses"

    def run(self, graph: Graph) -> PassResult:
        return PassResult(*apply_rules_counted(graph, RULES))
