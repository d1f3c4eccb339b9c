"""No-op and inverse layout ops: removed, cancelled or merged (all exact).

Rewrites:

- ``Identity(x)`` -> ``x``; ``Dropout(x)`` in inference mode (no ``training_mode`` or a false one,
  mask unused) -> ``x``;
- ``Cast(x, to=dtype(x))``, ``CastLike(x, y)`` with ``dtype(y) == dtype(x)`` -> ``x``;
- ``Cast(Cast(x, T1), T2)`` -> ``Cast(x, T2)`` (or ``x`` when ``T2 == dtype(x)``) when ``T1`` holds every
  value of ``dtype(x)`` exactly (a widening cast);
- ``Pad(x, pads=0)`` -> ``x``; ``Slice(x)`` covering every element in order -> ``x``;
  ``Expand(x, shape)`` to ``x``'s own shape -> ``x``;
- ``Reshape/Flatten/Squeeze/Unsqueeze(x)`` giving ``x``'s own shape -> ``x``;
- ``Squeeze(Unsqueeze(x))``, ``Unsqueeze(Squeeze(x))`` (any reshape-like pair) back to ``x``'s shape -> ``x``;
- ``Reshape(Reshape(x, s1), s2)`` (any reshape-like pair) -> ``Reshape(x, s)`` with ``s`` the static result shape,
  or ``s2`` when it has no 0 entry (0 copies a dim of the input);
- ``Transpose(x, identity perm)`` -> ``x``; ``Transpose(Transpose(x, p), q)`` -> ``Transpose(x, p[q])``.
"""

from __future__ import annotations

import numpy as np

from compiler.ir.types import DType
from compiler.rewrite import AnyOf, MatchResult, NodeRule, RuleSet, Var, op, rule

from .common import attr, const_ints, same_type, static_shape, tensor_type

x = Var("x")
RESHAPE_LIKE = ("Reshape", "Flatten", "Squeeze", "Unsqueeze")


def _result_is_x(m) -> MatchResult:
    if same_type(m.root.results[0], m.x):
        return MatchResult.success()
    return MatchResult.fail(f"the result type {m.root.results[0].type} differs from x's {m.x.type}")


def _dropout(node, rw) -> bool:
    """Dropout in inference mode is the identity on its first result (only when the mask is unused)."""
    training = node.operands[2] if len(node.operands) > 2 else None
    if training is not None and (training.const_value is None or bool(np.any(training.const_value))):
        return False
    if len(node.results) > 1 and node.results[1].has_uses():
        return False
    rw.replace_value(node.results[0], node.operands[0])
    rw.erase_node(node)
    return True


def _cast_is_noop(m) -> MatchResult:
    t = tensor_type(m.x)
    if t is None or DType.from_onnx(m.root.attrs["to"]) != t.dtype:
        return MatchResult.fail("the cast changes the dtype")
    return MatchResult.success()


def _widens(src: DType, dst: DType) -> bool:
    """True if every value of ``src`` is exactly representable in ``dst``."""
    if src == dst or src == DType.BOOL:
        return True
    try:
        return bool(np.can_cast(src.np, dst.np, casting="safe"))
    except TypeError:
        return False


def _cast_cast_check(m) -> MatchResult:
    t = tensor_type(m.x)
    mid = DType.from_onnx(m.nodes["inner"].attrs["to"])
    if t is None or not _widens(t.dtype, mid):
        return MatchResult.fail(f"the first cast to {mid.value} may lose information")
    return MatchResult.success()


def _pad_is_zero(m) -> MatchResult:
    pads = const_ints(m.root.operands[1])
    if pads is None or any(pads):
        return MatchResult.fail("the pads are not constant zeros")
    return MatchResult.success()


def _slice_is_whole(m) -> MatchResult:
    node = m.root
    shape = tensor_type(m.x).shape if tensor_type(m.x) is not None else None
    ops = list(node.operands) + [None] * (5 - len(node.operands))
    starts, ends = const_ints(ops[1]), const_ints(ops[2])
    if shape is None or starts is None or ends is None:
        return MatchResult.fail("starts/ends are not constant or the rank is unknown")
    axes = const_ints(ops[3]) if ops[3] is not None else list(range(len(starts)))
    steps = const_ints(ops[4]) if ops[4] is not None else [1] * len(starts)
    if axes is None or steps is None:
        return MatchResult.fail("axes/steps are not constant")
    for a, s, e, step in zip(axes, starts, ends, steps):
        dim = shape[a + len(shape) if a < 0 else a]
        if step != 1 or not (s == 0 or (isinstance(dim, int) and s <= -dim)):
            return MatchResult.fail(f"axis {a} does not start at 0 with step 1")
        if not (e >= 2**62 or (isinstance(dim, int) and e >= dim)):
            return MatchResult.fail(f"axis {a} does not run to the end")
    return _result_is_x(m)


def _reshape_like(inner_name: str = "inner"):
    """A reshape-like op whose operand 0 is another reshape-like op of ``x``."""
    inner = AnyOf(*(op[n](x, name=inner_name, variadic=True) for n in RESHAPE_LIKE))
    return AnyOf(*(op[n](inner, variadic=True) for n in RESHAPE_LIKE))


def _merged_target(m) -> np.ndarray | None:
    """The shape operand of a Reshape that does what the pair does, or None."""
    out = static_shape(m.root.results[0])
    if out is not None:
        return np.array(out, np.int64)
    if m.root.op == "Reshape" and not attr(m.root, "allowzero"):
        target = const_ints(m.root.operands[1])
        if target is not None and 0 not in target:
            return np.array(target, np.int64)
    return None


def _perm(node, rank: int) -> list[int]:
    perm = node.attrs.get("perm")
    return list(perm) if perm is not None else list(range(rank))[::-1]


def _transpose_is_identity(m) -> MatchResult:
    t = tensor_type(m.x)
    if t is None or t.rank is None or _perm(m.root, t.rank) != list(range(t.rank)):
        return MatchResult.fail("the permutation is not the identity")
    return MatchResult.success()


def _transpose_rank(m) -> MatchResult:
    t = tensor_type(m.x)
    return MatchResult.success() if t is not None and t.rank is not None else MatchResult.fail("unknown rank")


@rule(op.Identity(x), name="identity")
def identity(rw, m):
    return m.x


dropout = NodeRule("Dropout", _dropout, name="dropout-inference")


@rule(op.Cast(x), check=_cast_is_noop, name="cast-noop")
def cast_noop(rw, m):
    return m.x


@rule(op.CastLike(x, Var("like")), check=_result_is_x, name="castlike-noop")
def castlike_noop(rw, m):
    return m.x


@rule(op.Cast(op.Cast(x, name="inner")), check=_cast_cast_check, name="cast-cast")
def cast_cast(rw, m):
    if DType.from_onnx(m.root.attrs["to"]) == tensor_type(m.x).dtype:
        return m.x
    return rw.op("Cast", [m.x], dict(m.root.attrs))


@rule(op.Pad(x, variadic=True), check=_pad_is_zero, name="pad-zero")
def pad_zero(rw, m):
    return m.x


@rule(op.Slice(x, variadic=True), check=_slice_is_whole, name="slice-whole")
def slice_whole(rw, m):
    return m.x


@rule(op.Expand(x, Var()), check=_result_is_x, name="expand-same-shape")
def expand_same(rw, m):
    return m.x


@rule(AnyOf(*(op[n](x, variadic=True) for n in RESHAPE_LIKE)), check=_result_is_x, name="reshape-same-shape")
def reshape_same(rw, m):
    return m.x


@rule(_reshape_like(), check=_result_is_x, name="squeeze-unsqueeze", benefit=2)
def reshape_pair_cancels(rw, m):
    return m.x


def merge_check(m) -> MatchResult:
    if _merged_target(m) is None:
        return MatchResult.fail("the merged target shape is unknown (dynamic dims or a 0 entry)")
    return MatchResult.success()


@rule(_reshape_like(), check=merge_check, name="reshape-reshape")
def reshape_pair_merges(rw, m):
    return rw.op("Reshape", [m.x, rw.constant(_merged_target(m))])


@rule(op.Transpose(x), check=_transpose_is_identity, name="transpose-identity")
def transpose_identity(rw, m):
    return m.x


@rule(op.Transpose(op.Transpose(x, name="inner")), check=_transpose_rank, name="transpose-transpose")
def transpose_transpose(rw, m):
    rank = tensor_type(m.x).rank
    p, q = _perm(m.nodes["inner"], rank), _perm(m.root, rank)
    perm = [p[i] for i in q]
    return m.x if perm == list(range(rank)) else rw.op("Transpose", [m.x], {"perm": perm})


RULES = RuleSet(
    [
        identity,
        dropout,
        cast_noop,
        castlike_noop,
        cast_cast,
        pad_zero,
        slice_whole,
        expand_same,
        reshape_same,
        reshape_pair_cancels,
        reshape_pair_merges,
        transpose_identity,
        transpose_transpose,
    ],
    name="shape",
)


def rules(fast_math: bool = False) -> RuleSet:
    """The shape rules (all exact, so ``fast_math`` changes nothing)."""
    return RULES
