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

Why: the integer kernels (``codegen/tvm/lower/quantization_gemm.py``) take group-1 QLinearConvs and
ConvIntegers (what onnxruntime's ``quantize_dynamic`` writes for a Conv) of int8 weights with zero
zero points; everything else took the generic int32 reduction: a 64 -> 64 3x3 ConvInteger of uint8
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

from compiler.ir.core import Graph, Node, Value
from compiler.passes import Pass, PassResult
from compiler.rewrite import MatchResult, NodeRule, RuleSet, apply_rules_counted

from .rules.common import attr

EXACT_LIMIT = 1 << 24  # float32 holds every integer below this exactly
ACTIVATION_SPAN = 255  # |x - zx| for 8-bit x and zero point
EIGHT_BIT = (np.dtype(np.int8), np.dtype(np.uint8))

# operand indices: (x, x zero point, w, w zero point, bias) of each op, None where it has none
_OPERANDS = {"ConvInteger": (0, 2, 1, 3, None), "QLinearConv": (0, 2, 3, 5, 8)}


def _operand(node: Node, index: int | None) -> Value | None:
    return node.operands[index] if index is not None and index < len(node.operands) else None


def _const(value: Value | None):
    return None if value is None else value.const_value


def _eight_bit(value: Value | None) -> bool:
    return value is not None and value.type is not None and value.type.dtype.np in EIGHT_BIT


def _centred_weight(node: Node) -> np.ndarray | None:
    """``w - zw`` (zw per tensor or per output channel) as int32, or None when not constant."""
    _, _, wi, zwi, _ = _OPERANDS[node.op]
    w, zw = _const(_operand(node, wi)), _operand(node, zwi)
    if w is None or (zw is not None and _const(zw) is None):
        return None
    w = np.asarray(w).astype(np.int32)
    zero = np.zeros(1, np.int32) if zw is None else np.asarray(_const(zw)).astype(np.int32).reshape(-1)
    if zero.size not in (1, w.shape[0]):
        return None
    return w - zero.reshape((-1,) + (1,) * (w.ndim - 1))


def _bias(node: Node) -> np.ndarray | None:
    b = _const(_operand(node, _OPERANDS[node.op][4]))
    return None if b is None else np.asarray(b).astype(np.int64).reshape(-1)


def _takes_integer_kernel(node: Node) -> bool:
    """A conv the integer kernels compute (``quantization_gemm``: 2-D, group 1, int8 weights, zero
    weight zero points)."""
    _, _, wi, zwi, _ = _OPERANDS[node.op]
    weight, zw = node.operands[wi], _operand(node, zwi)
    zero_points = zw is None or (_const(zw) is not None and not np.any(np.asarray(_const(zw))))
    dense = int(attr(node, "group") or 1) == 1 and weight.type.shape is not None and len(weight.type.shape) == 4
    return dense and weight.type.dtype.np == np.int8 and zero_points


def _scales(node: Node) -> np.ndarray | None:
    """QLinearConv's requantizing multiplier ``sx * sw[k] / sy`` in float32, [K], or None."""
    sx, sw, sy = (_const(_operand(node, i)) for i in (1, 4, 6))
    if sx is None or sw is None or sy is None or np.size(sx) != 1 or np.size(sy) != 1:
        return None
    k = node.operands[3].type.shape[0]
    sw = np.asarray(sw, np.float32).reshape(-1)
    if sw.size not in (1, k):
        return None
    sx, sy = np.float32(np.asarray(sx).reshape(())), np.float32(np.asarray(sy).reshape(()))
    return np.broadcast_to(sx * sw / sy, (k,)).astype(np.float32)


def _convertible(node: Node) -> MatchResult:
    xi, zxi, wi, _, _ = _OPERANDS[node.op]
    x, zx = node.operands[xi], _operand(node, zxi)
    if not _eight_bit(x) or (zx is not None and not _eight_bit(zx)) or not _eight_bit(node.operands[wi]):
        return MatchResult.fail("not 8-bit input and weight")
    if x.type.shape is None or len(x.type.shape) < 3:
        return MatchResult.fail("no spatial dims known")
    if _takes_integer_kernel(node):
        return MatchResult.fail("the integer conv kernel takes it")
    if node.op == "QLinearConv":
        if _scales(node) is None:
            return MatchResult.fail("scales not constant, or not per tensor (per channel for the weight)")
        if len(node.operands) > 8 and node.operands[8] is not None and _bias(node) is None:
            return MatchResult.fail("the bias is not a constant")
    weight = _centred_weight(node)
    if weight is None:
        return MatchResult.fail("the weight or its zero point is not a constant")
    bound = ACTIVATION_SPAN * np.abs(weight).reshape(weight.shape[0], -1).sum(axis=1)
    bias = _bias(node) if node.op == "QLinearConv" else None
    if bias is not None:
        bound = bound + np.abs(bias)
    if int(bound.max()) >= EXACT_LIMIT:
        return MatchResult.fail(f"sums up to {int(bound.max())} would not be exact in float32")
    return MatchResult.success()


def _conv_attrs(node: Node) -> dict:
    return {
        k: v
        for k, v in node.attrs.items()
        if k in ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")
    }


def _as_float(node: Node, rw) -> bool:
    xi, zxi, _, _, _ = _OPERANDS[node.op]
    x, zx = node.operands[xi], _operand(node, zxi)
    centred = rw.op("Cast", [x], {"to": TensorProto.FLOAT})
    if zx is not None:
        centred = rw.op("Sub", [centred, rw.op("Cast", [zx], {"to": TensorProto.FLOAT})])
    weight = _centred_weight(node)
    operands = [centred, rw.constant(weight.astype(np.float32))]
    bias = _bias(node) if node.op == "QLinearConv" else None
    if bias is not None:
        operands.append(rw.constant(bias.astype(np.float32)))
    conv = rw.op("Conv", operands, _conv_attrs(node))
    if node.op == "ConvInteger":
        rw.replace_node(node, rw.op("Cast", [conv], {"to": TensorProto.INT32}, name=node.name))
        return True
    spatial = len(node.operands[0].type.shape) - 2
    multiplier = _scales(node).reshape((-1,) + (1,) * spatial)
    scaled = rw.op("Mul", [conv, rw.constant(multiplier)])
    zy = _operand(node, 7)
    if zy is None:
        zy = rw.constant(np.zeros((), node.results[0].type.dtype.np))
    quantized = rw.op("QuantizeLinear", [scaled, rw.constant(np.float32(1.0)), zy], name=node.name)
    rw.replace_node(node, quantized)
    return True


RULES = RuleSet(
    [NodeRule(op, _as_float, check=_convertible, name="integer-conv-as-float") for op in _OPERANDS],
    name="integer-conv-as-float",
)


@dataclass(frozen=True)
class IntegerConvAsFloatPass(Pass):
    """ConvInteger, and QLinearConv the integer kernels do not take -> exact float32 Conv (module docstring)."""

    name = "integer-conv-as-float"

    def run(self, graph: Graph) -> PassResult:
        return PassResult(*apply_rules_counted(graph, RULES))
