"""Elementwise layers: ReLU, PReLU, ELU, Sigmoid, TanH, AbsVal, Power, Exp, Log, BNLL, Threshold, Clip,
Dropout (and Silence, which only hides blobs from the net outputs).

Caffe's affine-then-function layers map to ONNX ops exactly:

- Power: ``(shift + scale * x) ^ power``  -> Mul, Add, Pow (each only when not the identity)
- Exp:   ``base ^ (shift + scale * x)``    -> Exp(ln(base) * (shift + scale * x))
- Log:   ``log_base(shift + scale * x)``   -> Log(shift + scale * x) / ln(base)
- BNLL:  ``log(1 + exp(x))``              -> Softplus
- Threshold: ``x > t ? 1 : 0``             -> Cast(Greater(x, t))
"""

from __future__ import annotations

import math

from compiler import Value

from ..context import LayerContext, converter, f32

_UNARY = {"Sigmoid": "Sigmoid", "TanH": "Tanh", "AbsVal": "Abs", "BNLL": "Softplus"}


@converter(*_UNARY)
def convert_unary(ctx: LayerContext) -> list[Value]:
    """Sigmoid, TanH, AbsVal, BNLL: one ONNX op each."""
    ctx.expect_inputs(1)
    return [ctx.op(_UNARY[ctx.layer.type], ctx.inputs)]


@converter("Dropout")
def convert_dropout(ctx: LayerContext) -> list[Value]:
    """Inference-time Dropout is the identity (Caffe scales during training)."""
    ctx.expect_inputs(1)
    return [ctx.inputs[0]]


@converter("Silence")
def convert_silence(ctx: LayerContext) -> list[Value]:
    """Silence reads its bottoms so they are not net outputs, and produces nothing."""
    return []


@converter("ReLU")
def convert_relu(ctx: LayerContext) -> list[Value]:
    """Relu, or LeakyRelu when ``negative_slope`` is set."""
    ctx.expect_inputs(1)
    slope = ctx.layer.relu_param.negative_slope
    if slope == 0:
        return [ctx.op("Relu", ctx.inputs)]
    return [ctx.op("LeakyRelu", ctx.inputs, {"alpha": f32(slope)})]


@converter("PReLU")
def convert_prelu(ctx: LayerContext) -> list[Value]:
    """Slopes per channel ([C], broadcast over the spatial axes) or one shared slope."""
    ctx.expect_inputs(1)
    shape = ctx.shape()
    if ctx.layer.prelu_param.channel_shared:
        slope = ctx.weight(0, [1], "slope")
    else:
        slope = ctx.weight(0, [shape[1]], "slope").reshape([shape[1]] + [1] * (len(shape) - 2))
    return [ctx.op("PRelu", [ctx.inputs[0], ctx.const(slope)])]


@converter("ELU")
def convert_elu(ctx: LayerContext) -> list[Value]:
    """Elu with Caffe's ``alpha``."""
    ctx.expect_inputs(1)
    return [ctx.op("Elu", ctx.inputs, {"alpha": f32(ctx.layer.elu_param.alpha)})]


def affine(ctx: LayerContext, x: Value, scale: float, shift: float) -> Value:
    """``shift + scale * x``, skipping the identity parts."""
    if scale != 1:
        x = ctx.op("Mul", [x, ctx.const(scale)])
    if shift != 0:
        x = ctx.op("Add", [x, ctx.const(shift)])
    return x


@converter("Power")
def convert_power(ctx: LayerContext) -> list[Value]:
    """``(shift + scale * x) ^ power``; an Identity when all three are neutral."""
    ctx.expect_inputs(1)
    p = ctx.layer.power_param
    y = affine(ctx, ctx.inputs[0], p.scale, p.shift)
    if p.power != 1:
        y = ctx.op("Pow", [y, ctx.const(p.power)])
    if y is ctx.inputs[0]:
        y = ctx.op("Identity", [y])
    return [y]


def _log_base(ctx: LayerContext, base: float) -> float:
    """ln(base), with Caffe's ``-1`` meaning base e."""
    if base == -1:
        return 1.0
    if base <= 0:
        raise ctx.error(f"base must be positive or -1 (for e), got {base}")
    return math.log(base)


@converter("Exp")
def convert_exp(ctx: LayerContext) -> list[Value]:
    """``base ^ (shift + scale * x)`` as ``Exp`` of a scaled affine."""
    ctx.expect_inputs(1)
    p = ctx.layer.exp_param
    ln_base = _log_base(ctx, p.base)
    return [ctx.op("Exp", [affine(ctx, ctx.inputs[0], p.scale * ln_base, p.shift * ln_base)])]


@converter("Log")
def convert_log(ctx: LayerContext) -> list[Value]:
    """``log_base(shift + scale * x)`` as ``Log`` divided by ln(base)."""
    ctx.expect_inputs(1)
    p = ctx.layer.log_param
    y = ctx.op("Log", [affine(ctx, ctx.inputs[0], p.scale, p.shift)])
    ln_base = _log_base(ctx, p.base)
    if ln_base != 1:
        y = ctx.op("Mul", [y, ctx.const(1.0 / ln_base)])
    return [y]


@converter("Threshold")
def convert_threshold(ctx: LayerContext) -> list[Value]:
    """1 where ``x > threshold``, else 0 (float)."""
    ctx.expect_inputs(1)
    above = ctx.op("Greater", [ctx.inputs[0], ctx.const(ctx.layer.threshold_param.threshold)])
    return [ctx.op("Cast", [above], {"to": 1})]


@converter("Clip")
def convert_clip(ctx: LayerContext) -> list[Value]:
    """``Clip`` between the layer's ``min`` and ``max``."""
    ctx.expect_inputs(1)
    p = ctx.layer.clip_param
    if not (p.HasField("min") and p.HasField("max")):
        raise ctx.error("clip_param needs both min and max")
    return [ctx.op("Clip", [ctx.inputs[0], ctx.const(p.min), ctx.const(p.max)])]
