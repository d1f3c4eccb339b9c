"""``integer-conv-as-float``: integer convolutions the integer kernels do not take become float32
convolutions of the zero-point-centred integers, where float32 computes them exactly.

    ConvInteger(x, w, zx?, zw?){attrs}                         (grouped, uint8 w, or a w zero point)
        ->  Cast(Conv(Cast(x, float) - zx, float(w - zw)){attrs}, int32)
    QLinearConv(x, sx, zx, w, sw, zw, sy, zy?, B?){attrs}      (the same)
        ->  QuantizeLinear(Conv(Cast(x, float) - zx, float(w - zw), float(B)){attrs} * m, 1, zy)
            with m[k] = sx * sw[k] / sy in float32, per output channel

Exactness: every product ``(x - zx)(w - zw)`` is an integer, and ``|x - zx| <= 255`` for 8-bit
``x``, so every partial sum of an output is an integer of at most ``255 * sum|w[k] - zw[k]| +
|B[k]|``. Where that bound (taken from the constant weight and bias) is below 2^24 every float32
sum is exact, whatever the order, and the result equals the int32 one bit for bit; the
requantization then multiplies by the same float32 ``m`` and rounds as the integer kernel's epilogue
(``round_half_even(acc * (sx * sw / sy)) + zy``, saturated). A conv whose bound is larger is left
alone. Padding reads ``x``'s zero point in both ops, which is 0 once centred.

Why: the integer kernels take group-1 QLinearConvs and ConvIntegers (what onnxruntime's
``quantize_dynamic`` writes for a Conv) of int8 weights with zero zero points
(``codegen/tvm/lower/quantization_gemm.py``), and depthwise ones of such weights
(``quantization_depthwise.py``): the lowerings' ``native`` fact. Everything else took the generic
int32 reduction: a 64 -> 64 3x3 ConvInteger of uint8
weights at 56 x 56 ran in 60 ms against onnxruntime's 2.1, a depthwise QLinearConv of 144 channels
at 56 x 56 in 4.8 ms against 0.58 (1 thread). As float convolutions they run on the float conv
kernels.

Applies to constant weights (and bias and weight zero points) of 8-bit types, 8-bit ``x`` and
``x`` zero point, and for QLinearConv constant per-tensor ``sx``/``sy`` and per-tensor or
per-channel ``sw``. A code-generation preparation (``codegen-prepare``): it adds nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import TensorProto

from compiler.ir.core import Graph, Node
from compiler.passes import Pass, PassResult
from compiler.rewrite import MatchResult, NodeRule, RuleSet, apply_rules_counted

from .integer_products import (
    ACTIVATION_SPAN,
    CONVS,
    EXACT_LIMIT,
    OPERANDS,
    bias,
    centred_input,
    centred_weight,
    conv_attrs,
    eight_bit,
    operand,
    qlinear_checks,
    requantized,
    takes_integer_kernel,
)


def _convertible(node: Node, cpu_depthwise: bool = True) -> MatchResult:
    xi, zxi, wi, _, _ = OPERANDS[node.op]
    x, zx = node.operands[xi], operand(node, zxi)
    if not eight_bit(x) or (zx is not None and not eight_bit(zx)) or not eight_bit(node.operands[wi]):
        return MatchResult.fail("not 8-bit input and weight")
    if x.type.shape is None or len(x.type.shape) < 3:
        return MatchResult.fail("no spatial dims known")
    if takes_integer_kernel(node) and (cpu_depthwise or node.attrs.get("group", 1) == 1):
        return MatchResult.fail("the integer conv kernel takes it")
    if node.op == "QLinearConv" and (why := qlinear_checks(node)):
        return MatchResult.fail(why)
    weight = centred_weight(node)
    if weight is None:
        return MatchResult.fail("the weight or its zero point is not a constant")
    bound = ACTIVATION_SPAN * np.abs(weight).reshape(weight.shape[0], -1).sum(axis=1)
    b = bias(node) if node.op == "QLinearConv" else None
    if b is not None:
        bound = bound + np.abs(b)
    if int(bound.max()) >= EXACT_LIMIT:
        return MatchResult.fail(f"sums up to {int(bound.max())} would not be exact in float32")
    return MatchResult.success()


def _as_float(node: Node, rw) -> bool:
    operands = [centred_input(node, rw), rw.constant(centred_weight(node).astype(np.float32))]
    b = bias(node) if node.op == "QLinearConv" else None
    if b is not None:
        operands.append(rw.constant(b.astype(np.float32)))
    conv = rw.op("Conv", operands, conv_attrs(node))
    if node.op == "ConvInteger":
        rw.replace_node(node, rw.op("Cast", [conv], {"to": TensorProto.INT32}, name=node.name))
    else:
        rw.replace_node(node, requantized(node, rw, conv))
    return True


def _rules(cpu_depthwise: bool) -> RuleSet:
    def check(node: Node) -> MatchResult:
        return _convertible(node, cpu_depthwise)

    rules = [NodeRule(op, _as_float, check=check, name="integer-conv-as-float") for op in CONVS]
    return RuleSet(rules, name="integer-conv-as-float")


RULES = {flag: _rules(flag) for flag in (True, False)}


@dataclass(frozen=True)
class IntegerConvAsFloatPass(Pass):
    """ConvInteger, and QLinearConv the integer kernels do not take -> exact float32 Conv (module docstring).

    ``integer-conv-as-float{cpu-depthwise=0}``: the target has no depthwise integer kernel (CUDA),
    so the depthwise convs that the CPU one would take become float32 Convs too."""

    name = "integer-conv-as-float"
    cpu_depthwise: bool = True  # the target runs depthwise integer convs on their own kernel

    def run(self, graph: Graph) -> PassResult:
        return PassResult(*apply_rules_counted(graph, RULES[self.cpu_depthwise]))
