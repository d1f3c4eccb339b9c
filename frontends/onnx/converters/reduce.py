"""Reductions whose ``axes`` attribute became an input.

- ReduceSum before 13, every other ReduceX before 18: ``axes`` attr -> input
  (no ``axes`` keeps meaning "reduce over all dims")
"""

from __future__ import annotations

from . import axes_attribute_to_input, converter

REDUCE_OPS_AXES_INPUT_SINCE = {
    "ReduceSum": 13,
    "ReduceL1": 18,
    "ReduceL2": 18,
    "ReduceLogSum": 18,
    "ReduceLogSumExp": 18,
    "ReduceMax": 18,
    "ReduceMean": 18,
    "ReduceMin": 18,
    "ReduceProd": 18,
    "ReduceSumSquare": 18,
}


for _op, _since in REDUCE_OPS_AXES_INPUT_SINCE.items():
    converter(_op, 1, _since)(axes_attribute_to_input(_op))
