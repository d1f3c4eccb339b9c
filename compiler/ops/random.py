"""Random generators: never pure, never folded nor CSE'd (``Trait.RANDOM``)."""

from __future__ import annotations

import numpy as np

from .declare import Family
from .registry import Trait

FAMILY = Family("random")
onnx_op = FAMILY.onnx_op

RANDOM = {Trait.RANDOM}


def multinomial(inputs, attrs, ctx):
    (logits,) = inputs
    n = ctx.attr("sample_size")
    seed = attrs.get("seed")
    rng = np.random.default_rng(None if seed is None else int(seed))
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    out = np.stack([rng.choice(probs.shape[1], size=n, p=p) for p in probs])
    dtype = np.int32 if ctx.attr("dtype") == 6 else np.int64
    return [out.astype(dtype)]


onnx_op("RandomNormal", traits=RANDOM)
onnx_op("RandomNormalLike", traits=RANDOM)
onnx_op("RandomUniform", traits=RANDOM)
onnx_op("RandomUniformLike", traits=RANDOM)
onnx_op("Bernoulli", traits=RANDOM)
onnx_op("Multinomial", traits=RANDOM, kernel=multinomial)
