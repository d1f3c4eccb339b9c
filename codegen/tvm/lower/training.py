"""Lowerings of the ``ai.onnx.preview.training`` optimiser steps: Adagrad, Momentum, Adam.

Inputs are ``R`` (learning rate), ``T`` (step count), then ``n`` tensors of each kind; outputs are
the ``n`` updated tensors of each kind.  With ``g = norm_coefficient x + G`` (all elementwise):

    Adagrad   h' = h + g^2;  x' = x - R / (1 + T decay_factor) * g / (sqrt(h') + epsilon)
    Momentum  v' = alpha v + (T > 0 ? beta : 1) g;  x' = x - R v'  (``nesterov``: x - R (g + alpha v'))
    Adam      v' = alpha v + (1 - alpha) g;  h' = beta h + (1 - beta) g^2;
              r = T > 0 ? R sqrt(1 - beta^T) / (1 - alpha^T) : R;
              x' = (1 - norm_coefficient_post)(x - r v' / (sqrt(h') + epsilon))

Scalars are computed in float64 and the updates in the tensors' dtype, like the ONNX reference.
"""

from __future__ import annotations

from tvm import te, tirx

from ..registry import lowering

DOMAIN = "ai.onnx.preview.training."


F64 = "float64"


def _scalar(t, dtype: str = F64):
    return (t() if len(t.shape) == 0 else t(*([0] * len(t.shape)))).astype(dtype)


def _groups(operands, kinds: int) -> list[list]:
    n = len(operands) // kinds
    return [operands[k * n : (k + 1) * n] for k in range(kinds)]


def _c(value: float, dtype: str):
    return tirx.const(float(value), dtype)


def _adagrad_one(ctx, r, t, x, g, h):
    decay, eps = float(ctx.attr("decay_factor", 0.0)), float(ctx.attr("epsilon", 0.0))
    norm, dt = float(ctx.attr("norm_coefficient", 0.0)), str(x.dtype)

    def grad(*i):
        return _c(norm, dt) * x(*i) + g(*i)

    h2 = te.compute(h.shape, lambda *i: h(*i) + grad(*i) * grad(*i), name="adagrad_h")

    def step(*i):
        rate = (_scalar(r) / (_c(1.0, F64) + _scalar(t) * _c(decay, F64))).astype(dt)
        return x(*i) - rate * grad(*i) / (tirx.sqrt(h2(*i)) + _c(eps, dt))

    return te.compute(x.shape, step, name="adagrad_x"), h2


@lowering(DOMAIN + "Adagrad")
def _adagrad(ctx, r, t, *tensors):
    pairs = [_adagrad_one(ctx, r, t, *xgh) for xgh in zip(*_groups(tensors, 3))]
    return [p[0] for p in pairs] + [p[1] for p in pairs]


def _momentum_one(ctx, r, t, x, g, v):
    alpha, beta = float(ctx.attr("alpha")), float(ctx.attr("beta"))
    norm, dt = float(ctx.attr("norm_coefficient", 0.0)), str(x.dtype)
    nesterov = ctx.attr("mode", "standard") == "nesterov"

    def grad(*i):
        return _c(norm, dt) * x(*i) + g(*i)

    def update(*i):
        b = tirx.Select(_scalar(t, "int64") > 0, _c(beta, dt), _c(1.0, dt))
        return _c(alpha, dt) * v(*i) + b * grad(*i)

    v2 = te.compute(v.shape, update, name="momentum_v")

    def step(*i):
        rate = _scalar(r, dt)
        if nesterov:
            return x(*i) - rate * (grad(*i) + _c(alpha, dt) * v2(*i))
        return x(*i) - rate * v2(*i)

    return te.compute(x.shape, step, name="momentum_x"), v2


@lowering(DOMAIN + "Momentum")
def _momentum(ctx, r, t, *tensors):
    pairs = [_momentum_one(ctx, r, t, *xgv) for xgv in zip(*_groups(tensors, 3))]
    return [p[0] for p in pairs] + [p[1] for p in pairs]


def _adam_one(ctx, r, t, x, g, v, h):
    alpha, beta = float(ctx.attr("alpha", 0.9)), float(ctx.attr("beta", 0.999))
    eps, norm = float(ctx.attr("epsilon", 0.0)), float(ctx.attr("norm_coefficient", 0.0))
    post, dt = float(ctx.attr("norm_coefficient_post", 0.0)), str(x.dtype)

    def grad(*i):
        return _c(norm, dt) * x(*i) + g(*i)

    v2 = te.compute(v.shape, lambda *i: _c(alpha, dt) * v(*i) + _c(1 - alpha, dt) * grad(*i), name="adam_v")
    h2 = te.compute(h.shape, lambda *i: _c(beta, dt) * h(*i) + _c(1 - beta, dt) * (grad(*i) * grad(*i)), name="adam_h")

    def step(*i):
        steps = _scalar(t)
        adjusted = (
            _scalar(r)
            * tirx.sqrt(_c(1.0, F64) - tirx.power(_c(beta, F64), steps))
            / (_c(1.0, F64) - tirx.power(_c(alpha, F64), steps))
        )
        rate = tirx.Select(_scalar(t, "int64") > 0, adjusted, _scalar(r)).astype(dt)
        moved = x(*i) - rate * (v2(*i) / (tirx.sqrt(h2(*i)) + _c(eps, dt)))
        return _c(1.0 - post, dt) * moved

    return te.compute(x.shape, step, name="adam_x"), v2, h2


@lowering(DOMAIN + "Adam")
def _adam(ctx, r, t, *tensors):
    triples = [_adam_one(ctx, r, t, *xgvh) for xgvh in zip(*_groups(tensors, 4))]
    return [p[0] for p in triples] + [p[1] for p in triples] + [p[2] for p in triples]
