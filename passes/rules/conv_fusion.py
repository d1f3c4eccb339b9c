"""Per-channel affine ops folded into the weights of the op before them.

Rewrites (``W``, ``b`` and the folded parameters constant; the producer's result read only there):

- ``BatchNormalization(Conv(x, W, b))`` -> ``Conv(x, W * s, (b - mean) * s + beta)`` with
  ``s = gamma / sqrt(var + eps)``; the same for ``ConvTranspose`` (any group), ``Gemm`` (2-D output,
  ``transB`` either way) and a 2-D ``MatMul`` (-> ``Add(MatMul(x, W * s), bias)``);
- ``Mul(Conv(x, W, b), c)`` -> ``Conv(x, W * c, b * c)`` for a per-output-channel ``c`` (and commuted);
- ``Add(Conv|ConvTranspose(x, W, b), c)`` -> ``Conv|ConvTranspose(x, W, b + c)`` for a per-channel ``c``;
- ``Conv(Pad(x, p))`` -> ``Conv(x, pads + p)`` for a constant-mode zero pad of the spatial dims;
  ``AveragePool(Pad(x, p))`` likewise (then ``count_include_pad=1``); ``MaxPool(Pad(x, p, -inf))`` likewise;
- ``Mul(BatchNormalization(x, g, b, m, v), c)`` -> ``BatchNormalization(x, g * c, b * c, m, v)`` and
  ``Add(BatchNormalization(x, g, b, m, v), c)`` -> ``BatchNormalization(x, g, b + c, m, v)`` for a per-channel ``c``
  (a Caffe ``Scale`` layer after ``BatchNorm``).
"""

from __future__ import annotations

import numpy as np

from compiler.rewrite import AnyOf, Const, MatchResult, NodeRule, RuleSet, Var, op, rule

from .common import (
    attr,
    broadcast_is_per_channel,
    const_ints,
    is_float,
    only_use_is,
    per_channel_vector,
    same_type,
    tensor_type,
)

x = Var("x")


# --------------------------------------------------------------------------- BatchNormalization


def _bn_params(bn) -> tuple[np.ndarray, np.ndarray] | None:
    """``(scale, shift)`` with ``bn(y) = y * scale + shift`` per channel, or None if not constant/inference."""
    arrays = [v.const_value if v is not None else None for v in bn.operands[1:5]]
    if len(arrays) < 4 or any(a is None for a in arrays) or attr(bn, "training_mode"):
        return None
    if any(r.has_uses() for r in bn.results[1:]):
        return None
    gamma, beta, mean, var = (a.astype(np.float64) for a in arrays)
    scale = gamma / np.sqrt(var + float(attr(bn, "epsilon")))
    return scale, beta - mean * scale


def _const_operand(node, index: int) -> np.ndarray | None:
    v = node.operands[index] if len(node.operands) > index else None
    return None if v is None else v.const_value


def _scaled_bias(node, bias_index: int, channels: int, scale, shift, dtype) -> np.ndarray | None:
    """``(b * scale + shift)`` for the producer's bias operand (zeros when absent), or None if not constant."""
    present = len(node.operands) > bias_index and node.operands[bias_index] is not None
    b = _const_operand(node, bias_index) if present else np.zeros(channels)
    if b is None:
        return None
    return (b.astype(np.float64) * scale + shift).astype(dtype)


def _fold_bn_into_conv(node, w, scale, shift, rw):
    channels = w.shape[0]
    new_w = (w * scale.reshape((-1,) + (1,) * (w.ndim - 1))).astype(w.dtype)
    bias = _scaled_bias(node, 2, channels, scale, shift, w.dtype)
    return (
        None
        if bias is None
        else rw.op("Conv", [node.operands[0], rw.constant(new_w), rw.constant(bias)], dict(node.attrs))
    )


def _fold_bn_into_conv_transpose(node, w, scale, shift, rw):
    group = int(attr(node, "group"))
    cin, cout_g = w.shape[0], w.shape[1]
    grouped = w.reshape((group, cin // group, cout_g) + w.shape[2:])
    factors = scale.reshape((group, 1, cout_g) + (1,) * (w.ndim - 2))
    new_w = (grouped * factors).reshape(w.shape).astype(w.dtype)
    bias = _scaled_bias(node, 2, group * cout_g, scale, shift, w.dtype)
    return (
        None
        if bias is None
        else rw.op("ConvTranspose", [node.operands[0], rw.constant(new_w), rw.constant(bias)], dict(node.attrs))
    )


def _fold_bn_into_gemm(node, w, scale, shift, rw):
    trans_b = bool(attr(node, "transB"))
    new_w = (w * (scale[:, None] if trans_b else scale[None, :])).astype(w.dtype)
    beta = float(attr(node, "beta"))
    c = _const_operand(node, 2) if len(node.operands) > 2 and node.operands[2] is not None else np.zeros(())
    if c is None:
        return None
    bias = (c.astype(np.float64) * beta * scale + shift).astype(w.dtype)
    attrs = dict(node.attrs, beta=1.0)
    return rw.op("Gemm", [node.operands[0], rw.constant(new_w), rw.constant(bias)], attrs)


def _fold_bn_into_matmul(node, w, scale, shift, rw):
    if w.ndim != 2:
        return None
    new_w = (w * scale[None, :]).astype(w.dtype)
    y = rw.op("MatMul", [node.operands[0], rw.constant(new_w)])
    return rw.op("Add", [y, rw.constant(shift.astype(w.dtype))])


_BN_FOLDERS = {
    "Conv": _fold_bn_into_conv,
    "ConvTranspose": _fold_bn_into_conv_transpose,
    "Gemm": _fold_bn_into_gemm,
    "MatMul": _fold_bn_into_matmul,
}


def _fold_batch_norm(bn, rw) -> "bool | MatchResult":
    """BatchNormalization(producer(x, W, b)) -> producer(x, W', b') (see the module docstring)."""
    y = bn.operands[0]
    node = y.producer
    if node is None or node.op not in _BN_FOLDERS or not only_use_is(y, bn) or not is_float(y):
        return MatchResult.fail("the input is not a float Conv, ConvTranspose, Gemm or MatMul used only here")
    t = tensor_type(y)
    if node.op in ("Gemm", "MatMul") and (t is None or t.rank != 2):
        return MatchResult.fail(f"the {node.op} result is not of rank 2")
    params = _bn_params(bn)
    w = _const_operand(node, 1)
    if params is None or w is None:
        return MatchResult.fail("non-constant normalisation parameters or weights, or training mode")
    out = _BN_FOLDERS[node.op](node, w, *params, rw)
    if out is None:
        return MatchResult.fail(f"the weights of {node.op} cannot absorb a per-channel scale")
    if out.producer is not None and not out.producer.name:
        out.producer.name = node.name or bn.name  # profiles and errors keep naming the model's node
    rw.replace_value(bn.results[0], out)
    rw.erase_node(bn)
    rw.erase_node(node)
    return True


# --------------------------------------------------------------------------- Mul / Add by constants


def _per_channel(m, producer: str = "conv") -> MatchResult:
    conv = m.nodes[producer]
    t = tensor_type(conv.results[0])
    w = _const_operand(conv, 1)
    if t is None or t.rank is None or t.rank < 2 or w is None:
        return MatchResult.fail("unknown output rank or non-constant weights")
    channels = t.shape[1]
    if not isinstance(channels, int) or not broadcast_is_per_channel(m.c, t.rank, channels):
        return MatchResult.fail("the constant is not per-channel")
    if not only_use_is(conv.results[0], m.root):
        return MatchResult.fail("the convolution has other users")
    if len(conv.operands) > 2 and conv.operands[2] is not None and conv.operands[2].const_value is None:
        return MatchResult.fail("the bias is not constant")
    if not same_type(m.root.results[0], conv.results[0]) or m.c.dtype != w.dtype:
        return MatchResult.fail("the constant broadcasts the result to another type")
    return MatchResult.success()


def _bn_affine_check(m) -> MatchResult:
    bn = m.nodes["bn"]
    t = tensor_type(bn.results[0])
    if t is None or t.rank is None or t.rank < 2 or not isinstance(t.shape[1], int):
        return MatchResult.fail("unknown rank or channel count")
    if attr(bn, "training_mode") or any(r.has_uses() for r in bn.results[1:]):
        return MatchResult.fail("training-mode BatchNormalization")
    gamma, beta = (v.const_value for v in bn.operands[1:3])
    if gamma is None or beta is None or gamma.dtype != m.c.dtype:
        return MatchResult.fail("non-constant scale/bias or another dtype")
    if not broadcast_is_per_channel(m.c, t.rank, t.shape[1]) or not only_use_is(bn.results[0], m.root):
        return MatchResult.fail("the constant is not per-channel or the normalisation has other users")
    if not same_type(m.root.results[0], bn.results[0]):
        return MatchResult.fail("the constant changes the result type")
    return MatchResult.success()


def _bn_with(rw, m, gamma, beta):
    bn = m.nodes["bn"]
    return rw.op(
        "BatchNormalization",
        [bn.operands[0], rw.constant(gamma), rw.constant(beta)] + list(bn.operands[3:5]),
        dict(bn.attrs),
    )


def _bias_of(conv, channels: int, dtype) -> np.ndarray:
    b = _const_operand(conv, 2) if len(conv.operands) > 2 and conv.operands[2] is not None else None
    return np.zeros(channels, dtype) if b is None else b


# --------------------------------------------------------------------------- Pad


def _spatial_pads(pad_node, rank: int) -> list[int] | None:
    """The Pad's begin+end pads of the spatial dims (dims 2..), None unless a constant zero-value pad
    of spatial dims only (non-negative)."""
    pads = const_ints(pad_node.operands[1])
    if pads is None or attr(pad_node, "mode") != "constant":
        return None
    axes = (
        const_ints(pad_node.operands[3])
        if len(pad_node.operands) > 3 and pad_node.operands[3] is not None
        else list(range(rank))
    )
    if axes is None or len(pads) != 2 * len(axes):
        return None
    full = [0] * (2 * rank)
    for i, a in enumerate(axes):
        a = a + rank if a < 0 else a
        full[a], full[a + rank] = pads[i], pads[i + len(axes)]
    if any(p < 0 for p in full) or full[0] or full[1] or full[rank] or full[rank + 1]:
        return None
    return full[2:rank] + full[rank + 2 :]


def _pad_value(pad_node) -> float | None:
    v = pad_node.operands[2] if len(pad_node.operands) > 2 else None
    if v is None:
        return 0.0
    c = v.const_value
    return None if c is None or c.size != 1 else float(c.reshape(()))


def _pad_value_problem(node, value: float | None) -> str:
    """Why ``node`` cannot absorb a pad of ``value`` (empty if it can): MaxPool pads with -inf, the rest with 0."""
    if node.op != "MaxPool":
        return "" if value == 0.0 else "the pad value is not zero"
    if value != -np.inf:
        return "MaxPool only absorbs a -inf pad"
    if len(node.results) > 1 and node.results[1].has_uses():
        return "MaxPool indices are used"
    return ""


def _pad_fold_check(m) -> MatchResult:
    node, pad = m.root, m.nodes["pad"]
    t = tensor_type(m.x)
    if t is None or t.rank is None or t.rank < 3:
        return MatchResult.fail("unknown rank")
    if attr(node, "auto_pad") not in ("NOTSET", None):
        return MatchResult.fail("auto_pad is set")
    extra = _spatial_pads(pad, t.rank)
    if extra is None:
        return MatchResult.fail("not a constant-mode pad of the spatial dims only")
    value_problem = _pad_value_problem(node, _pad_value(pad))
    if value_problem:
        return MatchResult.fail(value_problem)
    pads = _combined_pads(node, extra, t.rank - 2)
    if node.op == "AveragePool" and not attr(node, "count_include_pad") and any(node.attrs.get("pads") or []):
        return MatchResult.fail("AveragePool excludes its own pads from the average")
    if node.op != "Conv":
        kernel = attr(node, "kernel_shape")
        if any(p >= k for p, k in zip(pads, list(kernel) * 2)):
            return MatchResult.fail("the combined pad is not smaller than the kernel")
    return MatchResult.success()


def _combined_pads(node, extra: list[int], spatial: int) -> list[int]:
    own = node.attrs.get("pads") or [0] * (2 * spatial)
    return [a + b for a, b in zip(own, extra)]


def rules(fast_math: bool = False) -> RuleSet:
    """The conv-fusion rules (exact up to rounding of the folded weights)."""
    bn = NodeRule("BatchNormalization", _fold_batch_norm, name="fold-batchnorm")

    @rule(
        op.Mul(op.Conv(x, Var(), variadic=True, name="conv"), Const("c"), commute=True),
        check=_per_channel,
        name="fold-mul-into-conv",
    )
    def mul_into_conv(rw, m):
        conv = m.nodes["conv"]
        t = tensor_type(conv.results[0])
        factors = per_channel_vector(m.c, t.rank, t.shape[1])
        w = _const_operand(conv, 1)
        new_w = (w * factors.reshape((-1,) + (1,) * (w.ndim - 1))).astype(w.dtype)
        bias = (_bias_of(conv, t.shape[1], w.dtype) * factors).astype(w.dtype)
        return rw.op("Conv", [conv.operands[0], rw.constant(new_w), rw.constant(bias)], dict(conv.attrs))

    conv_or_deconv = AnyOf(
        op.Conv(x, Var(), variadic=True, name="conv"), op.ConvTranspose(x, Var(), variadic=True, name="conv")
    )

    @rule(op.Add(conv_or_deconv, Const("c"), commute=True), check=_per_channel, name="fold-add-into-conv")
    def add_into_conv(rw, m):
        conv = m.nodes["conv"]
        t = tensor_type(conv.results[0])
        w = _const_operand(conv, 1)
        bias = (_bias_of(conv, t.shape[1], w.dtype) + per_channel_vector(m.c, t.rank, t.shape[1])).astype(w.dtype)
        return rw.op(conv.op, [conv.operands[0], conv.operands[1], rw.constant(bias)], dict(conv.attrs))

    padded = op.Pad(x, variadic=True, name="pad")

    @rule(
        AnyOf(op.Conv(padded, variadic=True), op.AveragePool(padded), op.MaxPool(padded)),
        check=_pad_fold_check,
        name="fold-pad-into-conv-pool",
    )
    def pad_into_conv(rw, m):
        node = m.root
        rank = tensor_type(m.x).rank
        pads = _combined_pads(node, _spatial_pads(m.nodes["pad"], rank), rank - 2)
        attrs = dict(node.attrs, pads=pads)
        if node.op == "AveragePool":
            attrs["count_include_pad"] = 1
        new = rw.node(node.op, [m.x] + list(node.operands[1:]), attrs, num_results=len(node.results))
        return list(new.results)

    batch_norm = op.BatchNormalization(x, Var(), Var(), Var(), Var(), name="bn")

    @rule(op.Mul(batch_norm, Const("c"), commute=True), check=_bn_affine_check, name="fold-mul-into-batchnorm")
    def mul_into_bn(rw, m):
        t = tensor_type(m.bn)
        c = per_channel_vector(m.c, t.rank, t.shape[1])
        gamma, beta = (v.const_value for v in m.nodes["bn"].operands[1:3])
        return _bn_with(rw, m, (gamma * c).astype(gamma.dtype), (beta * c).astype(beta.dtype))

    @rule(op.Add(batch_norm, Const("c"), commute=True), check=_bn_affine_check, name="fold-add-into-batchnorm")
    def add_into_bn(rw, m):
        t = tensor_type(m.bn)
        gamma, beta = (v.const_value for v in m.nodes["bn"].operands[1:3])
        return _bn_with(rw, m, gamma, (beta + per_channel_vector(m.c, t.rank, t.shape[1])).astype(beta.dtype))

    return RuleSet([bn, mul_into_conv, add_into_conv, pad_into_conv, mul_into_bn, add_into_bn], name="conv-fusion")
