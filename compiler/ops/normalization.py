"""Normalizations: batch, instance, layer, group, RMS, Lp, mean-variance, LRN, and the softmaxes.

Their parameter operands (scale, bias, mean, variance) must fit X: one entry per
channel, or broadcast to the normalized dims.  onnx's inference checks
BatchNormalization's; ``norm_contract`` and ``trailing_params_contract`` check
the others.
"""

from __future__ import annotations

import math

import numpy as np

from . import contracts as c
from .declare import Family
from .reference_onnx import onnx_reference
from .registry import Fusion, InferContext, Trait

FAMILY = Family("normalization")
onnx_op = FAMILY.onnx_op

LAYOUT = {Trait.LAYOUT_SENSITIVE}


# ---------------------------------------------------------------- contracts


def channel_params_contract(*params: tuple[int, str]):
    """Each operand ``(index, name)`` of ``params`` is 1-D with one entry per channel of X [N, C, ...]."""

    def contract(ctx: InferContext) -> list[str]:
        x = c.shape(ctx, 0)
        if x is None or len(x) < 2:
            return []
        found = []
        if ctx.op == "GroupNormalization":
            groups = c.attr(ctx, "num_groups")
            if c.static(x[1]) and c.static(groups) and groups > 0 and x[1] % groups:
                found.append(f"num_groups {groups} does not divide the {x[1]} channels of X {c.show(x)}")
        for index, name in params:
            reason = c.length_problem(name, c.shape(ctx, index), x[1], f"one per channel of X {c.show(x)}")
            if reason:
                found.append(reason)
        return found

    return contract


def trailing_params_contract(*params: tuple[int, str]):
    """Each operand ``(index, name)`` broadcasts to X's normalized dims ``X.shape[axis:]``."""

    def contract(ctx: InferContext) -> list[str]:
        x = c.shape(ctx, 0)
        if x is None:
            return []
        axis = int(c.attr(ctx, "axis") if c.attr(ctx, "axis") is not None else -1)
        if not -len(x) <= axis < len(x):
            return [f"axis {axis} is out of range for X {c.show(x)}"]
        normalized = x[axis % len(x) :]
        found = []
        for index, name in params:
            reason = c.unidirectional(
                name,
                c.shape(ctx, index),
                normalized,
                f"the normalized dims {c.show(normalized)} of X {c.show(x)} (axis {axis})",
            )
            if reason:
                found.append(reason)
        return found

    return contract


def axis_contract(ctx: InferContext) -> str | None:
    """``axis`` names a dim of X."""
    x = c.shape(ctx, 0)
    axis = c.attr(ctx, "axis")
    if x is None or axis is None or -len(x) <= int(axis) < len(x):
        return None
    return f"axis {axis} is out of range for X {c.show(x)}"


# ---------------------------------------------------------------- reference kernels


def batch_normalization(inputs, attrs, ctx):
    if ctx.attr("training_mode"):
        return onnx_reference(inputs, attrs, ctx)
    x, scale, bias, mean, var = inputs
    shape = (1, -1) + (1,) * (x.ndim - 2)
    inv = scale / np.sqrt(var + np.asarray(ctx.attr("epsilon"), dtype=var.dtype))
    y = (x - mean.reshape(shape)) * inv.reshape(shape) + bias.reshape(shape)
    return [y.astype(x.dtype)]


def group_normalization(inputs, attrs, ctx):
    x, scale, bias = inputs
    groups = ctx.attr("num_groups")
    eps = ctx.attr("epsilon")
    n, c = x.shape[:2]
    xg = x.reshape(n, groups, -1).astype(np.float64)
    mean = xg.mean(axis=2, keepdims=True)
    var = xg.var(axis=2, keepdims=True)
    y = ((xg - mean) / np.sqrt(var + eps)).reshape(x.shape)
    bshape = (1, c) + (1,) * (x.ndim - 2)
    return [(y * scale.reshape(bshape) + bias.reshape(bshape)).astype(x.dtype)]


def mean_variance_normalization(inputs, attrs, ctx):
    (x,) = inputs
    axes = tuple(ctx.attr("axes") or [0, 2, 3])
    mean = x.mean(axis=axes, keepdims=True)
    std = np.sqrt(((x - mean) ** 2).mean(axis=axes, keepdims=True))
    return [((x - mean) / (std + 1e-9)).astype(x.dtype)]


def lrn(inputs, attrs, ctx):
    """Cross-channel LRN as the ONNX spec writes it (onnx.reference's kernel disagrees with it and ORT)."""
    (x,) = inputs
    size = int(ctx.attr("size"))
    alpha, beta, bias = float(ctx.attr("alpha")), float(ctx.attr("beta")), float(ctx.attr("bias"))
    channels = x.shape[1]
    squares = x.astype(np.float64) ** 2
    square_sum = np.zeros_like(squares)
    before, after = (size - 1) // 2, math.ceil((size - 1) / 2)
    for ch in range(channels):
        square_sum[:, ch] = squares[:, max(0, ch - before) : min(channels - 1, ch + after) + 1].sum(axis=1)
    return [(x / (bias + alpha / size * square_sum) ** beta).astype(x.dtype)]


# ---------------------------------------------------------------- declarations
# statistics and exponentials lose too much below fp32: compression passes keep these in fp32
KEEP_FP32 = dict(precision_sensitive=True)
onnx_op(
    "BatchNormalization",
    traits=LAYOUT,
    kernel=batch_normalization,
    fusion=Fusion.ELEMENTWISE,
    channelwise=True,
    **KEEP_FP32,
)
onnx_op(
    "InstanceNormalization",
    **KEEP_FP32,
    channelwise=True,
    traits=LAYOUT,
    fusion=Fusion.REDUCTION,
    contract=channel_params_contract((1, "scale"), (2, "B")),
)
onnx_op(
    "GroupNormalization",
    **KEEP_FP32,
    traits=LAYOUT,
    kernel=group_normalization,
    contract=channel_params_contract((1, "scale"), (2, "bias")),
)
onnx_op(
    "LayerNormalization",
    fusion=Fusion.REDUCTION,
    contract=trailing_params_contract((1, "Scale"), (2, "B")),
    **KEEP_FP32,
)
onnx_op("RMSNormalization", fusion=Fusion.REDUCTION, contract=trailing_params_contract((1, "scale")), **KEEP_FP32)
onnx_op("LpNormalization", traits=LAYOUT, fusion=Fusion.REDUCTION, contract=axis_contract, **KEEP_FP32)
onnx_op("MeanVarianceNormalization", kernel=mean_variance_normalization, **KEEP_FP32)
onnx_op("LRN", traits=LAYOUT, kernel=lrn, fusion=Fusion.REDUCTION, **KEEP_FP32)
onnx_op("Softmax", fusion=Fusion.REDUCTION, **KEEP_FP32)
onnx_op("LogSoftmax", fusion=Fusion.REDUCTION, **KEEP_FP32)
onnx_op("Hardmax", fusion=Fusion.REDUCTION)
