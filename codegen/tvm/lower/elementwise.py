"""Lowerings of elementwise ops: unary math, broadcasting binary ops, activations, comparisons,
logic and bitwise ops, Cast/CastLike and BitCast, Where, Clip, Dropout.

    BitCast(x){to}                 reinterpret the bits (same element width; bool -> 0/1 bytes)
    IsInf(x)                       isinf(x) and (x > 0 and detect_positive or x < 0 and detect_negative)
    ember.Lookup(x, table)         table[x - m] for an 8-bit x, m the least value of its type

Casts from and to the low-precision types (float8, float4, int4 ...) go through ``codegen.tvm.dtypes``.
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx, topi

from compiler.ops.elementwise import clip_bounds

from ..dtypes import decode, from_lowp, is_lowp, to_lowp
from ..let_binding import bound
from ..registry import lowering
from ..te_util import HALF_TYPES, clamp_keep_nan, expr_dtype, nan_max, nan_min, require_all
from .vector_math import exp_full_f32, log_f32, over_float32, sigmoid_f32, swish_f32, tanh_f32


def _const(value, dtype):
    return tirx.const(value, dtype)


def _unary(fn):
    def build(ctx, x):
        return fn(x)

    return build


_UNARY = {
    "Sigmoid": lambda x: _sigmoid(x),
    "Tanh": lambda x: _through_f32(x, tanh_f32, topi.tanh),
    "Exp": lambda x: _through_f32(x, exp_full_f32, topi.exp),
    "Log": lambda x: _through_f32(x, log_f32, topi.log),
    "Sqrt": topi.sqrt,
    "Abs": topi.abs,
    "Neg": topi.negative,
    "Erf": lambda x: _erf(x),
    "Floor": topi.floor,
    "Ceil": topi.ceil,
    "Sin": topi.sin,
    "Cos": topi.cos,
    "Tan": topi.tan,
    "Asin": topi.asin,
    "Acos": topi.acos,
    "Atan": topi.atan,
    "Sinh": topi.sinh,
    "Cosh": topi.cosh,
    "Asinh": topi.asinh,
    "Acosh": topi.acosh,
    "Atanh": topi.atanh,
    "Sign": topi.sign,
    "Round": topi.round,
    "Not": topi.logical_not,
    "IsNaN": topi.isnan,
    "BitwiseNot": topi.bitwise_not,
}


for _name, _fn in _UNARY.items():
    lowering(_name)(_unary(_fn))


def _sigmoid(x):
    """float32 sigmoid through a vectorisable exp (``vector_math``), float16/bfloat16 through it on
    the widened value; other types via topi, whose exp LLVM turns into scalar libm calls."""
    if str(x.dtype) in HALF_TYPES:
        return te.compute(x.shape, lambda *i: sigmoid_f32(x(*i).astype("float32")).astype(x.dtype), name="sigmoid")
    if str(x.dtype) != "float32":
        return topi.sigmoid(x)
    return te.compute(x.shape, lambda *i: sigmoid_f32(x(*i)), name="sigmoid")


def _through_f32(x, f32_fn, other):
    """``f32_fn`` (``vector_math``'s vectorisable float32 math) over a float32 tensor, and over a
    float16/bfloat16 one on the widened value, rounded back; ``other`` (topi's, a libm call per
    lane in LLVM) for the other types."""
    if str(x.dtype) in HALF_TYPES:  # the plain read bound (``_map``), so that a chain can be cut there
        return _map(x, lambda v: f32_fn(v.astype("float32")).astype(x.dtype))
    return over_float32(x, f32_fn, other)


def _exp(v):
    """e^v of a scalar expression: ``exp_full_f32`` in float32, TVM's exp otherwise."""
    return exp_full_f32(v) if expr_dtype(v) == "float32" else te.exp(v)


def _erf(x):
    """float32 erf as a vectorisable polynomial (max abs error 3e-7), float16/bfloat16 through it on
    the widened value (far below their precision); other types via the intrinsic, which LLVM turns
    into scalar libm calls."""
    if str(x.dtype) in HALF_TYPES:
        return topi.cast(topi.fast_erf(topi.cast(x, "float32")), x.dtype)
    return topi.fast_erf(x) if str(x.dtype) == "float32" else topi.erf(x)


def _map(x, fn):
    """Elementwise ``fn(scalar) -> scalar`` over ``x``, the scalar read once (``let_binding.bound``:
    ``fn`` may use it several times)."""
    return te.compute(x.shape, lambda *i: bound(x(*i), fn), name="ew")


@lowering("Reciprocal")
def _reciprocal(ctx, x):
    return _map(x, lambda v: _const(1, x.dtype) / v)


@lowering("Softplus")
def _softplus(ctx, x):
    """log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow for large x, no lost digits for negative x.
    log1p(t) = 2 atanh(s), s = t / (2 + t) <= 1/3, summed as a series of positive terms (LLVM's
    fast-math would undo the cancellation tricks)."""
    wide = "float64" if str(x.dtype) == "float64" else "float32"
    terms = 17 if wide == "float64" else 8  # s^(2k) / (2k + 1) below the type's precision

    def softplus(v):
        w = v.astype(wide)
        c = lambda k: _const(k, wide)  # noqa: E731
        t = _exp(-te.abs(w))
        s = t / (c(2) + t)
        s2 = s * s
        series = c(1 / (2 * terms + 1))
        for k in range(terms - 1, -1, -1):
            series = series * s2 + c(1 / (2 * k + 1))
        return (te.max(w, c(0)) + c(2) * s * series).astype(x.dtype)

    return _map(x, softplus)


@lowering("Softsign")
def _softsign(ctx, x):
    return _map(x, lambda v: v / (_const(1, x.dtype) + te.abs(v)))


@lowering("LeakyRelu")
def _leaky_relu(ctx, x):
    alpha = float(ctx.attr("alpha", 0.01))
    return _map(x, lambda v: tirx.Select(v >= 0, v, v * _const(alpha, x.dtype)))


@lowering("Elu")
def _elu(ctx, x):
    alpha = float(ctx.attr("alpha", 1.0))
    return _map(x, lambda v: tirx.Select(v >= 0, v, _const(alpha, x.dtype) * (_exp(v) - _const(1, x.dtype))))


@lowering("Selu")
def _selu(ctx, x):
    alpha, gamma = (
        float(ctx.attr("alpha", 1.67326319217681884765625)),
        float(ctx.attr("gamma", 1.05070102214813232421875)),
    )
    c = lambda k: _const(k, x.dtype)  # noqa: E731
    return _map(x, lambda v: tirx.Select(v > 0, c(gamma) * v, c(gamma) * (c(alpha) * _exp(v) - c(alpha))))


@lowering("HardSigmoid")
def _hard_sigmoid(ctx, x):
    alpha, beta = float(ctx.attr("alpha", 0.2)), float(ctx.attr("beta", 0.5))
    c = lambda k: _const(k, x.dtype)  # noqa: E731
    return _map(x, lambda v: clamp_keep_nan(c(alpha) * v + c(beta), c(0), c(1)))


@lowering("HardSwish")
def _hard_swish(ctx, x):
    c = lambda k: _const(k, x.dtype)  # noqa: E731
    return _map(x, lambda v: v * clamp_keep_nan(v * c(1 / 6) + c(0.5), c(0), c(1)))


@lowering("Swish")
def _swish(ctx, x):
    """x * sigmoid(alpha * x) (opset 24; also what ``simplify`` makes of a written-out SiLU)."""
    if str(x.dtype) == "float32":  # the vectorisable form
        ldexp = ctx.schedule is not None and ctx.schedule.vector_ldexp
        return _map(x, lambda v: swish_f32(v, float(ctx.attr("alpha", 1.0)), ldexp))
    if str(x.dtype) in HALF_TYPES:  # on the widened value, rounded once
        alpha = float(ctx.attr("alpha", 1.0))
        return _map(x, lambda v: swish_f32(v.astype("float32"), alpha).astype(x.dtype))
    alpha = _const(float(ctx.attr("alpha", 1.0)), x.dtype)
    return _map(x, lambda v: v * te.sigmoid(alpha * v))


@lowering("Mish")
def _mish(ctx, x):
    """x * tanh(softplus(x)) = x * n / (n + 2) with n = e^x (e^x + 2): no cancellation for negative x
    (where log(1 + e^x) loses the small e^x); x itself once e^x makes n overflow."""
    wide = "float64" if str(x.dtype) == "float64" else "float32"

    def mish(v):
        w = v.astype(wide)
        e = _exp(tirx.min(w, _const(20, wide)))
        n = e * (e + _const(2, wide))
        return tirx.Select(w > _const(20, wide), w, w * n / (n + _const(2, wide))).astype(x.dtype)

    return _map(x, mish)


@lowering("Gelu")
def _gelu(ctx, x):
    c = lambda k: _const(k, x.dtype)  # noqa: E731
    if ctx.attr("approximate", "none") == "tanh":
        tanh = tanh_f32 if str(x.dtype) == "float32" else te.tanh
        return _map(x, lambda v: c(0.5) * v * (c(1) + tanh(c(0.7978845608028654) * (v + c(0.044715) * v * v * v))))
    scaled = _map(x, lambda v: v * c(0.7071067811865476))
    erf = _erf(scaled)
    return te.compute(x.shape, lambda *i: c(0.5) * x(*i) * (c(1) + erf(*i)), name="gelu")


@lowering("Relu")
def _relu(ctx, x):
    """``x < 0 ? 0 : x``: NaN stays NaN (``topi.nn.relu``'s maxnum makes it 0)."""
    zero = _const(0, x.dtype)
    return _map(x, lambda v: tirx.Select(v < zero, zero, v))


@lowering("ThresholdedRelu")
def _thresholded_relu(ctx, x):
    alpha = float(ctx.attr("alpha", 1.0))
    return _map(x, lambda v: tirx.Select(v > _const(alpha, x.dtype), v, _const(0, x.dtype)))


@lowering("Clip")
def _clip(ctx, x, lo=None, hi=None):
    """Bounds are scalar tensors, read once per element (constant or given at run time); a NaN
    element stays NaN, and an absent float bound is the type's finite limit (+-inf clip to +-max),
    as in onnxruntime and the interpreter (``compiler.ops.elementwise.clip_bounds``)."""
    lowest, largest = clip_bounds(str(x.dtype))

    def clamp(v):
        low = _const(float(lowest), x.dtype) if lo is None and lowest is not None else None
        high = _const(float(largest), x.dtype) if hi is None and largest is not None else None
        low = low if lo is None else lo(*[0] * len(lo.shape))
        high = high if hi is None else hi(*[0] * len(hi.shape))
        return clamp_keep_nan(v, low, high)

    return _map(x, clamp)


@lowering("Cast", "CastLike")
def _cast(ctx, x, _like=None):
    dtype = ctx.out_dtype()
    src = str(np.dtype(ctx.in_types[0][1]))
    if is_lowp(src) or is_lowp(dtype):
        return _cast_lowp(ctx, x, src, dtype)
    if dtype == "bool":
        return _map(x, lambda v: v != _const(0, x.dtype))
    return topi.cast(x, dtype)


def _cast_lowp(ctx, x, src: str, dtype: str):
    """Cast from or to a type kept as uint8 storage (float8, float4, int4, ...): see ``codegen.tvm.dtypes``."""
    saturate = bool(ctx.attr("saturate", 1))
    round_mode = ctx.attr("round_mode", "up")
    round_mode = round_mode.decode() if isinstance(round_mode, bytes) else str(round_mode)

    def body(*i):
        v = x(*i)
        if is_lowp(src):
            if src == dtype:
                return v
            v = decode(v, src)
        if is_lowp(dtype):
            return to_lowp(v, dtype, saturate, round_mode)
        return from_lowp(x(*i), src, dtype)

    return te.compute(x.shape, body, name="cast_lowp")


def _binary(fn):
    def build(ctx, a, b):
        return fn(a, b)

    return build


def _nonzero_divisor(attrs, in_types, array):
    """Prepack hook of an integer divisor that is a constant: a copy (the lowering then skips the
    run-time zero check) when no element is zero; otherwise left for the run-time check."""
    values = np.asarray(array)
    if values.dtype.kind not in "iu" or not np.all(values != 0):
        return array
    return values.copy()


def _safe_divisor(ctx, b, what: str):
    """``fn(divisor element) -> divisor`` for an integer Div or Mod: a run-time divisor is checked
    for zeros once per element when the kernel starts (onnxruntime's "Integer division by zero"),
    and the division itself never sees 0 or -1 (both trap on x86: SIGFPE), whatever the check."""
    checked = 1 in ctx.packed  # a constant with no zero (``_nonzero_divisor``)
    if not checked:
        if not isinstance(b.op, te.PlaceholderOp):
            # a divisor computed inside this kernel cannot be read when the kernel starts, and a
            # zero must fail the run, never divide by one: the fuse pass keeps an integer divisor a
            # kernel input (``passes.fuse_rules.reads_checked_value``), so reaching here is a bug
            raise ctx.fail(
                f"integer {what} by a divisor computed inside the same kernel: its zeros cannot be "
                "checked before the kernel runs (the divisor must be a kernel input)"
            )
        require_all(ctx, b, lambda v, j: v != 0, f"Integer {what} by zero")

    dtype = str(b.dtype)
    one, zero = _const(1, dtype), _const(0, dtype)

    def safe(d):
        if "uint" in dtype:
            return d if checked else tirx.Select(d == zero, one, d)
        minus_one = _const(-1, dtype)
        return tirx.Select(d == minus_one if checked else tirx.Or(d == zero, d == minus_one), one, d)

    return safe


@lowering("Div", prepack={1: _nonzero_divisor})
def _div(ctx, a, b):
    """Integer Div truncates toward zero (C, onnxruntime); x / -1 is -x (wrapping, as NumPy)."""
    if "int" not in str(a.dtype):
        return topi.divide(a, b)
    safe = _safe_divisor(ctx, b, "division")

    def body(*i):
        x, y = _bcast(a, i), _bcast(b, i)
        q = tirx.truncdiv(x, safe(y))
        return q if "uint" in str(a.dtype) else tirx.Select(y == _const(-1, a.dtype), _const(0, a.dtype) - x, q)

    return te.compute(ctx.out_shape(), body, name="div")


_BINARY = {
    "Add": topi.add,
    "Sub": topi.subtract,
    "Mul": topi.multiply,
    "Equal": topi.equal,
    "Less": topi.less,
    "Greater": topi.greater,
    "LessOrEqual": topi.less_equal,
    "GreaterOrEqual": topi.greater_equal,
    "And": topi.logical_and,
    "Or": topi.logical_or,
    "Xor": topi.logical_xor,
    "BitwiseAnd": topi.bitwise_and,
    "BitwiseOr": topi.bitwise_or,
    "BitwiseXor": topi.bitwise_xor,
}


for _name, _fn in _BINARY.items():
    lowering(_name)(_binary(_fn))


@lowering("Pow")
def _pow(ctx, a, b):
    if "float" not in str(a.dtype):  # integer power through float64, as numpy rounds it
        out = topi.power(topi.cast(a, "float64"), topi.cast(b, "float64"))
        return topi.cast(topi.round(out), str(a.dtype))
    if str(b.dtype) != str(a.dtype):
        b = topi.cast(b, a.dtype)
    return topi.power(a, b)


@lowering("BitShift")
def _bit_shift(ctx, a, b):
    left = ctx.attr("direction") == "LEFT"
    return topi.left_shift(a, b) if left else topi.right_shift(a, b)


@lowering("Dropout", static=(1, 2), runtime=(1, 2))
def _dropout(ctx, x, ratio=None, training=None):
    """The identity (and an all-true mask when asked): inference mode, or training with ratio 0.

    Training with a nonzero ratio draws random numbers, which the library does not do: refused at
    compile time when both operands are constants, checked at run time when either is an input.
    """
    defaults = {1: 0.5, 2: 0.0}  # ratio, training_mode when absent

    def known(k):  # the operand's value at compile time, or None when it comes at run time
        if len(ctx.in_types) <= k or ctx.in_types[k] is None:
            return defaults[k]
        value = ctx.static(k)
        return None if value is None else float(np.asarray(value).reshape(-1)[0])

    def value(k, tensor, read):
        v = known(k)
        if v is not None:
            return tirx.const(v, "float64")
        return read(tensor, *([0] * len(tensor.shape))).astype("float64")

    why = (
        "training mode with a nonzero ratio draws random numbers, which compiled code does not do "
        "(run the model through the interpreter)"
    )
    if known(1) is not None and known(2) is not None:
        if known(1) != 0 and known(2) != 0:
            raise ctx.fail(why)
    elif known(1) != 0 and known(2) != 0:  # something to check at run time
        ctx.require(lambda read: tirx.Or(value(2, training, read) == 0.0, value(1, ratio, read) == 0.0), why)
    outs = [topi.identity(x)]
    if len(ctx.out_types) > 1:
        outs.append(topi.full(ctx.out_shape(1), "bool", 1))
    return outs


@lowering("PRelu")
def _prelu(ctx, x, slope):
    return topi.where(topi.greater_equal(x, _const(0, x.dtype)), x, topi.multiply(x, slope))


@lowering("Max", "Min", "Sum", "Mean")
def _variadic(ctx, *xs):
    if ctx.op in ("Max", "Min") and len(xs) > 1 and "float" in str(xs[0].dtype):
        pick = nan_max if ctx.op == "Max" else nan_min  # a NaN operand gives NaN, as in onnxruntime

        def body(*i):
            out = _bcast(xs[0], i)
            for x in xs[1:]:
                out = pick(out, _bcast(x, i))
            return out

        return te.compute(ctx.out_shape(), body, name=ctx.op.lower())
    fn = {"Max": topi.maximum, "Min": topi.minimum, "Sum": topi.add, "Mean": topi.add}[ctx.op]
    out = xs[0]
    for x in xs[1:]:
        out = fn(out, x)
    if ctx.op == "Mean":
        out = topi.divide(out, _const(len(xs), out.dtype))
    if len(xs) == 1:
        out = topi.identity(out)
    return topi.broadcast_to(out, ctx.out_shape()) if tuple(int(d) for d in out.shape) != ctx.out_shape() else out


@lowering("Where")
def _where(ctx, cond, a, b):
    return topi.where(cond, a, b)


@lowering("Mod", prepack={1: _nonzero_divisor})
def _mod(ctx, a, b):
    """fmod=1: C fmod (sign of the dividend); fmod=0: numpy's mod (sign of the divisor, a zero result
    signed like the divisor, x mod +-inf = x or +-inf).  Floats use the exact C fmod (libm).
    Integer divisors are checked for zero (``_safe_divisor``); x mod -1 is 0."""
    is_float = "float" in str(a.dtype)
    wide = "float64" if str(a.dtype) == "float64" else "float32"
    safe = None if is_float else _safe_divisor(ctx, b, "modulo")

    def body(*i):
        x, y = _bcast(a, i), _bcast(b, i)
        if not is_float:
            # x mod -1 is 0: the safe divisor 1 gives it
            return tirx.floormod(x, safe(y)) if not ctx.attr("fmod", 0) else tirx.truncmod(x, safe(y))
        x, y = x.astype(wide), y.astype(wide)
        rem = tirx.call_pure_extern(wide, "fmod" if wide == "float64" else "fmodf", x, y)
        if not ctx.attr("fmod", 0):
            zero = _const(0, wide)
            flip = tirx.Select(tirx.Or(tirx.And(y < zero, rem > zero), tirx.And(y > zero, rem < zero)), rem + y, rem)
            rem = tirx.Select(rem == zero, tirx.copysign(zero, y), flip)
        return rem.astype(a.dtype)

    return te.compute(ctx.out_shape(), body, name="mod")


def _bcast(t, index):
    """Read ``t`` at the numpy-broadcast position of output ``index``."""
    rank, offset = len(t.shape), len(index) - len(t.shape)
    return t(*[0 if int(t.shape[d]) == 1 else index[offset + d] for d in range(rank)])


@lowering("BitCast")
def _bitcast(ctx, x):
    out = ctx.out_dtype()
    if str(x.dtype) == "bool" or out == "bool":
        return te.compute(x.shape, lambda *i: x(*i).astype(out), name="bitcast")
    return te.compute(x.shape, lambda *i: tirx.reinterpret(out, x(*i)), name="bitcast")


@lowering("IsInf")
def _isinf(ctx, x):
    pos, neg = int(ctx.attr("detect_positive", 1)), int(ctx.attr("detect_negative", 1))

    def body(*i):
        v = x(*i)
        zero = tirx.const(0, str(x.dtype))
        sign = tirx.const(False, "bool")
        if pos:
            sign = tirx.any(sign, v > zero)
        if neg:
            sign = tirx.any(sign, v < zero)
        return tirx.all(tirx.isinf(v), sign)

    return te.compute(x.shape, body, name="isinf")


@lowering("ember.Lookup")
def _lookup(ctx, x, table):
    """``table[x - m]`` (``lookup-8bit``'s 256-value functions of an 8-bit ``x``, m its type's least)."""
    low = int(np.iinfo(str(x.dtype)).min)
    return te.compute(x.shape, lambda *i: table[x(*i).astype("int32") - low], name="lookup")
