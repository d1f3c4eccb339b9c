"""Elementwise ops: math, activations, comparison, logic, bitwise, casts and Where.

Each result element depends on the operand elements at the same position
(operands broadcast multidirectionally, as numpy does; onnx's inference refuses
shapes that do not broadcast).  Most fuse with their neighbours as prologues or
epilogues (``Fusion.ELEMENTWISE``).
"""

from __future__ import annotations

import math

import numpy as np

from . import contracts as c
from .declare import Family
from .registry import Fusion, InferContext, Trait

FAMILY = Family("elementwise")
onnx_op = FAMILY.onnx_op

# The facts most ops here share.
UNARY = dict(traits={Trait.ELEMENTWISE}, fusion=Fusion.ELEMENTWISE)
BINARY = UNARY
COMMUTATIVE = dict(traits={Trait.ELEMENTWISE, Trait.COMMUTATIVE}, fusion=Fusion.ELEMENTWISE)
# e^, log, tanh, erf and the activations built on them: long polynomials in compiled code, which
# ``passes/fuse_rules.py`` does not nest deeply in one conv's or reduction's epilogue
TRANSCENDENTAL = dict(traits={Trait.ELEMENTWISE, Trait.TRANSCENDENTAL}, fusion=Fusion.ELEMENTWISE)


# ---------------------------------------------------------------- reference kernels


def _erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def clip_bounds(dtype) -> tuple:
    """Clip's bounds when its ``min`` / ``max`` operands are absent: the dtype's lowest and largest
    finite values (the spec's numeric_limits::lowest() and max(); onnxruntime clips +-inf to them);
    None for types without finite limits to clip to (integers, whose limits clip nothing)."""
    try:
        info = np.finfo(np.dtype(dtype))
    except (TypeError, ValueError):
        return None, None
    return np.asarray(info.min, dtype), np.asarray(info.max, dtype)


def clip(inputs, attrs, ctx):
    """``x < lo ? lo : x``, then ``> hi ? hi : x``: NaN stays NaN, a NaN bound clamps nothing, and
    an absent float bound is the dtype's finite limit, so +-inf clip to +-max (``clip_bounds``)."""
    x = inputs[0]
    lo = inputs[1] if len(inputs) > 1 else None
    hi = inputs[2] if len(inputs) > 2 else None
    lowest, largest = clip_bounds(x.dtype)
    lo = lowest if lo is None else np.asarray(lo, x.dtype)
    hi = largest if hi is None else np.asarray(hi, x.dtype)
    y = x if lo is None else np.where(x < lo, lo, x)
    y = y if hi is None else np.where(y > hi, hi, y)
    return [np.asarray(y, x.dtype)]


def gelu(inputs, attrs, ctx):
    (x,) = inputs
    xf = x.astype(np.float64)
    if ctx.attr("approximate") == "tanh":
        y = 0.5 * xf * (1 + np.tanh(np.sqrt(2 / np.pi) * (xf + 0.044715 * xf**3)))
    else:
        y = 0.5 * xf * (1 + _erf(xf / np.sqrt(2)))
    return [y.astype(x.dtype)]


def mish(inputs, attrs, ctx):
    (x,) = inputs
    xf = x.astype(np.float64)
    return [(xf * np.tanh(np.logaddexp(0, xf))).astype(x.dtype)]


def hard_swish(inputs, attrs, ctx):
    (x,) = inputs
    return [(x * np.clip(x / 6 + 0.5, 0, 1)).astype(x.dtype)]


# ---------------------------------------------------------------- contracts


def prelu_contract(ctx: InferContext):
    """The slope broadcasts to X (unidirectionally: the result has X's shape).

    A 1-D slope whose length matches exactly one static dim of X is also taken (along that dim), as
    onnx.reference does: opset-6 models (PyTorch's per-channel slopes) keep that form through
    onnx's version converter."""
    x, slope = c.shape(ctx, 0), c.shape(ctx, 1)
    if (
        x is not None
        and slope is not None
        and len(slope) == 1
        and c.static(slope[0])
        and sum(1 for d in x if c.static(d) and d == slope[0]) == 1
    ):
        return None
    return c.unidirectional("slope", slope, x, f"X {c.show(x)}")


# ---------------------------------------------------------------- math
onnx_op("Abs", **UNARY)
onnx_op("Acos", **UNARY)
onnx_op("Acosh", **UNARY)
onnx_op("Asin", **UNARY)
onnx_op("Asinh", **UNARY)
onnx_op("Atan", **UNARY)
onnx_op("Atanh", **UNARY)
onnx_op("Ceil", **UNARY)
onnx_op("Cos", **UNARY)
onnx_op("Cosh", **UNARY)
onnx_op("Erf", **TRANSCENDENTAL)
onnx_op("Exp", **TRANSCENDENTAL)
onnx_op("Floor", **UNARY)
onnx_op("Log", **TRANSCENDENTAL)
onnx_op("Neg", **UNARY)
onnx_op("Reciprocal", **UNARY)
onnx_op("Round", **UNARY)
onnx_op("Sign", **UNARY)
onnx_op("Sin", **UNARY)
onnx_op("Sinh", **UNARY)
onnx_op("Sqrt", **UNARY)
onnx_op("Tan", **UNARY)
onnx_op("Tanh", **TRANSCENDENTAL)
onnx_op("IsInf", **UNARY)
onnx_op("IsNaN", **UNARY)
onnx_op("Clip", kernel=clip, **UNARY)
onnx_op("Add", **COMMUTATIVE)
onnx_op("Sub", **BINARY)
onnx_op("Mul", **COMMUTATIVE)
onnx_op("Div", **BINARY, may_trap=True)  # integer division by zero
onnx_op("Mod", **BINARY, may_trap=True)
onnx_op("Pow", **BINARY)
onnx_op("Max", **COMMUTATIVE)
onnx_op("Min", **COMMUTATIVE)
onnx_op("Sum", **COMMUTATIVE)
onnx_op("Mean", **COMMUTATIVE)

# ---------------------------------------------------------------- activations
onnx_op("Relu", **UNARY)
onnx_op("LeakyRelu", **UNARY)
onnx_op("PRelu", **BINARY, contract=prelu_contract)
onnx_op("Elu", **TRANSCENDENTAL)
onnx_op("Selu", **TRANSCENDENTAL)
onnx_op("Celu", **TRANSCENDENTAL)
onnx_op("Gelu", **TRANSCENDENTAL, kernel=gelu)
onnx_op("Mish", **TRANSCENDENTAL, kernel=mish)
onnx_op("HardSigmoid", **UNARY)
onnx_op("HardSwish", **UNARY, kernel=hard_swish)
onnx_op("Sigmoid", **TRANSCENDENTAL)
onnx_op("Softplus", **TRANSCENDENTAL)
onnx_op("Softsign", **UNARY)
onnx_op("ThresholdedRelu", **UNARY)
onnx_op("Shrink", **UNARY)
onnx_op("Swish", **TRANSCENDENTAL)

# ---------------------------------------------------------------- comparison and logic
onnx_op("Equal", **COMMUTATIVE)
onnx_op("Greater", **BINARY)
onnx_op("GreaterOrEqual", **BINARY)
onnx_op("Less", **BINARY)
onnx_op("LessOrEqual", **BINARY)
onnx_op("And", **COMMUTATIVE)
onnx_op("Or", **COMMUTATIVE)
onnx_op("Xor", **COMMUTATIVE)
onnx_op("Not", **UNARY)
onnx_op("Where", **BINARY)

# ---------------------------------------------------------------- bitwise
onnx_op("BitShift", **BINARY)
onnx_op("BitwiseAnd", **COMMUTATIVE)
onnx_op("BitwiseOr", **COMMUTATIVE)
onnx_op("BitwiseXor", **COMMUTATIVE)
onnx_op("BitwiseNot", **UNARY)

# ---------------------------------------------------------------- casts
onnx_op("Cast", **UNARY, cheap_fold=True)
onnx_op("CastLike", **UNARY)
onnx_op("BitCast", fusion=Fusion.ELEMENTWISE)
