"""Quantization: (de)quantizing linear maps and the integer / quantized-linear convolutions and products."""

from __future__ import annotations

from . import contracts as c
from .declare import Family
from .nn import conv_contract_for
from .registry import FlopContext, Fusion, InferContext, Trait

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


onnx_op("QuantizeLinear", traits={Trait.ELEMENTWISE}, contract=per_axis_contract, fusion=Fusion.INJECTIVE)
onnx_op("DequantizeLinear", traits={Trait.ELEMENTWISE}, contract=per_axis_contract, fusion=Fusion.INJECTIVE)
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


onnx_op("ConvInteger", traits={Trait.LAYOUT_SENSITIVE}, contract=conv_contract_for(0, 1, None), flops=_conv_ops(1))
# an anchor: the DequantizeLinear, residual Add and QuantizeLinear after it fuse into its epilogue
onnx_op(
    "QLinearConv",
    traits={Trait.LAYOUT_SENSITIVE},
    contract=conv_contract_for(0, 3, 8),
    flops=_conv_ops(3),
    fusion=Fusion.ANCHOR,
)
onnx_op("MatMulInteger", flops=_matmul_ops, fusion=Fusion.ANCHOR)  # the Cast/Mul rescaling after it fuses
onnx_op("QLinearMatMul", flops=_matmul_ops)
