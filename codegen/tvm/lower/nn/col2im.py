"""Lowering of Col2Im.

    Col2Im(cols, image_shape, block_shape){dilations, pads, strides}
                                            the sum of every block column back onto the image

``image_shape`` and ``block_shape`` may be run-time operands, checked against the compiled shapes.
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx

from ...registry import lowering
from ...te_util import all_of, flat_read, ints, read_if, require_values, size_of
from ...tir_util import I64, unravel


def _block_counts(image, block, dilations, pads, strides):
    nd = len(image)
    return [
        (image[d] + pads[d] + pads[nd + d] - dilations[d] * (block[d] - 1) - 1) // strides[d] + 1 for d in range(nd)
    ]


def _col2im_runtime_checks(ctx, block_shape, image, total, columns, dilations, pads, strides) -> None:
    """A run-time block_shape must have positive dims whose product and block counts fit the input."""
    nd = len(image)
    if size_of(block_shape.shape) != nd:
        raise ctx.fail(f"block_shape has {size_of(block_shape.shape)} elements; expected {nd}")

    def ok(read):
        dims = [flat_read(read, block_shape, d).astype(I64) for d in range(nd)]
        product, count = tirx.const(1, I64), tirx.const(1, I64)
        for d, b in enumerate(dims):
            product = product * b
            count = count * _block_counts_expr(image[d], b, dilations[d], pads[d] + pads[nd + d], strides[d])
        return all_of([b >= 1 for b in dims] + [product == total, count == columns])

    ctx.require(
        ok,
        f"block_shape does not fit the input: its product must be {total} and it must give "
        f"{columns} blocks on the image {image}",
    )


def _block_counts_expr(image: int, block, dilation: int, pad: int, stride: int):
    return tirx.floordiv(image + pad - dilation * (block - 1) - 1, stride) + 1


@lowering("Col2Im", kind="reduce", static=(1, 2), runtime=(1, 2))
def _col2im(ctx, cols, image_shape=None, block_shape=None):
    """Sum of the block columns onto the image; a run-time block_shape is read by the kernel."""
    out = list(ctx.out_shape())
    channels, image = out[1], out[2:]
    nd = len(image)
    dilations = ints(ctx.attr("dilations") or [1] * nd)
    pads = ints(ctx.attr("pads") or [0] * (2 * nd))
    strides = ints(ctx.attr("strides") or [1] * nd)
    width, columns = int(cols.shape[1]), int(cols.shape[2])
    if width % channels:
        raise ctx.fail(f"input dim 1 ({width}) is not a multiple of the {channels} output channels")
    total = width // channels
    require_values(ctx, 1, image_shape, image, "image_shape")
    constant = ctx.static(2)
    if constant is not None:
        block = [tirx.const(b, I64) for b in ints(np.asarray(constant))]
        counts = _block_counts(image, ints(np.asarray(constant)), dilations, pads, strides)
        if len(block) != nd or int(np.prod(counts)) != columns or int(np.prod(ints(np.asarray(constant)))) != total:
            raise ctx.fail(f"block_shape {ints(np.asarray(constant))} does not fit the input shape {list(cols.shape)}")
    elif block_shape is None:
        raise ctx.fail("block_shape is missing")
    else:
        _col2im_runtime_checks(ctx, block_shape, image, total, columns, dilations, pads, strides)
        block = [block_shape(*unravel(tirx.const(d, I64), block_shape.shape)).astype(I64) for d in range(nd)]
    counts = [
        _block_counts_expr(image[d], block[d], dilations[d], pads[d] + pads[nd + d], strides[d]) for d in range(nd)
    ]
    r = te.reduce_axis((0, total), "block")

    def body(b, c, *y):
        inside, column, rest = tirx.const(True, "bool"), tirx.const(0, I64), r.var.astype(I64)
        offsets = []
        for d in range(nd - 1, -1, -1):  # the block position, last dim fastest
            offsets.append(tirx.floormod(rest, block[d]))
            rest = tirx.floordiv(rest, block[d])
        offsets.reverse()
        for d in range(nd):
            shifted = y[d].astype(I64) + pads[d] - offsets[d] * dilations[d]
            step = tirx.floordiv(shifted, strides[d])
            inside = tirx.And(
                inside, tirx.And(tirx.And(shifted >= 0, tirx.floormod(shifted, strides[d]) == 0), step < counts[d])
            )
            column = column * counts[d] + step
        column = tirx.max(tirx.const(0, I64), tirx.min(column, tirx.const(columns - 1, I64)))
        value = read_if(inside, cols(b, c * total + r.var, column), tirx.const(0, str(cols.dtype)))
        return te.sum(value, axis=r)

    return te.compute(out, body, name="col2im")
