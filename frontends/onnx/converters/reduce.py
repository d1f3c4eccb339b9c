"""Reductions whose ``axes`` attribute became an input.

- ReduceSum before 13, every other ReduceX before 18: ``axes`` attr -> input
  (no ``axes`` keeps meaning "reduce over all dims")
"""

from __future__ import annotations

from . import converter, i64

REDUCE_OPS_AXES_INPUT_SINCE = {
    "ReduceSum": 13, "ReduceL1": 18, "ReduceL2": 18, "ReduceLogSum": 18, "ReduceLogSumExp": 18,
    "ReduceMax": 18, "ReduceMean": 18, "ReduceMin": 18, "ReduceProd": 18, "ReduceSumSquare": 18,
}


def _axes_attr_to_input(op: str):
    def convert(ctx):
        attrs = dict(ctx.attrs)
        axes = attrs.pop("axes", None)
        operands = [ctx.inputs[0]]
        if axes is not None:
            operands.append(ctx.const(i64(axes)))
        return ctx.emit(op, operands, attrs, final=True)

    convert.__doc__ = f"{op} with ``axes`` as an attribute."
    return convert


for _op, _since in REDUCE_OPS_AXES_INPUT_SINCE.items():
    converter(_op, 1, _since)(_axes_attr_to_input(_op))
