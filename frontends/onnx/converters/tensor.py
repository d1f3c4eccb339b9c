"""Tensor-manipulation ops whose attributes became inputs, and Constant.

- Slice-1 ``starts/ends/axes`` attrs -> Slice(x, starts, ends, axes)
- Pad-2 ``pads/value`` attrs -> Pad(x, pads, value)
- Split-2/11 ``split`` attr -> Split(x, split); no split -> ``num_outputs`` (Split-18)
- Squeeze-1/11, Unsqueeze-1/11 ``axes`` attr -> input
- TopK-1 ``k`` attr -> TopK(x, k)
- Scatter (deprecated) -> ScatterElements
- Constant (every form: value, value_float(s), value_int(s), value_string(s), sparse_value) -> one
  Constant holding an array
"""

from __future__ import annotations

import numpy as np

from compiler.onnx_functions import constant_array

from . import axes_attribute_to_input, converter, i64


@converter("Slice", 1, 10)
def slice_v1(ctx):
    """Slice-1 carried starts/ends/axes as attributes."""
    attrs = dict(ctx.attrs)
    starts, ends = attrs.pop("starts", None), attrs.pop("ends", None)
    if starts is None or ends is None:
        raise ctx.fail("Slice-1 needs 'starts' and 'ends' attributes")
    operands = [ctx.inputs[0], ctx.const(i64(starts)), ctx.const(i64(ends))]
    axes = attrs.pop("axes", None)
    if axes is not None:
        operands.append(ctx.const(i64(axes)))
    return ctx.emit("Slice", operands, attrs, final=True)


@converter("Pad", 1, 11)
def pad_v2(ctx):
    """Pad-2 carried pads and the constant value as attributes (Pad-1 called them paddings)."""
    attrs = dict(ctx.attrs)
    pads = attrs.pop("pads", attrs.pop("paddings", None))
    if pads is None:
        raise ctx.fail("Pad needs a 'pads' attribute")
    value = float(attrs.pop("value", 0.0))
    x = ctx.inputs[0]
    dtype = x.type.dtype.np if getattr(x.type, "dtype", None) is not None else np.float32
    operands = [x, ctx.const(i64(pads)), ctx.const(np.array(value, dtype=dtype))]
    return ctx.emit("Pad", operands, attrs, final=True)


@converter("Split", 1, 18)
def split_v2(ctx):
    """Split before 18: ``split`` attr (until 13) or input; without it, equal parts by output count."""
    attrs = dict(ctx.attrs)
    operands = list(ctx.inputs[:2])
    split = attrs.pop("split", None)
    if split is not None and split != []:
        operands = [ctx.inputs[0], ctx.const(i64(split))]
    if len(operands) < 2 or operands[1] is None:
        operands = [ctx.inputs[0]]
        attrs["num_outputs"] = len(ctx.output_names)
    return ctx.emit("Split", operands, attrs, num_results=len(ctx.output_names), final=True)


converter("Squeeze", 1, 13)(axes_attribute_to_input("Squeeze"))
converter("Unsqueeze", 1, 13)(axes_attribute_to_input("Unsqueeze"))


@converter("TopK", 1, 10)
def topk_v1(ctx):
    """TopK-1 carried ``k`` as an attribute."""
    attrs = dict(ctx.attrs)
    k = attrs.pop("k", None)
    if k is None:
        raise ctx.fail("TopK-1 needs a 'k' attribute")
    return ctx.emit("TopK", [ctx.inputs[0], ctx.const(i64([k]))], attrs, num_results=2, final=True)


@converter("Scatter", 1)
def scatter(ctx):
    """Scatter (deprecated in opset 11) is ScatterElements."""
    return ctx.emit("ScatterElements", ctx.inputs, ctx.attrs, final=True)


@converter("Constant", 1)
def constant(ctx):
    """Every Constant form becomes one Constant whose ``value`` is an array."""
    try:
        array = constant_array(ctx.attrs)
    except ValueError as exc:
        raise ctx.fail(str(exc)) from None
    return [ctx.const(array, final=True)]
