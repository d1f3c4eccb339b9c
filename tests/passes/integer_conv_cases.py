"""Integer conv nodes for the tests of the integer-conv rewrites (``integer-conv-as-float``,
``integer-conv-int8-weights``)."""

from __future__ import annotations

import numpy as np

from compiler.ir.builder import Builder


def integer_conv(b: Builder, op: str, x, weight: np.ndarray, x_zero, w_zero: np.ndarray, attrs: dict, rng):
    """A ConvInteger, or a QLinearConv with random per-channel weight scales, fixed input and output
    scales, output zero point 7 and a random int32 bias, of constant ``weight`` and ``w_zero``."""
    if op == "ConvInteger":
        return b.op("ConvInteger", [x, b.constant(weight), x_zero, b.constant(w_zero)], attrs)
    k, x_type = weight.shape[0], x.type.dtype.np
    scales = [np.float32(0.02), rng.uniform(0.5, 2, k).astype(np.float32) * 0.01, np.float32(0.05)]
    bias = rng.integers(-500, 500, k).astype(np.int32)
    operands = [x, b.constant(scales[0]), x_zero, b.constant(weight), b.constant(scales[1])]
    operands += [b.constant(w_zero), b.constant(scales[2]), b.constant(np.array(7, x_type)), b.constant(bias)]
    return b.op("QLinearConv", operands, attrs)
