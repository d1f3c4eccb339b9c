"""Lowerings of further neural-network ops met in the ONNX node suite.

    ai.onnx.ml.Binarizer(x){threshold}      1 where x > threshold, else 0 (same type)
    ai.onnx.ml.ArrayFeatureExtractor(x, y)  x[..., y[j]] along the last axis (1-D x -> [1, len(y)])
    TensorScatter(past, update, write_indices){mode, axis}
                                            past with ``update`` written along ``axis`` from
                                            write_indices[b] on (``circular``: modulo the axis length)
    MaxUnpool(x, indices, output_shape?)    zeros with y.flat[indices] = x (the unpooled shape's
                                            flat positions, placed in the top-left of a larger output)
    Col2Im(cols, image_shape, block_shape){dilations, pads, strides}
                                            the sum of every block column back onto the image
    Det(x)                                  determinant of each trailing square matrix (LU with
                                            partial pivoting, in float64)

Run-time operands that carry indices or sizes are checked when the kernel starts (``ctx.require``)
or by the kernel itself: a value this library was not compiled for, or an index out of range, fails
the run with a message naming the op rather than reading or writing out of bounds.
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx
from tvm.script.ir_builder import tirx as T

from .ops_more_common import ints, lowering_if_missing
from .ops_more_select import I64, Local, Workspace, check, extern, grid, unravel, when

MAX_UNROLLED_CHECKS = 1024  # run-time index operands checked element by element at kernel start


def _all(conditions):
    out = tirx.const(True, "bool")
    for c in conditions:
        out = tirx.And(out, c)
    return out


def _size(shape) -> int:
    return int(np.prod([int(d) for d in shape])) if len(shape) else 1


def _flat_read(read, tensor, j: int):
    """Element ``j`` (C order) of a run-time operand, through a ``ctx.require`` reader."""
    return read(tensor, *unravel(tirx.const(j, I64), tensor.shape)) if len(tensor.shape) else read(tensor)


def _require_each(ctx, tensor, ok, message: str) -> None:
    """``ok(element, j)`` must hold for every element ``j`` of the run-time operand ``tensor``."""
    count = _size(tensor.shape)
    if count > MAX_UNROLLED_CHECKS:
        raise ctx.fail(f"a run-time index operand of {count} elements is too long to check "
                       f"(at most {MAX_UNROLLED_CHECKS}); make it a constant")
    if count:
        ctx.require(lambda read: _all([ok(_flat_read(read, tensor, j).astype(I64), j) for j in range(count)]), message)


def _require_values(ctx, k: int, tensor, expected: list[int], what: str) -> None:
    """Operand ``k`` (compile-time or run-time) must equal ``expected``, the value compiled for."""
    value = ctx.static(k)
    if value is not None:
        if ints(np.asarray(value)) != list(expected):
            raise ctx.fail(f"{what} {ints(np.asarray(value))} does not match the compiled {expected}")
        return
    if tensor is None:
        raise ctx.fail(f"{what} is missing")
    if _size(tensor.shape) != len(expected):
        raise ctx.fail(f"{what} has {_size(tensor.shape)} elements; expected {len(expected)}")
    _require_each(ctx, tensor, lambda v, j: v == expected[j],
                  f"{what} must be {expected}, the value this library was compiled for")


# Binarizer, ArrayFeatureExtractor ----------------------------------------------------------------------

@lowering_if_missing("ai.onnx.ml.Binarizer", elementwise=True)
def _binarizer(ctx, x):
    dtype = str(x.dtype)
    threshold = tirx.const(float(ctx.attr("threshold", 0.0)), "float64")
    one, zero = tirx.const(1, dtype), tirx.const(0, dtype)
    return te.compute(x.shape, lambda *i: tirx.Select(x(*i).astype("float64") > threshold, one, zero),
                      name="binarizer")


@lowering_if_missing("ai.onnx.ml.ArrayFeatureExtractor")
def _array_feature_extractor(ctx, x, y):
    n = int(x.shape[-1])
    _require_each(ctx, y, lambda v, j: tirx.And(v >= -n, v < n),
                  f"an index is outside [-{n}, {n}) for the last axis ({n} long)")
    y_shape = [int(d) for d in y.shape]

    def body(*o):
        pick = y(*unravel(o[-1], y_shape)).astype(I64) if y_shape else y().astype(I64)
        pick = tirx.Select(pick < 0, pick + n, pick)
        lead = list(o[:-1]) if len(x.shape) > 1 else []
        return x(*lead, pick)

    return te.compute(ctx.out_shape(), body, name="array_feature_extractor")


# TensorScatter ---------------------------------------------------------------------------------------

@lowering_if_missing("TensorScatter")
def _tensor_scatter(ctx, past, update, write_indices=None):
    shape = [int(d) for d in past.shape]
    rank = len(shape)
    axis = int(ctx.attr("axis", -2)) % rank
    if axis == 0:
        raise ctx.fail("axis 0 leaves no batch axis for write_indices")
    length, count = shape[axis], int(update.shape[axis])
    circular = ctx.attr("mode", "linear") == "circular"
    if write_indices is not None:
        if circular:
            _require_each(ctx, write_indices, lambda v, j: v >= 0, "write_indices must not be negative")
        else:
            _require_each(ctx, write_indices, lambda v, j: tirx.And(v >= 0, v + count <= length),
                          f"write_indices[b] + {count} updates must stay within the axis ({length} long)")

    def body(*i):
        start = write_indices(i[0]).astype(I64) if write_indices is not None else tirx.const(0, I64)
        rel = i[axis].astype(I64) - start
        if circular:
            rel = tirx.floormod(rel, length)
        inside = tirx.And(rel >= 0, rel < count)
        at = list(i)
        at[axis] = tirx.max(tirx.const(0, I64), tirx.min(rel, tirx.const(max(count - 1, 0), I64)))
        return tirx.Select(inside, update(*at), past(*i)) if count else past(*i)

    return te.compute(shape, body, name="tensor_scatter")


# MaxUnpool -------------------------------------------------------------------------------------------

@lowering_if_missing("MaxUnpool", kind="extern", static=(2,), runtime=(2,))
def _max_unpool(ctx, x, indices, output_shape=None):
    dims = [int(d) for d in x.shape]
    nd = len(dims) - 2
    kernel = ints(ctx.attr("kernel_shape"))
    strides = ints(ctx.attr("strides") or [1] * nd)
    pads = ints(ctx.attr("pads") or [0] * (2 * nd))
    unpooled = dims[:2] + [(dims[2 + d] - 1) * strides[d] - pads[d] - pads[nd + d] + kernel[d] for d in range(nd)]
    out = list(ctx.out_shape())
    if len(out) != len(dims) or any(o < u for o, u in zip(out, unpooled)):
        raise ctx.fail(f"the result shape {out} is smaller than the unpooled shape {unpooled}")
    if output_shape is not None or ctx.static(2) is not None:
        _require_values(ctx, 2, output_shape, out, "output_shape")
    total = _size(unpooled)
    message = f"{ctx.op}: an index is outside the unpooled tensor ({total} elements)"

    def body(ins, outs):
        data, where, result = ins[0], ins[1], outs[0]
        with grid(out) as o:
            T.buffer_store(result, tirx.const(0, str(x.dtype)), o)
        with grid(dims) as i:
            flat = Local(where[tuple(i)])
            check(tirx.And(flat.value >= 0, flat.value < total), message)
            T.buffer_store(result, data[tuple(i)], unravel(flat.value, unpooled))

    return extern(ctx, [x, indices], body, "max_unpool")[0]


# Col2Im ----------------------------------------------------------------------------------------------

def _block_counts(image, block, dilations, pads, strides):
    nd = len(image)
    return [(image[d] + pads[d] + pads[nd + d] - dilations[d] * (block[d] - 1) - 1) // strides[d] + 1
            for d in range(nd)]


def _col2im_runtime_checks(ctx, block_shape, image, total, columns, dilations, pads, strides) -> None:
    """A run-time block_shape must have positive dims whose product and block counts fit the input."""
    nd = len(image)
    if _size(block_shape.shape) != nd:
        raise ctx.fail(f"block_shape has {_size(block_shape.shape)} elements; expected {nd}")

    def ok(read):
        dims = [_flat_read(read, block_shape, d).astype(I64) for d in range(nd)]
        product, count = tirx.const(1, I64), tirx.const(1, I64)
        for d, b in enumerate(dims):
            product = product * b
            count = count * _block_counts_expr(image[d], b, dilations[d], pads[d] + pads[nd + d], strides[d])
        return _all([b >= 1 for b in dims] + [product == total, count == columns])

    ctx.require(ok, f"block_shape does not fit the input: its product must be {total} and it must give "
                    f"{columns} blocks on the image {image}")


def _block_counts_expr(image: int, block, dilation: int, pad: int, stride: int):
    return tirx.floordiv(image + pad - dilation * (block - 1) - 1, stride) + 1


@lowering_if_missing("Col2Im", kind="reduce", static=(1, 2), runtime=(1, 2))
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
    _require_values(ctx, 1, image_shape, image, "image_shape")
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
    counts = [_block_counts_expr(image[d], block[d], dilations[d], pads[d] + pads[nd + d], strides[d])
              for d in range(nd)]
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
            inside = tirx.And(inside, tirx.And(tirx.And(shifted >= 0, tirx.floormod(shifted, strides[d]) == 0),
                                               step < counts[d]))
            column = column * counts[d] + step
        column = tirx.max(tirx.const(0, I64), tirx.min(column, tirx.const(columns - 1, I64)))
        value = tirx.Select(inside, cols(b, c * total + r.var, column), tirx.const(0, str(cols.dtype)))
        return te.sum(value, axis=r)

    return te.compute(out, body, name="col2im")


# Det -------------------------------------------------------------------------------------------------

@lowering_if_missing("Det", kind="extern")
def _det(ctx, x):
    dims = [int(d) for d in x.shape]
    if len(dims) < 2 or dims[-1] != dims[-2]:
        raise ctx.fail(f"the input shape {dims} does not end in a square matrix")
    size, batch = dims[-1], dims[:-2]
    f64 = "float64"

    def body(ins, outs):
        data, result = ins[0], outs[0]
        workspace = Workspace()
        lu = workspace.buffer(size * size, f64)
        with grid(batch) as b:
            with T.grid(size, size) as (r, c):
                T.buffer_store(lu, data[tuple(b + [r, c])].astype(f64), [r * size + c])
            det = Local(1.0, f64)
            with T.serial(0, size) as k:
                pivot = Local(k.astype(I64))
                with T.serial(k + 1, size) as r:
                    with when(tirx.abs(lu[r * size + k]) > tirx.abs(lu[pivot.value * size + k])):
                        pivot.set(r.astype(I64))
                with when(pivot.value != k.astype(I64)):
                    with T.serial(0, size) as c:
                        held = Local(lu[k * size + c], f64)
                        T.buffer_store(lu, lu[pivot.value * size + c], [k * size + c])
                        T.buffer_store(lu, held.value, [pivot.value * size + c])
                    det.set(-det.value)
                head = Local(lu[k * size + k], f64)
                det.set(det.value * head.value)
                with when(head.value != tirx.const(0.0, f64)):
                    with T.serial(k + 1, size) as r:
                        factor = Local(lu[r * size + k] / head.value, f64)
                        with T.serial(k + 1, size) as c:
                            T.buffer_store(lu, lu[r * size + c] - factor.value * lu[k * size + c], [r * size + c])
            T.buffer_store(result, det.value.astype(str(x.dtype)), b)
        workspace.free_all()

    return extern(ctx, [x], body, "det")[0]


# ConvInteger, QLinearConv ------------------------------------------------------------------------------

def _scalar_or_per(param, index, dtype: str, default=0):
    """A per-tensor (one element) or per-output-channel (1-D, indexed by ``index``) parameter."""
    if param is None:
        return tirx.const(default, dtype)
    if _size(param.shape) == 1:
        return param(*([0] * len(param.shape))).astype(dtype)
    return param(index).astype(dtype)


def _int_conv(ctx, x, w, x_zero, w_zero):
    """int32 ``sum (x - x_zero)(w - w_zero[m])`` over each group's channels and the kernel window;
    padding contributes zero (it pads the zero-point-shifted input)."""
    from .nn import _conv_params

    dims, wdims = [int(d) for d in x.shape], [int(d) for d in w.shape]
    kernel = wdims[2:]
    nd, strides, dilations, pads = _conv_params(ctx, kernel)
    group = int(ctx.attr("group", 1))
    per_group_in, per_group_out = wdims[1], wdims[0] // group
    if per_group_in * group != dims[1] or wdims[0] % group:
        raise ctx.fail(f"the weight shape {wdims} does not fit {dims[1]} input channels in {group} groups")
    rc = te.reduce_axis((0, per_group_in), "rc")
    rk = [te.reduce_axis((0, k), f"rk{d}") for d, k in enumerate(kernel)]
    i32 = "int32"

    def body(n, m, *o):
        at, inside = [], tirx.const(True, "bool")
        for d in range(nd):
            p = o[d] * strides[d] + rk[d] * dilations[d] - pads[d]
            inside = tirx.And(inside, tirx.And(p >= 0, p < dims[2 + d]))
            at.append(tirx.max(0, tirx.min(p, dims[2 + d] - 1)))
        channel = tirx.floordiv(m, per_group_out) * per_group_in + rc
        xv = x(n, channel, *at).astype(i32) - _scalar_or_per(x_zero, 0, i32)
        wv = w(m, rc, *rk).astype(i32) - _scalar_or_per(w_zero, m, i32)
        return te.sum(tirx.Select(inside, xv * wv, tirx.const(0, i32)), axis=[rc, *rk])

    return te.compute(ctx.out_shape(), body, name="int_conv")


@lowering_if_missing("ConvInteger", kind="reduce")
def _conv_integer(ctx, x, w, x_zero=None, w_zero=None):
    return _int_conv(ctx, x, w, x_zero, w_zero)


@lowering_if_missing("QLinearConv", kind="reduce")
def _qlinear_conv(ctx, x, x_scale, x_zero, w, w_scale, w_zero, y_scale, y_zero=None, bias=None):
    """saturate(round_half_even((conv + bias) * x_scale * w_scale[m] / y_scale) + y_zero), in float64."""
    acc = _int_conv(ctx, x, w, x_zero, w_zero)
    out = ctx.out_dtype()
    info = np.iinfo(out)
    f64 = "float64"

    def body(n, m, *o):
        total = acc(n, m, *o) + (bias(m) if bias is not None else tirx.const(0, "int32"))
        scale = (_scalar_or_per(x_scale, 0, "float32") * _scalar_or_per(w_scale, m, "float32")
                 / _scalar_or_per(y_scale, 0, "float32")).astype(f64)
        q = total.astype(f64) * scale + _scalar_or_per(y_zero, 0, f64)
        q = tirx.max(tirx.const(float(info.min), f64), tirx.min(q, tirx.const(float(info.max), f64)))
        return tirx.nearbyint(q).astype(out)

    return te.compute(ctx.out_shape(), body, name="qlinear_conv")
