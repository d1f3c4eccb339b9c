"""``quantize``: QuantizeLinear/DequantizeLinear pairs (the QDQ form) around the ops that carry weights.

The ops quantized are those whose ``OpDef`` declares learned weights (``weight_axes``: Conv, Gemm,
MatMul) with a constant float32 weight.  With ``x`` an activation, ``W`` the weight and ``b`` the
bias (``OpDef.bias_operand``), by ``mode``:

- ``static`` (ranges from calibration)::

      Op(x, W, b) -> Q(y) -> DQ, with Op(DQ(Q(x, sx, zx)), DQ(Wq, sw, axis), DQ(bq, sx*sw, axis))

  int8 asymmetric activations per tensor, int8 symmetric weights per output channel
  (``per-channel=false``: per tensor), int32 bias; the result gets its own Q/DQ when its range
  is known, it is not a graph output and no precision-sensitive op reads it (the
  ``DQ -> Op -> Q`` shape integer kernels take);
- ``dynamic``: ``Op(DQ(DynamicQuantizeLinear(x)), DQ(Wq), b)``: uint8 activations quantized at run
  time, float bias;
- ``weight-only``: ``Op(x, DQ(Wq), b)``.

Ranges come from ``graph.metadata["quantization-ranges"]`` (``{value name: (lo, hi)}``, written by
``compiler.compression.quantize_model``) and the ``ranges`` option (``[x:-1.5:2,h:0:6]``).  Nodes
left in float (excluded by op or node name with ``exclude``, precision-sensitive ops, a run-time
weight, a missing range) are listed with the reason in ``graph.metadata["quantize-left-float"]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.compression.qparams import (
    INT8_MAX,
    INT32_MAX,
    INT32_MIN,
    activation_params,
    quantize_array,
    weight_params,
)
from compiler.diagnostics import EmberError
from compiler.ir.core import Graph, Node, Value
from compiler.ir.types import DType, TensorType
from compiler.ops import get_op
from compiler.passes import Pass, PassResult
from compiler.rewrite import Rewriter

MODES = ("static", "dynamic", "weight-only")
RANGES_KEY = "quantization-ranges"
LEFT_FLOAT_KEY = "quantize-left-float"


def is_float32(v: Value | None) -> bool:
    return v is not None and isinstance(v.type, TensorType) and v.type.dtype == DType.FLOAT32


def is_dequantized(v: Value) -> bool:
    return v.producer is not None and v.producer.op == "DequantizeLinear"


def excluded(node: Node, exclude: tuple[str, ...]) -> bool:
    names = {node.op, node.name, *(r.name for r in node.results)}
    return any(e in names for e in exclude)


def weight_operands(node: Node) -> dict[int, int]:
    """The node's learned-weight operands -> their output-channel axis (empty for other ops)."""
    op_def = get_op(node.op)
    if op_def is None or op_def.weight_axes is None:
        return {}
    return op_def.weight_axes(node.attrs)


def why_float(node: Node, exclude: tuple[str, ...]) -> str | None:
    """Why a node that carries weights stays in float, or None when it can be quantized."""
    op_def = get_op(node.op)
    if excluded(node, exclude):
        return "excluded"
    if op_def.precision_sensitive:
        return "precision-sensitive op"
    for index in weight_operands(node):
        w = node.operands[index] if index < len(node.operands) else None
        if w is None or w.const_value is None:
            return f"weight operand {index} is computed at run time"
        if not is_float32(w):
            return f"weight operand {index} is not float32"
    return None


def activation_operands(node: Node) -> list[int]:
    """Float32 run-time operands other than the weights and the bias."""
    op_def = get_op(node.op)
    skip = set(weight_operands(node)) | {op_def.bias_operand}
    return [i for i, v in enumerate(node.operands) if i not in skip and is_float32(v) and v.const_value is None]


def parse_ranges(items: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    out = {}
    for item in items:
        name, _, rest = item.rpartition(":")
        name, _, lo = name.rpartition(":")
        try:
            out[name] = (float(lo), float(rest))
        except ValueError:
            raise EmberError(f"quantize: a range is written NAME:LO:HI, got '{item}'") from None
    return out


@dataclass(frozen=True)
class QuantizePass(Pass):
    """Insert QDQ pairs around the ops that carry weights (see the module docstring)."""

    name = "quantize"
    mode: str = "static"
    per_channel: bool = True
    exclude: tuple[str, ...] = ()
    ranges: tuple[str, ...] = ()

    def run(self, graph: Graph) -> PassResult:
        if self.mode not in MODES:
            raise EmberError(f"quantize: unknown mode '{self.mode}' (modes: {', '.join(MODES)})")
        ranges = {**graph.metadata.get(RANGES_KEY, {}), **parse_ranges(self.ranges)}
        rw = Rewriter(graph, rule_name=self.name)
        left_float: list[tuple[str, str]] = []
        quantized = 0
        for node in list(graph.nodes):
            if not weight_operands(node):
                continue
            reason = why_float(node, self.exclude)
            activations = activation_operands(node)
            if reason is None and self.mode == "static":
                missing = [node.operands[i].name for i in activations if not self._known(node.operands[i], ranges)]
                reason = f"no calibration range for %{missing[0]}" if missing else None
            if reason is not None:
                left_float.append((node.describe(), reason))
                continue
            self._quantize_node(rw, node, activations, ranges)
            quantized += 1
        graph.metadata[LEFT_FLOAT_KEY] = left_float
        return PassResult(quantized > 0, {"quantized": quantized, "left-float": len(left_float)})

    @staticmethod
    def _known(v: Value, ranges) -> bool:
        return is_dequantized(v) or v.name in ranges

    def _quantize_node(self, rw: Rewriter, node: Node, activations: list[int], ranges) -> None:
        rw.set_insertion_point_before(node)
        input_scale = None
        for index in activations:
            x = node.operands[index]
            if is_dequantized(x):
                input_scale = x.producer.operands[1].const_value if self.mode == "static" else None
                continue
            if self.mode == "static":
                scale, zero = activation_params(*ranges[x.name])
                rw.set_operand(node, index, qdq(rw, x, scale, zero))
                input_scale = scale
            elif self.mode == "dynamic":
                q, s, z = rw.op("DynamicQuantizeLinear", [x])
                rw.set_operand(node, index, rw.op("DequantizeLinear", [q, s, z]))
        weight_scale = None
        for index, axis in weight_operands(node).items():
            w = node.operands[index]
            array = np.asarray(w.const_value, dtype=np.float32)
            axis = axis % array.ndim if self.per_channel else None
            weight_scale = weight_params(array, axis)
            zero = np.zeros(weight_scale.shape, dtype=np.int8)
            wq = quantize_array(array, weight_scale, zero, axis, -INT8_MAX, INT8_MAX, np.int8)
            parts = [
                rw.constant(a, name=f"{w.name}_{role}" if w.name else "") for a, role in named(wq, weight_scale, zero)
            ]
            attrs = {"axis": axis} if axis is not None else {}
            rw.set_operand(node, index, rw.op("DequantizeLinear", parts, attrs))
            erase_if_unused(rw, w)
        bias_index = get_op(node.op).bias_operand
        if self.mode == "static" and input_scale is not None and weight_scale is not None and bias_index is not None:
            self._quantize_bias(rw, node, bias_index, np.float32(input_scale) * weight_scale)
        if self.mode == "static":
            self._quantize_result(rw, node, ranges)

    @staticmethod
    def _quantize_bias(rw: Rewriter, node: Node, index: int, scale: np.ndarray) -> None:
        b = node.operands[index] if index < len(node.operands) else None
        if b is None or b.const_value is None or not is_float32(b):
            return
        bias = np.asarray(b.const_value, dtype=np.float32)
        if bias.ndim != 1 or scale.size not in (1, bias.size):
            return
        scale = scale.astype(np.float32)
        zero = np.zeros(scale.shape, dtype=np.int32)
        bq = quantize_array(bias, scale, zero, 0, INT32_MIN, INT32_MAX, np.int32)
        parts = [rw.constant(a, name=f"{b.name}_{role}" if b.name else "") for a, role in named(bq, scale, zero)]
        attrs = {"axis": 0} if scale.ndim == 1 else {}
        rw.set_operand(node, index, rw.op("DequantizeLinear", parts, attrs))
        erase_if_unused(rw, b)

    @staticmethod
    def _quantize_result(rw: Rewriter, node: Node, ranges) -> None:
        y = node.results[0]
        uses = [u for u in y.uses if isinstance(u.user, Node)]
        if y.name not in ranges or not uses or len(uses) != len(y.uses):
            return  # no range, unused, or a graph output (outputs keep their float values)
        if any(get_op(u.user.op).precision_sensitive for u in uses):
            return  # a Softmax or a normalization reads it: keep the float result
        rw.set_insertion_point_after(node)
        scale, zero = activation_params(*ranges[y.name])
        dq = qdq(rw, y, scale, zero)
        for use in uses:
            rw.set_operand(use.user, use.index, dq)


def named(quantized, scale, zero):
    return [(quantized, "quantized"), (scale, "scale"), (zero, "zero_point")]


def erase_if_unused(rw: Rewriter, v: Value) -> None:
    """Erase the constant that held a float weight once nothing reads it."""
    if not v.has_uses() and v.producer is not None and v.producer.op == "Constant":
        rw.erase_node(v.producer)


def qdq(rw: Rewriter, x: Value, scale, zero) -> Value:
    """``DequantizeLinear(QuantizeLinear(x, scale, zero), scale, zero)`` with shared scalar constants."""
    s, z = rw.constant(np.asarray(scale, dtype=np.float32)), rw.constant(np.asarray(zero, dtype=np.int8))
    return rw.op("DequantizeLinear", [rw.op("QuantizeLinear", [x, s, z]), s, z])
