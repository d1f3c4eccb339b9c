"""Shared helpers and NumPy kernels of the ``com.microsoft`` contrib ops (``contrib.py`` declares them;
the ``decompose-contrib`` pass reuses the activation and attribute tables)."""

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
