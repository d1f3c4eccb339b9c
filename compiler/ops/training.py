"""Training: the optimizer steps of ``ai.onnx.preview.training`` and the loss functions.

(``Gradient``, which differentiates the graph around it, is not declared: no
kernel can run it one node at a time.)
"""

from __future__ import annotations

from . import contracts as c
from .declare import Family
from .registry import InferContext

FAMILY = Family("training")
onnx_op = FAMILY.onnx_op


def softmax_cross_entropy_contract(ctx: InferContext) -> list[str]:
    """scores [N, C, d...], labels [N, d...], weights [C]."""
    scores, labels = c.shape(ctx, 0), c.shape(ctx, 1)
    if scores is None or len(scores) < 2:
        return []
    found = []
    want = (scores[0],) + tuple(scores[2:])
    if labels is not None and (
        len(labels) != len(want) or any(c.static(a) and c.static(b) and a != b for a, b in zip(labels, want))
    ):
        found.append(f"labels {c.show(labels)} must be {c.show(want)} (scores {c.show(scores)} without its class dim)")
    reason = c.length_problem("weights", c.shape(ctx, 2), scores[1], f"one per class of scores {c.show(scores)}")
    return found + ([reason] if reason else [])


onnx_op("ai.onnx.preview.training.Adagrad")
onnx_op("ai.onnx.preview.training.Adam")
onnx_op("ai.onnx.preview.training.Momentum")
onnx_op("NegativeLogLikelihoodLoss")
onnx_op("SoftmaxCrossEntropyLoss", contract=softmax_cross_entropy_contract)
