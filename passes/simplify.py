"""``simplify{fast-math=false}``: algebraic simplification to a fixed point.

Composes the rule sets of ``passes/rules`` (each module's docstring lists its rewrites):

- ``algebra``: ``x+(-0.0)``, ``x-0``, ``x*1``, ``x/1``, ``x**1`` -> ``x``; float ``x**2``, ``x**3`` -> products,
  ``x**-1`` -> ``Reciprocal(x)``; ``x*-1`` -> ``Neg(x)``; ``Neg(Neg(x))`` -> ``x``; ``x/c`` -> ``x*(1/c)`` when exact;
- ``shape``: Identity, inference Dropout, no-op Cast/CastLike, zero Pad, whole Slice, same-shape
  Expand/Reshape removed; Cast∘Cast (widening), Reshape-like pairs, Transpose∘Transpose merged or cancelled;
- ``conv_fusion``: BatchNormalization folded into Conv/ConvTranspose/Gemm/MatMul; per-channel Mul/Add
  folded into Conv weights and bias; Pad folded into Conv/AveragePool/MaxPool;
- ``gemm``: MatMul+Add -> Gemm; Transpose folded into Gemm (transA/transB) and 2-D MatMul;
- ``recognise``: GELU (erf, tanh), LayerNormalization, Softmax, HardSwish, SiLU -> single ops;
- ``attention``: multi-head scaled dot-product attention -> ``Attention`` (opset 23).

Every rule is exact except the recognitions and weight folds (which round differently) and, under
``fast-math=true`` only, rules that are wrong for NaN, Inf or -0.0: ``x+0`` -> ``x``, ``x*0`` -> ``0``,
``x-x`` -> ``0`` and ``x/c`` -> ``x*(1/c)`` for any constant.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.ir.core import Graph
from compiler.passes import Pass, PassResult
from compiler.rewrite import RuleSet, apply_rules_counted

from .rules import algebra, attention, conv_fusion, gemm, recognise, shape

FAMILIES = (algebra, shape, conv_fusion, gemm, recognise, attention)


def simplify_rules(fast_math: bool = False) -> RuleSet:
    """All simplify rules as one set (the fast-math ones only when asked)."""
    out = RuleSet(name="simplify")
    for family in FAMILIES:
        out = out + family.rules(fast_math)
    return out


@dataclass(frozen=True)
class SimplifyPass(Pass):
    """Algebraic simplification with the rule sets of ``passes/rules`` (see the module docstring)."""

    name = "simplify"
    fast_math: bool = False

    def run(self, graph: Graph) -> PassResult:
        return PassResult(*apply_rules_counted(graph, simplify_rules(self.fast_math)))
