"""Upsample and Resize normalised to the newest Resize.

- Upsample-7 ``scales`` attr, Upsample-9/10 ``scales`` input -> Resize(x, , scales) with
  ``coordinate_transformation_mode="asymmetric"`` and ``nearest_mode="floor"`` (Upsample's index rule)
- Resize-10 (x, scales) -> the same asymmetric/floor Resize
- Resize-11+: empty constant ``roi``/``scales`` inputs (placeholders) -> absent inputs
"""

from __future__ import annotations

import numpy as np

from . import converter


def _mode(ctx) -> str:
    mode = ctx.attrs.get("mode", "nearest")
    if mode not in ("nearest", "linear", "bilinear"):
        raise ctx.fail(f"unsupported interpolation mode '{mode}'")
    return "linear" if mode == "bilinear" else mode


def _asymmetric_resize(ctx, scales):
    attrs = {"mode": _mode(ctx), "coordinate_transformation_mode": "asymmetric"}
    if attrs["mode"] == "nearest":
        attrs["nearest_mode"] = "floor"
    return ctx.emit("Resize", [ctx.inputs[0], None, scales], attrs, final=True)


@converter("Upsample", 1, 9)
def upsample_v7(ctx):
    """Upsample-7 carried ``scales`` as an attribute."""
    scales = ctx.attrs.get("scales")
    if scales is None:
        raise ctx.fail("Upsample-7 needs a 'scales' attribute")
    return _asymmetric_resize(ctx, ctx.const(np.asarray(scales, dtype=np.float32)))


@converter("Upsample", 9)
def upsample_v9(ctx):
    """Upsample-9/10 (deprecated): scales as an input."""
    return _asymmetric_resize(ctx, ctx.inputs[1])


@converter("Resize", 10, 11)
def resize_v10(ctx):
    """Resize-10 had Upsample's index rule and only a ``scales`` input."""
    return _asymmetric_resize(ctx, ctx.inputs[1])


def _is_empty_const(value) -> bool:
    array = value.const_value if value is not None else None
    return array is not None and np.asarray(array).size == 0


@converter("Resize", 11)
def resize_v11(ctx):
    """Resize 11+: drop empty placeholder ``roi``/``scales`` constants."""
    operands = list(ctx.inputs)
    for i in (1, 2):
        if i < len(operands) and _is_empty_const(operands[i]):
            operands[i] = None
    while operands and operands[-1] is None:
        operands.pop()
    return ctx.emit("Resize", operands, ctx.attrs, final=True)
