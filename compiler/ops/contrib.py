"""onnxruntime's ``com.microsoft`` contrib ops, as its quantizer and transformers optimizer write them.

Named ``com.microsoft.<Op>`` (as ``ai.onnx.ml.<Op>`` names that domain's ops).  onnx's package has
no schema for them, so their attributes are written out here, from onnxruntime's
``docs/ContribOperators.md`` (contrib opset 1).  Each has its own type inference and a NumPy
reference kernel that follows onnxruntime's CPU kernels (``tests/ops/test_contrib.py`` checks them
against onnxruntime); the ``decompose-contrib`` pass rewrites each into standard ONNX ops for codegen.

Quantized (QLinear*) ops compute in float32 between a dequantize and a quantize:
``deq(x) = (x - zero_point) * scale``, ``q(v) = saturate(round_half_even(v / scale) + zero_point)``;
an absent zero point is 0 of the quantized type.
"""

from __future__ import annotations

import numpy as np

from ..ir.types import DType, TensorType
from .declare import Family
from .kernels_contrib import (
    MS,
    activation,
    conv_attrs,
    dequantize,
    fast_gelu,
    float_type,
    gelu,
    infer_as,
    lstm_attrs,
    lstm_weights,
    per_axis,
    quantize,
    run_as,
    same_as,
    skip_norm,
    stat_shape,
)
from .registry import REQUIRED, AttrSpec, Trait

FAMILY = Family("contrib")
PURE = frozenset({Trait.PURE})


def contrib_op(name: str, inputs, outputs, attrs=(), *, infer, kernel, doc: str, traits=PURE):
    """Declare ``com.microsoft.<name>``."""
    return FAMILY.op(
        f"{MS}.{name}",
        domain=MS,
        inputs=inputs,
        outputs=outputs,
        attrs=attrs,
        traits=traits,
        infer=infer,
        kernel=kernel,
        doc=doc,
    )


# ------------------------------------------------------------------------------------ quantized ops


def _qlinear_binary(fn):
    def kernel(inputs, attrs, ctx):
        a, sa, za, b, sb, zb, sc, zc = (list(inputs) + [None] * 8)[:8]
        return [quantize(fn(dequantize(a, sa, za), dequantize(b, sb, zb)), sc, zc, np.asarray(a).dtype)]

    return kernel


def _qlinear_binary_infer(ctx):
    a, b = ctx.input_types[0], ctx.input_types[3]
    (out,) = infer_as(ctx, "Add", [float_type(a), float_type(b)])
    return [TensorType(a.dtype, out.shape) if isinstance(out, TensorType) else None]


for _name, _fn in (("QLinearAdd", np.add), ("QLinearMul", np.multiply)):
    contrib_op(
        _name,
        (7, 8),
        (1, 1),
        infer=_qlinear_binary_infer,
        kernel=_qlinear_binary(_fn),
        doc=f"C = q({_name[7:]}(deq(A), deq(B))) with broadcasting (inputs A, A_scale, A_zero_point, B, B_scale, "
        "B_zero_point, C_scale, C_zero_point).",
    )


def _qlinear_unary(fn):
    def kernel(inputs, attrs, ctx):
        x, sx, zx, sy, zy = (list(inputs) + [None] * 5)[:5]
        return [quantize(fn(dequantize(x, sx, zx), ctx), sy, zy, np.asarray(x).dtype)]

    return kernel


def _sigmoid(v, ctx):
    return (1.0 / (1.0 + np.exp(-v))).astype(np.float32)


def _leaky_relu(v, ctx):
    return np.where(v >= 0, v, v * np.float32(ctx.attr("alpha"))).astype(np.float32)


contrib_op(
    "QLinearSigmoid",
    (4, 5),
    (1, 1),
    infer=same_as(0),
    kernel=_qlinear_unary(_sigmoid),
    doc="Y = q(Sigmoid(deq(X))) (inputs X, X_scale, X_zero_point, Y_scale, Y_zero_point).",
)
contrib_op(
    "QLinearLeakyRelu",
    (4, 5),
    (1, 1),
    [AttrSpec("alpha", "float", 0.01)],
    infer=same_as(0),
    kernel=_qlinear_unary(_leaky_relu),
    doc="Y = q(LeakyRelu(deq(X)){alpha}).",
)


def _spatial_axes(rank: int, channels_last: bool) -> tuple[int, ...]:
    return tuple(range(1, rank - 1)) if channels_last else tuple(range(2, rank))


def _qgap_infer(ctx):
    x = ctx.input_types[0]
    if not isinstance(x, TensorType) or x.shape is None:
        return [x]
    axes = _spatial_axes(len(x.shape), bool(ctx.attrs.get("channels_last", 0)))
    return [x.with_shape(tuple(1 if i in axes else d for i, d in enumerate(x.shape)))]


def _qgap_kernel(inputs, attrs, ctx):
    x, sx, zx, sy, zy = inputs
    axes = _spatial_axes(np.ndim(x), bool(ctx.attr("channels_last")))
    mean = dequantize(x, sx, zx).mean(axis=axes, keepdims=True, dtype=np.float32)
    return [quantize(mean, sy, zy, np.asarray(x).dtype)]


contrib_op(
    "QLinearGlobalAveragePool",
    (5, 5),
    (1, 1),
    [AttrSpec("channels_last", "int", 0)],
    infer=_qgap_infer,
    kernel=_qgap_kernel,
    doc="Y = q(GlobalAveragePool(deq(X))); spatial dims are 1.. rank-2 when channels_last, else 2..",
)


def _qconcat_infer(ctx):
    parts = ctx.input_types[2::3]
    (out,) = infer_as(ctx, "Concat", [float_type(t) for t in parts], {"axis": int(ctx.attrs["axis"])})
    dtype = ctx.input_types[1].dtype if isinstance(ctx.input_types[1], TensorType) else parts[0].dtype
    return [TensorType(dtype, out.shape) if isinstance(out, TensorType) else None]


def _qconcat_kernel(inputs, attrs, ctx):
    sy, zy = inputs[0], inputs[1]
    parts = [dequantize(inputs[i], inputs[i + 1], inputs[i + 2]) for i in range(2, len(inputs), 3)]
    return [quantize(np.concatenate(parts, axis=int(ctx.attr("axis"))), sy, zy, np.asarray(zy).dtype)]


contrib_op(
    "QLinearConcat",
    (5, None),
    (1, 1),
    [AttrSpec("axis", "int", REQUIRED)],
    infer=_qconcat_infer,
    kernel=_qconcat_kernel,
    doc="Y = q(Concat(deq(X_i)...)); inputs Y_scale, Y_zero_point, then (X_i, X_i_scale, X_i_zero_point) triples.",
)


def _quantize_kernel(inputs, attrs, ctx):
    x, scale, zp = (list(inputs) + [None] * 3)[:3]
    rank, axis = np.ndim(x), int(ctx.attr("axis") if ctx.attr("axis") is not None else 1)
    dtype = np.uint8 if zp is None else np.asarray(zp).dtype
    zp = None if zp is None else per_axis(zp, rank, axis)
    return [quantize(x, per_axis(scale, rank, axis), zp, dtype)]


def _dequantize_kernel(inputs, attrs, ctx):
    x, scale, zp = (list(inputs) + [None] * 3)[:3]
    rank, axis = np.ndim(x), int(ctx.attr("axis") if ctx.attr("axis") is not None else 1)
    zp = None if zp is None else per_axis(zp, rank, axis)
    return [dequantize(x, per_axis(scale, rank, axis), zp)]


def _quantize_infer(ctx):
    x, zp = ctx.input_types[0], ctx.input_types[2] if len(ctx.input_types) > 2 else None
    dtype = zp.dtype if isinstance(zp, TensorType) else DType.UINT8
    return [TensorType(dtype, x.shape) if isinstance(x, TensorType) else None]


def _dequantize_infer(ctx):
    return [float_type(ctx.input_types[0])]


AXIS = AttrSpec("axis", "int", None)
contrib_op(
    "QuantizeLinear",
    (2, 3),
    (1, 1),
    [AXIS],
    infer=_quantize_infer,
    kernel=_quantize_kernel,
    doc="y = saturate(round(x / y_scale) + y_zero_point), per tensor or along axis (default 1).",
)
contrib_op(
    "DequantizeLinear",
    (2, 3),
    (1, 1),
    [AXIS],
    infer=_dequantize_infer,
    kernel=_dequantize_kernel,
    doc="y = (x - x_zero_point) * x_scale, per tensor or along axis (default 1).",
)


# ----------------------------------------------------------------------------- DynamicQuantizeLSTM


def _dqlstm_infer(ctx):
    x = ctx.input_types[0]
    hidden = ctx.attrs.get("hidden_size")
    dirs = 2 if ctx.attrs.get("direction", "forward") == "bidirectional" else 1
    if not isinstance(x, TensorType) or x.shape is None or hidden is None:
        return [TensorType(DType.FLOAT32, None)] * ctx.num_outputs
    seq, batch = x.shape[0], x.shape[1]
    shapes = [(seq, dirs, batch, int(hidden)), (dirs, batch, int(hidden)), (dirs, batch, int(hidden))]
    return [TensorType(x.dtype, s) for s in shapes[: ctx.num_outputs]]


def _dqlstm_kernel(inputs, attrs, ctx):
    x, w, r, b, seq_lens, h0, c0, p, ws, wz, rs, rz = (list(inputs) + [None] * 12)[:12]
    args = [x, lstm_weights(w, ws, wz), lstm_weights(r, rs, rz), b, seq_lens, h0, c0, p]
    while args[-1] is None:
        args.pop()
    return run_as("LSTM", args, lstm_attrs(ctx.attr), ctx.num_outputs)


contrib_op(
    "DynamicQuantizeLSTM",
    (12, 12),
    (0, 3),
    [
        AttrSpec("activation_alpha", "floats", None),
        AttrSpec("activation_beta", "floats", None),
        AttrSpec("activations", "strings", None),
        AttrSpec("clip", "float", None),
        AttrSpec("direction", "string", "forward"),
        AttrSpec("hidden_size", "int", None),
        AttrSpec("input_forget", "int", 0),
    ],
    infer=_dqlstm_infer,
    kernel=_dqlstm_kernel,
    doc="LSTM with int8/uint8 weights W [D, I, 4H] and R [D, H, 4H] (transposed against ONNX's), dequantized "
    "with W_scale/R_scale, W_zero_point/R_zero_point per direction (or per direction and column).",
)


# --------------------------------------------------------------------------------- fused float ops


def _fused_conv_infer(ctx):
    return infer_as(ctx, "Conv", ctx.input_types[:3], conv_attrs(ctx.attrs.get))


def _fused_conv_kernel(inputs, attrs, ctx):
    x, w, b, z = (list(inputs) + [None] * 4)[:4]
    (y,) = run_as("Conv", [x, w] + ([b] if b is not None else []), conv_attrs(ctx.attr))
    if z is not None:
        y = (y + z).astype(y.dtype)
    act = activation(ctx.attr("activation"), ctx.attr("activation_params"))
    if act is not None:
        op, act_attrs, extra = act
        (y,) = run_as(op, [y] + [np.asarray(v, y.dtype) for v in extra], act_attrs)
    return [y]


contrib_op(
    "FusedConv",
    (2, 4),
    (1, 1),
    [
        AttrSpec("activation", "string", None),
        AttrSpec("activation_params", "floats", None),
        AttrSpec("auto_pad", "string", "NOTSET"),
        AttrSpec("dilations", "ints", None),
        AttrSpec("group", "int", 1),
        AttrSpec("kernel_shape", "ints", None),
        AttrSpec("pads", "ints", None),
        AttrSpec("strides", "ints", None),
    ],
    infer=_fused_conv_infer,
    kernel=_fused_conv_kernel,
    doc="Y = activation(Conv(X, W, B) + Z); activation Relu, Tanh, Sigmoid, LeakyRelu, Clip or HardSigmoid "
    "with its parameters in activation_params.",
)


def _swap_last(t):
    if not isinstance(t, TensorType) or t.shape is None or len(t.shape) < 2:
        return t
    return t.with_shape(t.shape[:-2] + (t.shape[-1], t.shape[-2]))


def _fused_matmul_check(get):
    if get("transBatchA") or get("transBatchB"):
        raise ValueError("FusedMatMul with transBatchA/transBatchB is not supported")


def _fused_matmul_infer(ctx):
    _fused_matmul_check(ctx.attrs.get)
    a, b = ctx.input_types[:2]
    a = _swap_last(a) if ctx.attrs.get("transA") else a
    b = _swap_last(b) if ctx.attrs.get("transB") else b
    return infer_as(ctx, "MatMul", [a, b])


def _fused_matmul_kernel(inputs, attrs, ctx):
    _fused_matmul_check(ctx.attr)
    a, b = inputs
    a = np.swapaxes(a, -1, -2) if ctx.attr("transA") else a
    b = np.swapaxes(b, -1, -2) if ctx.attr("transB") else b
    y = np.matmul(a, b)
    return [(y * np.asarray(ctx.attr("alpha"), y.dtype)).astype(y.dtype)]


contrib_op(
    "FusedMatMul",
    (2, 2),
    (1, 1),
    [
        AttrSpec("alpha", "float", 1.0),
        AttrSpec("transA", "int", 0),
        AttrSpec("transB", "int", 0),
        AttrSpec("transBatchA", "int", 0),
        AttrSpec("transBatchB", "int", 0),
    ],
    infer=_fused_matmul_infer,
    kernel=_fused_matmul_kernel,
    doc="Y = alpha * MatMul(A', B'), A' / B' with the last two dims swapped when transA / transB "
    "(transBatchA/transBatchB are refused).",
)

contrib_op(
    "Gelu",
    (1, 1),
    (1, 1),
    infer=same_as(0),
    kernel=lambda i, a, c: [gelu(i[0])],
    doc="Y = 0.5 X (1 + erf(X / sqrt 2)).",
)
contrib_op(
    "BiasGelu",
    (2, 2),
    (1, 1),
    infer=same_as(0),
    kernel=lambda i, a, c: [gelu(i[0] + i[1])],
    doc="C = Gelu(A + B), B broadcast along A's last dim.",
)
contrib_op(
    "FastGelu",
    (1, 2),
    (1, 1),
    infer=same_as(0),
    kernel=lambda i, a, c: [fast_gelu(i[0] if len(i) < 2 or i[1] is None else i[0] + i[1])],
    doc="Y = tanh-approximated Gelu(X + bias).",
)


def _quick_gelu_kernel(inputs, attrs, ctx):
    x = inputs[0]
    alpha = np.asarray(ctx.attr("alpha"), x.dtype)
    return [(x / (1 + np.exp(-alpha * x))).astype(x.dtype)]


contrib_op(
    "QuickGelu",
    (1, 1),
    (1, 1),
    [AttrSpec("alpha", "float", 1.702)],
    infer=same_as(0),
    kernel=_quick_gelu_kernel,
    doc="Y = X * Sigmoid(alpha * X).",
)
contrib_op(
    "BiasAdd",
    (3, 3),
    (1, 1),
    infer=same_as(0),
    kernel=lambda i, a, c: [(i[0] + i[1] + i[2]).astype(i[0].dtype)],
    doc="Y = X + bias + skip (X, skip [N, S, C]; bias [C]).",
)


# ------------------------------------------------------------------------ skip layer normalizations


def _skip_norm_infer(ctx):
    x = ctx.input_types[0]
    return [x, stat_shape(x), stat_shape(x), x][: ctx.num_outputs]


contrib_op(
    "SkipLayerNormalization",
    (3, 5),
    (1, 4),
    [AttrSpec("epsilon", "float", 1e-12)],
    infer=_skip_norm_infer,
    kernel=lambda i, a, ctx: skip_norm(i, ctx.attr("epsilon"), False, ctx.num_outputs),
    doc="LayerNormalization(input + skip + bias, gamma, beta) over the last dim; outputs output, mean, "
    "inv_std_var, input_skip_bias_sum (inputs input, skip, gamma, beta?, bias?).",
)
contrib_op(
    "SkipSimplifiedLayerNormalization",
    (3, 4),
    (1, 4),
    [AttrSpec("epsilon", "float", 1e-12)],
    infer=_skip_norm_infer,
    kernel=lambda i, a, ctx: skip_norm(i, ctx.attr("epsilon"), True, ctx.num_outputs),
    doc="RMS normalization of input + skip + bias over the last dim, times gamma (inputs input, skip, gamma, "
    "bias?); outputs output, mean (unused), inv_std_var, input_skip_bias_sum.",
)
