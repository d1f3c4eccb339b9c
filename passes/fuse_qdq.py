"""``fuse-qdq``: QDQ islands around a convolution or matmul become one integer op.

    QuantizeLinear(Conv(DequantizeLinear(xq, sx, zx), DequantizeLinear(wq, sw, zw), B?), sy, zy)
        -> QLinearConv(xq, sx, zx, wq, sw, zw, sy, zy, bq?)
    QuantizeLinear(MatMul(DequantizeLinear(aq, sa, za), DequantizeLinear(bq, sb, zb)), sy, zy)
        -> QLinearMatMul(aq, sa, za, bq, sb, zb, sy, zy)
    QuantizeLinear(Gemm(DequantizeLinear(aq[M, K]), DequantizeLinear(wq), B?), sy, zy)
        -> Reshape(QLinearConv(Reshape(aq, [M, K, 1, 1]), ..., wq as [N, K, 1, 1], ..., bq?), [M, N])
           (alpha = beta = 1, no transA; a 1x1 convolution so the bias stays in the integer epilogue)

The bias ``B`` is either ``DequantizeLinear(bq int32, sx * sw, 0)`` (what onnxruntime's quantizer
writes; ``bq`` is taken as it is), or a float constant or a dequantized constant of another scale,
quantized here to ``round(B / (sx * sw))`` (within half a step of the accumulator, far below a step
of the output).  Scales and zero
points must be constants: per tensor for the activations and the output, per tensor or per
output channel for the weight (``axis`` 0 for Conv, the last axis of a 2-D ``B`` for MatMul).
The float op must feed only the QuantizeLinear, so the float result is not needed elsewhere.

A MatMul of dequantized operands with a float result (dynamic quantization: ``ember quantize --mode
dynamic`` writes ``MatMul(DQ(DynamicQuantizeLinear(x)), DQ(wq))``) takes onnxruntime's
``quantize_dynamic`` form, which code generation runs as one integer GEMM with a float epilogue:

    MatMul(DequantizeLinear(aq, sa, za), DequantizeLinear(wq, sw, 0))
        -> Mul(Cast(MatMulInteger(aq, wq, za, 0), float), Mul(sa, sw))

(``aq`` uint8 or int8 per tensor, its scale and zero point may be computed at run time; ``wq`` a
constant 2-D int8 weight, per tensor or per column, zero points all zero.)  It is exact up to
float rounding: ``(aq - za) sa . (wq sw) = sa sw sum (aq - za) wq``.

A MaxPool between a DequantizeLinear and a QuantizeLinear of the same per-tensor scale (positive)
and zero point pools the integers themselves, exactly (dequantizing is monotone and ``Q(DQ(v)) = v``;
onnxruntime rewrites the same island):

    QuantizeLinear(MaxPool(DequantizeLinear(xq, s, z)), s, z)  ->  MaxPool(xq)

(ResNet-50's stem: the uint8 pool took 0.095 ms against 0.214 for the float one, 64 x 112 x 112,
3x3 stride 2, and the conv before it writes uint8 instead of float32.)

A Relu between the op and the QuantizeLinear (as ``ember quantize`` keeps it) is moved after the
quantization first, exactly: ``Q(Relu(y), s, z) = Max(Q(y, s, z), z)``, since rounding and saturation
are monotone and ``Q(y) <= z`` exactly when ``Relu(y)`` rounds to 0. The ``Max`` then runs in the
integer kernel's epilogue.

Run it before constant folding (it leads ``O2``): folding turns ``DequantizeLinear`` of a constant
weight into a float weight and the pattern is gone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.ir.core import Graph, Node, Value
from compiler.passes import Pass, PassResult
from compiler.rewrite import Rewriter

DEQUANTIZE, QUANTIZE = "DequantizeLinear", "QuantizeLinear"


def _const(value: Value | None):
    return None if value is None else value.const_value


def _dequantized(value: Value | None) -> Node | None:
    """The DequantizeLinear producing ``value`` with constant scale and zero point, or None."""
    node = value.producer if value is not None else None
    if node is None or node.op != DEQUANTIZE or int(node.attrs.get("block_size", 0) or 0):
        return None
    if _const(node.operands[1]) is None or (len(node.operands) > 2 and _const(_operand(node, 2)) is None):
        return None
    return node


def _operand(node: Node, index: int) -> Value | None:
    return node.operands[index] if index < len(node.operands) else None


def _per_tensor(node: Node) -> bool:
    return np.asarray(_const(node.operands[1])).size == 1


def _zero_point(rw: Rewriter, node: Node) -> Value:
    """The node's zero point, or a zero of the quantized operand's dtype when it has none."""
    zero = _operand(node, 2)
    if zero is not None:
        return zero
    return rw.constant(np.zeros((), dtype=node.operands[0].type.dtype.np))


def _per_axis_ok(node: Node, axis: int, rank: int) -> bool:
    """Per-tensor, or one entry per index of ``axis`` of a rank-``rank`` quantized weight."""
    if _per_tensor(node):
        return True
    return int(node.attrs.get("axis", 1)) % rank == axis % rank


def _integer_bias(bias: Value | None, sx: np.ndarray, sw: np.ndarray) -> np.ndarray | None | bool:
    """The int32 bias for accumulator scale ``sx * sw``; None when there is none, False when unusable."""
    if bias is None:
        return None
    step = (np.float32(sx.reshape(-1)[0]) * sw.astype(np.float32)).reshape(-1)
    deq = _dequantized(bias)
    if deq is not None and deq.operands[0].type.dtype.np == np.int32 and _const(deq.operands[0]) is not None:
        scale = np.asarray(_const(deq.operands[1]), dtype=np.float32).reshape(-1)
        zero = _const(_operand(deq, 2))
        if (zero is None or not np.any(zero)) and np.allclose(scale, step, rtol=1e-6, atol=0):
            return np.asarray(_const(deq.operands[0]), dtype=np.int32)
    real = _const(bias)
    if real is None and deq is not None and _const(deq.operands[0]) is not None:  # another scale: requantize
        zero = _const(_operand(deq, 2))
        q = np.asarray(_const(deq.operands[0]), np.float64) - (0 if zero is None else np.asarray(zero, np.float64))
        real = q * np.asarray(_const(deq.operands[1]), np.float64)
    if real is None or np.asarray(real).dtype.kind != "f":
        return False
    return np.clip(np.rint(np.asarray(real, dtype=np.float64) / step), -(2**31), 2**31 - 1).astype(np.int32)


@dataclass(frozen=True)
class FuseQdqPass(Pass):
    """Fuse DequantizeLinear -> Conv/MatMul/Gemm -> QuantizeLinear into QLinearConv / QLinearMatMul
    (see the module docstring)."""

    name = "fuse-qdq"

    def run(self, graph: Graph) -> PassResult:
        rw = Rewriter(graph, rule_name=self.name)
        counts = {"QLinearConv": 0, "QLinearMatMul": 0, "MatMulInteger": 0, "MaxPool": 0}
        for node in list(graph.nodes):
            if node.graph is None or node.op != QUANTIZE:
                continue
            if _integer_max_pool(rw, node):
                counts["MaxPool"] += 1
                continue
            node = self._relu_after_quantize(rw, node)
            fused = self._fuse(rw, node)
            if fused:
                counts[fused] += 1
        for node in list(graph.nodes):
            if node.graph is not None and node.op == "MatMul" and _dynamic_matmul(rw, node):
                counts["MatMulInteger"] += 1
        return PassResult(any(counts.values()), counts)

    def _relu_after_quantize(self, rw: Rewriter, quantize: Node) -> Node:
        """``Q(Relu(y))`` with ``y`` from a Conv/MatMul/Gemm read only there -> ``Max(Q(y), z)``; returns
        the QuantizeLinear to fuse (the new one, or ``quantize`` when the pattern is not there)."""
        relu = quantize.operands[0].producer
        if relu is None or relu.op != "Relu" or len(relu.result.users) != 1 or _is_graph_output(relu.result):
            return quantize
        y = relu.operands[0]
        if y.producer is None or y.producer.op not in ("Conv", "MatMul", "Gemm") or len(y.users) != 1:
            return quantize
        zero = _operand(quantize, 2)
        if _is_graph_output(y) or (zero is not None and _const(zero) is None):
            return quantize
        rw.set_insertion_point_before(quantize)
        if zero is None:
            zero = rw.constant(np.zeros((), quantize.result.type.dtype.np))
        inner = rw.op(QUANTIZE, [y, quantize.operands[1], zero], dict(quantize.attrs))
        rw.replace_node(quantize, [rw.op("Max", [inner, zero], name=quantize.name)])
        rw.erase_node(relu)
        return inner.producer

    def _fuse(self, rw: Rewriter, quantize: Node) -> str | None:
        y = quantize.operands[0]
        anchor = y.producer
        if anchor is None or anchor.op not in ("Conv", "MatMul", "Gemm") or len(y.users) != 1 or _is_graph_output(y):
            return None
        if _const(quantize.operands[1]) is None or np.asarray(_const(quantize.operands[1])).size != 1:
            return None
        zy = _operand(quantize, 2)
        if zy is not None and (_const(zy) is None or np.asarray(_const(zy)).size != 1):
            return None
        x, w = _dequantized(anchor.operands[0]), _dequantized(anchor.operands[1])
        if x is None or w is None or not _per_tensor(x) or x.operands[0].type.dtype.np.kind not in "iu":
            return None
        if w.operands[0].type.dtype.np.kind not in "iu" or w.operands[0].type.dtype.np.itemsize != 1:
            return None
        if x.operands[0].type.dtype.np.itemsize != 1:
            return None
        rank = len(w.operands[0].type.shape or ())
        if anchor.op == "Conv":
            return self._conv(rw, quantize, anchor, x, w, zy, rank)
        if anchor.op == "Gemm":
            return self._gemm(rw, quantize, anchor, x, w, zy, rank)
        return self._matmul(rw, quantize, anchor, x, w, zy, rank)

    def _conv(self, rw, quantize, conv, x, w, zy, rank) -> str | None:
        if rank < 3 or not _per_axis_ok(w, 0, rank):
            return None
        sx, sw = np.asarray(_const(x.operands[1])), np.asarray(_const(w.operands[1]))
        bias = _integer_bias(_operand(conv, 2), sx, sw)
        if bias is False:
            return None
        rw.set_insertion_point_before(quantize)
        operands = [
            x.operands[0],
            x.operands[1],
            _zero_point(rw, x),
            w.operands[0],
            w.operands[1],
            _zero_point(rw, w),
            quantize.operands[1],
            zy if zy is not None else rw.constant(np.zeros((), np.uint8)),
        ]
        if bias is not None:
            operands.append(rw.constant(np.broadcast_to(bias, (int(w.operands[0].type.shape[0]),)).copy()))
        fused = rw.op("QLinearConv", operands, dict(conv.attrs), name=conv.name)
        rw.replace_node(quantize, [fused])
        rw.erase_node(conv)
        return "QLinearConv"

    def _gemm(self, rw, quantize, gemm, a, w, zy, rank) -> str | None:
        attrs = gemm.attrs
        a_shape = gemm.operands[0].type.shape
        if rank != 2 or float(attrs.get("alpha", 1.0)) != 1.0 or float(attrs.get("beta", 1.0)) != 1.0:
            return None
        if int(attrs.get("transA", 0)) or a_shape is None or len(a_shape) != 2 or not isinstance(a_shape[0], int):
            return None
        trans_b = int(attrs.get("transB", 0))
        weight = _const(w.operands[0])
        if weight is None or not _per_axis_ok(w, 0 if trans_b else 1, rank):
            return None
        weight = np.asarray(weight) if trans_b else np.asarray(weight).T
        sx, sw = np.asarray(_const(a.operands[1])), np.asarray(_const(w.operands[1]))
        bias = _integer_bias(_operand(gemm, 2), sx, sw)
        if bias is False or (bias is not None and np.asarray(bias).ndim > 1):
            return None
        (m, k), n = a_shape, weight.shape[0]
        rw.set_insertion_point_before(quantize)
        image = rw.op("Reshape", [a.operands[0], rw.constant(np.array([m, k, 1, 1], np.int64))])
        operands = [
            image,
            a.operands[1],
            _zero_point(rw, a),
            rw.constant(np.ascontiguousarray(weight).reshape(n, k, 1, 1)),
            w.operands[1],
            _zero_point(rw, w),
            quantize.operands[1],
            zy if zy is not None else rw.constant(np.zeros((), np.uint8)),
        ]
        if bias is not None:
            operands.append(rw.constant(np.broadcast_to(bias, (n,)).copy()))
        conv = rw.op("QLinearConv", operands)
        fused = rw.op("Reshape", [conv, rw.constant(np.array([m, n], np.int64))], name=gemm.name)
        rw.replace_node(quantize, [fused])
        rw.erase_node(gemm)
        return "QLinearConv"

    def _matmul(self, rw, quantize, matmul, a, b, zy, rank) -> str | None:
        if rank != 2 or not _per_axis_ok(b, 1, rank) or len(matmul.operands[0].type.shape or ()) < 2:
            return None
        rw.set_insertion_point_before(quantize)
        operands = [
            a.operands[0],
            a.operands[1],
            _zero_point(rw, a),
            b.operands[0],
            b.operands[1],
            _zero_point(rw, b),
            quantize.operands[1],
            zy if zy is not None else rw.constant(np.zeros((), np.uint8)),
        ]
        fused = rw.op("QLinearMatMul", operands, name=matmul.name)
        rw.replace_node(quantize, [fused])
        rw.erase_node(matmul)
        return "QLinearMatMul"


def _per_tensor_dequantized(value: Value) -> Node | None:
    """The DequantizeLinear of 8-bit integers producing ``value`` with a one-element scale and zero
    point, constant or not (``DynamicQuantizeLinear`` computes them at run time), or None."""
    node = value.producer
    if node is None or node.op != DEQUANTIZE or int(node.attrs.get("block_size", 0) or 0):
        return None
    dtype = node.operands[0].type.dtype.np
    if dtype.kind not in "iu" or dtype.itemsize != 1:
        return None
    params = [v for v in node.operands[1:] if v is not None]
    if any(v.type.shape is None or int(np.prod(v.type.shape)) != 1 for v in params):
        return None
    return node


def _dynamic_matmul(rw: Rewriter, matmul: Node) -> bool:
    """``MatMul(DQ(aq), DQ(wq))`` with a float result -> ``Mul(Cast(MatMulInteger), sa * sw)`` (module
    docstring); False when the operands do not have that form."""
    a, w = _per_tensor_dequantized(matmul.operands[0]), _dequantized(matmul.operands[1])
    if a is None or w is None or _const(w.operands[0]) is None or len(a.operands[0].type.shape or ()) < 2:
        return False
    wq = np.asarray(_const(w.operands[0]))
    if wq.dtype != np.int8 or wq.ndim != 2 or not _per_axis_ok(w, 1, 2):
        return False
    zw = _const(_operand(w, 2))
    if zw is not None and np.any(zw):
        return False
    rw.set_insertion_point_before(matmul)
    za = _operand(a, 2)
    operands = [a.operands[0], w.operands[0], za if za is not None else _zero_point(rw, a), rw.constant(np.int8(0))]
    product = rw.op("MatMulInteger", operands, name=matmul.name)
    real = rw.op("Cast", [product], {"to": matmul.result.type.dtype.onnx})
    scale = rw.op("Mul", [a.operands[1], w.operands[1]])
    rw.replace_node(matmul, [rw.op("Mul", [real, scale])])
    for dq in {id(a): a, id(w): w}.values():
        if not dq.result.has_uses():
            rw.erase_node(dq)
    return True


def _integer_max_pool(rw: Rewriter, quantize: Node) -> bool:
    """``Q(MaxPool(DQ(xq, s, z)), s, z)`` -> ``MaxPool(xq)`` (module docstring); False when the
    island does not have that form."""
    pool = quantize.operands[0].producer
    if pool is None or pool.op != "MaxPool" or len(pool.results) != 1 or len(pool.result.users) != 1:
        return False
    dq = _dequantized(pool.operands[0])
    if dq is None or _is_graph_output(pool.result) or not _per_tensor(dq):
        return False
    xq = dq.operands[0]
    if xq.type.dtype.np.kind not in "iu" or xq.type.dtype.np.itemsize != 1:
        return False
    s_in, s_out = _const(dq.operands[1]), _const(quantize.operands[1])
    z_in, z_out = _const(_operand(dq, 2)), _const(_operand(quantize, 2))
    if s_out is None or np.asarray(s_out).size != 1 or not np.asarray(s_in).reshape(-1)[0] > 0:
        return False
    if np.asarray(s_in, np.float32).reshape(-1)[0] != np.asarray(s_out, np.float32).reshape(-1)[0]:
        return False
    zeros = [np.zeros((), xq.type.dtype.np) if z is None else np.asarray(z).reshape(-1) for z in (z_in, z_out)]
    if quantize.result.type.dtype != xq.type.dtype or zeros[0].dtype != zeros[1].dtype or np.any(zeros[0] != zeros[1]):
        return False
    rw.set_insertion_point_before(quantize)
    rw.replace_node(quantize, [rw.op("MaxPool", [xq], dict(pool.attrs), name=pool.name)])
    rw.erase_node(pool)
    if not dq.result.has_uses():
        rw.erase_node(dq)
    return True


def _is_graph_output(value: Value) -> bool:
    return any(not isinstance(use.user, Node) for use in value.uses)
