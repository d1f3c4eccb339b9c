"""Shared helpers, some type inference and the NumPy kernels of the ``com.microsoft`` contrib ops
(``contrib.py`` declares them; the ``decompose-contrib`` pass reuses the activation and attribute tables)."""

from __future__ import annotations

import numpy as np

from ..ir.types import DType, TensorType
from .infer_onnx import onnx_infer
from .registry import EvalContext, InferContext, get_op

MS = "com.microsoft"


def infer_as(ctx: InferContext, op: str, input_types, attrs=None, num_outputs: int = 1):
    """Result types of standard op ``op`` applied to ``input_types`` (onnx's inference)."""
    sub = InferContext(op, list(input_types), dict(attrs or {}), num_outputs, [None] * len(input_types))
    return onnx_infer(sub)


def run_as(op: str, inputs, attrs=None, num_outputs: int = 1):
    """Outputs of standard op ``op``'s reference kernel on ``inputs``."""
    types = [None if x is None else TensorType.of(x) for x in inputs]
    ctx = EvalContext(op, dict(attrs or {}), num_outputs, types)
    return get_op(op).reference(list(inputs), dict(attrs or {}), ctx)


def float_type(t):
    """``t`` with dtype float32 (shape kept)."""
    return TensorType(DType.FLOAT32, t.shape) if isinstance(t, TensorType) else t


def same_as(index: int):
    """Inference: the result has operand ``index``'s type."""
    return lambda ctx: [ctx.input_types[index]]


def dequantize(x, scale, zero_point=None) -> np.ndarray:
    """float32 ``(x - zero_point) * scale`` (per tensor)."""
    zp = np.float32(0) if zero_point is None else np.asarray(zero_point).astype(np.float32)
    return ((np.asarray(x).astype(np.float32) - zp) * np.asarray(scale).astype(np.float32)).astype(np.float32)


def quantize(v, scale, zero_point, dtype) -> np.ndarray:
    """``saturate(round_half_even(v / scale) + zero_point)`` in ``dtype`` (per tensor)."""
    zp = 0.0 if zero_point is None else np.asarray(zero_point).astype(np.float32)
    info = np.iinfo(dtype)
    q = np.rint(np.asarray(v, np.float32) / np.asarray(scale).astype(np.float32)) + zp
    return np.clip(q, info.min, info.max).astype(dtype)


def gelu(x) -> np.ndarray:
    return run_as("Gelu", [np.asarray(x)])[0]


def fast_gelu(x) -> np.ndarray:
    return run_as("Gelu", [np.asarray(x)], {"approximate": "tanh"})[0]


def per_axis(param, rank: int, axis: int):
    """A per-axis scale / zero point shaped to broadcast along ``axis`` of a rank-``rank`` tensor."""
    param = np.asarray(param)
    if param.ndim == 0 or param.size == 1 and param.ndim == 1 and rank == 0:
        return param.reshape(())
    shape = [1] * rank
    shape[axis % rank] = param.size
    return param.reshape(shape)


def lstm_weights(w, scale, zero_point) -> np.ndarray:
    """DynamicQuantizeLSTM's W [D, I, 4H] (or R) dequantized (scale/zero point per direction or per
    direction and column) and transposed to ONNX LSTM's [D, 4H, I]."""
    scale, zero_point = np.asarray(scale, np.float32), np.asarray(zero_point)
    shape = (scale.shape[0], 1, -1)
    real = (w.astype(np.float32) - zero_point.reshape(shape).astype(np.float32)) * scale.reshape(shape)
    return np.ascontiguousarray(real.transpose(0, 2, 1)).astype(np.float32)


def lstm_attrs(get) -> dict:
    """The standard LSTM's attributes from a DynamicQuantizeLSTM's (``get(name)`` gives each, or None)."""
    names = ("activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size")
    out = {n: get(n) for n in names if get(n) is not None}
    if get("input_forget"):
        out["input_forget"] = int(get("input_forget"))
    return out


ACTIVATIONS = {  # FusedConv's activation -> (standard op, names of its attributes in activation_params)
    "Relu": ("Relu", ()),
    "Tanh": ("Tanh", ()),
    "Sigmoid": ("Sigmoid", ()),
    "LeakyRelu": ("LeakyRelu", ("alpha",)),
    "Clip": ("Clip", ("min", "max")),
    "HardSigmoid": ("HardSigmoid", ("alpha", "beta")),
}
CONV_ATTRS = ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")


def conv_attrs(get) -> dict:
    return {n: get(n) for n in CONV_ATTRS if get(n) is not None}


def activation(name: str | None, params) -> tuple[str, dict, list] | None:
    """(standard op, attributes, extra operand arrays) of a FusedConv / FusedGemm activation."""
    if not name:
        return None
    if name not in ACTIVATIONS:
        raise ValueError(f"unsupported activation '{name}'")
    op, names = ACTIVATIONS[name]
    params = list(params or [])
    if op == "Clip":
        return op, {}, [np.float32(v) for v in params[:2]]
    return op, {n: float(v) for n, v in zip(names, params)}, []


def stat_shape(t):
    """The type of a mean / inv_std_var output: ``t``'s with the last dim 1, in float32."""
    if not isinstance(t, TensorType) or t.shape is None:
        return TensorType(DType.FLOAT32, None)
    return TensorType(DType.FLOAT32, t.shape[:-1] + (1,))


def skip_norm(inputs, epsilon: float, simplified: bool, num_outputs: int):
    """(output, mean, inv_std_var, input_skip_bias_sum) of (Simplified)SkipLayerNormalization."""
    if simplified:
        x, skip, gamma, bias = (list(inputs) + [None] * 4)[:4]
        beta = None
    else:
        x, skip, gamma, beta, bias = (list(inputs) + [None] * 5)[:5]
    total = x + skip + (0 if bias is None else bias)
    total = total.astype(x.dtype)
    wide = total.astype(np.float32)
    mean = np.zeros_like(wide[..., :1]) if simplified else wide.mean(axis=-1, keepdims=True)
    centred = wide - mean
    inv_std = 1.0 / np.sqrt((centred * centred).mean(axis=-1, keepdims=True) + np.float32(epsilon))
    y = centred * inv_std * gamma + (0 if beta is None else beta)
    return [y.astype(x.dtype), mean.astype(np.float32), inv_std.astype(np.float32), total][:num_outputs]


POOL_ATTRS = ("auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads", "strides")


def gemm_activation(get) -> tuple[str, dict, list] | None:
    """FusedGemm's activation: its ``activation_alpha`` / ``activation_beta`` as the op's parameters."""
    params = [get(n) for n in ("activation_alpha", "activation_beta")]
    return activation(get("activation"), [p for p in params if p is not None])


def apply_activation(y: np.ndarray, act) -> np.ndarray:
    """``y`` through an ``activation(...)`` triple (None: unchanged)."""
    if act is None:
        return y
    op, act_attrs, extra = act
    return run_as(op, [y] + [np.asarray(v, y.dtype) for v in extra], act_attrs)[0]


def softmax(x: np.ndarray, axis: int, opset: int) -> np.ndarray:
    """Softmax along ``axis`` (opset >= 13), or over the 2-D coercion at ``axis`` (earlier opsets)."""
    axis = int(axis) % max(x.ndim, 1)
    if int(opset) >= 13:
        shifted = np.exp(x - x.max(axis=axis, keepdims=True))
        return (shifted / shifted.sum(axis=axis, keepdims=True)).astype(np.float32)
    flat = x.reshape(int(np.prod(x.shape[:axis], dtype=np.int64)), -1)
    return softmax(flat, 1, 13).reshape(x.shape)


def qgemm_kernel(inputs, attrs, ctx):
    a, sa, za, b, sb, zb, c, sy, zy = (list(inputs) + [None] * 9)[:9]
    a = a.T if ctx.attr("transA") else a
    b, sb_cols, zb_cols = (b.T, sb, zb) if ctx.attr("transB") else (b, sb, zb)
    acc = (a.astype(np.int64) - np.asarray(za, np.int64)) @ (b.astype(np.int64) - np.asarray(zb_cols, np.int64))
    if c is not None:
        acc = acc + np.asarray(c, np.int64)
    y = (acc.astype(np.float64) * (float(ctx.attr("alpha")) * np.asarray(sa, np.float64) * sb_cols)).astype(np.float32)
    return [y if sy is None else quantize(y, sy, zy, np.asarray(zy).dtype if zy is not None else np.uint8)]


def dq_matmul_kernel(inputs, attrs, ctx):
    a, b, sb, zb, bias = (list(inputs) + [None] * 5)[:5]
    qa, sa, za = run_as("DynamicQuantizeLinear", [a], num_outputs=3)
    y = np.matmul(dequantize(qa, sa, za), dequantize(b, sb, zb))
    return [(y if bias is None else y + bias).astype(np.float32)]


def int_matmul_kernel(inputs, attrs, ctx):
    a, b, sa, sb, za, zb, bias = (list(inputs) + [None] * 7)[:7]
    y = np.matmul(dequantize(a, sa, za), dequantize(b, sb, zb))
    return [(y if bias is None else y + bias).astype(np.float32)]


def qpool_kernel(inputs, attrs, ctx):
    x, sx, zx, sy, zy = (list(inputs) + [None] * 5)[:5]
    real = dequantize(x, sx, zx)
    last = bool(ctx.attr("channels_last"))
    if last:
        real = np.moveaxis(real, -1, 1)
    (pooled,) = run_as("AveragePool", [real], {n: ctx.attr(n) for n in POOL_ATTRS if ctx.attr(n) is not None})
    if last:
        pooled = np.moveaxis(pooled, 1, -1)
    return [quantize(pooled, sy, zy, np.asarray(x).dtype)]


def qreduce_mean_kernel(inputs, attrs, ctx):
    x, sx, zx, sy, zy = (list(inputs) + [None] * 5)[:5]
    axes = tuple(int(a) for a in ctx.attr("axes"))
    mean = dequantize(x, sx, zx).mean(axis=axes, keepdims=bool(ctx.attr("keepdims")), dtype=np.float32)
    return [quantize(mean, sy, zy, np.asarray(x).dtype)]


def qwhere_kernel(inputs, attrs, ctx):
    cond, x, sx, zx, y, sy, zy, sz, zz = inputs
    return [quantize(np.where(cond, dequantize(x, sx, zx), dequantize(y, sy, zy)), sz, zz, np.asarray(x).dtype)]


def fused_gemm_kernel(inputs, attrs, ctx):
    gemm = {n: ctx.attr(n) for n in ("alpha", "beta", "transA", "transB")}
    (y,) = run_as("Gemm", [x for x in inputs if x is not None], gemm)
    return [apply_activation(y, gemm_activation(ctx.attr))]


def qsoftmax_kernel(inputs, attrs, ctx):
    x, sx, zx, sy, zy = (list(inputs) + [None] * 5)[:5]
    return [quantize(softmax(dequantize(x, sx, zx), ctx.attr("axis"), ctx.attr("opset")), sy, zy, np.asarray(x).dtype)]


def fused_conv_kernel(inputs, attrs, ctx):
    x, w, b, z = (list(inputs) + [None] * 4)[:4]
    (y,) = run_as("Conv", [x, w] + ([b] if b is not None else []), conv_attrs(ctx.attr))
    if z is not None:
        y = (y + z).astype(y.dtype)
    act = activation(ctx.attr("activation"), ctx.attr("activation_params"))
    if act is not None:
        op, act_attrs, extra = act
        (y,) = run_as(op, [y] + [np.asarray(v, y.dtype) for v in extra], act_attrs)
    return [y]


def dqlstm_kernel(inputs, attrs, ctx):
    x, w, r, b, seq_lens, h0, c0, p, ws, wz, rs, rz = (list(inputs) + [None] * 12)[:12]
    args = [x, lstm_weights(w, ws, wz), lstm_weights(r, rs, rz), b, seq_lens, h0, c0, p]
    while args[-1] is None:
        args.pop()
    return run_as("LSTM", args, lstm_attrs(ctx.attr), ctx.num_outputs)


def qconcat_kernel(inputs, attrs, ctx):
    sy, zy = inputs[0], inputs[1]
    parts = [dequantize(inputs[i], inputs[i + 1], inputs[i + 2]) for i in range(2, len(inputs), 3)]
    return [quantize(np.concatenate(parts, axis=int(ctx.attr("axis"))), sy, zy, np.asarray(zy).dtype)]


def qgap_kernel(inputs, attrs, ctx):
    x, sx, zx, sy, zy = inputs
    axes = spatial_axes(np.ndim(x), bool(ctx.attr("channels_last")))
    mean = dequantize(x, sx, zx).mean(axis=axes, keepdims=True, dtype=np.float32)
    return [quantize(mean, sy, zy, np.asarray(x).dtype)]


def quantize_kernel(inputs, attrs, ctx):
    x, scale, zp = (list(inputs) + [None] * 3)[:3]
    rank, axis = np.ndim(x), int(ctx.attr("axis") if ctx.attr("axis") is not None else 1)
    dtype = np.uint8 if zp is None else np.asarray(zp).dtype
    zp = None if zp is None else per_axis(zp, rank, axis)
    return [quantize(x, per_axis(scale, rank, axis), zp, dtype)]


def dequantize_kernel(inputs, attrs, ctx):
    x, scale, zp = (list(inputs) + [None] * 3)[:3]
    rank, axis = np.ndim(x), int(ctx.attr("axis") if ctx.attr("axis") is not None else 1)
    zp = None if zp is None else per_axis(zp, rank, axis)
    return [dequantize(x, per_axis(scale, rank, axis), zp)]


def spatial_axes(rank: int, channels_last: bool) -> tuple[int, ...]:
    return tuple(range(1, rank - 1)) if channels_last else tuple(range(2, rank))


def simplified_norm_kernel(inputs, attrs, ctx):
    """SimplifiedLayerNormalization: RMS normalization over dims ``axis``.. (in float32), times scale."""
    x, scale = inputs
    axis = int(ctx.attr("axis")) % max(x.ndim, 1)
    wide = x.astype(np.float32)
    axes = tuple(range(axis, x.ndim))
    inv_std = 1.0 / np.sqrt((wide * wide).mean(axis=axes, keepdims=True) + np.float32(ctx.attr("epsilon")))
    return [(wide * inv_std * scale).astype(x.dtype), inv_std.astype(np.float32)][: ctx.num_outputs]


def attention_mask_add(mask, batch: int, queries: int, keys: int, filter_value: float, causal: bool) -> np.ndarray:
    """The additive mask [B or 1, 1, S, L] of Attention: a 2-D ``mask_index`` [B, L] masks its zeros, a
    1-D one [B] every key at or after its entry; ``causal`` masks the keys after each query."""
    add = np.zeros((1, 1, queries, keys), np.float32)
    if mask is not None and mask.ndim == 2:
        add = add + ((1 - mask.astype(np.float32)) * np.float32(filter_value))[:, None, None, :]
    elif mask is not None and mask.ndim == 1:
        valid = np.arange(keys)[None, :] < mask.astype(np.int64)[:, None]
        add = add + np.where(valid, 0, np.float32(filter_value)).astype(np.float32)[:, None, None, :]
    if causal:
        add = add + np.triu(np.full((queries, keys), np.float32(filter_value)), 1)[None, None]
    return add


def attend(q, k, v, heads: int, scale, mask_add) -> np.ndarray:
    """Multi-head scaled dot-product attention of [B, S, H] projections; returns [B, S, Hv]."""

    def split(t):
        return t.reshape(t.shape[0], t.shape[1], heads, -1).transpose(0, 2, 1, 3)

    qh, kh, vh = split(q), split(k), split(v)
    scale = np.float32(1 / np.sqrt(qh.shape[-1]) if scale is None else scale)
    scores = (qh @ kh.transpose(0, 1, 3, 2)) * scale + mask_add
    scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
    probs = scores / scores.sum(axis=-1, keepdims=True)
    out = (probs @ vh).transpose(0, 2, 1, 3)
    return out.reshape(out.shape[0], out.shape[1], -1).astype(np.float32)


def qkv_sizes(get, weights_columns: int) -> list[int]:
    sizes = get("qkv_hidden_sizes")
    return [int(s) for s in sizes] if sizes else [weights_columns // 3] * 3


def attention_kernel(inputs, attrs, ctx):
    x, w, bias, mask = (list(inputs) + [None] * 4)[:4]
    if any(i is not None for i in inputs[4:]):
        raise ValueError("Attention with past, attention_bias or past_sequence_length is not supported")
    proj = x @ w + (0 if bias is None else bias)
    hq, hk, _ = qkv_sizes(ctx.attr, w.shape[1])
    q, k, v = proj[..., :hq], proj[..., hq : hq + hk], proj[..., hq + hk :]
    filt = ctx.attr("mask_filter_value")
    filt = -10000.0 if filt is None else filt
    add = attention_mask_add(mask, x.shape[0], x.shape[1], x.shape[1], filt, bool(ctx.attr("unidirectional")))
    return [attend(q, k, v, int(ctx.attr("num_heads")), ctx.attr("scale"), add)]


def mha_kernel(inputs, attrs, ctx):
    q, k, v, bias, key_mask = (list(inputs) + [None] * 5)[:5]
    if any(i is not None for i in inputs[5:]) or k is None or v is None or k.ndim != 3:
        raise ValueError("MultiHeadAttention is supported with separate 3-D query, key and value only")
    if bias is not None:
        hq, hk = q.shape[-1], k.shape[-1]
        q, k, v = q + bias[:hq], k + bias[hq : hq + hk], v + bias[hq + hk :]
    filt = ctx.attr("mask_filter_value")
    filt = -10000.0 if filt is None else filt
    causal = bool(ctx.attr("unidirectional"))
    add = attention_mask_add(key_mask, q.shape[0], q.shape[1], k.shape[1], filt, causal)
    return [attend(q, k, v, int(ctx.attr("num_heads")), ctx.attr("scale"), add)]


def attention_infer(ctx):
    x, w = ctx.input_types[:2]
    if not isinstance(x, TensorType) or x.shape is None or not isinstance(w, TensorType) or w.shape is None:
        return [TensorType(DType.FLOAT32, None)]
    hv = qkv_sizes(ctx.attrs.get, w.shape[1])[2] if isinstance(w.shape[1], int) else None
    return [x.with_shape(tuple(x.shape[:2]) + (hv,))]


def mha_infer(ctx):
    q, v = ctx.input_types[0], ctx.input_types[2] if len(ctx.input_types) > 2 else None
    if not isinstance(q, TensorType) or q.shape is None or not isinstance(v, TensorType) or v.shape is None:
        return [TensorType(DType.FLOAT32, None)]
    return [q.with_shape(tuple(q.shape[:2]) + (v.shape[-1],))]


def simplified_norm_infer(ctx):
    x = ctx.input_types[0]
    if not isinstance(x, TensorType) or x.shape is None:
        return [x, TensorType(DType.FLOAT32, None)][: ctx.num_outputs]
    axis = int(ctx.attrs.get("axis", -1)) % max(len(x.shape), 1)
    return [x, TensorType(DType.FLOAT32, tuple(x.shape[:axis]) + (1,) * (len(x.shape) - axis))][: ctx.num_outputs]


def qgemm_infer(ctx):
    a, b, sy, zy = ctx.input_types[0], ctx.input_types[3], *(list(ctx.input_types[7:9]) + [None, None])[:2]
    attrs = {n: ctx.attrs[n] for n in ("transA", "transB") if n in ctx.attrs}
    (out,) = infer_as(ctx, "Gemm", [float_type(a), float_type(b)], attrs)
    dtype = DType.FLOAT32 if sy is None else (zy.dtype if isinstance(zy, TensorType) else DType.UINT8)
    return [TensorType(dtype, out.shape)]
