"""Arithmetic identities, exact under IEEE 754 unless marked fast-math.

Rewrites (``c`` a constant, every rule only when the result has ``x``'s dtype and shape):

- ``Add(x, 0)``, ``Add(0, x)`` -> ``x``: exact for integers and for a ``-0.0`` constant; for ``+0.0`` only
  under fast-math (``-0.0 + 0.0`` is ``+0.0``);
- ``Sub(x, 0)`` -> ``x``: exact for ``+0.0`` and integers;
- ``Mul(x, 1)``, ``Mul(1, x)``, ``Div(x, 1)``, ``Pow(x, 1)`` -> ``x``;
- ``Pow(x, 2)`` -> ``Mul(x, x)`` for floats: both round the exact square once (a float ``Pow`` is
  a libm ``powf`` call per value in compiled code; YOLOv5's box decoding squares this way);
- ``Pow(x, 3)`` -> ``Mul(Mul(x, x), x)`` for floats: the one rule here that rounds twice (within
  1.5 ulp of the once-rounded cube), bit for bit what onnxruntime's Pow computes for a cube;
- ``Pow(x, -1)`` -> ``Reciprocal(x)`` for floats: the quotient rounded once, as powf's should be;
- ``Mul(x, -1)``, ``Mul(-1, x)`` -> ``Neg(x)``; ``Neg(Neg(x))`` -> ``x``;
- ``Div(x, c)`` -> ``Mul(x, 1/c)`` for floats when every ``1/c`` is exact (powers of two whose
  reciprocal is a normal number); under fast-math for any finite, non-zero ``c``;
- fast-math only: ``Mul(x, 0)`` -> zeros, ``Sub(x, x)`` -> zeros (wrong for NaN and Inf).
"""

from __future__ import annotations

import numpy as np

from compiler.rewrite import Const, MatchResult, RuleSet, Var, op, rule

from .common import is_float, same_type, static_shape, tensor_type

x = Var("x")


def _keeps_type(m) -> MatchResult:
    """The root's result has the same dtype and shape as ``x`` (no broadcasting to a bigger shape)."""
    if same_type(m.root.results[0], m.x):
        return MatchResult.success()
    return MatchResult.fail(f"the result type {m.root.results[0].type} differs from x's {m.x.type}")


def _zeros_like_result(rw, m):
    t = tensor_type(m.root.results[0])
    return rw.constant(np.zeros(static_shape(m.root.results[0]), t.dtype.np))


def _static_result(m) -> MatchResult:
    if static_shape(m.root.results[0]) is None:
        return MatchResult.fail("the result shape is not static")
    return MatchResult.success()


def _add_zero_check(fast_math: bool):
    def check(m) -> MatchResult:
        if not fast_math and is_float(m.x) and not np.all(np.signbit(m.zero)):
            return MatchResult.fail("x + 0.0 is not x for x = -0.0 (needs fast-math)")
        return _keeps_type(m)

    return check


def _sub_zero_check(m) -> MatchResult:
    if is_float(m.x) and np.any(np.signbit(m.zero)):
        return MatchResult.fail("x - (-0.0) is not x for x = -0.0")
    return _keeps_type(m)


def _exact_reciprocal(c: np.ndarray, fast_math: bool) -> np.ndarray | None:
    """``1/c`` when multiplying by it equals dividing by ``c`` (always, or under fast-math), else None."""
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        r = (np.ones((), c.dtype) / c).astype(c.dtype)
    if not np.all(np.isfinite(r)) or np.any(c == 0):
        return None
    if fast_math:
        return r
    tiny = np.finfo(c.dtype).tiny if c.dtype.kind == "f" else None
    mantissa, _ = np.frexp(np.abs(c.astype(np.float64)))
    exact = np.all(mantissa == 0.5) and (tiny is None or np.all(np.abs(r) >= tiny))
    return r if exact else None


@rule(op.Sub(x, Const("zero", value=0.0)), check=_sub_zero_check, name="sub-zero")
def sub_zero(rw, m):
    return m.x


@rule(op.Mul(x, Const(value=1.0), commute=True), check=_keeps_type, name="mul-one")
def mul_one(rw, m):
    return m.x


@rule(op.Div(x, Const(value=1.0)), check=_keeps_type, name="div-one")
def div_one(rw, m):
    return m.x


@rule(op.Pow(x, Const(value=1.0)), check=_keeps_type, name="pow-one")
def pow_one(rw, m):
    return m.x


def _float_keeps_type(m) -> MatchResult:
    if not is_float(m.x):
        return MatchResult.fail("an integer power goes through float64 and rounds: left as it is")
    return _keeps_type(m)


@rule(op.Pow(x, Const(value=2.0)), check=_float_keeps_type, name="pow-two")
def pow_two(rw, m):
    return rw.op("Mul", [m.x, m.x])


@rule(op.Pow(x, Const(value=3.0)), check=_float_keeps_type, name="pow-three")
def pow_three(rw, m):
    """(x * x) * x: two roundings where powf has one (within 1.5 ulp; onnxruntime's Pow computes
    a cube the same way, bit for bit), and no libm call per value."""
    return rw.op("Mul", [rw.op("Mul", [m.x, m.x]), m.x])


@rule(op.Pow(x, Const(value=-1.0)), check=_float_keeps_type, name="pow-minus-one")
def pow_minus_one(rw, m):
    """1 / x, correctly rounded as powf(x, -1) should be, signed zeros and infinities alike."""
    return rw.op("Reciprocal", [m.x])


@rule(op.Mul(x, Const(value=-1.0), commute=True), check=_keeps_type, name="mul-minus-one")
def mul_minus_one(rw, m):
    return rw.op("Neg", [m.x])


@rule(op.Neg(op.Neg(x)), name="neg-neg")
def neg_neg(rw, m):
    return m.x


def _zero_check(m) -> MatchResult:
    return _static_result(m) if same_type(m.root.results[0], m.x) else _keeps_type(m)


@rule(op.Mul(x, Const(value=0.0), commute=True), check=_zero_check, name="mul-zero")
def mul_zero(rw, m):
    return _zeros_like_result(rw, m)


@rule(op.Sub(x, x), check=_zero_check, name="sub-self")
def sub_self(rw, m):
    return _zeros_like_result(rw, m)


def _add_zero_rule(fast_math: bool):
    @rule(op.Add(x, Const("zero", value=0.0), commute=True), check=_add_zero_check(fast_math), name="add-zero")
    def add_zero(rw, m):
        return m.x

    return add_zero


def _div_to_mul_rule(fast_math: bool):
    def check(m) -> MatchResult:
        if not is_float(m.x) or m.c.dtype.kind != "f":
            return MatchResult.fail("integer division is not a multiplication")
        if _exact_reciprocal(m.c, fast_math) is None:
            return MatchResult.fail("1/c is not exact (needs a power-of-two divisor, or fast-math)")
        return MatchResult.success()

    @rule(op.Div(x, Const("c")), check=check, name="div-to-mul")
    def div_to_mul(rw, m):
        return rw.op("Mul", [m.x, rw.constant(_exact_reciprocal(m.c, fast_math))])

    return div_to_mul


def rules(fast_math: bool = False) -> RuleSet:
    """The algebra rules; the fast-math ones only when ``fast_math``."""
    exact = [
        _add_zero_rule(fast_math),
        sub_zero,
        mul_one,
        div_one,
        pow_one,
        pow_two,
        pow_three,
        pow_minus_one,
        mul_minus_one,
        neg_neg,
        _div_to_mul_rule(fast_math),
    ]
    return RuleSet(exact + ([mul_zero, sub_self] if fast_math else []), name="algebra")
