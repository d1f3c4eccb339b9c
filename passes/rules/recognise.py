"""Activation and normalisation sub-graphs recognised as the single ONNX op they compute.

Products are read through any tree of single-use ``Mul`` and ``Div``-by-constant nodes, so
``x * 0.5 * (1 + erf(x / sqrt2))``, ``(x * 0.5) * (...)`` and ``0.5 * (x * (...))`` all match.

Rewrites:

- ``0.5 * x * (1 + Erf(x / sqrt(2)))`` -> ``Gelu(x)``;
- ``0.5 * x * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))`` -> ``Gelu(x, approximate="tanh")``;
- ``x * HardSigmoid(x, alpha=1/6, beta=0.5)`` and ``x * Clip(x + 3, 0, 6) / 6`` -> ``HardSwish(x)``;
- ``x * Sigmoid(x)`` -> ``Swish(x)`` (ONNX opset 24; the rule is left out if the registry lacks ``Swish``);
- ``Exp(x) / ReduceSum(Exp(x), [a], keepdims=1)`` -> ``Softmax(x, axis=a)``, also with ``x - ReduceMax(x, [a])``
  in place of ``x``; ``Reshape(Softmax(Flatten(x, a), -1), shape(x))`` (an old-opset Softmax) -> ``Softmax(x, k)``
  when ``k`` is the only dim from ``a`` on that is not 1;
- ``(x - mean) / Sqrt(ReduceMean((x - mean)^2) + eps)`` over trailing axes, ``mean = ReduceMean(x)``
  -> ``LayerNormalization(x, ones, axis, epsilon)``; then ``LayerNormalization * c`` and ``+ c`` fold into its
  scale and bias for constants ``c`` that broadcast over the normalised dims.

Recognised ops compute the same function; results agree to rounding, not bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from compiler.ir.core import Value
from compiler.ops import get_op
from compiler.rewrite import Const, MatchResult, NodeRule, RuleSet, Var, op, rule

from .common import attr, close_to, is_float, normalized_axes, only_use_is, same_type, splat, static_shape, tensor_type

x = Var("x")


def product_terms(v: Value, root=None) -> tuple[list[Value], float]:
    """The non-constant factors and the constant scalar factor of ``v`` read as a product."""
    node = v.producer
    if node is None or node.op not in ("Mul", "Div") or (root is not None and not only_use_is(v, root)):
        return [v], 1.0
    lhs, rhs = node.operands
    k = splat(rhs.const_value) if rhs.const_value is not None and rhs.const_value.size == 1 else None
    if node.op == "Div":
        if k is None or k == 0:
            return [v], 1.0
        leaves, c = product_terms(lhs, node)
        return leaves, c / k
    leaves, c = [], 1.0
    for operand in (lhs, rhs):
        arr = operand.const_value
        if arr is not None and arr.size == 1:
            c *= float(arr.reshape(()))
        else:
            sub, sc = product_terms(operand, node)
            leaves += sub
            c *= sc
    return leaves, c


def _scalar(v: Value | None) -> float | None:
    arr = None if v is None else v.const_value
    return None if arr is None or arr.size != 1 else float(arr.reshape(()))


def _other(leaves: list[Value], x_: Value) -> Value | None:
    """The leaf that is not ``x_`` when the product has exactly ``x_`` and one more factor."""
    if len(leaves) == 2 and x_ in leaves:
        return leaves[1] if leaves[0] is x_ else leaves[0]
    return None


def _one_plus(v: Value, op_name: str) -> Value | None:
    """``t`` when ``v = 1 + op_name(t)`` (either order), else None."""
    node = v.producer
    if node is None or node.op != "Add":
        return None
    for f, one in (node.operands, node.operands[::-1]):
        if _scalar(one) == 1.0 and f.producer is not None and f.producer.op == op_name:
            return f.producer.operands[0]
    return None


def _gelu_erf(leaves, k):
    if not close_to(k, 0.5):
        return None
    for x_ in leaves:
        other = _other(leaves, x_)
        t = _one_plus(other, "Erf") if other is not None else None
        if t is not None:
            inner, c = product_terms(t)
            if inner == [x_] and close_to(c, 1 / math.sqrt(2)):
                return "Gelu", x_, {}
    return None


def _is_cube_of(leaves: list[Value], x_: Value) -> bool:
    if leaves == [x_, x_, x_]:
        return True
    node = leaves[0].producer if len(leaves) == 1 else None
    return node is not None and node.op == "Pow" and node.operands[0] is x_ and _scalar(node.operands[1]) == 3.0


def _gelu_tanh(leaves, k):
    for x_ in leaves:
        other = _other(leaves, x_)
        t = _one_plus(other, "Tanh") if other is not None else None
        if t is None or not close_to(k, 0.5):
            continue
        inner, c = product_terms(t)
        add = inner[0].producer if len(inner) == 1 else None
        if add is None or add.op != "Add" or not close_to(c, math.sqrt(2 / math.pi)):
            continue
        for lin, cubic in (add.operands, add.operands[::-1]):
            cube_leaves, kc = product_terms(cubic)
            if lin is x_ and close_to(kc, 0.044715) and _is_cube_of(cube_leaves, x_):
                return "Gelu", x_, {"approximate": "tanh"}
    return None


def _is_plus_three(v: Value, x_: Value) -> bool:
    node = v.producer
    if node is None or node.op != "Add":
        return False
    p, q = node.operands
    return (p is x_ and _scalar(q) == 3.0) or (q is x_ and _scalar(p) == 3.0)


def _hard_swish(leaves, k):
    for x_ in leaves:
        other = _other(leaves, x_)
        node = other.producer if other is not None else None
        if node is None:
            continue
        if (
            node.op == "HardSigmoid"
            and node.operands[0] is x_
            and close_to(k, 1.0)
            and close_to(float(attr(node, "alpha")), 1 / 6)
            and close_to(float(attr(node, "beta")), 0.5)
        ):
            return "HardSwish", x_, {}
        if (
            node.op == "Clip"
            and close_to(k, 1 / 6)
            and len(node.operands) == 3
            and _scalar(node.operands[1]) == 0.0
            and _scalar(node.operands[2]) == 6.0
            and _is_plus_three(node.operands[0], x_)
        ):
            return "HardSwish", x_, {}
    return None


def _silu(leaves, k):
    for x_ in leaves:
        other = _other(leaves, x_)
        node = other.producer if other is not None else None
        if node is not None and node.op == "Sigmoid" and node.operands[0] is x_ and k == 1.0:
            return "Swish", x_, {}
    return None


def _recogniser(fn):
    """A NodeRule body: replace a product node by the op that ``fn`` recognises in its factors."""

    def recognise(node, rw) -> bool:
        if not is_float(node.results[0]):
            return False
        found = fn(*product_terms(node.results[0]))
        if found is None or not same_type(node.results[0], found[1]):
            return False
        op_name, x_, attrs = found
        rw.replace_node(node, rw.op(op_name, [x_], attrs))
        return True

    return recognise


# --------------------------------------------------------------------------- Softmax


def _single_axis(node, rank) -> int | None:
    axes = normalized_axes(node, rank)
    if axes is None and rank == 1 and len(node.operands) < 2:
        axes = [0]
    return axes[0] if axes is not None and len(axes) == 1 and attr(node, "keepdims") else None


def _softmax(node, rw) -> bool:
    e, total = node.operands
    rank = tensor_type(e).rank if tensor_type(e) is not None else None
    if (
        e.producer is None
        or e.producer.op != "Exp"
        or total.producer is None
        or total.producer.op != "ReduceSum"
        or total.producer.operands[0] is not e
        or not is_float(e)
    ):
        return False
    axis = _single_axis(total.producer, rank)
    if axis is None or not same_type(node.results[0], e):
        return False
    z = e.producer.operands[0]
    sub = z.producer
    if sub is not None and sub.op == "Sub" and sub.operands[1].producer is not None:
        peak = sub.operands[1].producer
        if peak.op == "ReduceMax" and peak.operands[0] is sub.operands[0] and _single_axis(peak, rank) == axis:
            z = sub.operands[0]
    rw.replace_node(node, rw.op("Softmax", [z], {"axis": axis}))
    return True


def _flattened_softmax(m) -> MatchResult:
    """The old-opset Softmax (coerced to 2-D) is a one-axis Softmax when one dim at most is not 1."""
    shape = static_shape(m.x)
    flat = m.nodes["flat"]
    axis = int(attr(flat, "axis"))
    if shape is None or not same_type(m.root.results[0], m.x):
        return MatchResult.fail("the reshape does not restore x's static shape")
    if int(attr(m.nodes["sm"], "axis")) not in (1, -1):
        return MatchResult.fail("the softmax is not over the flattened axis")
    big = [i for i in range(axis + len(shape) if axis < 0 else axis, len(shape)) if shape[i] != 1]
    if len(big) > 1:
        return MatchResult.fail("more than one dim is softmaxed together")
    return MatchResult.success()


# --------------------------------------------------------------------------- LayerNormalization


def _trailing_axis(node, rank) -> int | None:
    axes = normalized_axes(node, rank)
    if axes is None or not axes or axes != list(range(axes[0], rank)) or not attr(node, "keepdims"):
        return None
    return axes[0]


def _layer_norm(node, rw) -> bool:
    d, denom = node.operands
    sub, sqrt = d.producer, denom.producer
    if sub is None or sub.op != "Sub" or sqrt is None or sqrt.op != "Sqrt" or not is_float(d):
        return False
    x_, mean = sub.operands
    rank = tensor_type(x_).rank if tensor_type(x_) is not None else None
    add = sqrt.operands[0].producer
    if mean.producer is None or mean.producer.op != "ReduceMean" or mean.producer.operands[0] is not x_:
        return False
    if add is None or add.op != "Add":
        return False
    eps = _scalar(add.operands[1]) if add.operands[1].const_value is not None else _scalar(add.operands[0])
    var = add.operands[0] if add.operands[1].const_value is not None else add.operands[1]
    vnode = var.producer
    if eps is None or vnode is None or vnode.op != "ReduceMean":
        return False
    sq = vnode.operands[0].producer
    squares = sq is not None and (
        (sq.op == "Pow" and sq.operands[0] is d and _scalar(sq.operands[1]) == 2.0)
        or (sq.op == "Mul" and sq.operands[0] is d and sq.operands[1] is d)
    )
    axis = _trailing_axis(mean.producer, rank)
    if not squares or axis is None or _trailing_axis(vnode, rank) != axis or not same_type(node.results[0], x_):
        return False
    normalized = static_shape(x_)[axis:] if static_shape(x_) is not None else tensor_type(x_).shape[axis:]
    if not all(isinstance(n, int) for n in normalized):
        return False
    dtype = tensor_type(x_).dtype.np
    scale = rw.constant(np.ones(normalized, dtype))
    epsilon = float(str(np.float32(eps)))  # the shortest decimal of the float32 constant: 1e-05, not 9.99...e-06
    rw.replace_node(node, rw.op("LayerNormalization", [x_, scale], {"axis": axis, "epsilon": epsilon}))
    return True


def _ln_affine_check(m) -> MatchResult:
    ln = m.nodes["ln"]
    rank = tensor_type(ln.results[0]).rank
    axis = int(attr(ln, "axis"))
    axis = axis + rank if axis < 0 else axis
    scale = ln.operands[1].const_value
    bias = ln.operands[2].const_value if len(ln.operands) > 2 and ln.operands[2] is not None else 0
    if scale is None or bias is None or not only_use_is(ln.results[0], m.root):
        return MatchResult.fail("non-constant scale/bias or other users of the normalisation")
    if any(r.has_uses() for r in ln.results[1:]):
        return MatchResult.fail("mean/inv-std outputs are used")
    if m.c.ndim > rank - axis and any(d != 1 for d in m.c.shape[: m.c.ndim - (rank - axis)]):
        return MatchResult.fail("the constant varies outside the normalised dims")
    if not same_type(m.root.results[0], ln.results[0]) or m.c.dtype != scale.dtype:
        return MatchResult.fail("the constant changes the result type")
    return MatchResult.success()


def _ln_params(m):
    ln = m.nodes["ln"]
    rank = tensor_type(ln.results[0]).rank
    axis = int(attr(ln, "axis"))
    normalized = tensor_type(ln.results[0]).shape[(axis + rank if axis < 0 else axis) :]
    c = m.c.reshape(m.c.shape[max(0, m.c.ndim - len(normalized)) :])
    scale = np.broadcast_to(ln.operands[1].const_value, normalized)
    bias = ln.operands[2].const_value if len(ln.operands) > 2 and ln.operands[2] is not None else None
    bias = np.zeros(normalized, scale.dtype) if bias is None else np.broadcast_to(bias, normalized)
    return ln, c, scale, bias


def rules(fast_math: bool = False) -> RuleSet:
    """The recognition rules."""
    recognisers = {
        "recognise-gelu-erf": _gelu_erf,
        "recognise-gelu-tanh": _gelu_tanh,
        "recognise-hardswish": _hard_swish,
    }
    if get_op("Swish") is not None:
        recognisers["recognise-silu"] = _silu
    out = [NodeRule(root, _recogniser(fn), name=name) for name, fn in recognisers.items() for root in ("Mul", "Div")]
    out += [
        NodeRule("Div", _softmax, name="recognise-softmax"),
        NodeRule("Div", _layer_norm, name="recognise-layernorm"),
    ]
    ln = op.LayerNormalization(Var(), Var(), variadic=True, name="ln")

    @rule(
        op.Reshape(op.Softmax(op.Flatten(x, name="flat"), name="sm"), Var()),
        check=_flattened_softmax,
        name="recognise-flattened-softmax",
    )
    def flattened_softmax(rw, m):
        shape = static_shape(m.x)
        axis = int(attr(m.nodes["flat"], "axis"))
        big = [i for i in range(axis + len(shape) if axis < 0 else axis, len(shape)) if shape[i] != 1]
        return rw.op("Softmax", [m.x], {"axis": big[0] if big else len(shape) - 1})

    @rule(op.Mul(ln, Const("c"), commute=True), check=_ln_affine_check, name="fold-mul-into-layernorm")
    def ln_mul(rw, m):
        node, c, scale, bias = _ln_params(m)
        ops = [
            node.operands[0],
            rw.constant((scale * c).astype(scale.dtype)),
            rw.constant((bias * c).astype(scale.dtype)),
        ]
        return rw.op("LayerNormalization", ops, dict(node.attrs))

    @rule(op.Add(ln, Const("c"), commute=True), check=_ln_affine_check, name="fold-add-into-layernorm")
    def ln_add(rw, m):
        node, c, scale, bias = _ln_params(m)
        ops = [node.operands[0], rw.constant(np.array(scale)), rw.constant((bias + c).astype(scale.dtype))]
        return rw.op("LayerNormalization", ops, dict(node.attrs))

    return RuleSet(out + [flattened_softmax, ln_mul, ln_add], name="recognise")
