"""Tensor ops that make, view or move data: shapes, views, concatenation, slicing, padding, creation.

Reshape, Flatten, Squeeze, Unsqueeze and Identity are views (their result may
share operand 0's memory); most others are injective (each output element reads
a few input elements).  Indexing by run-time values is in ``indexing.py``.
"""

from __future__ import annotations

import numpy as np

from . import contracts as c
from .declare import Family
from .reference_onnx import onnx_reference
from .registry import Fusion, InferContext, Trait

FAMILY = Family("tensor")
onnx_op = FAMILY.onnx_op

INJECTIVE = dict(fusion=Fusion.INJECTIVE)


# ---------------------------------------------------------------- contracts


def reshape_contract(ctx: InferContext) -> str | None:
    """The new shape (0 copies X's dim unless allowzero, one -1 takes the rest) holds X's element count."""
    x, target = c.shape(ctx, 0), c.const_ints(ctx, 1)
    count = c.numel(x)
    if count is None or target is None:
        return None
    allowzero = bool(c.attr(ctx, "allowzero"))
    dims = []
    for i, d in enumerate(target):
        if d == 0 and not allowzero:
            if i >= len(x):
                return None  # onnx's inference refuses this
            d = int(x[i])
        dims.append(d)
    known = int(np.prod([d for d in dims if d != -1], dtype=np.int64))
    if -1 not in dims:
        if known != count:
            return f"shape {target} asks for {known} elements but X {c.show(x)} has {count}"
    elif count % known if known else count:
        return f"shape {target}: no size for -1 fits the {count} elements of X {c.show(x)}"
    return None


def slice_contract(ctx: InferContext) -> list[str]:
    """starts, ends, axes and steps have one entry each per sliced axis; axes name dims; steps are not 0."""
    found = []
    names = ["starts", "ends", "axes", "steps"]
    lengths = {}
    for i, name in enumerate(names, 1):
        s = c.shape(ctx, i)
        if s is not None and len(s) == 1 and c.static(s[0]):
            lengths[name] = int(s[0])
    if len(set(lengths.values())) > 1:
        found.append(
            "starts, ends, axes and steps differ in length: " + ", ".join(f"{n} has {k}" for n, k in lengths.items())
        )
    x, axes = c.shape(ctx, 0), c.const_ints(ctx, 3)
    if x is not None and axes is not None:
        bad = [a for a in axes if not -len(x) <= a < len(x)]
        if bad:
            found.append(f"axes {bad} are out of range for data {c.show(x)}")
        if len({a % len(x) for a in axes if a not in bad}) < len(axes) - len(bad):
            found.append(f"axes {axes} repeat an axis")
    steps = c.const_ints(ctx, 4)
    if steps is not None and 0 in steps:
        found.append(f"steps {steps} has a 0 step")
    return found


def pad_contract(ctx: InferContext) -> list[str]:
    """pads has two entries (begin, end) per padded axis; constant_value is one value."""
    x, pads = c.shape(ctx, 0), c.shape(ctx, 1)
    found = []
    axes = c.shape(ctx, 3)
    n_axes = axes[0] if axes is not None and len(axes) == 1 else (len(x) if x is not None and axes is None else None)
    if pads is not None and len(pads) == 1 and c.static(pads[0]) and c.static(n_axes) and pads[0] != 2 * n_axes:
        what = "axes" if axes is not None else f"dims of data {c.show(x)}"
        found.append(
            f"pads {c.show(pads)} must have 2 x {n_axes} entries (begin and end for each of the {n_axes} {what})"
        )
    value = c.shape(ctx, 2)
    if value is not None and c.numel(value) not in (None, 0, 1):  # empty: no value given
        found.append(f"constant_value {c.show(value)} must be one value")
    return found


def depth_to_space_contract(ctx: InferContext) -> str | None:
    """blocksize^2 divides the channels."""
    x, b = c.shape(ctx, 0), int(c.attr(ctx, "blocksize") or 0)
    if x is None or len(x) != 4 or b <= 0 or not c.static(x[1]) or x[1] % (b * b) == 0:
        return None
    return f"blocksize {b}: {b * b} does not divide the {x[1]} channels of input {c.show(x)}"


def space_to_depth_contract(ctx: InferContext) -> str | None:
    """blocksize divides the height and the width."""
    x, b = c.shape(ctx, 0), int(c.attr(ctx, "blocksize") or 0)
    if x is None or len(x) != 4 or b <= 0:
        return None
    bad = [d for d in x[2:] if c.static(d) and d % b]
    return f"blocksize {b} does not divide the height and width of input {c.show(x)}" if bad else None


def reverse_sequence_contract(ctx: InferContext) -> list[str]:
    """time_axis and batch_axis are 0 and 1 (either way); sequence_lens has one entry per batch."""
    x, lens = c.shape(ctx, 0), c.shape(ctx, 1)
    time_axis, batch_axis = int(c.attr(ctx, "time_axis")), int(c.attr(ctx, "batch_axis"))
    if {time_axis, batch_axis} != {0, 1}:
        return [f"time_axis {time_axis} and batch_axis {batch_axis} must be 0 and 1"]
    if x is None or len(x) < 2:
        return []
    reason = c.length_problem("sequence_lens", lens, x[batch_axis], f"one per batch of input {c.show(x)}")
    return [reason] if reason else []


def trilu_contract(ctx: InferContext) -> str | None:
    """k is one value."""
    k = c.shape(ctx, 1)
    return f"k {c.show(k)} must be one value" if k is not None and c.numel(k) not in (None, 1) else None


# ---------------------------------------------------------------- reference kernels


def constant(inputs, attrs, ctx):
    if "value" in attrs:
        return [attrs["value"]]
    return onnx_reference(inputs, attrs, ctx)


def pad(inputs, attrs, ctx):
    """onnx.reference's Pad, plus negative pads (ONNX: they remove elements), which it refuses."""
    x, pads = inputs[0], inputs[1]
    if pads is None or (np.asarray(pads) >= 0).all():
        return onnx_reference(inputs, attrs, ctx)
    value = inputs[2] if len(inputs) > 2 and inputs[2] is not None and np.size(inputs[2]) else None
    axes = inputs[3] if len(inputs) > 3 and inputs[3] is not None else None
    rank = x.ndim
    axes = list(range(rank)) if axes is None else [int(a) % rank for a in np.asarray(axes).reshape(-1)]
    pads = [int(p) for p in np.asarray(pads).reshape(-1)]
    widths = [[0, 0] for _ in range(rank)]
    for j, a in enumerate(axes):
        widths[a] = [pads[j], pads[j + len(axes)]]
    grown = [[max(b, 0), max(e, 0)] for b, e in widths]
    modes = {"constant": "constant", "edge": "edge", "reflect": "reflect", "wrap": "wrap"}
    mode = modes[ctx.attr("mode") or "constant"]
    extra = {"constant_values": np.asarray(value).reshape(-1)[0]} if mode == "constant" and value is not None else {}
    y = np.pad(x, grown, mode=mode, **extra)
    crop = tuple(slice(-min(b, 0), y.shape[d] + min(e, 0)) for d, (b, e) in enumerate(widths))
    return [np.ascontiguousarray(y[crop])]


# ---------------------------------------------------------------- shapes
onnx_op("Shape", traits={Trait.SHAPE_ONLY})
onnx_op("Size", traits={Trait.SHAPE_ONLY})

# ---------------------------------------------------------------- views
onnx_op("Identity", traits={Trait.ELEMENTWISE}, view=True, cheap_fold=True, fusion=Fusion.ELEMENTWISE)
onnx_op("Reshape", contract=reshape_contract, view=True, may_trap=True, cheap_fold=True, **INJECTIVE)
onnx_op("Flatten", view=True, **INJECTIVE)
onnx_op("Squeeze", view=True, may_trap=True, cheap_fold=True, **INJECTIVE)
onnx_op("Unsqueeze", view=True, may_trap=True, cheap_fold=True, **INJECTIVE)

# ---------------------------------------------------------------- movement
onnx_op("Transpose", cheap_fold=True, **INJECTIVE)
onnx_op("Concat", cheap_fold=True, **INJECTIVE)
onnx_op("Split", may_trap=True, **INJECTIVE)
onnx_op("Slice", contract=slice_contract, may_trap=True, cheap_fold=True, **INJECTIVE)
onnx_op("Pad", kernel=pad, contract=pad_contract, may_trap=True, **INJECTIVE)
onnx_op("CenterCropPad", **INJECTIVE)
onnx_op("Tile", may_trap=True, **INJECTIVE)
onnx_op("Expand", may_trap=True, cheap_fold=True, **INJECTIVE)
onnx_op("DepthToSpace", traits={Trait.LAYOUT_SENSITIVE}, contract=depth_to_space_contract, **INJECTIVE)
onnx_op("SpaceToDepth", traits={Trait.LAYOUT_SENSITIVE}, contract=space_to_depth_contract, **INJECTIVE)
onnx_op("ReverseSequence", contract=reverse_sequence_contract, **INJECTIVE)
onnx_op("Trilu", contract=trilu_contract, **INJECTIVE)

# ---------------------------------------------------------------- creation
onnx_op("Constant", kernel=constant)
onnx_op("ConstantOfShape", may_trap=True, cheap_fold=True, **INJECTIVE)
onnx_op("EyeLike", **INJECTIVE)
onnx_op("Range", may_trap=True, **INJECTIVE)
