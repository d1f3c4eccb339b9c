"""Depthwise integer convolutions (QLinearConv and ConvInteger of ``group`` = input channels, one
weight channel per group) on the float depthwise kernel (``nn/conv.py``'s ``dw_conv``), reading
their 8-bit input as it is:

    conv_pad / dw_deinterleave   float32(x) - zx, padded with 0 (the reference pads with zx)
    dw_conv                      sum over the taps of that times float32(w), w int8 (prepacked)
    epilogue                     QLinearConv: int32(acc) + bias, requantized as the packed
                                 kernel's epilogue does (``requantized_conv``); ConvInteger: int32(acc)

Every product is an integer of at most 255 * 128, and a window of ``R x S`` taps sums at most
``255 * sum |w[k]|`` in magnitude: below 2^24 (``EXACT_LIMIT``, checked on the constant weight
when it is packed) every float32 partial sum is exact, so the accumulator equals the int32 one
bit for bit; the bias is then added in int32, as the packed kernel does.

Why: before, ``integer-conv-as-float`` made these float32 Convs of ``Cast(x) - zx``, which the
conv before computed in its epilogue and wrote as float32, four times the bytes of the uint8 it
could write, and the depthwise conv read back: a third of an int8 MobileNetV2's or
EfficientNet-B0's time went to their depthwise convs. Now the conv before writes uint8 and the
cast is part of the depthwise conv's own padding pass.

Applies to a CPU build (``ctx.schedule``; a GPU build keeps the generic reduction), a constant
int8 weight with zero (or no) zero points, and 8-bit input; the lowering's ``native`` fact says so
to ``integer-conv-as-float``.
"""

from __future__ import annotations

import numpy as np
from tvm import te

from .nn.conv import depthwise_conv
from .quantization_dynamic import zero_as_float

EXACT_LIMIT = 1 << 24  # float32 holds every integer below this exactly
ACTIVATION_SPAN = 255  # |x - zx| for 8-bit x and zero point


def depthwise_fits(attrs, in_types, weight: int = 3) -> bool:
    """A 2-D depthwise conv (``group`` = input channels, a one-channel weight per output channel) of
    8-bit input and int8 weight, by its operand types."""
    x, w = in_types[0], in_types[weight]
    if x is None or w is None or len(x[0]) != 4 or len(w[0]) != 4:
        return False
    channels, group = int(x[0][1]), int(attrs.get("group", 1))
    if group != channels or group < 2 or int(w[0][1]) != 1 or int(w[0][0]) % channels:
        return False
    return np.dtype(w[1]) == np.int8 and np.dtype(x[1]) in (np.uint8, np.int8)


def exact_in_float(w) -> bool:
    """Whether every float32 partial sum of a window of ``w`` (int8 [K, 1, R, S]) is exact."""
    per_channel = np.abs(np.asarray(w).astype(np.int64)).reshape(w.shape[0], -1).sum(axis=1)
    return int(ACTIVATION_SPAN * per_channel.max(initial=0)) < EXACT_LIMIT


def pack_depthwise_weight(attrs, in_types, w, schedule=None, weight: int = 3):
    """A depthwise conv's int8 weight as float32 (exact) for a CPU build where its sums are exact;
    else ``w`` as it is (the planner then leaves it unpacked)."""
    if schedule is None or w.dtype != np.int8 or not depthwise_fits(attrs, in_types, weight) or not exact_in_float(w):
        return w
    return w.astype(np.float32)


def depthwise_applies(ctx, w, weight_zero: int) -> bool:
    """Whether the depthwise kernel computes ``ctx``'s conv: its weight packed as float32 and a
    constant zero (or absent) weight zero point (operand ``weight_zero``)."""
    if ctx.schedule is None or str(w.dtype) != "float32" or len(w.shape) != 4:
        return False
    if weight_zero >= len(ctx.in_types) or ctx.in_types[weight_zero] is None:
        return True
    zero = ctx.static(weight_zero)
    return zero is not None and not np.any(np.asarray(zero))


def depthwise_accumulator(ctx, x, x_zero, w):
    """The int32 ``sum (x - zx) w`` of each output, as a function of (b, k, y, x)."""
    zx = zero_as_float(x_zero)
    out = depthwise_conv(ctx, x, w, lambda v: v.astype("float32") - zx)
    return lambda *i: out(*i).astype("int32")


def depthwise_conv_integer(ctx, x, x_zero, w):
    """ConvInteger's int32 output from the depthwise kernel."""
    exact = depthwise_accumulator(ctx, x, x_zero, w)
    return te.compute(ctx.out_shape(), exact, name="dw_int")


def depthwise_takes(attrs, in_types, constant, weight: int = 3, weight_zero: int = 5) -> bool:
    """Whether the depthwise kernel computes a QLinearConv (with ConvInteger's operand indices, a
    ConvInteger) as it is, on a CPU: ``depthwise_fits``, a constant weight whose sums are exact in
    float32, and a constant zero (or absent) weight zero point. Part of the lowerings' ``native``
    fact."""
    if not depthwise_fits(attrs, in_types, weight):
        return False
    w = constant(weight)
    if w is None or not exact_in_float(w):
        return False
    if weight_zero >= len(in_types) or in_types[weight_zero] is None:
        return True
    zero = constant(weight_zero)
    return zero is not None and not np.any(np.asarray(zero))


def unpacked_depthwise_weight(w):
    """The int8 weight back from its float32 packing (for the generic reduction: a weight zero point
    the depthwise kernel does not take)."""
    return te.compute(w.shape, lambda *i: w(*i).astype("int8"), name="dw_unpack")
