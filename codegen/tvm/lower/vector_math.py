"""float32 math as plain arithmetic that LLVM vectorises (its ``llvm.exp`` on a vector becomes one
scalar libm ``expf`` call per lane, which made SiLU cost more than the convolution it follows).

``exp_f32(v)``: e^v = 2^n * e^r with n = round(v / ln 2) and |r| <= ln(2)/2; e^r by a degree-7
minimax-style polynomial (the Cephes ``expf`` coefficients), 2^n built in the exponent bits. Within
2 ulp of e^v over [-87.3, 88.3]; below, 0 (where expf's result is denormal or 0); above, e^88.38
(finite, where expf grows to inf past 88.7); NaN stays NaN.
"""

from __future__ import annotations

from tvm import tirx

_LOG2E = 1.44269504088896341
_LN2_HI = 0.693359375  # ln 2 = _LN2_HI + _LN2_LO, the high part exact in a few bits
_LN2_LO = -2.12194440e-4
_POLY = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1)
_LOW, _HIGH = -87.33654, 88.37626  # e^v is normal for v in [_LOW, _HIGH] (2^n fits the exponent)
_CLAMPED_LOW = -86.9  # round(v / ln 2) >= -125 from here up: 2^n added to e^r's exponent stays normal

_MINUS_INF_BITS = -(1 << 23)  # 0xFF800000 as int32
_NAN_BITS = 0x7FC00000


def _f(value: float):
    return tirx.const(value, "float32")


def _reduced_exp(x):
    """(n, e^r) for a float32 ``x`` in [_LOW, _HIGH]: n = round(x / ln 2) and the degree-7
    polynomial of the remainder r, so that e^x = 2^n e^r."""
    n = tirx.floor(x * _f(_LOG2E) + _f(0.5))
    r = x - n * _f(_LN2_HI) - n * _f(_LN2_LO)
    p = _f(_POLY[0])
    for c in _POLY[1:]:
        p = p * r + _f(c)
    return n, p * r * r + r + _f(1.0)


def exp_f32(v):
    """e^v for a float32 expression ``v`` (see the module docstring for its accuracy)."""
    n, p = _reduced_exp(tirx.max(tirx.min(v, _f(_HIGH)), _f(_LOW)))
    scale = tirx.reinterpret("float32", tirx.shift_left(n.astype("int32") + 127, tirx.const(23, "int32")))
    result = tirx.Select(v < _f(_LOW), _f(0.0), p * scale)
    return tirx.Select(_is_nan(v), v, result)  # NaN in, NaN out (min/max above would drop it)


def _is_nan(v):
    """NaN test on the bits: ``tirx.isnan`` makes TVM's vectoriser scalarise the whole loop, and a
    ``v != v`` comparison does not survive LLVM's no-NaN assumptions."""
    magnitude = tirx.reinterpret("int32", v) & tirx.const(0x7FFFFFFF, "int32")
    return magnitude > tirx.const(0x7F800000, "int32")


def sigmoid_f32(v):
    """1 / (1 + e^-v) with ``exp_f32``: 0 for v < -88.7 (1/(1+huge)), 1 for large v."""
    return _f(1.0) / (_f(1.0) + exp_f32(-v))


def exp_clamped_f32(v):
    """e^v with v first clamped into [_CLAMPED_LOW, _HIGH] (about e^-86.9 to e^88.4, normal floats):
    ``exp_f32``'s reduction, 2^n added to the result's exponent bits instead of multiplied in (which
    needs n >= -125, hence the higher low end), and no special cases, for callers whose own
    arithmetic carries NaN and adds 1 to the result (``swish_f32``, the recurrent kernels' gates)."""
    n, p = _reduced_exp(tirx.max(tirx.min(v, _f(_HIGH)), _f(_CLAMPED_LOW)))
    shift = tirx.shift_left(n.astype("int32"), tirx.const(23, "int32"))
    return tirx.reinterpret("float32", tirx.reinterpret("int32", p) + shift)


def swish_f32(v, alpha: float = 1.0):
    """v * sigmoid(alpha * v) as ``v / (1 + e^(-alpha v))``, e^ taken clamped into the normal range.

    About 22 vector instructions where ``v * sigmoid_f32(alpha * v)`` takes 26: no NaN or underflow
    selects, because the division carries them. A NaN ``v`` gives NaN; where -alpha v < -86.9,
    1 + e^ is 1 either way; where -alpha v > 88.4, the clamped e^88.4 gives v / 2.4e38, below 4e-37
    in magnitude and a normal float, where the exact value is smaller still. Where alpha v is -inf,
    IEEE arithmetic gives inf * 0 = NaN (onnxruntime's answer), which the clamped e^ would not: that
    case is selected on the bits (LLVM may assume no infinities in a float compare)."""
    scaled = v * _f(alpha) if alpha != 1.0 else v
    e = exp_clamped_f32(-scaled)
    minus_inf = tirx.reinterpret("int32", scaled) == tirx.const(_MINUS_INF_BITS, "int32")
    return tirx.Select(minus_inf, tirx.reinterpret("float32", tirx.const(_NAN_BITS, "int32")), v / (_f(1.0) + e))
