"""float32 math as plain arithmetic that LLVM vectorises (its ``llvm.exp`` on a vector becomes one
scalar libm ``expf`` call per lane, which made SiLU cost more than the convolution it follows).

``exp_f32(v)``: e^v = 2^n * e^r with n = round(v / ln 2) and |r| <= ln(2)/2; e^r as
1 + r + r^2 q(r), q of degree 4 (``_EXP_DEGREE6``), 2^n built in the exponent bits. Within 1 ulp of
e^v over [-87.3, 88.3] (a float32 emulation over 4 million points); below, 0 (where expf's result is
denormal or 0); above, e^88.38 (finite, where expf grows to inf past 88.7); NaN stays NaN.

The coefficients of q minimise the largest relative error of e^r over |r| <= ln(2)/2 (a weighted
least-squares fit reweighted towards the worst points, Lawson's method, in float64). Degree 6 is as
accurate in float32 as the degree-7 Cephes polynomial it replaced, one FMA shorter. Where the
result only feeds a quotient such as x / (1 + e^-x) (``swish_f32``, the recurrent kernels'
gates), degree 5 (``_EXP_DEGREE5``: 1.8e-7 relative, about 2 ulp) saves another: SiLU after a
convolution costs about as much as the convolution when the convolution has few input channels.
"""

from __future__ import annotations

from tvm import te, tirx

from ..let_binding import binds_argument
from ..te_util import nan_bits

_LOG2E = 1.44269504088896341
_LN2_HI = 0.693359375  # ln 2 = _LN2_HI + _LN2_LO, the high part exact in a few bits
_LN2_LO = -2.12194440e-4
# q's coefficients, constant term first: e^r ~ 1 + r + r^2 q(r) for |r| <= ln(2)/2
_EXP_DEGREE6 = (
    0.49999994039535522,
    0.16666521131992340,
    0.041668388992547989,
    0.0083687081933021545,
    0.0013814592966809869,
)
_EXP_DEGREE5 = (0.49999231100082397, 0.16667114198207855, 0.041890095919370651, 0.0083125056698918343)
_LOW, _HIGH = -87.33654, 88.37626  # e^v is normal for v in [_LOW, _HIGH] (2^n fits the exponent)
_CLAMPED_LOW = -86.9  # round(v / ln 2) >= -125 from here up: 2^n added to e^r's exponent stays normal

_MINUS_INF_BITS = -(1 << 23)  # 0xFF800000 as int32
_NAN_BITS = 0x7FC00000


def over_float32(t, f32_fn, other, name: str = "ew"):
    """``f32_fn`` (a function here) at every element of a float32 tensor ``t``; ``other(t)`` (topi's
    form, a libm call per lane) for any other type."""
    if str(t.dtype) != "float32":
        return other(t)
    return te.compute(t.shape, lambda *i: f32_fn(t(*i)), name=name)


def _f(value: float):
    return tirx.const(value, "float32")


def _reduced_exp(x, coefficients):
    """(n, e^r) for a float32 ``x`` in [_LOW, _HIGH]: n = round(x / ln 2) and the polynomial of the
    remainder r, 1 + r + r^2 q(r) with q's ``coefficients``, so that e^x = 2^n e^r."""
    n = tirx.floor(x * _f(_LOG2E) + _f(0.5))
    r = x - n * _f(_LN2_HI) - n * _f(_LN2_LO)
    q = _f(coefficients[-1])
    for c in reversed(coefficients[:-1]):
        q = q * r + _f(c)
    return n, q * r * r + r + _f(1.0)


@binds_argument
def exp_f32(v):
    """e^v for a float32 expression ``v`` (see the module docstring for its accuracy)."""
    n, p = _reduced_exp(tirx.max(tirx.min(v, _f(_HIGH)), _f(_LOW)), _EXP_DEGREE6)
    scale = tirx.reinterpret("float32", tirx.shift_left(n.astype("int32") + 127, tirx.const(23, "int32")))
    result = tirx.Select(v < _f(_LOW), _f(0.0), p * scale)
    return tirx.Select(nan_bits(v), v, result)  # NaN in, NaN out (min/max above would drop it)


def _power_of_two(k):
    """2^k as a float32 for an int32 ``k`` in [-126, 127], built in the exponent bits."""
    return tirx.reinterpret("float32", tirx.shift_left(k + 127, tirx.const(23, "int32")))


@binds_argument
def exp_full_f32(v):
    """e^v over float32's whole range, as libm's expf: inf from 88.73 up, subnormal results down to
    -103.3, 0 below, NaN for NaN (the Exp op, and the activations written with e^: Elu, Selu,
    Softplus, Mish). ``exp_f32``'s polynomial of the argument clamped into [-104, 89], scaled by
    2^n as two factors 2^(n/2) and 2^(n - n/2), each a normal float, so that the product itself
    overflows or rounds into the subnormals."""
    n, p = _reduced_exp(tirx.max(tirx.min(v, _f(89.0)), _f(-104.0)), _EXP_DEGREE6)
    k = n.astype("int32")
    half = tirx.shift_right(k, tirx.const(1, "int32"))  # floor(n / 2): arithmetic shift
    result = p * _power_of_two(half) * _power_of_two(k - half)
    return tirx.Select(nan_bits(v), v, result)


# tanh(x) = x + x^3 P(x^2) below this magnitude (P's coefficients, constant term first, fitted as
# ``_EXP_DEGREE6``'s: 1.0e-7 relative in float32), 1 - 2 / (1 + e^2|x|) above it, where the quotient
# is at most 0.5 and the subtraction loses at most a bit (about 2 ulp)
_TANH_SMALL = 0.55
_TANH_POLY = (-0.3333294689655304, 0.13320724666118622, -0.05267180874943733, 0.016437571495771408)
_SIGN_BIT = -(1 << 31)  # 0x80000000 as int32


@binds_argument
def tanh_f32(v):
    """tanh of a float32 expression ``v`` from ``exp_f32`` and an odd polynomial near 0, with v's
    sign put back on the bits: within 2 ulp of float64's tanh, +-1 for +-inf, NaN for NaN. (TVM's
    tanh lowers to a libm ``expf`` call per lane: a Tanh over a million values took milliseconds.)"""
    a = tirx.abs(v)
    z = a * a
    p = _f(_TANH_POLY[-1])
    for c in reversed(_TANH_POLY[:-1]):
        p = p * z + _f(c)
    small = a + a * z * p
    big = _f(1.0) - _f(2.0) / (_f(1.0) + exp_f32(a + a))
    magnitude = tirx.Select(a < _f(_TANH_SMALL), small, big)
    sign = tirx.reinterpret("int32", v) & tirx.const(_SIGN_BIT, "int32")
    return tirx.reinterpret("float32", tirx.reinterpret("int32", magnitude) | sign)


# log(1 + f) = f - f^2 / 2 + f^3 P(f) for f in [sqrt(1/2) - 1, sqrt(2) - 1] (P's coefficients,
# constant term first, fitted as ``_EXP_DEGREE6``'s: 7.6e-8 relative in float32)
_LOG_POLY = (
    0.3333333134651184,
    -0.2500081956386566,
    0.20001226663589478,
    -0.16623356938362122,
    0.14201757311820984,
    -0.13160182535648346,
    0.1276158094406128,
    -0.07634501904249191,
)
_INF_BITS = 0x7F800000


@binds_argument
def log_f32(v):
    """Natural log of a float32 expression ``v``, as libm's logf: v = m 2^e with m in
    [sqrt(1/2), sqrt(2)) taken from the bits (a subnormal v scaled by 2^23 first), log(m) by
    ``_LOG_POLY``, e ln 2 added in two parts; within 2 ulp of float64's log; -inf for +-0, NaN for
    a negative v or NaN, +inf for +inf. (TVM's log lowers to a libm ``logf`` call per lane.)"""
    i32 = "int32"
    subnormal = v < _f(1.17549435e-38)
    x = tirx.Select(subnormal, v * _f(8388608.0), v)  # 2^23: a subnormal's mantissa normalised
    bits = tirx.reinterpret(i32, x)
    exponent = tirx.shift_right(bits, tirx.const(23, i32)) - tirx.const(127, i32)
    exponent = exponent - tirx.Select(subnormal, tirx.const(23, i32), tirx.const(0, i32))
    m = tirx.reinterpret("float32", (bits & tirx.const(0x007FFFFF, i32)) | tirx.const(0x3F800000, i32))
    upper = m > _f(1.4142135)
    m = tirx.Select(upper, m * _f(0.5), m)
    e = (exponent + tirx.Select(upper, tirx.const(1, i32), tirx.const(0, i32))).astype("float32")
    f = m - _f(1.0)
    p = _f(_LOG_POLY[-1])
    for c in reversed(_LOG_POLY[:-1]):
        p = p * f + _f(c)
    result = e * _f(_LN2_HI) + (f - _f(0.5) * f * f + p * f * f * f + e * _f(_LN2_LO))
    raw = tirx.reinterpret(i32, v)
    inf = tirx.reinterpret("float32", tirx.const(_INF_BITS, i32))
    result = tirx.Select(raw == tirx.const(_INF_BITS, i32), inf, result)
    result = tirx.Select(raw < tirx.const(0, i32), tirx.reinterpret("float32", tirx.const(_NAN_BITS, i32)), result)
    result = tirx.Select((raw & tirx.const(0x7FFFFFFF, i32)) == tirx.const(0, i32), -inf, result)
    return tirx.Select(nan_bits(v), v, result)


@binds_argument
def sigmoid_f32(v):
    """1 / (1 + e^-v) with ``exp_f32``: 0 for v < -88.7 (1/(1+huge)), 1 for large v."""
    return _f(1.0) / (_f(1.0) + exp_f32(-v))


@binds_argument
def exp_clamped_f32(v):
    """e^v with v first clamped into [_CLAMPED_LOW, _HIGH] (about e^-86.9 to e^88.4, normal floats):
    ``exp_f32``'s reduction to degree 5 (about 2 ulp), 2^n added to the result's exponent bits
    instead of multiplied in (which needs n >= -125, hence the higher low end), and no special
    cases, for callers whose own arithmetic carries NaN and adds 1 to the result (``swish_f32``, the
    recurrent kernels' gates)."""
    n, p = _reduced_exp(tirx.max(tirx.min(v, _f(_HIGH)), _f(_CLAMPED_LOW)), _EXP_DEGREE5)
    shift = tirx.shift_left(n.astype("int32"), tirx.const(23, "int32"))
    return tirx.reinterpret("float32", tirx.reinterpret("int32", p) + shift)


def _ldexp(p, n):
    """p * 2^n for a float32 ``p`` and an integral float32 ``n``: ``llvm.ldexp``, which LLVM makes one
    ``vscalefps`` on AVX-512 (its result inf past float32's range, 0 or subnormal below it, NaN for
    a NaN ``p``). Only for such targets (``ScheduleParams.vector_ldexp``): elsewhere LLVM calls
    libm's scalar ``ldexpf`` per lane."""
    return tirx.call_llvm_pure_intrin("float32", "llvm.ldexp", p, n.astype("int32"))


@binds_argument
def swish_f32(v, alpha: float = 1.0, ldexp: bool = False):
    """v * sigmoid(alpha * v) as ``v / (1 + e^(-alpha v))``, e^ to degree 5 (``_EXP_DEGREE5``: 2 ulp
    of e^ become at most 2 ulp of the quotient, as e^ / (1 + e^) < 1).

    With ``ldexp`` (AVX-512), e^ = ``_ldexp(e^r, n)`` of -alpha v clamped below only: about 17 vector
    instructions. Where -alpha v > 88.7, e^ is inf and the quotient -0 (the exact value is below
    float32's range: -1e-37 at v = -88.7); where it is +inf (v = -inf), r = inf - inf is NaN, and so
    is the result, as IEEE's -inf * sigmoid(-inf) = -inf * 0; a NaN ``v`` gives NaN. Without it,
    e^ is taken clamped into the normal range (``exp_clamped_f32``), about 21 instructions: no NaN or
    underflow selects, because the division carries them. Where -alpha v < -86.9, 1 + e^ is 1 either
    way; where -alpha v > 88.4, the clamped e^88.4 gives v / 2.4e38, below 4e-37 in magnitude and a
    normal float, where the exact value is smaller still. Where alpha v is -inf, IEEE arithmetic
    gives inf * 0 = NaN (onnxruntime's answer), which the clamped e^ would not: that case is
    selected on the bits (LLVM may assume no infinities in a float compare).

    After a convolution of few input channels this epilogue costs as much as the convolution: on
    the 1x1 conv 16 -> 96 at 112 x 112 with SiLU (EfficientNet-B0's largest), one thread on a Zen 4,
    the conv alone took 0.88 ms, with the degree-7 clamped form 1.13, with this one 0.98."""
    scaled = v * _f(alpha) if alpha != 1.0 else v
    if ldexp:
        n, p = _reduced_exp(tirx.max(-scaled, _f(_CLAMPED_LOW)), _EXP_DEGREE5)
        return v / (_f(1.0) + _ldexp(p, n))
    e = exp_clamped_f32(-scaled)
    minus_inf = tirx.reinterpret("int32", scaled) == tirx.const(_MINUS_INF_BITS, "int32")
    return tirx.Select(minus_inf, tirx.reinterpret("float32", tirx.const(_NAN_BITS, "int32")), v / (_f(1.0) + e))
