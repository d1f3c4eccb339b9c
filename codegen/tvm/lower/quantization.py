"""Lowerings of quantisation: QuantizeLinear and DequantizeLinear, the integer matmuls and
convolutions (MatMulInteger, QLinearMatMul, ConvInteger, QLinearConv).

    DequantizeLinear:  y = (x - zero_point) * scale
    QuantizeLinear:    y = saturate(round_half_to_even(x / scale) + zero_point)

A QuantizeLinear whose ``x`` is computed in the same kernel (the requantizing epilogue of a fused
group: a residual block's ``Q(DQ(conv) + DQ(skip))``) multiplies by ``1 / scale`` where the scale is
per tensor, as onnxruntime's fused QLinearConv and QLinearAdd do: a division per element cost 4% of
the int8 ResNet-50's residual convs (0.414 -> 0.397 ms at 56 x 56; 0.977-0.993 of the model's time in
two interleaved runs of ``benchmarks/compare_libraries.py``). The two differ only where ``x / scale``
is within a rounding step of a half, by one step.

``scale``/``zero_point`` are run-time operands: a scalar (per tensor), a 1-D tensor along
``axis`` (per channel), or a tensor of ``x``'s rank whose ``axis`` dim has ``ceil(n / block_size)``
entries (blocked).  Quantised types are the 8/16/32-bit integers and the low-precision types
kernels keep as uint8 storage (int4/uint4/int2/uint2, float8, float4_e2m1fn; see ``codegen.tvm.dtypes``):
those are decoded to / encoded from float32 with round-half-to-even; float8 outputs honour
``saturate``, integer outputs always clamp.  A scale may itself be low precision (float8_e8m0fnu).

    MatMulInteger(a, b, za, zb)    int32 sum (a - za)(b - zb)
    QLinearMatMul(a, sa, za, b, sb, zb, sy, zy)
                                   saturate(round(sum (a - za)(b - zb) * sa sb / sy) + zy)
    ConvInteger / QLinearConv      the same over a convolution window

Matmul operands broadcast over leading (batch) dims like numpy; zero points and scales are
per-tensor (scalars or one-element tensors) or, for QLinearMatMul, per row of ``a`` / column of ``b``.
"""

from __future__ import annotations

import functools

import numpy as np
from tvm import te, tirx

from ..dtypes import (
    FLOAT_FORMATS,
    INT_FORMATS,
    decode,
    encode_float,
    encode_int,
    is_lowp,
)
from ..registry import lowering
from ..te_util import read_if, size_of
from .linalg import run_time_matmul
from .nn.conv import conv_params
from .quantization_depthwise import (
    depthwise_accumulator,
    depthwise_applies,
    depthwise_conv_integer,
    depthwise_takes,
    pack_depthwise_weight,
    unpacked_depthwise_weight,
)
from .quantization_dynamic import (  # (and the DynamicQuantizeLinear lowering)
    centred,
    float_source,
    narrowed,
    round_half_even,
    zero_as_float,
)
from .quantization_gemm import (
    fast_conv_applies,
    fast_matmul_applies,
    pack_conv_integer_weight,
    pack_qlinear_matmul_weight,
    pack_vnni_conv_weight,
    pack_vnni_matmul_weight,
    packed_conv_takes,
    requantized_conv,
    shifted_weight_zero,
    unpacked_matmul_weight,
    unpacked_weight,
    vnni_conv,
    vnni_conv_integer,
    vnni_matmul_integer,
)


def _param_index(param, index, axis: int, block: int):
    """The element of ``scale``/``zero_point`` that applies at ``x[index]``."""
    rank = len(param.shape)
    if rank == 0:
        return param()
    if block <= 0 and rank == 1:
        return param(index[axis] if int(param.shape[0]) != 1 else 0)
    at = list(index)
    if block > 0:
        at[axis] = tirx.indexdiv(index[axis], block)
    return param(*at)


def _value(ctx, operand: int, element, wide: str):
    """``element`` of operand ``operand`` as a ``wide`` value, decoding low-precision storage."""
    dtype = str(np.dtype(ctx.in_types[operand][1]))
    return (decode(element, dtype) if is_lowp(dtype) else element).astype(wide)


def _axis(ctx, rank: int) -> int:
    return int(ctx.attr("axis", 1)) % max(rank, 1)


@lowering("DequantizeLinear")
def _dequantize(ctx, x, scale, zero_point=None):
    rank, block = len(x.shape), int(ctx.attr("block_size", 0))
    axis = _axis(ctx, rank)
    out_dtype = ctx.out_dtype()

    x_dtype = str(np.dtype(ctx.in_types[0][1]))
    exact = "int32" if x_dtype not in FLOAT_FORMATS else "float32"  # x - zero_point without rounding
    source = float_source(x)  # x narrowed from a float32 requantization in this kernel
    if source is not None:
        exact = "float32"
        whole = centred(ctx, source[0], source[1], x_dtype)  # x less the zero point it was narrowed with

    def body(*i):
        if source is None:
            v = _value(ctx, 0, x(*i), exact)
        elif zero_point is not None and source[1] is not None and zero_point.same_as(source[1]):  # the same point
            return (whole(*i) * _value(ctx, 1, _param_index(scale, i, axis, block), "float32")).astype(out_dtype)
        else:
            zero = source[1]
            v = whole(*i) if zero is None else whole(*i) + zero_as_float(zero)
        if zero_point is not None:
            v = v - _value(ctx, 2, _param_index(zero_point, i, axis, block), exact)
        return (v.astype("float32") * _value(ctx, 1, _param_index(scale, i, axis, block), "float32")).astype(out_dtype)

    return te.compute(ctx.out_shape(), body, name="dequantize")


@lowering("QuantizeLinear")
def _quantize(ctx, x, scale, zero_point=None):
    rank, block = len(x.shape), int(ctx.attr("block_size", 0))
    axis = _axis(ctx, rank)
    out_dtype = ctx.out_dtype()
    saturate = bool(ctx.attr("saturate", 1))
    wide = "float32"
    if out_dtype not in FLOAT_FORMATS and out_dtype not in INT_FORMATS and np.dtype(out_dtype).kind not in "iu":
        raise ctx.fail(f"quantising to {out_dtype} is not supported")

    per_tensor = size_of(scale.shape) == 1
    reciprocal = 0 in ctx.fused_operands and per_tensor and out_dtype not in FLOAT_FORMATS

    def scaled(i):
        s = _value(ctx, 1, _param_index(scale, i, axis, block), wide)
        if reciprocal:  # an epilogue's requantization (module docstring)
            return _value(ctx, 0, x(*i), wide) * (tirx.const(1.0, wide) / s)
        return _value(ctx, 0, x(*i), wide) / s

    def zero(i):
        return _value(ctx, 2, _param_index(zero_point, i, axis, block), wide)

    if out_dtype in FLOAT_FORMATS:

        def body(*i):
            q = scaled(i)
            if zero_point is not None:
                q = q + zero(i)
            return encode_float(q, out_dtype, saturate)

        return te.compute(ctx.out_shape(), body, name="quantize")

    def rounded(i):
        q = round_half_even(ctx, scaled(i))
        return q + zero(i) if zero_point is not None else q

    if out_dtype in INT_FORMATS:
        return te.compute(ctx.out_shape(), lambda *i: encode_int(rounded(i), out_dtype, saturate=True), name="quantize")
    info = np.iinfo(out_dtype)
    lo, hi = tirx.const(float(info.min), wide), tirx.const(float(info.max), wide)
    one_zero = zero_point is None or size_of(zero_point.shape) == 1
    if block == 0 and one_zero and np.dtype(out_dtype).itemsize <= 2:  # a DequantizeLinear after it in the
        # kernel reads the float (``narrowed``)
        values = te.compute(ctx.out_shape(), lambda *i: scaled(i), name="quantize_scaled")
        return narrowed(ctx, values, zero_point, out_dtype, "quantize")

    def body(*i):
        return tirx.max(lo, tirx.min(rounded(i), hi)).astype(out_dtype)

    return te.compute(ctx.out_shape(), body, name="quantize")


def _scalar(param, dtype: str):
    """A per-tensor quantisation parameter (0-d or one-element tensor) as an expression."""
    if param is None:
        return tirx.const(0, dtype)
    return (param() if len(param.shape) == 0 else param(*([0] * len(param.shape)))).astype(dtype)


def _per(param, index, dtype: str):
    """A quantisation parameter that is per tensor or per ``index`` (a row of a, a column of b)."""
    if param is None:
        return tirx.const(0, dtype)
    size = int(np.prod([int(d) for d in param.shape])) if len(param.shape) else 1
    if size == 1:
        return _scalar(param, dtype)
    return param(*([0] * (len(param.shape) - 1)), index).astype(dtype)


def _int_matmul(ctx, a, b, za_of, zb_of, name: str):
    """int32 ``sum_k (a[..., i, k] - za(i)) (b[..., k, j] - zb(j))`` with numpy batch broadcasting."""
    out_shape = ctx.out_shape()
    ra, rb, ro = len(a.shape), len(b.shape), len(out_shape)
    kdim = int(a.shape[-1])
    k = te.reduce_axis((0, kdim), name="k")

    def batch_index(tensor, rank, o):
        lead = []
        for d in range(rank - 2):
            od = o[ro - 2 - (rank - 2) + d]
            lead.append(od if int(tensor.shape[d]) != 1 else 0)
        return lead

    def body(*o):
        i, j = o[-2], o[-1]
        av = a(*batch_index(a, ra, o), i, k).astype("int32") - za_of(i)
        bv = b(*batch_index(b, rb, o), k, j).astype("int32") - zb_of(j)
        return te.sum(av * bv, axis=k)

    if ra < 2 or rb < 2:
        raise ctx.fail("1-D operands are not supported")
    return te.compute(out_shape, body, name=name)


@lowering("MatMulInteger", kind="vnni_matmul", static=(3,), runtime=(3,), prepack={1: pack_vnni_matmul_weight})
def _matmul_integer(ctx, a, b, za=None, zb=None):
    """The VNNI kernel (``quantization_gemm``) for a constant 8-bit ``b`` with a constant per-tensor
    zero point (or zeros per column) and a per-tensor ``za``; for a run-time ``b``, the float
    matmul's register tile (``_run_time_product``); the generic reduction otherwise."""
    if fast_matmul_applies(ctx):
        return vnni_matmul_integer(ctx, a, b, za, shifted_weight_zero(ctx, 3))
    if zb is None and ctx.static(3) is not None:
        zb = _StaticParam(ctx.static(3))
    if _run_time_tile_applies(ctx, a, b, 1):
        acc = _run_time_product(ctx, a, b, za, zb)
        if str(acc.dtype) == "int32":
            return acc
        return te.compute(acc.shape, lambda *i: acc(*i).astype("int32"), name="matmul_int")
    if 1 in ctx.packed:
        b = unpacked_matmul_weight(ctx, b, 3)
    return _int_matmul(ctx, a, b, lambda i: _per(za, i, "int32"), lambda j: _per(zb, j, "int32"), "matmul_int")


# a float32 sum of integer products |(a - za)(b - zb)| <= 255 * 255 is exact while it stays below 2**24:
# for up to 256 of them whatever their values
EXACT_FLOAT_DEPTH = 256


def _run_time_tile_applies(ctx, a, b, b_operand: int) -> bool:
    """Whether an integer product whose ``b`` (operand ``b_operand``) comes at run time, such as the
    attention products of a quantized transformer, runs on the float matmul's register tile
    (``_run_time_product``): a CPU target, 8-bit operands of rank 2 or more."""
    if ctx.schedule is None or b_operand in ctx.packed or len(a.shape) < 2 or len(b.shape) < 2:
        return False
    return all(str(t.dtype) in ("int8", "uint8") for t in (a, b))


def _run_time_product(ctx, a, b, za, zb):
    """``sum_k (a - za) (b - zb)`` of two run-time 8-bit operands on ``schedule_matmul``'s register
    tile: in float32 where K is at most ``EXACT_FLOAT_DEPTH`` (every partial sum is then an integer
    below 2^24, so the int32 one exactly), else in int32 (``vpmulld``; 12 heads of 384 x 384 x 64
    took 3.7 ms where the inexact float32 one takes 3.3 and the generic reduction 47, 1 thread)."""
    centred_a = te.compute(a.shape, lambda *i: a(*i).astype("int32") - _per(za, i[-2], "int32"), name="qmm_a")
    centred_b = te.compute(b.shape, lambda *i: b(*i).astype("int32") - _per(zb, i[-1], "int32"), name="qmm_b")
    exact_in_float = int(a.shape[-1]) <= EXACT_FLOAT_DEPTH
    return run_time_matmul(ctx, centred_a, centred_b, "float32" if exact_in_float else "int32")


@lowering("QLinearMatMul", kind="vnni_matmul", static=(5,), runtime=(5,), prepack={3: pack_qlinear_matmul_weight})
def _qlinear_matmul(ctx, a, sa, za, b, sb, zb, sy, zy=None):
    """MatMulInteger's packed kernel for a constant 8-bit ``b`` with a constant per-tensor zero point
    (or zeros per column) and a per-tensor ``za`` (what onnxruntime's ``quantize_static`` and
    ``ember quantize`` write for a Linear layer); for a run-time ``b``, the float matmul's register
    tile (``_run_time_product``); the generic int32 reduction otherwise. The requantization is the
    epilogue of each. The generic one took 42 ms for a 128 x 768 x 768 product that onnxruntime runs
    in 0.62 (1 thread)."""
    if zb is None and ctx.static(5) is not None:
        zb = _StaticParam(ctx.static(5))
    if fast_matmul_applies(ctx, b=3, a_zero=2, b_zero=5):
        acc = vnni_matmul_integer(ctx, a, b, za, shifted_weight_zero(ctx, 5))
    elif _run_time_tile_applies(ctx, a, b, 3):
        acc = _run_time_product(ctx, a, b, za, zb)
    else:
        if 3 in ctx.packed:
            b = unpacked_matmul_weight(ctx, b, 5)
        acc = _int_matmul(ctx, a, b, lambda i: _per(za, i, "int32"), lambda j: _per(zb, j, "int32"), "qmatmul_acc")
    out = ctx.out_dtype()
    f32 = "float32"

    def scaled(*o):
        i, j = o[-2], o[-1]
        return acc(*o).astype(f32) * (_per(sa, i, f32) * _per(sb, j, f32) / _scalar(sy, f32))

    return narrowed(ctx, te.compute(ctx.out_shape(), scaled, name="qmatmul_scaled"), zy, out, "qmatmul")


# ConvInteger, QLinearConv ------------------------------------------------------------------------------


def _scalar_or_per(param, index, dtype: str, default=0):
    """A per-tensor (one element) or per-output-channel (1-D, indexed by ``index``) parameter."""
    if param is None:
        return tirx.const(default, dtype)
    if size_of(param.shape) == 1:
        return param(*([0] * len(param.shape))).astype(dtype)
    return param(index).astype(dtype)


def _int_conv(ctx, x, w, x_zero, w_zero):
    """int32 ``sum (x - x_zero)(w - w_zero[m])`` over each group's channels and the kernel window;
    padding contributes zero (it pads the zero-point-shifted input)."""
    dims, wdims = [int(d) for d in x.shape], [int(d) for d in w.shape]
    kernel = wdims[2:]
    nd, strides, dilations, pads = conv_params(ctx, kernel)
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
        return te.sum(read_if(inside, xv * wv, tirx.const(0, i32)), axis=[rc, *rk])

    return te.compute(ctx.out_shape(), body, name="int_conv")


def _integer_conv_native(attrs, in_types, constant, weight: int = 3, weight_zero: int = 5) -> bool:
    """The integer conv lowerings' ``native`` fact: the packed kernel or the depthwise one takes it."""
    return packed_conv_takes(attrs, in_types, constant, weight, weight_zero) or depthwise_takes(
        attrs, in_types, constant, weight, weight_zero
    )


def _pack_integer_conv_weight(attrs, in_types, w, schedule=None, weight: int = 3):
    """A depthwise conv's weight as the depthwise kernel reads it, else as the packed kernel does."""
    packed = pack_depthwise_weight(attrs, in_types, w, schedule, weight)
    if packed is not w:
        return packed
    pack = pack_vnni_conv_weight if weight == 3 else pack_conv_integer_weight
    return pack(attrs, in_types, w, schedule)


def _pack_conv_integer_weight(attrs, in_types, w, schedule=None):
    """ConvInteger's weight (operand 1) packed as QLinearConv's (operand 3) is."""
    return _pack_integer_conv_weight(attrs, in_types, w, schedule, weight=1)


_pack_integer_conv_weight.uses_schedule = True
_pack_conv_integer_weight.uses_schedule = True


@lowering(
    "ConvInteger",
    kind="vnni_conv",
    static=(3,),
    runtime=(3,),
    prepack={1: _pack_conv_integer_weight},
    native=functools.partial(_integer_conv_native, weight=1, weight_zero=3),
)
def _conv_integer(ctx, x, w, x_zero=None, w_zero=None):
    """QLinearConv's VNNI kernel without the requantization where it applies (group 1, a constant int8
    weight with zero zero points: onnxruntime's ``quantize_dynamic`` with its default int8 weights),
    the depthwise kernel for such a depthwise conv (``quantization_depthwise``), else the generic
    reduction (``integer-conv-as-float`` makes most of those float32 Convs first)."""
    if depthwise_applies(ctx, w, weight_zero=3):
        return depthwise_conv_integer(ctx, x, x_zero, w)
    if fast_conv_applies(ctx, weight=1, weight_zero=3):
        return vnni_conv_integer(ctx, x, x_zero, w)
    if 1 in ctx.packed:
        w = unpacked_depthwise_weight(w) if str(w.dtype) == "float32" else unpacked_weight(ctx, w)
    if w_zero is None and ctx.static(3) is not None:
        w_zero = _StaticParam(ctx.static(3))
    return _int_conv(ctx, x, w, x_zero, w_zero)


class _StaticParam:
    """A compile-time scale/zero point (``ctx.static``) read like the TE tensor it replaces."""

    def __init__(self, value):
        self.value = np.asarray(value).reshape(-1)
        self.shape = self.value.shape

    def __call__(self, index):
        values = self.value
        if values.size == 1 or np.all(values == values[0]):
            return tirx.const(values[0].item(), str(values.dtype))
        expr = tirx.const(values[-1].item(), str(values.dtype))
        for m in range(values.size - 2, -1, -1):  # rare (asymmetric per-channel weights): a select chain
            expr = tirx.Select(index == m, tirx.const(values[m].item(), str(values.dtype)), expr)
        return expr


@lowering(
    "QLinearConv",
    kind="vnni_conv",
    static=(5,),
    runtime=(5,),
    prepack={3: _pack_integer_conv_weight},
    native=_integer_conv_native,
)
def _qlinear_conv(ctx, x, x_scale, x_zero, w, w_scale, w_zero, y_scale, y_zero=None, bias=None):
    """The VNNI kernel (``quantization_gemm``) or the depthwise one (``quantization_depthwise``)
    where they apply, else the generic reduction:
    saturate(round_half_even((conv + bias) * x_scale * w_scale[m] / y_scale) + y_zero), in float64."""
    if depthwise_applies(ctx, w, weight_zero=5):
        exact = depthwise_accumulator(ctx, x, x_zero, w)
        return requantized_conv(ctx, exact, x_scale, w_scale, y_scale, y_zero, bias)
    if fast_conv_applies(ctx):
        return vnni_conv(ctx, x, x_scale, x_zero, w, w_scale, y_scale, y_zero, bias)
    if 3 in ctx.packed:
        w = unpacked_depthwise_weight(w) if str(w.dtype) == "float32" else unpacked_weight(ctx, w)
    if w_zero is None and ctx.static(5) is not None:
        w_zero = _StaticParam(ctx.static(5))
    acc = _int_conv(ctx, x, w, x_zero, w_zero)
    out = ctx.out_dtype()
    info = np.iinfo(out)
    f64 = "float64"

    def body(n, m, *o):
        total = acc(n, m, *o) + (bias(m) if bias is not None else tirx.const(0, "int32"))
        scale = (
            _scalar_or_per(x_scale, 0, "float32")
            * _scalar_or_per(w_scale, m, "float32")
            / _scalar_or_per(y_scale, 0, "float32")
        ).astype(f64)
        q = total.astype(f64) * scale + _scalar_or_per(y_zero, 0, f64)
        q = tirx.max(tirx.const(float(info.min), f64), tirx.min(q, tirx.const(float(info.max), f64)))
        return tirx.nearbyint(q).astype(out)

    return te.compute(ctx.out_shape(), body, name="qlinear_conv")
