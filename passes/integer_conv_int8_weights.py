"""``integer-conv-int8-weights``: dense integer convolutions whose constant weight is uint8, or has a
zero point other than 0, become a ConvInteger of int8 weights without a zero point, which the packed
integer kernel takes, less the weight's zero point times a window sum of the centred input.

    ConvInteger(x, w, zx?, zw){attrs}                          (group 1, 2-D)
        ->  ConvInteger(x, w - s, zx){attrs} - (zw - s) * S
    QLinearConv(x, sx, zx, w, sw, zw, sy, zy?, B?){attrs}      (the same)
        ->  QuantizeLinear(Cast(ConvInteger(x, w - s, zx){attrs} - (zw - s) * S + B, float) * m, 1, zy)

    S = Cast(Conv(ReduceSum(Cast(x, float) - zx, axes=[1], keepdims=1), ones[1, 1, R, S']){attrs}, int32)

with ``s`` = 128 for a uint8 weight (``w - 128`` is the same weight as int8) and 0 for an int8 one,
``zw`` per tensor or per output channel, and ``m[k] = sx * sw[k] / sy`` in float32 (the
requantization of ``integer-conv-as-float``, which rounds as the integer kernel's epilogue does).

Exactness: over each output's window ``sum (x - zx)(w - zw) = sum (x - zx)(w - s) - (zw - s) *
sum (x - zx)``, and padding counts 0 in both (the conv pads ``x - zx`` with zeros). ``S`` is that
last sum: each channel sum and each window sum of ``x - zx`` is an integer of at most ``255 * C * R
* S'`` in magnitude, exact in float32 below 2^24 (a window of up to 65,793 inputs, a 3x3 conv of
7,310 channels); a larger one is left alone. The rest is int32, as the op itself computes.

Why: the packed kernels (``codegen/tvm/lower/quantization_gemm.py``) take int8 weights without a
zero point, the quantizers' default. A QDQ model quantized with uint8 weights (onnxruntime's
``weight_type=QUInt8``, per-channel asymmetric) took the generic int32 reduction on every 3x3 conv
past ``integer-conv-as-float``'s bound: its ResNet-50 ran in 542 ms, onnxruntime's in 57 (1 thread).
Grouped convs stay with ``integer-conv-as-float`` (the packed kernel takes group 1 only).

A code-generation preparation (``codegen-prepare``), run before ``integer-conv-as-float``: it adds nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import TensorProto

from compiler.ir.core import Graph, Node, Value
from compiler.passes import Pass, PassResult
from compiler.rewrite import MatchResult, NodeRule, RuleSet, apply_rules_counted

from .integer_products import (
    ACTIVATION_SPAN,
    CONVS,
    EXACT_LIMIT,
    OPERANDS,
    bias,
    centred_input,
    const,
    conv_attrs,
    eight_bit,
    int8_weight,
    operand,
    qlinear_checks,
    requantized,
    takes_integer_kernel,
    weight_zero,
)
from .rules.common import attr


def _applies(node: Node) -> MatchResult:
    xi, zxi, wi, _, _ = OPERANDS[node.op]
    x, zx, w = node.operands[xi], operand(node, zxi), node.operands[wi]
    if not eight_bit(x) or (zx is not None and not eight_bit(zx)) or not eight_bit(w):
        return MatchResult.fail("not 8-bit input and weight")
    if x.type.shape is None or len(x.type.shape) != 4 or w.type.shape is None or len(w.type.shape) != 4:
        return MatchResult.fail("not a 2-D conv of known shapes")
    if int(attr(node, "group") or 1) != 1:
        return MatchResult.fail("grouped (the packed kernel takes group 1 only)")
    if takes_integer_kernel(node):
        return MatchResult.fail("the integer conv kernel takes it as it is")
    if const(w) is None or weight_zero(node) is None:
        return MatchResult.fail("the weight or its zero point is not a constant")
    if zx is not None and int(np.prod(zx.type.shape or ())) != 1:
        return MatchResult.fail("the input's zero point is not per tensor")
    if node.op == "QLinearConv" and (why := qlinear_checks(node)):
        return MatchResult.fail(why)
    window = int(np.prod(w.type.shape[1:]))
    if ACTIVATION_SPAN * window >= EXACT_LIMIT:
        return MatchResult.fail(f"window sums of {window} inputs would not be exact in float32")
    return MatchResult.success()


def _window_sums(node: Node, rw, weight_shape) -> Value:
    """``S``: the sum of ``x - zx`` over each output's window, int32 [N, 1, OH, OW] (module docstring);
    a window of one input at stride 1 without padding is the channel sum itself."""
    channels = rw.op("ReduceSum", [centred_input(node, rw), rw.constant(np.array([1], np.int64))], {"keepdims": 1})
    attrs = conv_attrs(node)
    unit_strides = set(attrs.get("strides", [1])) == {1}
    if tuple(weight_shape[2:]) != (1, 1) or any(attrs.get("pads", ())) or not unit_strides:
        channels = rw.op("Conv", [channels, rw.constant(np.ones((1, 1, *weight_shape[2:]), np.float32))], attrs)
    return rw.op("Cast", [channels], {"to": TensorProto.INT32})


def _with_int8_weights(node: Node, rw) -> bool:
    xi, zxi, _, _, _ = OPERANDS[node.op]
    weight, zero = int8_weight(node)
    zero = zero.reshape(1, -1, 1, 1)
    operands = [node.operands[xi], rw.constant(weight)]
    if operand(node, zxi) is not None:
        operands.append(operand(node, zxi))
    last = node.name if node.op == "ConvInteger" else None  # the op that ends up with the node's name
    corrected = bool(zero.any())  # a uint8 weight's zero point of 128 is none once shifted
    total = rw.op("ConvInteger", operands, conv_attrs(node), name=None if corrected else last)
    if corrected:
        correction = rw.op("Mul", [_window_sums(node, rw, weight.shape), rw.constant(zero)])
        total = rw.op("Sub", [total, correction], name=last)
    if node.op == "ConvInteger":
        rw.replace_node(node, total)
        return True
    b = bias(node)
    if b is not None:
        total = rw.op("Add", [total, rw.constant(b.astype(np.int32).reshape(1, -1, 1, 1))])
    rw.replace_node(node, requantized(node, rw, rw.op("Cast", [total], {"to": TensorProto.FLOAT})))
    return True


RULES = RuleSet(
    [NodeRule(op, _with_int8_weights, check=_applies, name="integer-conv-int8-weights") for op in CONVS],
    name="integer-conv-int8-weights",
)


@dataclass(frozen=True)
class IntegerConvInt8WeightsPass(Pass):
    """Dense ConvInteger / QLinearConv of uint8 or zero-pointed weights -> ConvInteger of int8
    weights less a window-sum correction (module docstring)."""

    name = "integer-conv-int8-weights"

    def run(self, graph: Graph) -> PassResult:
        return PassResult(*apply_rules_counted(graph, RULES))
