"""``integer-matmul-int8-weights``: integer matmuls of a constant weight whose zero point is one per
column (not all zero once a uint8 weight is shifted into int8), or of a uint8 weight without one,
become a MatMulInteger of int8 weights without a zero point, which the packed integer kernel takes,
less the zero points times each row's sum of the centred activation.

    MatMulInteger(a, b, za?, zb)
        ->  MatMulInteger(a, b - s, za) - ReduceSum(Cast(a, int32) - za, axes=[-1], keepdims=1) * (zb - s)
    QLinearMatMul(a, sa, za, b, sb, zb, sy, zy)
        ->  QuantizeLinear(Cast(<the same>, float) * m, 1, zy)

with ``s`` = 128 for a uint8 weight (``b - 128`` is the same weight as int8) and 0 for an int8 one,
and ``m[n] = sa * sb[n] / sy`` in float32, the product and rounding of the packed kernel's
epilogue. Exact: ``sum_k (a - za)(b - zb) = sum_k (a - za)(b - s) - (zb - s) * sum_k (a - za)``,
all in int32 as the op itself sums.

Why: the packed kernel (``codegen/tvm/lower/quantization_gemm.py``) takes a per-tensor weight zero
point itself (less ``zb * `` its own row sum), and per-column zero points that are all zero once
shifted (onnxruntime's quantizer writes symmetric per-channel uint8 weights, 128 everywhere), but
not asymmetric per-column ones, which other tools write; those took the generic int32 reduction,
42 ms for a 128 x 768 x 768 product that onnxruntime runs in 0.6 (1 thread).

Applies to a constant 8-bit weight of rank 2 and its constant zero point, a per-tensor ``za``, and
for QLinearMatMul constant per-tensor ``sa``/``sy`` and per-tensor or per-column ``sb``. A
code-generation preparation (``codegen-prepare``): it adds nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import TensorProto

from compiler.ir.core import Graph, Node
from compiler.passes import Pass, PassResult
from compiler.rewrite import MatchResult, NodeRule, RuleSet, apply_rules_counted

from .integer_products import (
    MATMULS,
    OPERANDS,
    const,
    eight_bit,
    int8_weight,
    operand,
    qlinear_checks,
    requantized,
    weight_zero,
)


def _applies(node: Node) -> MatchResult:
    ai, zai, bi, _, _ = OPERANDS[node.op]
    a, za, b = node.operands[ai], operand(node, zai), node.operands[bi]
    if not eight_bit(a) or (za is not None and not eight_bit(za)) or not eight_bit(b):
        return MatchResult.fail("not 8-bit operands")
    if a.type.shape is None or len(a.type.shape) < 2 or b.type.shape is None or len(b.type.shape) != 2:
        return MatchResult.fail("not a product of a 2-D weight of known shapes")
    if const(b) is None or weight_zero(node) is None:
        return MatchResult.fail("the weight or its zero point is not a constant")
    zb = operand(node, OPERANDS[node.op][3])
    if zb is not None and int(np.prod(zb.type.shape or ())) == 1:
        return MatchResult.fail("a per-tensor weight zero point: the packed kernel takes it")
    if not np.any(int8_weight(node)[1]):
        return MatchResult.fail("int8 weights without a zero point: the packed kernel takes them")
    if za is not None and int(np.prod(za.type.shape or ())) != 1:
        return MatchResult.fail("the activation's zero point is not per tensor")
    if node.op == "QLinearMatMul" and (why := qlinear_checks(node)):
        return MatchResult.fail(why)
    return MatchResult.success()


def _with_int8_weights(node: Node, rw) -> bool:
    ai, zai, _, _, _ = OPERANDS[node.op]
    a, za = node.operands[ai], operand(node, zai)
    weight, zero = int8_weight(node)
    operands = [a, rw.constant(weight)] + ([za] if za is not None else [])
    product = rw.op("MatMulInteger", operands)
    centred = rw.op("Cast", [a], {"to": TensorProto.INT32})
    if za is not None:
        centred = rw.op("Sub", [centred, rw.op("Cast", [za], {"to": TensorProto.INT32})])
    rows = rw.op("ReduceSum", [centred, rw.constant(np.array([-1], np.int64))], {"keepdims": 1})
    last = node.name if node.op == "MatMulInteger" else None  # the op that ends up with the node's name
    total = rw.op("Sub", [product, rw.op("Mul", [rows, rw.constant(zero)])], name=last)
    if node.op == "QLinearMatMul":
        total = requantized(node, rw, rw.op("Cast", [total], {"to": TensorProto.FLOAT}))
    rw.replace_node(node, total)
    return True


RULES = RuleSet(
    [NodeRule(op, _with_int8_weights, check=_applies, name="integer-matmul-int8-weights") for op in MATMULS],
    name="integer-matmul-int8-weights",
)


@dataclass(frozen=True)
class IntegerMatMulInt8WeightsPass(Pass):
    """MatMulInteger / QLinearMatMul of a per-column weight zero point -> MatMulInteger of int8
    weights less a row-sum correction (module docstring)."""

    name = "integer-matmul-int8-weights"

    def run(self, graph: Graph) -> PassResult:
        return PassResult(*apply_rules_counted(graph, RULES))
