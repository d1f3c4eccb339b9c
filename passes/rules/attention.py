"""Multi-head scaled dot-product attention recognised as one ONNX ``Attention`` op (opset 23).

Rewrite (``B``, ``S``, ``nh``, ``d`` static ints except ``B``/``S``; ``H = nh * d``)::

    qh = Transpose(Reshape(q[B,S,H], [B,S,nh,d]), [0,2,1,3])
    kt = Transpose(Reshape(k[B,T,H], [B,T,nh,d]), [0,2,3,1])
    vh = Transpose(Reshape(v[B,T,H], [B,T,nh,d]), [0,2,1,3])
    y  = Reshape(Transpose(MatMul(Softmax(MatMul(qh, kt) * c, axis=-1), vh), [0,2,1,3]), [B,S,H])
    ->  y = Attention(q, k, v, q_num_heads=nh, kv_num_heads=nh, scale=c)

``* c`` may also be ``/ c`` or absent (then ``c = 1/sqrt(d)``, the op's default), and an additive
mask may follow it (``Softmax(MatMul(qh, kt) * c + mask)`` -> ``Attention(q, k, v, mask)``).  Twelve
nodes become one; the result agrees with the sub-graph to rounding.
"""

from __future__ import annotations

import math

from compiler.ir.core import Value
from compiler.ops import get_op
from compiler.rewrite import MatchResult, NodeRule, RuleSet

from .common import attr, is_float, same_type, tensor_type

HEADS_FIRST = [0, 2, 1, 3]


def _producer(v: Value | None, op_name: str):
    node = None if v is None else v.producer
    return node if node is not None and node.op == op_name else None


def _split_heads(v: Value, perm: list[int]) -> tuple[Value, int, int] | None:
    """``(x, heads, head_size)`` when ``v = Transpose(Reshape(x[B,S,H], [B,S,nh,d]), perm)``."""
    t = _producer(v, "Transpose")
    if t is None or list(t.attrs.get("perm") or []) != perm:
        return None
    r = _producer(t.operands[0], "Reshape")
    if r is None:
        return None
    x, split = r.operands[0], tensor_type(r.results[0])
    xt = tensor_type(x)
    if xt is None or xt.rank != 3 or split is None or split.rank != 4:
        return None
    heads, size = split.shape[2], split.shape[3]
    if not isinstance(heads, int) or not isinstance(size, int) or xt.shape[2] != heads * size:
        return None
    if split.shape[0] != xt.shape[0] or split.shape[1] != xt.shape[1]:
        return None
    return x, heads, size


def _scale_of(v: Value, head_size: int) -> tuple[Value, float] | None:
    """``(scores, scale)`` for ``v = scores * c``, ``scores / c`` or ``scores`` itself."""
    node = v.producer
    if node is not None and node.op in ("Mul", "Div"):
        for scores, c in ((node.operands[0], node.operands[1]), (node.operands[1], node.operands[0])):
            arr = c.const_value
            if arr is not None and arr.size == 1 and _producer(scores, "MatMul") is not None:
                k = float(arr.reshape(()))
                if node.op == "Div" and (c is node.operands[0] or k == 0):
                    continue
                return scores, (1.0 / k if node.op == "Div" else k)
    if _producer(v, "MatMul") is not None:
        return v, 1.0 / math.sqrt(head_size)
    return None


def _is_mask(v: Value) -> bool:
    """A float additive mask of rank 4 at most (it broadcasts to [B, nh, S, T] or the Add would not type)."""
    t = tensor_type(v)
    return t is not None and t.dtype.is_float and t.rank is not None and t.rank <= 4


def _recognise_attention(node, rw) -> "bool | MatchResult":
    """The rewrite of the module docstring, rooted at the final Reshape."""
    merged = _producer(node.operands[0], "Transpose")
    if merged is None or list(merged.attrs.get("perm") or []) != HEADS_FIRST or not is_float(node.results[0]):
        return MatchResult.fail("the Reshape's input is not a float Transpose merging heads (perm [0, 2, 1, 3])")
    context = _producer(merged.operands[0], "MatMul")
    probs = _producer(context.operands[0], "Softmax") if context is not None else None
    if probs is None or int(attr(probs, "axis")) not in (-1, 3):
        return MatchResult.fail("no MatMul(Softmax over the last axis, V) feeds the head merge")
    v = _split_heads(context.operands[1], HEADS_FIRST)
    if v is None:
        return MatchResult.fail("V is not split into heads by Reshape + Transpose")
    scaled, mask = _scale_of(probs.operands[0], v[2]), None
    masked = _producer(probs.operands[0], "Add")
    if scaled is None and masked is not None:
        for a, b in (masked.operands, masked.operands[::-1]):
            if _scale_of(a, v[2]) is not None and _is_mask(b):
                scaled, mask = _scale_of(a, v[2]), b
                break
    if scaled is None:
        return MatchResult.fail("the Softmax input is not a scaled Q.K^T (optionally plus a float mask)")
    scores = scaled[0].producer
    q = _split_heads(scores.operands[0], HEADS_FIRST)
    k = _split_heads(scores.operands[1], [0, 2, 3, 1])
    if q is None or k is None or not (q[1:] == k[1:] == v[1:]) or not same_type(node.results[0], q[0]):
        return MatchResult.fail("Q, K and V are not split into the same heads, or the result type differs from Q's")
    if tensor_type(k[0]).shape[:2] != tensor_type(v[0]).shape[:2]:
        return MatchResult.fail("K and V differ in batch or sequence length")
    attrs = {"q_num_heads": q[1], "kv_num_heads": q[1], "scale": float(scaled[1])}
    operands = [q[0], k[0], v[0]] + ([mask] if mask is not None else [])
    y = rw.node("Attention", operands, attrs, num_results=1).results[0]
    rw.replace_node(node, y)
    return True


def rules(fast_math: bool = False) -> RuleSet:
    """The attention rule (empty when the registry lacks ``Attention``)."""
    if get_op("Attention") is None:
        return RuleSet(name="attention")
    return RuleSet([NodeRule("Reshape", _recognise_attention, name="recognise-attention")], name="attention")
