"""Vision and signal ops whose defaults or attribute encodings changed.

- RoiAlign-10: its coordinates were ``output_half_pixel`` (RoiAlign-16 defaults to ``half_pixel``)
- GridSample-16: ``mode`` "bilinear"/"bicubic" -> "linear"/"cubic" (GridSample-20)
- DFT-17: ``axis`` attr (default 1) -> third input (DFT-20)
"""

from __future__ import annotations

from . import converter, i64, optional_input


@converter("RoiAlign", 1, 16)
def roi_align_v10(ctx):
    """RoiAlign-10 computed with output_half_pixel coordinates."""
    attrs = dict(ctx.attrs, coordinate_transformation_mode="output_half_pixel")
    return ctx.emit("RoiAlign", ctx.inputs, attrs, final=True)


_GRID_MODES = {"bilinear": "linear", "bicubic": "cubic", "nearest": "nearest"}


@converter("GridSample", 1, 20)
def grid_sample_v16(ctx):
    """GridSample-16 named its modes bilinear/bicubic."""
    attrs = dict(ctx.attrs)
    mode = attrs.get("mode", "bilinear")
    if mode not in _GRID_MODES:
        raise ctx.fail(f"unknown GridSample mode '{mode}'")
    attrs["mode"] = _GRID_MODES[mode]
    return ctx.emit("GridSample", ctx.inputs, attrs, final=True)


@converter("DFT", 1, 20)
def dft_v17(ctx):
    """DFT-17 carried ``axis`` as an attribute (default 1)."""
    attrs = dict(ctx.attrs)
    axis = int(attrs.pop("axis", 1))
    operands = [ctx.inputs[0], optional_input(ctx, 1), ctx.const(i64(axis))]
    return ctx.emit("DFT", operands, attrs, final=True)
