"""Experimental ops that old exporters emitted (onnx removed them), rewritten to standard ops.

- ImageScaler(x){scale, bias} -> x * scale + bias[c]   (per-channel, NCHW)
- Scale(x){scale} -> x * scale
- ScaledTanh(x){alpha, beta} -> alpha * tanh(beta * x)
- Affine(x){alpha, beta} -> alpha * x + beta
- ParametricSoftplus(x){alpha, beta} -> alpha * softplus(beta * x)
- Crop(x){border, scale} -> Slice over H and W
"""

from __future__ import annotations

import numpy as np

from compiler.ir.types import TensorType

from . import converter, i64


def _scalar(ctx, value):
    x = ctx.inputs[0]
    dtype = x.type.dtype.np if isinstance(x.type, TensorType) else np.float32
    return ctx.const(np.array(value, dtype=dtype))


@converter("ImageScaler", 1)
def image_scaler(ctx):
    """Per-channel affine transform of an NCHW image."""
    x = ctx.inputs[0]
    bias = np.asarray(ctx.attrs.get("bias", [0.0]), dtype=np.float32).reshape(1, -1, 1, 1)
    (scaled,) = ctx.emit("Mul", [x, _scalar(ctx, ctx.attrs.get("scale", 1.0))])
    return ctx.emit("Add", [scaled, ctx.const(bias.astype(x.type.dtype.np))], final=True)


@converter("Scale", 1)
def scale(ctx):
    return ctx.emit("Mul", [ctx.inputs[0], _scalar(ctx, ctx.attrs.get("scale", 1.0))], final=True)


@converter("ScaledTanh", 1)
def scaled_tanh(ctx):
    (inner,) = ctx.emit("Mul", [ctx.inputs[0], _scalar(ctx, ctx.attrs.get("beta", 1.0))])
    (t,) = ctx.emit("Tanh", [inner])
    return ctx.emit("Mul", [t, _scalar(ctx, ctx.attrs.get("alpha", 1.0))], final=True)


@converter("Affine", 1)
def affine(ctx):
    (scaled,) = ctx.emit("Mul", [ctx.inputs[0], _scalar(ctx, ctx.attrs.get("alpha", 1.0))])
    return ctx.emit("Add", [scaled, _scalar(ctx, ctx.attrs.get("beta", 0.0))], final=True)


@converter("ParametricSoftplus", 1)
def parametric_softplus(ctx):
    (inner,) = ctx.emit("Mul", [ctx.inputs[0], _scalar(ctx, ctx.attrs.get("beta", 1.0))])
    (s,) = ctx.emit("Softplus", [inner])
    return ctx.emit("Mul", [s, _scalar(ctx, ctx.attrs.get("alpha", 1.0))], final=True)


@converter("Crop", 1)
def crop(ctx):
    """Crop(x){border=[left, top, right, bottom], scale=[h, w]} on NCHW input."""
    x = ctx.inputs[0]
    left, top, right, bottom = (list(ctx.attrs.get("border", [])) + [0, 0, 0, 0])[:4]
    shape = x.type.shape if isinstance(x.type, TensorType) else None
    size = ctx.attrs.get("scale")
    if size:
        ends = [top + size[0], left + size[1]]
    elif shape is not None and all(isinstance(d, int) for d in shape[2:4]):
        ends = [shape[2] - bottom, shape[3] - right]
    else:
        raise ctx.fail("Crop needs static H and W, or a 'scale' attribute")
    operands = [x, ctx.const(i64([top, left])), ctx.const(i64(ends)), ctx.const(i64([2, 3]))]
    return ctx.emit("Slice", operands, final=True)
