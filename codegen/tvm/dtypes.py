"""Low-precision and sub-byte tensor types inside kernels: float8 (e4m3fn, e4m3fnuz, e5m2, e5m2fnuz,
e8m0fnu), float4_e2m1fn and int4/uint4/int2/uint2.

LLVM's CPU codegen in TVM cannot compute with these types, so kernels keep them as ``uint8``
storage, one element per byte, laid out exactly as ml_dtypes arrays are (sub-byte values sit in
the low bits; signed ones as two's complement of their width).  Conversions to and from them are
integer bit manipulation written in TE, so their rounding is under our control: round to nearest
even like ml_dtypes / onnx.reference, with ONNX's ``saturate`` and the fnuz NaN / no-negative-zero
rules.  Everything goes through float32; float8/float4 values are exact in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tvm import tirx

from .te_util import expr_dtype, let


@dataclass(frozen=True)
class FloatFormat:
    """A small binary float: ``exp`` exponent bits, ``man`` mantissa bits, exponent ``bias``.

    ``special``: "ieee" (e5m2: inf and NaN at the top exponent), "fn" (e4m3fn: only all-ones is NaN,
    no inf), "fnuz" (0x80 is the single NaN, no inf, no -0), "fn4" (e2m1fn: no inf, no NaN, overflow
    saturates), "e8m0" (unsigned powers of two, 0xFF is NaN).
    """

    exp: int
    man: int
    bias: int
    special: str

    @property
    def width(self) -> int:
        return self.exp + self.man + (0 if self.special == "e8m0" else 1)

    @property
    def max_bits(self) -> int:
        """Encoding of the largest finite magnitude."""
        top = (1 << (self.exp + self.man)) - 1
        return {"ieee": top - (1 << self.man), "fn": top - 1, "fnuz": top, "fn4": top, "e8m0": 0xFE}[self.special]


FLOAT_FORMATS = {
    "float8_e4m3fn": FloatFormat(4, 3, 7, "fn"),
    "float8_e4m3fnuz": FloatFormat(4, 3, 8, "fnuz"),
    "float8_e5m2": FloatFormat(5, 2, 15, "ieee"),
    "float8_e5m2fnuz": FloatFormat(5, 2, 16, "fnuz"),
    "float8_e8m0fnu": FloatFormat(8, 0, 127, "e8m0"),
    "float4_e2m1fn": FloatFormat(2, 1, 1, "fn4"),
}


# sub-byte integers: name -> (bits, signed)
INT_FORMATS = {"int4": (4, True), "uint4": (4, False), "int2": (2, True), "uint2": (2, False)}


LOWP_DTYPES = frozenset(FLOAT_FORMATS) | frozenset(INT_FORMATS)


def is_lowp(dtype) -> bool:
    """Whether ``dtype`` is one of the types kernels keep as uint8 storage."""
    return str(np.dtype(dtype)) in LOWP_DTYPES if not isinstance(dtype, str) else dtype in LOWP_DTYPES


def storage_dtype(dtype) -> str:
    """The dtype a kernel buffer of logical ``dtype`` has: ``uint8`` for low-precision types."""
    name = str(np.dtype(dtype)) if not isinstance(dtype, str) else dtype
    return "uint8" if name in LOWP_DTYPES else name


def as_storage(value):
    """A lowering's static operand or attribute as kernels see it: arrays of a low-precision type
    become their uint8 storage bytes (Pad's constant, ConstantOfShape's value ...), so that a
    lowering which builds constants in the tensor's (storage) dtype gets the right bits."""
    if isinstance(value, (np.ndarray, np.generic)) and is_lowp(value.dtype):
        return np.asarray(value).view(np.uint8)
    if isinstance(value, list):
        return [as_storage(v) for v in value]
    return value


def _i32(v: int):
    return tirx.const(v, "int32")


def _f32(v: float):
    return tirx.const(v, "float32")


def _let(value, body):
    """``body(v)`` with ``v`` bound once to ``value``: a conversion uses its operand many times, and
    without the binding every use would copy the operand's whole expression (a decoded input, a
    division by a scale...), which makes TIR and compile time grow multiplicatively."""
    return let("v", value, body)


def decode(byte, dtype: str):
    """Value of storage ``byte`` (a uint8 expression) of low-precision ``dtype``: float32 for the
    float formats, int32 for the sub-byte integers."""
    return _let(byte.astype("int32"), lambda b: _decode_int32(b, dtype))


def _decode_int32(b, dtype: str):
    if dtype in INT_FORMATS:
        bits, signed = INT_FORMATS[dtype]
        v = b & _i32((1 << bits) - 1)
        if signed:
            half = _i32(1 << (bits - 1))
            v = (v ^ half) - half
        return v
    fmt = FLOAT_FORMATS[dtype]
    if fmt.special == "e8m0":
        # 2^(b - 127); b = 0 is the float32 subnormal 2^-127
        bits = tirx.Select(b == _i32(0), _i32(0x00400000), b << _i32(23))
        return tirx.Select(b == _i32(0xFF), _f32(float("nan")), tirx.reinterpret("float32", bits))
    _, _, e, m = _fields(b, fmt)
    normal = tirx.reinterpret("float32", ((e + _i32(127 - fmt.bias)) << _i32(23)) | (m << _i32(23 - fmt.man)))
    sub = m.astype("float32") * _f32(2.0 ** (1 - fmt.bias - fmt.man))
    return _let(tirx.Select(e == _i32(0), sub, normal), lambda value: _decode_specials(b, value, fmt))


def _fields(b, fmt: FloatFormat):
    """(sign, magnitude bits, exponent field, mantissa field) of the int32 byte ``b``."""
    sign = (b >> _i32(fmt.exp + fmt.man)) & _i32(1)
    mag = b & _i32((1 << (fmt.exp + fmt.man)) - 1)
    return sign, mag, mag >> _i32(fmt.man), mag & _i32((1 << fmt.man) - 1)


def _decode_specials(b, value, fmt: FloatFormat):
    """Sign, infinities and NaNs of the decoded magnitude ``value`` of byte ``b``."""
    mag_mask = (1 << (fmt.exp + fmt.man)) - 1
    sign, mag, e, m = _fields(b, fmt)
    if fmt.special == "ieee":
        top = _i32((1 << fmt.exp) - 1)
        value = tirx.Select(e == top, tirx.Select(m == _i32(0), _f32(float("inf")), _f32(float("nan"))), value)
    elif fmt.special == "fn":
        value = tirx.Select(mag == _i32(mag_mask), _f32(float("nan")), value)
    value = tirx.Select(sign == _i32(1), -value, value)
    if fmt.special == "fnuz":
        value = tirx.Select(b == _i32(0x80), _f32(float("nan")), value)
    return value


def encode_float(value, dtype: str, saturate: bool = True, round_mode: str = "up"):
    """Storage byte (uint8) of float ``value`` rounded to float format ``dtype``.

    Round to nearest even, once, from the value itself: float64 values are rounded from their own
    bits (ONNX's Cast rounds ``x`` to the target's mantissa width; going through float32 first
    would round twice just off a midpoint), narrower floats from float32, where they are exact.
    ``saturate``: out-of-range values (and infinities) become the largest finite value of their
    sign; otherwise they become inf (e5m2) or NaN (the fn/fnuz formats), as ONNX's Cast tables say.
    float4_e2m1fn always saturates (it has neither).  ``round_mode`` is used by float8_e8m0fnu only
    ("up", "down" or "nearest", as ONNX's Cast); it reads float32 bits, as onnx.numpy_helper's
    ``to_float8e8m0`` does.
    """
    fmt = FLOAT_FORMATS[dtype]
    if fmt.special == "e8m0":
        bits = tirx.reinterpret("int32", value.astype("float32"))
        return _let(bits, lambda b: _encode_e8m0(b, saturate, round_mode))
    src = _SOURCE_FLOATS["float64" if expr_dtype(value) == "float64" else "float32"]
    bits = tirx.reinterpret(src.int_dtype, value.astype(src.name))
    return _let(bits, lambda b: _encode_bits(b, src, fmt, saturate))


@dataclass(frozen=True)
class _SourceFloat:
    """An IEEE float that conversions read as integer bits: ``man`` mantissa bits, exponent ``bias``."""

    name: str
    int_dtype: str
    man: int
    bias: int

    def const(self, v: int):
        return tirx.const(v, self.int_dtype)


_SOURCE_FLOATS = {
    "float32": _SourceFloat("float32", "int32", 23, 127),
    "float64": _SourceFloat("float64", "int64", 52, 1023),
}


def _encode_bits(bits, src: _SourceFloat, fmt: FloatFormat, saturate: bool):
    """The storage byte of the ``src`` float whose bits are ``bits`` in ``fmt``: see ``encode_float``."""
    c = src.const
    width = 32 if src.int_dtype == "int32" else 64
    sign = (bits >> c(width - 1)) & c(1)
    mag = bits & c((1 << (width - 1)) - 1)
    inf_bits = ((1 << (width - 1 - src.man)) - 1) << src.man
    is_nan = mag > c(inf_bits)
    is_inf = mag == c(inf_bits)
    # normal range of the target: round the source mantissa to ``man`` bits, carry into the exponent
    shift = src.man - fmt.man
    rebased = mag - c((src.bias - fmt.bias) << src.man)
    odd = (rebased >> c(shift)) & c(1)
    normal = (rebased + c((1 << (shift - 1)) - 1) + odd) >> c(shift)
    # subnormal range: a multiple of the smallest subnormal (power-of-two scaling is exact)
    scaled = tirx.reinterpret(src.name, mag) * tirx.const(2.0 ** (fmt.bias + fmt.man - 1), src.name)
    sub = tirx.nearbyint(scaled).astype(src.int_dtype)
    min_normal_bits = (src.bias + 1 - fmt.bias) << src.man
    rounded = tirx.Select(mag < c(min_normal_bits), sub, normal)
    if src.int_dtype != "int32":  # an encoding above the largest finite one only needs to stay above it
        rounded = tirx.min(rounded, c(fmt.max_bits + 1)).astype("int32")
        sign = sign.astype("int32")
    return _let(rounded, lambda enc: _encode_finish(enc, sign, is_nan, is_inf, fmt, saturate))


def _encode_finish(enc, sign, is_nan, is_inf, fmt: FloatFormat, saturate: bool):
    """Overflow, NaN and sign of the rounded magnitude encoding ``enc``."""
    max_bits = _i32(fmt.max_bits)
    if saturate or fmt.special == "fn4":
        enc = tirx.Select(tirx.Or(enc > max_bits, is_inf), max_bits, enc)
    else:
        overflow = _i32({"ieee": fmt.max_bits + 1, "fn": fmt.max_bits + 1, "fnuz": 0x80}[fmt.special])
        enc = tirx.Select(tirx.Or(enc > max_bits, is_inf), overflow, enc)
    sign_shift = _i32(fmt.exp + fmt.man)
    if fmt.special == "fnuz":
        # no negative zero; the single NaN is 0x80 and carries no sign
        signed = tirx.Select(tirx.Or(enc == _i32(0), enc == _i32(0x80)), enc, enc | (sign << sign_shift))
        out = tirx.Select(is_nan, _i32(0x80), signed)
    elif fmt.special == "fn4":
        out = tirx.Select(is_nan, _i32(0), enc | (sign << sign_shift))
    else:
        nan = _i32((1 << (fmt.exp + fmt.man)) - 1)  # all ones: a NaN in both ieee and fn
        out = tirx.Select(is_nan, nan, enc) | (sign << sign_shift)
    return out.astype("uint8")


def _encode_e8m0(bits, saturate: bool, round_mode: str):
    """float8_e8m0fnu from float32 bits, the rule of onnx.numpy_helper.to_float8e8m0."""
    exponent = (bits >> _i32(23)) & _i32(0xFF)
    special = exponent == _i32(0xFF)
    if round_mode == "nearest":
        g = (bits & _i32(0x400000)) != _i32(0)
        r = (bits & _i32(0x200000)) != _i32(0)
        s = (bits & _i32(0x1FFFFF)) != _i32(0)
        up = tirx.And(g, tirx.Or(tirx.Or(r, s), exponent > _i32(0)))
    elif round_mode == "up":
        up = (bits & _i32(0x7FFFFF)) != _i32(0)
    elif round_mode == "down":
        up = tirx.const(False, "bool")
    else:
        raise ValueError(f"round_mode must be 'up', 'down' or 'nearest', not {round_mode!r}")
    if saturate:
        up = tirx.And(up, exponent != _i32(0xFE))
    rounded = (exponent + tirx.Select(up, _i32(1), _i32(0))) & _i32(0xFF)
    return tirx.Select(special, _i32(0xFF), rounded).astype("uint8")


def encode_int(value, dtype: str, saturate: bool = False):
    """Storage byte of sub-byte integer ``dtype`` for ``value`` (any integer or float expression).

    Integers wrap to the type's width. Floats are truncated toward zero; one whose truncation is out
    of the type's range (NaN and infinities too) gives 0. ONNX's Cast leaves that case undefined;
    0 is what onnx.reference (ml_dtypes >= 0.7) and the ONNX suite's expected data give, and what
    the interpreter gives. ``saturate`` instead rounds half to even and clamps to the type's range
    (QuantizeLinear).
    """
    bits, signed = INT_FORMATS[dtype]
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if saturate:
        v = value.astype("float32")
        if "float" in expr_dtype(value):
            v = tirx.nearbyint(v)
        v = tirx.max(_f32(float(lo)), tirx.min(v, _f32(float(hi)))).astype("int32")
    elif "float" in expr_dtype(value):
        f = value.astype("float32") if expr_dtype(value) != "float64" else value

        def in_range(g):
            fits = tirx.And(g > tirx.const(lo - 1, expr_dtype(g)), g < tirx.const(hi + 1, expr_dtype(g)))
            return tirx.Select(fits, g.astype("int64"), tirx.const(0, "int64"))

        v = _let(f, in_range)
    else:
        v = value
    return (v.astype("int64") & tirx.const((1 << bits) - 1, "int64")).astype("uint8")


def to_lowp(value, dtype: str, saturate: bool = True, round_mode: str = "up"):
    """Storage byte of ``value`` cast to low-precision ``dtype`` (a Cast, with ONNX's attributes)."""
    if dtype in INT_FORMATS:
        if expr_dtype(value) == "bool":
            value = value.astype("int32")
        return encode_int(value, dtype)
    if expr_dtype(value) == "bool":
        value = value.astype("float32")
    return encode_float(value, dtype, saturate, round_mode)


def from_lowp(byte, src: str, dtype: str):
    """``byte`` of low-precision ``src`` as a value of ordinary ``dtype`` (bool, ints, floats)."""
    v = decode(byte, src)
    if dtype == "bool":
        return v != tirx.const(0, expr_dtype(v))
    return v.astype(dtype)
