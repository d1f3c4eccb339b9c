"""Blocked-layout ops of the ``ember`` family, made by ``convert-layout``.

A value in layout ``NCHW{c}c`` (e.g. ``NCHW16c``) holds an NCHW tensor ``[N, C, H, W]`` as
``[N, C/c, H, W, c]``: element ``(n, C, h, w)`` sits at ``(n, C // c, h, w, C % c)``, so ``c``
channels lie next to each other and fill one vector register. ``C`` is a multiple of ``c``.

    ember.LayoutTransform(x){src, dst}      NCHW -> NCHW{c}c or back; the IR shows the layouts
    ember.ConvBlocked(x, w, b?){strides, pads, dilations, group, layout}
        x [N, C/c, H, W, c] (layout NCHW{c}c), w [K, C/group, R, S] as Conv's (codegen prepacks it
        at compile time), b [K]; result [N, K/c, OH, OW, c] in the same layout. ``pads`` are
        explicit (``[top, left, bottom, right]``); group is 1 or C (depthwise, K = C).

The reference kernels unblock, run Conv's reference, and block again, so the interpreter is the
oracle for the pass and the TVM lowerings.
"""

from __future__ import annotations

import re

import numpy as np

from ..ir.types import TensorType
from .ember import FAMILY  # the ember family: ember.py imports this module at its end
from .registry import REQUIRED, AttrSpec, EvalContext, Fusion, Trait, get_op

PLAIN = "NCHW"
_BLOCKED = re.compile(r"^NCHW(\d+)c$")


def blocked_layout(lanes: int) -> str:
    return f"NCHW{lanes}c"


def lanes_of(layout: str) -> int | None:
    """The channel block of ``NCHW{c}c`` (None for plain NCHW)."""
    m = _BLOCKED.match(layout)
    return int(m.group(1)) if m else None


def to_blocked(array: np.ndarray, lanes: int) -> np.ndarray:
    """``[N, C, H, W]`` -> ``[N, C/c, H, W, c]``; a dim 1 of size 1 (a broadcast) stays ``[.., 1, .., 1]``."""
    n, c, h, w = array.shape
    if c == 1:
        return array.reshape(n, 1, h, w, 1)
    return np.ascontiguousarray(array.reshape(n, c // lanes, lanes, h, w).transpose(0, 1, 3, 4, 2))


def from_blocked(array: np.ndarray) -> np.ndarray:
    """``[N, C/c, H, W, c]`` -> ``[N, C, H, W]``."""
    n, cb, h, w, lanes = array.shape
    return np.ascontiguousarray(array.transpose(0, 1, 4, 2, 3).reshape(n, cb * lanes, h, w))


def blocked_shape(shape, lanes: int) -> tuple:
    n, c, h, w = shape
    return (n, 1 if c == 1 else c // lanes, h, w, 1 if c == 1 else lanes)


def _transform_infer(ctx):
    x = ctx.input_types[0]
    src, dst = ctx.attrs["src"], ctx.attrs["dst"]
    if not isinstance(x, TensorType) or x.shape is None:
        return [TensorType(x.dtype, None)] if isinstance(x, TensorType) else [None]
    if lanes_of(dst) is not None and src == PLAIN:
        if len(x.shape) != 4 or not isinstance(x.shape[1], int) or x.shape[1] % lanes_of(dst):
            raise ValueError(f"{src} -> {dst} needs a rank-4 tensor whose channels divide by the block")
        return [TensorType(x.dtype, blocked_shape(x.shape, lanes_of(dst)))]
    if lanes_of(src) is not None and dst == PLAIN:
        if len(x.shape) != 5 or x.shape[4] != lanes_of(src):
            raise ValueError(f"{src} -> {dst} needs a rank-5 tensor with {lanes_of(src)} lanes last")
        n, cb, h, w, c = x.shape
        return [TensorType(x.dtype, (n, cb * c, h, w))]
    raise ValueError(f"unsupported layout transform {src} -> {dst}")


def _transform_reference(inputs, attrs, ctx):
    (x,) = inputs
    lanes = lanes_of(ctx.attr("dst"))
    return [to_blocked(x, lanes) if lanes is not None else from_blocked(x)]


FAMILY.op(
    "ember.LayoutTransform",
    domain="ember",
    inputs=(1, 1),
    outputs=(1, 1),
    traits=frozenset({Trait.PURE, Trait.LAYOUT_SENSITIVE}),
    attrs=[AttrSpec("src", "string", REQUIRED), AttrSpec("dst", "string", REQUIRED)],
    infer=_transform_infer,
    kernel=_transform_reference,
    cheap_fold=True,
    fusion=Fusion.INJECTIVE,
    doc="Moves a tensor between layouts NCHW and NCHW{c}c (channels blocked by c, the block innermost).",
)


def conv_out_dim(size: int, k: int, stride: int, dilation: int, begin: int, end: int) -> int:
    return (size + begin + end - dilation * (k - 1) - 1) // stride + 1


def _conv_infer(ctx):
    x, w = ctx.input_types[0], ctx.input_types[1]
    lanes = lanes_of(ctx.attrs["layout"])
    if not (isinstance(x, TensorType) and isinstance(w, TensorType) and x.is_static and w.is_static):
        raise ValueError("ember.ConvBlocked needs static shapes")
    n, _, h, wd, c = x.shape
    k, _, r, s = w.shape
    if c != lanes or k % lanes:
        raise ValueError(f"the input's last dim {c} and the output channels {k} must fit the {lanes}-lane block")
    group = int(ctx.attrs.get("group", 1))
    if group != 1 and not (group == k == x.shape[1] * lanes and w.shape[1] == 1):
        raise ValueError(f"group {group} is neither 1 nor depthwise")
    strides, dilations, pads = ctx.attrs["strides"], ctx.attrs["dilations"], ctx.attrs["pads"]
    oh = conv_out_dim(h, r, strides[0], dilations[0], pads[0], pads[2])
    ow = conv_out_dim(wd, s, strides[1], dilations[1], pads[1], pads[3])
    return [TensorType(x.dtype, (n, k // lanes, oh, ow, lanes))]


def conv_attrs(attrs) -> dict:
    """The attributes of the plain Conv a ConvBlocked computes."""
    out = {k: list(attrs[k]) for k in ("strides", "pads", "dilations")}
    return {**out, "group": int(attrs.get("group", 1))}


def _conv_reference(inputs, attrs, ctx):
    x, w, *rest = inputs
    plain = [from_blocked(x), w, *rest]
    attrs = conv_attrs(ctx.attrs)
    conv = get_op("Conv")
    types = [TensorType.of(a) if a is not None else None for a in plain]
    (y,) = conv.reference(plain, attrs, EvalContext("Conv", attrs, 1, types))
    return [to_blocked(np.asarray(y), lanes_of(ctx.attr("layout")))]


def _conv_flops(ctx) -> int:
    _, c_per_group, r, s = ctx.in_shapes[1]
    return 2 * int(np.prod(ctx.out_shapes[0])) * c_per_group * r * s


FAMILY.op(
    "ember.ConvBlocked",
    domain="ember",
    inputs=(2, 3),
    outputs=(1, 1),
    traits=frozenset({Trait.PURE, Trait.LAYOUT_SENSITIVE}),
    attrs=[
        AttrSpec("layout", "string", REQUIRED),
        AttrSpec("strides", "ints", REQUIRED),
        AttrSpec("pads", "ints", REQUIRED),
        AttrSpec("dilations", "ints", REQUIRED),
        AttrSpec("group", "int", 1),
    ],
    infer=_conv_infer,
    kernel=_conv_reference,
    flops=_conv_flops,
    fusion=Fusion.ANCHOR,
    doc="A 2-D convolution (group 1, or depthwise) on and to NCHW{c}c tensors; the weight is Conv's.",
)
