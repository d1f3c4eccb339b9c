"""Scales and zero points: what the ranges from calibration become.

Defaults follow onnxruntime's ``quantize_static``: int8 activations, asymmetric, per tensor (the range
is widened to hold 0, so zero stays exact); int8 weights, symmetric (zero point 0), per output
channel; int32 biases with scale ``x_scale * w_scale`` and zero point 0.
"""

from __future__ import annotations

import numpy as np

INT8_MIN, INT8_MAX = -128, 127
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def activation_params(lo: float, hi: float) -> tuple[np.float32, np.int8]:
    """Asymmetric int8 scale and zero point for values in ``[lo, hi]``."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    scale = (hi - lo) / (INT8_MAX - INT8_MIN)
    if scale <= 0 or not np.isfinite(scale):
        return np.float32(1.0), np.int8(0)
    zero = int(np.clip(round(INT8_MIN - lo / scale), INT8_MIN, INT8_MAX))
    return np.float32(scale), np.int8(zero)


def weight_params(weight: np.ndarray, axis: int | None) -> np.ndarray:
    """Symmetric int8 scales of ``weight``: one per index of ``axis`` (None: one for the tensor)."""
    if axis is None:
        amax = np.abs(weight).max(initial=0.0)
    else:
        others = tuple(d for d in range(weight.ndim) if d != axis % weight.ndim)
        amax = np.abs(weight).max(axis=others, initial=0.0)
    scale = np.asarray(amax / INT8_MAX, dtype=np.float32)
    return np.where(scale > 0, scale, np.float32(1.0)).astype(np.float32)


def quantize_array(x: np.ndarray, scale: np.ndarray, zero, axis: int | None, lo: int, hi: int, dtype) -> np.ndarray:
    """``clip(round(x / scale) + zero)`` as ``dtype``, broadcasting a per-axis scale along ``axis``."""
    scale = np.asarray(scale, dtype=np.float64)
    zero = np.asarray(zero, dtype=np.float64)
    if axis is not None and scale.ndim == 1:
        shape = [1] * x.ndim
        shape[axis % x.ndim] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return np.clip(np.rint(x / scale) + zero, lo, hi).astype(dtype)
