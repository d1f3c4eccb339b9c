"""``decompose-contrib``: onnxruntime's ``com.microsoft`` contrib ops become standard ONNX ops.

With ``deq(x, s, z) = DequantizeLinear(x, s, z)`` and ``q(v, s, z) = QuantizeLinear(v, s, z)``
(an absent output zero point becomes a zero of the quantized input's type)::

    QLinearAdd / QLinearMul(a, sa, za, b, sb, zb, sc, zc) -> q(Add / Mul(deq(a), deq(b)), sc, zc)
    QLinearSigmoid(x, sx, zx, sy, zy)                      -> q(Sigmoid(deq(x)), sy, zy)
    QLinearLeakyRelu(...){alpha}                           -> q(LeakyRelu(deq(x)){alpha}, sy, zy)
    QLinearGlobalAveragePool(...){channels_last}           -> q(GlobalAveragePool(deq(x)), sy, zy)
                                                              (channels_last: ReduceMean over dims 1..r-2)
    QLinearConcat(sy, zy, (x, s, z)...){axis}              -> q(Concat(deq(x)...){axis}, sy, zy)
    com.microsoft.QuantizeLinear / DequantizeLinear{axis}  -> QuantizeLinear / DequantizeLinear{axis or 1}
    DynamicQuantizeLSTM(X, W, R, B?, ..., Ws, Wz, Rs, Rz)  -> LSTM(X, T((W - Wz) * Ws), T((R - Rz) * Rs), B?, ...)
                                                              (T swaps the last two dims; weights fold)
    FusedConv(x, w, b?, z?){activation, activation_params} -> activation(Conv(x, w, b) + z)
    FusedMatMul(a, b){alpha, transA, transB}               -> alpha * MatMul(a', b') (a', b' last dims swapped)
    Gelu(x) -> Gelu(x);  BiasGelu(a, b) -> Gelu(a + b);  FastGelu(x, b?) -> Gelu(x + b){approximate="tanh"}
    QuickGelu(x){alpha} -> x * Sigmoid(alpha x);  BiasAdd(x, b, s) -> (x + b) + s
    SkipLayerNormalization(x, s, g, be?, bi?){epsilon}     -> LayerNormalization(x + s + bi, g, be){axis=-1}
                                                              (mean, inv_std_var from its Mean/InvStdDev)
    SkipSimplifiedLayerNormalization(x, s, g, bi?)         -> t = x + s + bi; t * g / sqrt(mean(t^2) + eps)
                                                              (mean: zeros, as onnxruntime's)
    SimplifiedLayerNormalization(x, g){axis, epsilon}      -> x * g / sqrt(mean(x^2 over dims axis..) + eps)
    FusedGemm(a, b, c?){activation, activation_alpha/beta} -> activation(Gemm(a, b, c))
    QLinearAveragePool / QLinearReduceMean / QLinearWhere  -> q(AveragePool / ReduceMean / Where of deq(...))
                                                              (channels_last pools transpose to NCHW and back)
    QLinearSoftmax(x, ...){axis, opset}                    -> q(Softmax(deq(x)){axis}) (opset < 13: over
                                                              Flatten{axis}, reshaped back)
    QGemm(a, sa, za, b, sb, zb, c?, sy?, zy?){alpha}       -> Gemm(deq(a), deq(b), alpha sa sb c), then q(., sy, zy)
                                                              when sy is given (b per column: DequantizeLinear axis)
    DynamicQuantizeMatMul(a, b, sb, zb?, bias?)            -> deq(DynamicQuantizeLinear(a)) @ deq(b) + bias
    MatMulIntegerToFloat(a, b, sa, sb, za?, zb?, bias?)    -> deq(a) @ deq(b) + bias
    Attention(x, w, bias?, mask?){num_heads, ...}          -> Split(x @ w + bias) into q, k, v, then
    MultiHeadAttention(q, k, v, bias?, mask?){num_heads}   -> Softmax(q k^T * scale + mask) v per head
                                                              (masks: 2-D 0/1, 1-D lengths, unidirectional)

The sum output (``input_skip_bias_sum``) of the skip normalizations is ``x + s + bi``.  A node left
as it is (FusedMatMul with transBatchA/B, an unknown FusedConv activation, used statistics of a
non-float32 SkipSimplifiedLayerNormalization, attention with past / attention_bias / packed inputs,
an unknown rank or shape where one is needed) is counted as ``kept`` and
named by ``check-codegen-ready``.  Nested graphs are rewritten too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.ir.core import Graph, Node, Value
from compiler.ir.types import TensorType
from compiler.ops.kernels_contrib import (
    CONV_ATTRS,
    MS,
    POOL_ATTRS,
    activation,
    gemm_activation,
    lstm_attrs,
    qkv_sizes,
)
from compiler.passes import Pass, PassResult
from compiler.rewrite import Rewriter


class Keep(Exception):
    """The node is left as it is (the message says why)."""


def _operand(node: Node, i: int) -> Value | None:
    return node.operands[i] if i < len(node.operands) else None


def _dtype(v: Value):
    if not isinstance(v.type, TensorType):
        raise Keep("operand type unknown")
    return v.type.dtype.np


def _rank(v: Value) -> int:
    if not isinstance(v.type, TensorType) or v.type.rank is None:
        raise Keep("operand rank unknown")
    return v.type.rank


def _const(rw: Rewriter, value, like: Value) -> Value:
    return rw.constant(np.asarray(value, dtype=_dtype(like)))


def _deq(rw, x, s, z):
    return rw.op("DequantizeLinear", [x, s, z] if z is not None else [x, s])


def _q(rw, v, s, z, like):
    """QuantizeLinear into ``like``'s type (a zero point of that type when the node has none)."""
    return rw.op("QuantizeLinear", [v, s, z if z is not None else _const(rw, 0, like)])


def _attr(node: Node, name: str):
    from compiler.ops import get_op

    return get_op(node.op).get_attr(node.attrs, name)


def _qlinear_binary(standard: str):
    def rewrite(rw, node, ops):
        a, sa, za, b, sb, zb, sc, zc = (list(ops) + [None] * 8)[:8]
        return [_q(rw, rw.op(standard, [_deq(rw, a, sa, za), _deq(rw, b, sb, zb)]), sc, zc, a)]

    return rewrite


def _qlinear_unary(standard: str, attrs=()):
    def rewrite(rw, node, ops):
        x, sx, zx, sy, zy = (list(ops) + [None] * 5)[:5]
        y = rw.op(standard, [_deq(rw, x, sx, zx)], {a: float(_attr(node, a)) for a in attrs})
        return [_q(rw, y, sy, zy, x)]

    return rewrite


def _qlinear_gap(rw, node, ops):
    x, sx, zx, sy, zy = ops
    real = _deq(rw, x, sx, zx)
    if _attr(node, "channels_last"):
        axes = np.arange(1, _rank(x) - 1, dtype=np.int64)
        mean = rw.op("ReduceMean", [real, rw.constant(axes)], {"keepdims": 1})
    else:
        mean = rw.op("GlobalAveragePool", [real])
    return [_q(rw, mean, sy, zy, x)]


def _qlinear_concat(rw, node, ops):
    sy, zy = ops[0], ops[1]
    parts = [_deq(rw, ops[i], ops[i + 1], ops[i + 2]) for i in range(2, len(ops), 3)]
    return [_q(rw, rw.op("Concat", parts, {"axis": int(node.attrs["axis"])}), sy, zy, zy)]


def _standard(standard: str):
    def rewrite(rw, node, ops):
        axis = _attr(node, "axis")
        return [rw.op(standard, [v for v in ops if v is not None], {"axis": 1 if axis is None else int(axis)})]

    return rewrite


def _lstm_weights(rw, w, scale, zero):
    """``Transpose((W - zero) * scale)`` with scale / zero point per direction or per direction and column."""
    shape = rw.constant(np.array([0, 1, -1], np.int64))
    real_w = rw.op("Cast", [w], {"to": 1})
    real_zero = rw.op("Reshape", [rw.op("Cast", [zero], {"to": 1}), shape])
    per = rw.op("Mul", [rw.op("Sub", [real_w, real_zero]), rw.op("Reshape", [scale, shape])])
    return rw.op("Transpose", [per], {"perm": [0, 2, 1]})


def _dynamic_quantize_lstm(rw, node, ops):
    x, w, r, b, lens, h0, c0, p, ws, wz, rs, rz = (list(ops) + [None] * 12)[:12]
    args = [x, _lstm_weights(rw, w, ws, wz), _lstm_weights(rw, r, rs, rz), b, lens, h0, c0, p]
    while args[-1] is None:
        args.pop()
    attrs = lstm_attrs(lambda n: _attr(node, n))
    results = rw.op("LSTM", args, attrs, num_results=len(node.results))
    return list(results) if isinstance(results, tuple) else [results]


def _fused_conv(rw, node, ops):
    x, w, b, z = (list(ops) + [None] * 4)[:4]
    try:
        act = activation(_attr(node, "activation"), _attr(node, "activation_params"))
    except ValueError as exc:
        raise Keep(str(exc)) from None
    conv_attrs = {n: node.attrs[n] for n in CONV_ATTRS if n in node.attrs}
    y = rw.op("Conv", [x, w] + ([b] if b is not None else []), conv_attrs)
    if z is not None:
        y = rw.op("Add", [y, z])
    if act is not None:
        op, act_attrs, extra = act
        y = rw.op(op, [y] + [_const(rw, v, x) for v in extra], act_attrs)
    return [y]


def _swap_last(rw, v):
    rank = _rank(v)
    if rank < 2:
        raise Keep("a transposed operand of rank < 2")
    return rw.op("Transpose", [v], {"perm": list(range(rank - 2)) + [rank - 1, rank - 2]})


def _fused_matmul(rw, node, ops):
    if _attr(node, "transBatchA") or _attr(node, "transBatchB"):
        raise Keep("transBatchA/transBatchB")
    a, b = ops
    a = _swap_last(rw, a) if _attr(node, "transA") else a
    b = _swap_last(rw, b) if _attr(node, "transB") else b
    y = rw.op("MatMul", [a, b])
    alpha = float(_attr(node, "alpha"))
    return [y if alpha == 1.0 else rw.op("Mul", [y, _const(rw, alpha, a)])]


def _gelu(rw, node, ops):
    return [rw.op("Gelu", [ops[0]])]


def _bias_gelu(rw, node, ops):
    return [rw.op("Gelu", [rw.op("Add", list(ops[:2]))])]


def _fast_gelu(rw, node, ops):
    x = ops[0] if _operand(node, 1) is None else rw.op("Add", [ops[0], ops[1]])
    return [rw.op("Gelu", [x], {"approximate": "tanh"})]


def _quick_gelu(rw, node, ops):
    x = ops[0]
    gate = rw.op("Sigmoid", [rw.op("Mul", [x, _const(rw, float(_attr(node, "alpha")), x)])])
    return [rw.op("Mul", [x, gate])]


def _bias_add(rw, node, ops):
    return [rw.op("Add", [rw.op("Add", [ops[0], ops[1]]), ops[2]])]


def _skip_sum(rw, x, skip, bias):
    total = rw.op("Add", [x, skip])
    return total if bias is None else rw.op("Add", [total, bias])


def _skip_layer_norm(rw, node, ops):
    x, skip, gamma, beta, bias = (list(ops) + [None] * 5)[:5]
    total = _skip_sum(rw, x, skip, bias)
    stats = any(r.has_uses() for r in node.results[1:3])
    attrs = {"axis": -1, "epsilon": float(_attr(node, "epsilon"))}
    operands = [total, gamma] + ([beta] if beta is not None else [])
    normed = rw.op("LayerNormalization", operands, attrs, num_results=3 if stats else 1)
    normed = list(normed) if isinstance(normed, tuple) else [normed, None, None]
    return (normed + [total])[: len(node.results)]


def _skip_simplified_layer_norm(rw, node, ops):
    x, skip, gamma, bias = (list(ops) + [None] * 4)[:4]
    stats = any(r.has_uses() for r in node.results[1:3])
    if stats and _dtype(x) != np.float32:
        raise Keep("mean / inv_std_var (float32) of a non-float32 input")
    total = _skip_sum(rw, x, skip, bias)
    square = rw.op("Mul", [total, total])
    mean = rw.op("ReduceMean", [square, rw.constant(np.array([-1], np.int64))], {"keepdims": 1})
    eps = _const(rw, float(_attr(node, "epsilon")), x)
    inv_std = rw.op("Reciprocal", [rw.op("Sqrt", [rw.op("Add", [mean, eps])])])
    y = rw.op("Mul", [rw.op("Mul", [total, inv_std]), gamma])
    zeros = None
    if len(node.results) > 1 and node.results[1].has_uses():  # onnxruntime's "mean" of the RMS form: zeros
        zeros = rw.op("Expand", [rw.constant(np.zeros((), np.float32)), rw.op("Shape", [inv_std])])
    return [y, zeros, inv_std, total][: len(node.results)]


def _fused_gemm(rw, node, ops):
    try:
        act = gemm_activation(lambda n: _attr(node, n))
    except ValueError as exc:
        raise Keep(str(exc)) from None
    gemm = {n: node.attrs[n] for n in ("alpha", "beta", "transA", "transB") if n in node.attrs}
    y = rw.op("Gemm", [v for v in ops if v is not None], gemm)
    if act is not None:
        op, act_attrs, extra = act
        y = rw.op(op, [y] + [_const(rw, v, y) for v in extra], act_attrs)
    return [y]


def _nhwc(rw, v, to_channels_first: bool):
    rank = _rank(v)
    perm = [0, rank - 1] + list(range(1, rank - 1)) if to_channels_first else [0] + list(range(2, rank)) + [1]
    return rw.op("Transpose", [v], {"perm": perm})


def _qlinear_average_pool(rw, node, ops):
    x, sx, zx, sy, zy = (list(ops) + [None] * 5)[:5]
    real = _deq(rw, x, sx, zx)
    last = bool(_attr(node, "channels_last"))
    real = _nhwc(rw, real, True) if last else real
    pooled = rw.op("AveragePool", [real], {n: node.attrs[n] for n in POOL_ATTRS if n in node.attrs})
    pooled = _nhwc(rw, pooled, False) if last else pooled
    return [_q(rw, pooled, sy, zy, x)]


def _qlinear_softmax(rw, node, ops):
    x, sx, zx, sy, zy = (list(ops) + [None] * 5)[:5]
    real = _deq(rw, x, sx, zx)
    axis = int(_attr(node, "axis"))
    if int(_attr(node, "opset")) >= 13:
        probs = rw.op("Softmax", [real], {"axis": axis})
    else:  # the 2-D coercion at axis
        flat = rw.op("Softmax", [rw.op("Flatten", [real], {"axis": axis})], {"axis": 1})
        t = real.type
        shape = rw.constant(np.asarray(t.shape, np.int64)) if t.is_static else rw.op("Shape", [real])
        probs = rw.op("Reshape", [flat, shape])
    return [_q(rw, probs, sy, zy, x)]


def _qgemm(rw, node, ops):
    a, sa, za, b, sb, zb, c, sy, zy = (list(ops) + [None] * 9)[:9]
    trans_b = int(_attr(node, "transB"))
    real_a = _deq(rw, a, sa, za)
    real_b = rw.op("DequantizeLinear", [b, sb, zb], {"axis": 0 if trans_b else 1})
    attrs = {"alpha": float(_attr(node, "alpha")), "transA": int(_attr(node, "transA")), "transB": trans_b}
    operands = [real_a, real_b]
    if c is not None:  # alpha a_scale b_scale C
        scale = rw.op("Mul", [rw.op("Mul", [sa, sb]), _const(rw, attrs["alpha"], sa)])
        operands.append(rw.op("Mul", [rw.op("Cast", [c], {"to": 1}), scale]))
    y = rw.op("Gemm", operands, attrs)
    return [y if sy is None else _q(rw, y, sy, zy, zy if zy is not None else a)]


def _matmul_bias(rw, real_a, real_b, bias):
    y = rw.op("MatMul", [real_a, real_b])
    return [y if bias is None else rw.op("Add", [y, bias])]


def _dynamic_quantize_matmul(rw, node, ops):
    a, b, sb, zb, bias = (list(ops) + [None] * 5)[:5]
    qa, sa, za = rw.op("DynamicQuantizeLinear", [a])
    return _matmul_bias(rw, _deq(rw, qa, sa, za), _deq(rw, b, sb, zb), bias)


def _matmul_integer_to_float(rw, node, ops):
    a, b, sa, sb, za, zb, bias = (list(ops) + [None] * 7)[:7]
    return _matmul_bias(rw, _deq(rw, a, sa, za), _deq(rw, b, sb, zb), bias)


def _qlinear_reduce_mean(rw, node, ops):
    x, sx, zx, sy, zy = (list(ops) + [None] * 5)[:5]
    axes = rw.constant(np.asarray(node.attrs["axes"], np.int64))
    mean = rw.op("ReduceMean", [_deq(rw, x, sx, zx), axes], {"keepdims": int(node.attrs["keepdims"])})
    return [_q(rw, mean, sy, zy, x)]


def _qlinear_where(rw, node, ops):
    cond, x, sx, zx, y, sy, zy, sz, zz = ops
    return [_q(rw, rw.op("Where", [cond, _deq(rw, x, sx, zx), _deq(rw, y, sy, zy)]), sz, zz, x)]


def _simplified_layer_norm(rw, node, ops):
    x, scale = ops
    rank = _rank(x)
    if _dtype(x) != np.float32 and len(node.results) > 1 and node.results[1].has_uses():
        raise Keep("inv_std_var (float32) of a non-float32 input")
    axes = np.arange(int(_attr(node, "axis")) % max(rank, 1), rank, dtype=np.int64)
    mean = rw.op("ReduceMean", [rw.op("Mul", [x, x]), rw.constant(axes)], {"keepdims": 1})
    eps = _const(rw, float(_attr(node, "epsilon")), x)
    inv_std = rw.op("Reciprocal", [rw.op("Sqrt", [rw.op("Add", [mean, eps])])])
    return [rw.op("Mul", [rw.op("Mul", [x, inv_std]), scale]), inv_std][: len(node.results)]


def _static_dim(v: Value, i: int) -> int:
    if not isinstance(v.type, TensorType) or not v.type.is_static:
        raise Keep("a static shape is needed")
    return v.type.shape[i]


def _mask_add(rw, node, mask, queries: int, keys: int) -> Value | None:
    """The additive attention mask [B or 1, 1, S, L] (see ``kernels_contrib.attention_mask_add``)."""
    filt = _attr(node, "mask_filter_value")
    filt = np.float32(-10000.0 if filt is None else filt)
    add = None
    if mask is not None:
        if _rank(mask) == 2:
            keep = rw.op("Cast", [mask], {"to": 1})
            add = rw.op("Mul", [rw.op("Sub", [rw.constant(np.float32(1)), keep]), rw.constant(filt)])
        elif _rank(mask) == 1:
            ends = rw.op("Unsqueeze", [rw.op("Cast", [mask], {"to": 7}), rw.constant(np.array([1], np.int64))])
            valid = rw.op("Less", [rw.constant(np.arange(keys, dtype=np.int64)[None, :]), ends])
            add = rw.op("Where", [valid, rw.constant(np.float32(0)), rw.constant(filt)])
        else:
            raise Keep("a mask of rank other than 1 or 2")
        add = rw.op("Unsqueeze", [add, rw.constant(np.array([1, 2], np.int64))])
    if _attr(node, "unidirectional"):
        causal = rw.constant(np.triu(np.full((queries, keys), filt, np.float32), 1)[None, None])
        add = causal if add is None else rw.op("Add", [add, causal])
    return add


def _attend(rw, q, k, v, heads: int, scale, add) -> Value:
    """Multi-head scaled dot-product attention of [B, S, H] projections (``kernels_contrib.attend``)."""
    split = rw.constant(np.array([0, 0, heads, -1], np.int64))

    def heads_of(t, perm):
        return rw.op("Transpose", [rw.op("Reshape", [t, split])], {"perm": perm})

    qh, kt, vh = heads_of(q, [0, 2, 1, 3]), heads_of(k, [0, 2, 3, 1]), heads_of(v, [0, 2, 1, 3])
    head_size = _static_dim(qh, 3)
    scale = float(1 / np.sqrt(head_size) if scale is None else scale)
    scores = rw.op("Mul", [rw.op("MatMul", [qh, kt]), rw.constant(np.float32(scale))])
    scores = scores if add is None else rw.op("Add", [scores, add])
    out = rw.op("MatMul", [rw.op("Softmax", [scores], {"axis": -1}), vh])
    merged = rw.op("Transpose", [out], {"perm": [0, 2, 1, 3]})
    return rw.op("Reshape", [merged, rw.constant(np.array([0, 0, -1], np.int64))])


def _attention(rw, node, ops):
    x, w, bias, mask = (list(ops) + [None] * 4)[:4]
    if any(v is not None for v in ops[4:]) or len(node.results) > 1 and node.results[1].has_uses():
        raise Keep("past, attention_bias or present")
    if _dtype(x) != np.float32:
        raise Keep("a non-float32 input")
    proj = rw.op("MatMul", [x, w])
    proj = proj if bias is None else rw.op("Add", [proj, bias])
    sizes = qkv_sizes(lambda n: _attr(node, n), _static_dim(w, 1))
    q, k, v = rw.op("Split", [proj, rw.constant(np.array(sizes, np.int64))], {"axis": -1}, num_results=3)
    seq = _static_dim(x, 1)
    add = _mask_add(rw, node, mask, seq, seq)
    return [_attend(rw, q, k, v, int(_attr(node, "num_heads")), _attr(node, "scale"), add)]


def _multi_head_attention(rw, node, ops):
    q, k, v, bias, key_mask = (list(ops) + [None] * 5)[:5]
    if any(x is not None for x in ops[5:]) or k is None or v is None or _rank(k) != 3:
        raise Keep("packed, past or attention_bias inputs")
    if any(r.has_uses() for r in node.results[1:]) or _dtype(q) != np.float32:
        raise Keep("present / qk outputs or a non-float32 input")
    if bias is not None:
        sizes = rw.constant(np.array([_static_dim(q, 2), _static_dim(k, 2), _static_dim(v, 2)], np.int64))
        bq, bk, bv = rw.op("Split", [bias, sizes], {"axis": 0}, num_results=3)
        q, k, v = rw.op("Add", [q, bq]), rw.op("Add", [k, bk]), rw.op("Add", [v, bv])
    add = _mask_add(rw, node, key_mask, _static_dim(q, 1), _static_dim(k, 1))
    return [_attend(rw, q, k, v, int(_attr(node, "num_heads")), _attr(node, "scale"), add)]


REWRITES = {
    "QLinearAdd": _qlinear_binary("Add"),
    "QLinearMul": _qlinear_binary("Mul"),
    "QLinearSigmoid": _qlinear_unary("Sigmoid"),
    "QLinearLeakyRelu": _qlinear_unary("LeakyRelu", ("alpha",)),
    "QLinearGlobalAveragePool": _qlinear_gap,
    "QLinearConcat": _qlinear_concat,
    "QuantizeLinear": _standard("QuantizeLinear"),
    "DequantizeLinear": _standard("DequantizeLinear"),
    "DynamicQuantizeLSTM": _dynamic_quantize_lstm,
    "FusedConv": _fused_conv,
    "FusedMatMul": _fused_matmul,
    "Gelu": _gelu,
    "BiasGelu": _bias_gelu,
    "FastGelu": _fast_gelu,
    "QuickGelu": _quick_gelu,
    "BiasAdd": _bias_add,
    "SkipLayerNormalization": _skip_layer_norm,
    "SkipSimplifiedLayerNormalization": _skip_simplified_layer_norm,
    "FusedGemm": _fused_gemm,
    "QLinearAveragePool": _qlinear_average_pool,
    "QLinearSoftmax": _qlinear_softmax,
    "QGemm": _qgemm,
    "DynamicQuantizeMatMul": _dynamic_quantize_matmul,
    "MatMulIntegerToFloat": _matmul_integer_to_float,
    "QLinearReduceMean": _qlinear_reduce_mean,
    "QLinearWhere": _qlinear_where,
    "SimplifiedLayerNormalization": _simplified_layer_norm,
    "Attention": _attention,
    "MultiHeadAttention": _multi_head_attention,
}


def decompose(rw: Rewriter, node: Node) -> bool:
    """Rewrite one contrib node as above; False when it is kept (nothing is then left behind)."""
    rewrite = REWRITES.get(node.op[len(MS) + 1 :]) if node.op.startswith(MS + ".") else None
    if rewrite is None:
        return False
    rw.set_insertion_point_before(node)
    created_before = {id(n) for n in rw.graph.nodes}
    try:
        new = rewrite(rw, node, list(node.operands))
    except Keep:
        for n in [n for n in rw.graph.nodes if id(n) not in created_before][::-1]:
            rw.erase_node(n)
        return False
    for old, value in zip(node.results, new):
        if value is None:
            if old.has_uses():
                raise AssertionError(f"{node.describe()}: a used result has no replacement")
            continue
        if old.name and not value.name:
            value.name = old.name
        rw.replace_value(old, value)
    rw.erase_node(node)
    return True


@dataclass(frozen=True)
class DecomposeContribPass(Pass):
    """Rewrite ``com.microsoft`` contrib ops into standard ONNX ops (see the module docstring)."""

    name = "decompose-contrib"

    def run(self, graph: Graph) -> PassResult:
        counts = {"decomposed": 0, "kept": 0}
        self._run(graph, counts)
        return PassResult(counts["decomposed"] > 0, counts)

    def _run(self, graph: Graph, counts: dict) -> None:
        rw = Rewriter(graph, rule_name=self.name)
        for node in list(graph.nodes):
            for sub in node.subgraphs:
                self._run(sub, counts)
            if node.op.startswith(MS + "."):
                counts["decomposed" if decompose(rw, node) else "kept"] += 1
