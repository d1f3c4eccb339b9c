"""Image ops: resizing, grid sampling, affine grids, decoding."""

from __future__ import annotations

import numpy as np

from . import contracts as c
from .declare import Family
from .reference_onnx import onnx_reference
from .registry import Fusion, InferContext, Trait

FAMILY = Family("image")
onnx_op = FAMILY.onnx_op


RESIZE_MODES = ("nearest", "linear", "cubic")
# every version's values: tf_half_pixel_for_nn (Resize-11), half_pixel_symmetric (Resize-19)
COORDINATE_MODES = (
    "half_pixel",
    "half_pixel_symmetric",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
    "tf_half_pixel_for_nn",
    "tf_crop_and_resize",
)
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
ASPECT_POLICIES = ("stretch", "not_larger", "not_smaller")
GRID_SAMPLE_MODES = ("bilinear", "nearest", "bicubic", "linear", "cubic")  # GridSample-16, GridSample-20
GRID_SAMPLE_PADDING = ("zeros", "border", "reflection")


def resize_contract(ctx: InferContext) -> list[str]:
    """The enum attributes hold one of their values (``nearest_mode`` only matters, and is only
    checked, in nearest mode, as onnxruntime does); scales and sizes have one entry per resized
    axis (``axes``, else every dim of X)."""
    found = [
        c.enum_problem(ctx, "mode", RESIZE_MODES),
        c.enum_problem(ctx, "coordinate_transformation_mode", COORDINATE_MODES),
        c.enum_problem(ctx, "keep_aspect_ratio_policy", ASPECT_POLICIES),
    ]
    if c.attr(ctx, "mode") in ("nearest", b"nearest"):
        found.append(c.enum_problem(ctx, "nearest_mode", NEAREST_MODES))
    found = [reason for reason in found if reason]
    x = c.shape(ctx, 0)
    axes = c.attr(ctx, "axes")
    want = len(axes) if axes else (len(x) if x is not None else None)
    for index, name in ((2, "scales"), (3, "sizes")):
        s = c.shape(ctx, index)
        if s is None or want is None or len(s) != 1 or not c.static(s[0]) or s[0] in (0, want):
            continue  # an empty scales means "use sizes"
        found.append(f"{name} {c.show(s)} must have {want} entries (one per resized axis of X {c.show(x)})")
    return found


def grid_sample_contract(ctx: InferContext) -> list[str]:
    """``mode`` and ``padding_mode`` hold one of their values."""
    found = [c.enum_problem(ctx, "mode", GRID_SAMPLE_MODES), c.enum_problem(ctx, "padding_mode", GRID_SAMPLE_PADDING)]
    return [reason for reason in found if reason]


def affine_grid_contract(ctx: InferContext) -> str | None:
    """theta is [N, 2, 3] for a 2-D size [N, C, H, W], [N, 3, 4] for a 3-D one; N agrees."""
    theta, size = c.shape(ctx, 0), c.const_ints(ctx, 1)
    if theta is None or size is None or len(size) not in (4, 5):
        return None
    spatial = len(size) - 2
    want = (size[0], spatial, spatial + 1)
    if len(theta) != 3 or any(c.static(a) and a != b for a, b in zip(theta, want)):
        return f"theta {c.show(theta)} must be {c.show(want)} for size {size}"
    return None


def image_decoder(inputs, attrs, ctx):
    """Decode an encoded image (uint8 bytes) to HWC uint8 with OpenCV; onnx.reference needs Pillow."""
    try:
        import cv2
    except ImportError:
        return onnx_reference(inputs, attrs, ctx)
    (data,) = inputs
    bgr = cv2.imdecode(np.ascontiguousarray(data, dtype=np.uint8).reshape(-1), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("ImageDecoder: the bytes are not an image format OpenCV can decode")
    fmt = ctx.attr("pixel_format")
    if fmt == "BGR":
        return [np.ascontiguousarray(bgr)]
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    if fmt == "Grayscale":  # ITU-R 601-2 luma with Pillow's fixed-point rounding
        r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
        return [((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)[..., None]]
    return [rgb]


def resize(inputs, attrs, ctx):
    """Resize through onnx.reference, except that nearest mode is a gather of the input: onnx.reference
    weights a window's two neighbours by 1 and 0, so a NaN spread to the windows next to its own
    (onnxruntime and the compiled kernels copy it to its own window only). The gather's positions come
    from onnx.reference run on the input's flat indices (each picked exactly: 1 * i + 0 * j), and a
    tf_crop_and_resize position outside the input, which it marks with -1, takes
    ``extrapolation_value``."""
    data = inputs[0]
    mode = ctx.attr("mode") or "nearest"
    if isinstance(mode, bytes):
        mode = mode.decode()
    if mode != "nearest" or data.size >= 1 << 53:
        return onnx_reference(inputs, attrs, ctx)
    flat = np.arange(data.size, dtype=np.float64).reshape(data.shape)
    index_attrs = dict(attrs, extrapolation_value=-1.0)
    (where,) = onnx_reference([flat, *inputs[1:]], index_attrs, ctx)
    outside = where < 0
    picked = data.reshape(-1)[np.where(outside, 0, where).astype(np.int64)]
    if outside.any():
        fill = ctx.attr("extrapolation_value")
        picked[outside] = np.asarray(0.0 if fill is None else fill).astype(data.dtype)
    return [picked]


onnx_op(
    "Resize",
    kernel=resize,
    traits={Trait.LAYOUT_SENSITIVE},
    contract=resize_contract,
    may_trap=True,
    fusion=Fusion.INJECTIVE,
)
onnx_op("GridSample", traits={Trait.LAYOUT_SENSITIVE}, contract=grid_sample_contract, fusion=Fusion.INJECTIVE)
onnx_op("AffineGrid", traits={Trait.LAYOUT_SENSITIVE}, contract=affine_grid_contract, fusion=Fusion.INJECTIVE)
onnx_op("ImageDecoder", kernel=image_decoder)
