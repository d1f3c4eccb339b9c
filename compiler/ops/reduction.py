"""Reductions along axes (ReduceSum, ArgMax, ...) and the running scans CumSum and CumProd."""

from __future__ import annotations

from .declare import Family
from .registry import Fusion, Trait

FAMILY = Family("reduction")
onnx_op = FAMILY.onnx_op

REDUCE = dict(traits={Trait.REDUCTION}, fusion=Fusion.REDUCTION)

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
onnx_op("CumSum", may_trap=True, fusion=Fusion.INJECTIVE)
onnx_op("CumProd", fusion=Fusion.INJECTIVE)
