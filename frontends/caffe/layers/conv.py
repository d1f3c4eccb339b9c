"""Convolution, Deconvolution, InnerProduct, Pooling and Embed.

Caffe spells kernel, stride and pad three ways (``kernel_size`` repeated or
once, ``kernel_h``/``kernel_w``); ``_spatial_values`` reads them all.  Pooling
rounds its output size up (``ceil``) and then drops a last window that would
start inside the padding; ``caffe_pool`` computes that size and expresses it
with ONNX pools plus explicit end padding, so the ONNX op needs no ceil mode:

- MAX: ``MaxPool`` with pads ``[p, p + extra]`` (padding never wins a max;
  a window over padding only gives Caffe's -FLT_MAX, appended by ``Pad`` when
  the end padding would reach the kernel size);
- AVE: Caffe divides by the window clipped to the *padded* input, so the
  symmetric pad is materialised with ``Pad`` (zeros that count) and the
  extra end padding is excluded with ``count_include_pad=0``.
"""

from __future__ import annotations

import math

import numpy as np

from compiler import Value

from ..context import LayerContext, converter


def _given(p, field: str) -> list[int]:
    """The values written for ``field``: repeated in ConvolutionParameter, scalar in PoolingParameter."""
    value = getattr(p, field)
    if isinstance(value, (int, np.integer)):
        return [int(value)] if p.HasField(field) else []
    return [int(v) for v in value]


def _spatial_values(ctx: LayerContext, p, n: int, name: str, default: int | None) -> list[int]:
    """``n`` per-axis values of kernel/stride/pad, from whichever of Caffe's spellings is used.

    ``name_h``/``name_w`` win (2-D only); else one value for every axis or
    one per axis; else ``default`` (None: required).  Kernels and strides must be positive,
    pads non-negative.
    """
    values = _spelled_values(ctx, p, n, name, default)
    least = 0 if name == "pad" else 1
    if any(v < least for v in values):
        raise ctx.error(f"{name} {values} must be {'non-negative' if least == 0 else 'positive'}")
    return values


def _spelled_values(ctx: LayerContext, p, n: int, name: str, default: int | None) -> list[int]:
    field = f"{name}_size" if name == "kernel" else name
    h, w = f"{name}_h", f"{name}_w"
    if p.HasField(h) or p.HasField(w):
        if n != 2:
            raise ctx.error(f"{h}/{w} apply to 2-D inputs only")
        base = (_given(p, field) or [default])[0]
        values = [getattr(p, h) if p.HasField(h) else base, getattr(p, w) if p.HasField(w) else base]
        if None in values:
            raise ctx.error(f"{h} and {w} must be given together")
        return [int(v) for v in values]
    values = _given(p, field)
    if len(values) == 1:
        return values * n
    if len(values) == n:
        return values
    if not values and default is not None:
        return [default] * n
    raise ctx.error(f"{field} has {len(values)} values for {n} spatial axes")


def _conv_geometry(ctx: LayerContext, p, n: int) -> dict:
    """The Conv/ConvTranspose attributes of a ConvolutionParameter for ``n`` spatial axes."""
    kernel = _spatial_values(ctx, p, n, "kernel", None)
    stride = _spatial_values(ctx, p, n, "stride", 1)
    pad = _spatial_values(ctx, p, n, "pad", 0)
    dilation = [int(d) for d in p.dilation] or [1]
    dilation = dilation * n if len(dilation) == 1 else dilation
    if len(dilation) != n:
        raise ctx.error(f"dilation has {len(dilation)} values for {n} spatial axes")
    return {"kernel_shape": kernel, "strides": stride, "pads": pad + pad, "dilations": dilation, "group": int(p.group)}


@converter("Convolution", "Deconvolution")
def convert_convolution(ctx: LayerContext) -> list[Value]:
    """Conv / ConvTranspose; weights [out, in/group, k...] (deconv: [in, out/group, k...])."""
    ctx.expect_inputs(1)
    p = ctx.layer.convolution_param
    shape = ctx.shape()
    if p.axis not in (1, 1 - len(shape)):
        raise ctx.error("only channel axis 1 is supported")
    n, channels = len(shape) - 2, shape[1]
    attrs = _conv_geometry(ctx, p, n)
    group, out = attrs["group"], int(p.num_output)
    if group < 1 or out < 1 or any(d < 1 for d in attrs["dilations"]):
        raise ctx.error(f"group {group}, num_output {out} and dilation {attrs['dilations']} must be positive")
    if channels % group or out % group:
        raise ctx.error(f"group {group} does not divide channels {channels} and num_output {out}")
    deconv = ctx.layer.type == "Deconvolution"
    w_shape = [channels, out // group] if deconv else [out, channels // group]
    w_array = ctx.weight(0, w_shape + attrs["kernel_shape"])
    bias = ctx.weight(1, [out], "bias") if p.bias_term else None
    if deconv and group > 1:
        return [_grouped_deconvolution(ctx, attrs, w_array, bias)]
    operands = [ctx.inputs[0], ctx.const(w_array)] + ([ctx.const(bias)] if bias is not None else [])
    return [ctx.op("ConvTranspose" if deconv else "Conv", operands, attrs)]


def _grouped_deconvolution(ctx: LayerContext, attrs: dict, w: np.ndarray, bias: np.ndarray | None) -> Value:
    """A grouped ConvTranspose as one ConvTranspose per group, concatenated (same arithmetic).

    Emitted this way because grouped ConvTranspose is poorly supported by
    reference kernels; passes may re-fuse it.
    """
    group = attrs["group"]
    per_in, per_out = w.shape[0] // group, w.shape[1]
    parts = ctx.op("Split", [ctx.inputs[0], ctx.ints([per_in] * group)], {"axis": 1}, num_results=group)
    outs = []
    for g, part in enumerate(parts):
        operands = [part, ctx.const(w[g * per_in : (g + 1) * per_in])]
        if bias is not None:
            operands.append(ctx.const(bias[g * per_out : (g + 1) * per_out]))
        outs.append(ctx.op("ConvTranspose", operands, {**attrs, "group": 1}))
    return ctx.op("Concat", outs, {"axis": 1})


@converter("InnerProduct")
def convert_inner_product(ctx: LayerContext) -> list[Value]:
    """Flatten from ``axis`` then Gemm; weights [out, K] (``transpose``: [K, out])."""
    ctx.expect_inputs(1)
    p = ctx.layer.inner_product_param
    shape = ctx.shape()
    axis = ctx.axis(p.axis, len(shape))
    k, out = int(np.prod(shape[axis:])), int(p.num_output)
    w = ctx.weight(0, [k, out] if p.transpose else [out, k])
    x = ctx.inputs[0]
    if len(shape) != 2 or axis != 1:
        x = ctx.op("Reshape", [x, ctx.ints([int(np.prod(shape[:axis])), k])])
    operands = [x, ctx.const(w)]
    if p.bias_term:
        operands.append(ctx.const(ctx.weight(1, [out], "bias")))
    y = ctx.op("Gemm", operands, {"transB": 0 if p.transpose else 1})
    if axis != 1:
        y = ctx.op("Reshape", [y, ctx.ints(list(shape[:axis]) + [out])])
    return [y]


def caffe_pooled_size(size: int, kernel: int, stride: int, pad: int, ceil: bool = True) -> int:
    """Caffe's pooled output length: rounded up, minus a last window starting in the padding."""
    rounding = math.ceil if ceil else math.floor
    pooled = int(rounding((size + 2 * pad - kernel) / stride)) + 1
    if pad and (pooled - 1) * stride >= size + pad:
        pooled -= 1
    return pooled


def has_empty_window(size: int, kernel: int, stride: int, pad: int, pooled: int) -> bool:
    """Whether ceil rounding left a window that covers padding only (its start is at or past the input).

    Closed form, constant time in the input size: window ``i`` spans ``[i*stride - pad, i*stride - pad +
    kernel)``; with ``pad < kernel`` the first window always reaches the input, and window starts grow with
    ``i``, so some window is empty exactly when the last one starts at or past the input's end.
    """
    if pooled <= 0:
        return False
    if kernel - pad <= 0 or size <= 0:
        return True
    return (pooled - 1) * stride - pad >= size


def caffe_pool(ctx: LayerContext, x: Value, method: str, kernel, stride, pad, ceil: bool = True) -> Value:
    """Caffe MAX/AVE pooling of ``x`` [N, C, spatial...] expressed with ONNX pools.

    End padding stays below the kernel (runtimes such as onnxruntime refuse more); windows
    that would lie wholly beyond it are appended with ``Pad``: -FLT_MAX for MAX (Caffe's
    initial max), 0 for AVE.
    """
    spatial = x.type.shape[2:]
    outs = [caffe_pooled_size(s, k, st, p, ceil) for s, k, st, p in zip(spatial, kernel, stride, pad)]
    begin = list(pad) if method == "MAX" else [0] * len(pad)  # AVE pads explicitly with counted zeros
    size = list(spatial) if method == "MAX" else [s + 2 * p for s, p in zip(spatial, pad)]
    end = [min(max((o - 1) * st + k - n - b, 0), k - 1) for o, n, k, st, b in zip(outs, size, kernel, stride, begin)]
    reached = [(n + b + e - k) // st + 1 for n, b, e, k, st in zip(size, begin, end, kernel, stride)]
    attrs = {"kernel_shape": list(kernel), "strides": list(stride), "pads": begin + end}
    lowest = -np.finfo(np.float32).max
    if method == "MAX":
        y = ctx.op("MaxPool", [x], attrs)
        if any(has_empty_window(*args) for args in zip(spatial, kernel, stride, pad, reached)):
            # Caffe starts each max at -FLT_MAX, so a window with no input element gives -FLT_MAX, not -inf
            y = ctx.op("Max", [y, ctx.const(lowest)])
    else:
        if any(pad):
            x = ctx.op("Pad", [x, ctx.ints([0, 0] + list(pad) + [0, 0] + list(pad))])
        y = ctx.op("AveragePool", [x], {**attrs, "count_include_pad": 0})
    missing = [o - r for o, r in zip(outs, reached)]
    if any(missing):
        fill = ctx.const(lowest if method == "MAX" else 0.0)
        y = ctx.op("Pad", [y, ctx.ints([0] * (2 + len(missing)) + [0, 0] + missing), fill])
    return y


@converter("Pooling")
def convert_pooling(ctx: LayerContext) -> list[Value]:
    """MAX/AVE pooling with Caffe's output sizes; global pooling as ONNX global pools."""
    ctx.expect_inputs(1)
    p = ctx.layer.pooling_param
    shape = ctx.shape()
    method = p.PoolMethod.Name(p.pool)
    if method not in ("MAX", "AVE"):
        raise ctx.error(f"{method} pooling is not supported (only MAX and AVE)")
    if p.global_pooling:
        return [ctx.op("GlobalMaxPool" if method == "MAX" else "GlobalAveragePool", [ctx.inputs[0]])]
    n = len(shape) - 2
    kernel = _spatial_values(ctx, p, n, "kernel", None)
    stride = _spatial_values(ctx, p, n, "stride", 1)
    pad = _spatial_values(ctx, p, n, "pad", 0)
    if any(pd >= k for pd, k in zip(pad, kernel)):
        raise ctx.error(f"pad {pad} must be smaller than the kernel {kernel}")
    ceil = not (p.HasField("round_mode") and p.round_mode == p.FLOOR)
    return [caffe_pool(ctx, ctx.inputs[0], method, kernel, stride, pad, ceil)]


@converter("Embed")
def convert_embed(ctx: LayerContext) -> list[Value]:
    """Row lookup in a [input_dim, num_output] table (indices given as floats), plus bias."""
    ctx.expect_inputs(1)
    p = ctx.layer.embed_param
    table = ctx.const(ctx.weight(0, [p.input_dim, p.num_output]))
    y = ctx.op("Gather", [table, ctx.op("Cast", [ctx.inputs[0]], {"to": 7})], {"axis": 0})
    if p.bias_term:
        y = ctx.op("Add", [y, ctx.const(ctx.weight(1, [p.num_output], "bias"))])
    return [y]
