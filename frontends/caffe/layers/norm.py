"""Normalisation and per-channel affine layers: BatchNorm, Scale, Bias, LRN, Normalize.

- BatchNorm: Caffe stores ``mean * f`` and ``var * f`` with the moving-average
  factor ``f`` in a third blob; dividing it out gives ONNX
  ``BatchNormalization`` with scale 1 and bias 0 (a later Scale layer supplies
  them, which passes may fold together).
- Scale/Bias: a learned (or second-input) factor over axes
  ``[axis, axis + num_axes)``, reshaped with trailing 1s to broadcast.
- LRN ACROSS_CHANNELS is ONNX ``LRN`` (``bias = k``).  WITHIN_CHANNEL is
  ``x * (1 + alpha * avgpool(x^2))^-beta`` with Caffe's average pooling (pad
  ``(size-1)/2``, the pad counted), built from ONNX ops.
- Normalize (SSD): ``x / sqrt(sum(x^2) + eps)`` over channels (and space when
  ``across_spatial``), times a per-channel or shared scale.
"""

from __future__ import annotations

import numpy as np

from compiler import Value

from ..context import LayerContext, converter, f32
from .conv import caffe_pool


@converter("BatchNorm")
def convert_batch_norm(ctx: LayerContext) -> list[Value]:
    """Inference BatchNorm from Caffe's mean, variance and moving-average factor blobs."""
    ctx.expect_inputs(1)
    shape = ctx.shape()
    c = shape[1]
    factor = float(ctx.weight(2, [1], "moving-average factor")[0])
    factor = 0.0 if factor == 0 else 1.0 / factor
    mean = ctx.weight(0, [c], "mean") * factor
    var = ctx.weight(1, [c], "variance") * factor
    ones, zeros = np.ones(c, np.float32), np.zeros(c, np.float32)
    operands = [ctx.inputs[0]] + [ctx.const(a) for a in (ones, zeros, mean, var)]
    return [ctx.op("BatchNormalization", operands, {"epsilon": f32(ctx.layer.batch_norm_param.eps)})]


def _factor_shape(ctx: LayerContext, shape, axis: int, num_axes: int) -> tuple[list[int], int]:
    """The factor's shape ``shape[axis:axis+num_axes]`` and how many trailing 1s broadcast it."""
    rank = len(shape)
    axis = ctx.axis(axis, rank) if rank else 0
    end = rank if num_axes == -1 else axis + num_axes
    if num_axes < -1 or end > rank:
        raise ctx.error(f"num_axes {num_axes} from axis {axis} does not fit a rank-{rank} input")
    return list(shape[axis:end]), rank - end


def _broadcast_factor(ctx: LayerContext, index: int, what: str, axis: int, num_axes: int) -> Value:
    """The factor (blob ``index`` or the second bottom) as a value that broadcasts against input 0."""
    shape = ctx.shape()
    if len(ctx.inputs) == 2:
        factor_shape, trailing = _factor_shape(ctx, shape, axis, len(ctx.shape(1)))
        if list(ctx.shape(1)) != factor_shape:
            raise ctx.error(f"second bottom has shape {list(ctx.shape(1))}, expected {factor_shape}")
        return ctx.op("Reshape", [ctx.inputs[1], ctx.ints(factor_shape + [1] * trailing)])
    factor_shape, trailing = _factor_shape(ctx, shape, axis, num_axes)
    return ctx.const(ctx.weight(index, factor_shape, what).reshape(factor_shape + [1] * trailing))


@converter("Scale")
def convert_scale(ctx: LayerContext) -> list[Value]:
    """``x * factor (+ bias)``, the factor learned or given as a second bottom."""
    ctx.expect_inputs(1, 2)
    p = ctx.layer.scale_param
    y = ctx.op("Mul", [ctx.inputs[0], _broadcast_factor(ctx, 0, "scale", p.axis, p.num_axes)])
    if p.bias_term:
        bias_index = 0 if len(ctx.inputs) == 2 else 1
        factor_shape, trailing = _factor_shape(
            ctx, ctx.shape(), p.axis, len(ctx.shape(1)) if len(ctx.inputs) == 2 else p.num_axes
        )
        bias = ctx.weight(bias_index, factor_shape, "bias").reshape(factor_shape + [1] * trailing)
        y = ctx.op("Add", [y, ctx.const(bias)])
    return [y]


@converter("Bias")
def convert_bias(ctx: LayerContext) -> list[Value]:
    """``x + bias``, the bias learned or given as a second bottom."""
    ctx.expect_inputs(1, 2)
    p = ctx.layer.bias_param
    return [ctx.op("Add", [ctx.inputs[0], _broadcast_factor(ctx, 0, "bias", p.axis, p.num_axes)])]


@converter("LRN")
def convert_lrn(ctx: LayerContext) -> list[Value]:
    """ONNX LRN across channels; within a channel, built from Caffe average pooling."""
    ctx.expect_inputs(1)
    p = ctx.layer.lrn_param
    size = int(p.local_size)
    if size % 2 == 0:
        raise ctx.error(f"local_size must be odd, got {size}")
    x = ctx.inputs[0]
    if p.norm_region == p.ACROSS_CHANNELS:
        attrs = {"size": size, "alpha": f32(p.alpha), "beta": f32(p.beta), "bias": f32(p.k)}
        return [ctx.op("LRN", [x], attrs)]
    rank = len(ctx.shape())
    n = rank - 2
    pad = (size - 1) // 2
    pooled = caffe_pool(ctx, ctx.op("Mul", [x, x]), "AVE", [size] * n, [1] * n, [pad] * n)
    denom = ctx.op(
        "Pow", [ctx.op("Add", [ctx.op("Mul", [pooled, ctx.const(p.alpha)]), ctx.const(1.0)]), ctx.const(-p.beta)]
    )
    return [ctx.op("Mul", [x, denom])]


@converter("Normalize")
def convert_normalize(ctx: LayerContext) -> list[Value]:
    """SSD's L2 normalisation over channels (and space), times a learned scale."""
    ctx.expect_inputs(1)
    p = ctx.layer.norm_param
    shape = ctx.shape()
    axes = list(range(1, len(shape))) if p.across_spatial else [1]
    x = ctx.inputs[0]
    sum_sq = ctx.op("ReduceSumSquare", [x, ctx.ints(axes)], {"keepdims": 1})
    norm = ctx.op("Sqrt", [ctx.op("Add", [sum_sq, ctx.const(p.eps)])])
    y = ctx.op("Div", [x, norm])
    if p.channel_shared:
        scale = ctx.weight(0, [1], "scale")
    else:
        scale = ctx.weight(0, [shape[1]], "scale").reshape([shape[1]] + [1] * (len(shape) - 2))
    return [ctx.op("Mul", [y, ctx.const(scale)])]
