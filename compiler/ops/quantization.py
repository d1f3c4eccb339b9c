"""Quantization: (de)quantizing linear maps and the integer / quantized-linear convolutions and products."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from . import contracts as c
from .declare import Family
from .nn import conv_contract_for
from .reference_onnx import onnx_reference
from .registry import EvalContext, FlopContext, Fusion, InferContext, Trait

FAMILY = Family("quantization")
onnx_op = FAMILY.onnx_op


def per_axis_contract(ctx: InferContext) -> list[str]:
    """A 1-D scale of more than one entry (per-axis, no blocks) has one entry per index of X's ``axis``;
    the zero point has as many entries as the scale."""
    x, scale, zero = c.shape(ctx, 0), c.shape(ctx, 1), c.shape(ctx, 2)
    found = []
    if x is not None and scale is not None and len(scale) == 1 and scale[0] != 1 and not c.attr(ctx, "block_size"):
        axis = int(c.attr(ctx, "axis") if c.attr(ctx, "axis") is not None else 1)
        if not -len(x) <= axis < len(x):
            found.append(f"axis {axis} is out of range for X {c.show(x)}")
        else:
            reason = c.length_problem("scale", scale, x[axis], f"one per index of axis {axis} of X {c.show(x)}")
            if reason:
                found.append(reason)
    if None not in (c.numel(scale), c.numel(zero)) and c.numel(scale) != c.numel(zero):
        found.append(f"zero point {c.show(zero)} and scale {c.show(scale)} differ in size")
    return found


# integer outputs of QuantizeLinear and their ranges
_INTEGER_RANGES = {
    TensorProto.UINT8: (0, 255),
    TensorProto.INT8: (-128, 127),
    TensorProto.UINT16: (0, 65535),
    TensorProto.INT16: (-32768, 32767),
    TensorProto.UINT4: (0, 15),
    TensorProto.INT4: (-8, 7),
    TensorProto.UINT2: (0, 3),
    TensorProto.INT2: (-2, 1),
}


def _per_axis(value: np.ndarray, shape: tuple, axis: int, block_size: int) -> np.ndarray:
    """A scale or zero point laid out to broadcast against X: per tensor (one entry), per axis (1-D,
    one entry per index of ``axis``) or blocked (X's rank, ``block_size`` indices of ``axis`` each)."""
    if value.size == 1:
        return value.reshape(())
    axis %= len(shape)
    if block_size:
        return np.repeat(value, block_size, axis=axis).take(range(shape[axis]), axis=axis)
    return value.reshape([-1 if d == axis else 1 for d in range(len(shape))])


def quantize_linear(inputs, attrs, ctx: EvalContext):
    """QuantizeLinear to an integer type, saturating: x / scale is rounded and clipped in floating
    point, so a quotient beyond 2^31 saturates (onnx.reference converts it to int32 first and wraps,
    e.g. 3e9 with scale 1 to 0 instead of 255). Float8/4/6 outputs and ``precision`` go to
    onnx.reference."""
    x, scale = inputs[0], inputs[1]
    zero = inputs[2] if len(inputs) > 2 else None
    target = helper.np_dtype_to_tensor_dtype(zero.dtype) if zero is not None else None
    target = target or ctx.attr("output_dtype") or TensorProto.UINT8
    if target not in _INTEGER_RANGES or ctx.attr("precision"):
        return onnx_reference(inputs, attrs, ctx)
    axis, block = int(ctx.attr("axis") if ctx.attr("axis") is not None else 1), int(ctx.attr("block_size") or 0)
    quotient = np.rint(x / _per_axis(scale, x.shape, axis, block))
    if zero is not None:
        quotient = quotient + _per_axis(zero, x.shape, axis, block).astype(np.float64)
    low, high = _INTEGER_RANGES[target]
    quotient = np.where(np.isnan(quotient), low, quotient)  # onnx.reference: int32's minimum, clipped
    return [np.clip(quotient, low, high).astype(helper.tensor_dtype_to_np_dtype(target))]


# elementwise fusion: out[i] from x[i] and its axis's (or block's) scale and zero point, so both join a
# QLinearConv's epilogue (the residual DQ + Add + Q of a QDQ ResNet, in one kernel with the conv)
onnx_op(
    "QuantizeLinear",
    traits={Trait.ELEMENTWISE},
    kernel=quantize_linear,
    contract=per_axis_contract,
    fusion=Fusion.ELEMENTWISE,
)
# folded whatever the size, as Cast is: a constant weight dequantized by ``decompose-contrib`` (QGemm,
# MatMulIntegerToFloat, DynamicQuantizeMatMul) in ``codegen-prepare``, after O2's folding, was
# dequantized again on every run, and its Gemm read a run-time weight: a QOperator ResNet-50's
# 2048 x 1000 classifier took 4.6 ms of its 28.7
onnx_op(
    "DequantizeLinear",
    traits={Trait.ELEMENTWISE},
    contract=per_axis_contract,
    fusion=Fusion.ELEMENTWISE,
    cheap_fold=True,
)
onnx_op("DynamicQuantizeLinear")


def _conv_ops(weight: int):
    """2 x output elements x (input channels per group x kernel size): integer multiply-adds, counted
    like a float Conv's FLOPs so the profile compares them."""

    def count(ctx: FlopContext) -> int:
        w, out = ctx.in_shapes[weight], ctx.out_shapes[0]
        return 2 * (c.numel(out) or 0) * (c.numel(w[1:]) or 0) if w is not None and out is not None else 0

    return count


def _matmul_ops(ctx: FlopContext) -> int:
    a, out = ctx.in_shapes[0], ctx.out_shapes[0]
    return 2 * (c.numel(out) or 0) * int(a[-1]) if a and out is not None else 0


onnx_op(
    "ConvInteger",
    traits={Trait.LAYOUT_SENSITIVE},
    contract=conv_contract_for(0, 1, None),
    flops=_conv_ops(1),
    fusion=Fusion.ANCHOR,  # the Cast/Mul rescaling of a quantize_dynamic model fuses into its kernel
)
# an anchor: the DequantizeLinear, residual Add and QuantizeLinear after it fuse into its epilogue
onnx_op(
    "QLinearConv",
    traits={Trait.LAYOUT_SENSITIVE},
    contract=conv_contract_for(0, 3, 8),
    flops=_conv_ops(3),
    fusion=Fusion.ANCHOR,
)


def _per_row_params(*operands: int):
    """A reference kernel through onnx.reference with the 1-D scales and zero points of ``a`` (its
    ``operands``) as columns [M, 1]: the spec makes them one per row, and onnx.reference broadcasts
    them against the last axis instead (so it fails, or is wrong where M = K)."""

    def kernel(inputs, attrs, ctx: EvalContext):
        inputs = list(inputs)
        if inputs[0].ndim >= 2:
            for i in operands:
                if i < len(inputs) and inputs[i] is not None and inputs[i].ndim == 1 and inputs[i].size > 1:
                    inputs[i] = inputs[i].reshape(-1, 1)
        return onnx_reference(inputs, attrs, ctx)

    return kernel


# anchors: the Cast/Mul rescaling after a MatMulInteger fuses into its kernel, and a QLinearMatMul's
# epilogue as QLinearConv's
onnx_op("MatMulInteger", kernel=_per_row_params(2), flops=_matmul_ops, fusion=Fusion.ANCHOR)
onnx_op("QLinearMatMul", kernel=_per_row_params(1, 2), flops=_matmul_ops, fusion=Fusion.ANCHOR)
