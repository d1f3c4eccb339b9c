"""What the rewrites of integer products (``integer-conv-int8-weights``, ``integer-conv-as-float``,
``integer-matmul-int8-weights``) read of a ConvInteger, QLinearConv, MatMulInteger or QLinearMatMul:
its operands, constants, centred weight, requantizing multiplier, and whether the packed integer
kernel takes a conv as it is; and the requantization they write."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from compiler.ir.core import Node, Value
from compiler.ops import get_op

EXACT_LIMIT = 1 << 24  # float32 holds every integer below this exactly
ACTIVATION_SPAN = 255  # |x - zx| for 8-bit x and zero point
EIGHT_BIT = (np.dtype(np.int8), np.dtype(np.uint8))

# operand indices: (x, x zero point, w, w zero point, bias) of each op, None where it has none; the
# QLinear ops' scales are operands 1 (x), 4 (w) and 6 (y), the output's zero point 7
OPERANDS = {
    "ConvInteger": (0, 2, 1, 3, None),
    "QLinearConv": (0, 2, 3, 5, 8),
    "MatMulInteger": (0, 2, 1, 3, None),
    "QLinearMatMul": (0, 2, 3, 5, None),
}
CONVS, MATMULS = ("ConvInteger", "QLinearConv"), ("MatMulInteger", "QLinearMatMul")
# the weight's axis of output channels: a conv's [K, C, R, S], a matmul's [K, N]
CHANNEL_AXIS = {"ConvInteger": 0, "QLinearConv": 0, "MatMulInteger": -1, "QLinearMatMul": -1}


def operand(node: Node, index: int | None) -> Value | None:
    return node.operands[index] if index is not None and index < len(node.operands) else None


def const(value: Value | None):
    return None if value is None else value.const_value


def eight_bit(value: Value | None) -> bool:
    return value is not None and value.type is not None and value.type.dtype.np in EIGHT_BIT


def output_channels(node: Node) -> int:
    """The weight's output channels (a conv's K, a matmul's N)."""
    return int(node.operands[OPERANDS[node.op][2]].type.shape[CHANNEL_AXIS[node.op]])


def weight_zero(node: Node) -> np.ndarray | None:
    """The weight's zero point as int32 [output channels] (zeros where it has none), or None when
    not constant or neither per tensor nor per output channel."""
    _, _, wi, zwi, _ = OPERANDS[node.op]
    w, zw = const(operand(node, wi)), operand(node, zwi)
    if w is None or (zw is not None and const(zw) is None):
        return None
    k = output_channels(node)
    zero = np.zeros(1, np.int32) if zw is None else np.asarray(const(zw)).astype(np.int32).reshape(-1)
    return np.broadcast_to(zero, (k,)).copy() if zero.size in (1, k) else None


def int8_weight(node: Node) -> tuple[np.ndarray, np.ndarray]:
    """The constant weight as int8 (a uint8 one less 128: the same weight, in the packed kernels'
    type) and its zero point moved alike, int32 per output channel (``weight_zero`` not None)."""
    w = np.asarray(const(node.operands[OPERANDS[node.op][2]]))
    shift = 128 if w.dtype == np.uint8 else 0
    return (w.astype(np.int32) - shift).astype(np.int8), weight_zero(node) - shift


def centred_weight(node: Node) -> np.ndarray | None:
    """A conv's ``w - zw`` (zw per tensor or per output channel) as int32, or None when not constant."""
    zero = weight_zero(node)
    if zero is None:
        return None
    w = np.asarray(const(node.operands[OPERANDS[node.op][2]])).astype(np.int32)
    return w - zero.reshape((-1,) + (1,) * (w.ndim - 1))


def bias(node: Node) -> np.ndarray | None:
    b = const(operand(node, OPERANDS[node.op][4]))
    return None if b is None else np.asarray(b).astype(np.int64).reshape(-1)


def takes_integer_kernel(node: Node, backend: str = "tvm") -> bool:
    """Whether ``backend``'s packed integer kernel computes this conv as it is: its lowering's
    ``native`` fact (``codegen/tvm/lower/quantization_gemm.py``: 2-D, group 1, int8 weights, no
    weight zero point)."""
    lowering = get_op(node.op).lowering(backend)
    native = getattr(lowering, "native", None)
    if native is None:
        return False
    in_types = [None if v is None or v.type.shape is None else (v.type.shape, v.type.dtype.np) for v in node.operands]
    return bool(native(dict(node.attrs), in_types, lambda index: const(operand(node, index))))


def scales(node: Node) -> np.ndarray | None:
    """A QLinear op's requantizing multiplier ``sx * sw[k] / sy`` in float32 per output channel, or None."""
    sx, sw, sy = (const(operand(node, i)) for i in (1, 4, 6))
    if sx is None or sw is None or sy is None or np.size(sx) != 1 or np.size(sy) != 1:
        return None
    k = output_channels(node)
    sw = np.asarray(sw, np.float32).reshape(-1)
    if sw.size not in (1, k):
        return None
    sx, sy = np.float32(np.asarray(sx).reshape(())), np.float32(np.asarray(sy).reshape(()))
    return np.broadcast_to(sx * sw / sy, (k,)).astype(np.float32)


def qlinear_checks(node: Node) -> str | None:
    """Why a QLinear op cannot be rewritten with its requantization as ops (``requantized``), or None."""
    if scales(node) is None:
        return "scales not constant, or not per tensor (per channel for the weight)"
    if len(node.operands) > 8 and node.operands[8] is not None and bias(node) is None:
        return "the bias is not a constant"
    return None


def conv_attrs(node: Node) -> dict:
    return {
        k: v
        for k, v in node.attrs.items()
        if k in ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")
    }


def centred_input(node: Node, rw) -> Value:
    """``Cast(x, float) - Cast(zx, float)``: the input less its zero point, in float32."""
    xi, zxi, _, _, _ = OPERANDS[node.op]
    zx = operand(node, zxi)
    centred = rw.op("Cast", [node.operands[xi]], {"to": TensorProto.FLOAT})
    if zx is not None:
        centred = rw.op("Sub", [centred, rw.op("Cast", [zx], {"to": TensorProto.FLOAT})])
    return centred


def requantized(node: Node, rw, total: Value) -> Value:
    """A QLinear op's output from its float32 sum ``total`` (bias included): ``total * m`` quantized
    at scale 1 with the output's zero point, ``m[k] = sx * sw[k] / sy`` in float32, as the integer
    kernels' epilogues round (``round_half_even(acc * (sx * sw / sy)) + zy``, saturated)."""
    spatial = len(node.operands[0].type.shape) - 2 if CHANNEL_AXIS[node.op] == 0 else 0
    multiplier = scales(node).reshape((-1,) + (1,) * spatial)
    scaled = rw.op("Mul", [total, rw.constant(multiplier)])
    zy = operand(node, 7)
    if zy is None:
        zy = rw.constant(np.zeros((), node.results[0].type.dtype.np))
    return rw.op("QuantizeLinear", [scaled, rw.constant(np.float32(1.0)), zy], name=node.name)
