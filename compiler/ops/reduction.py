"""Reductions along axes (ReduceSum, ArgMax, ...) and the running scans CumSum and CumProd."""

from __future__ import annotations

from . import contracts as c
from .declare import Family
from .registry import Fusion, InferContext, Trait

FAMILY = Family("reduction")
onnx_op = FAMILY.onnx_op

REDUCE = dict(traits={Trait.REDUCTION}, fusion=Fusion.REDUCTION, precision_sensitive=True)


def scan_axis_contract(ctx: InferContext) -> str | None:
    """A constant axis names a dim of x."""
    x, axis = c.shape(ctx, 0), c.const_ints(ctx, 1)
    if x is None or axis is None or len(axis) != 1 or -len(x) <= axis[0] < len(x):
        return None
    return f"axis {axis[0]} is out of range for x {c.show(x)}"


onnx_op("ReduceL1", **REDUCE)
onnx_op("ReduceL2", **REDUCE)
onnx_op("ReduceLogSum", **REDUCE)
onnx_op("ReduceLogSumExp", **REDUCE)
onnx_op("ReduceMax", **REDUCE)
onnx_op("ReduceMean", **REDUCE)
onnx_op("ReduceMin", **REDUCE)
onnx_op("ReduceProd", **REDUCE)
onnx_op("ReduceSum", **REDUCE, may_trap=True)  # its axes are an operand: out of range fails
onnx_op("ReduceSumSquare", **REDUCE)
onnx_op("ArgMax", **REDUCE)
onnx_op("ArgMin", **REDUCE)

# scans: each output element reads a prefix of its row
onnx_op("CumSum", contract=scan_axis_contract, may_trap=True, fusion=Fusion.INJECTIVE)
onnx_op("CumProd", contract=scan_axis_contract, fusion=Fusion.INJECTIVE)
