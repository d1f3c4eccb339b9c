"""Training: the optimizer steps of ``ai.onnx.preview.training`` and the loss functions.

(``Gradient``, which differentiates the graph around it, is not declared: no
kernel can run it one node at a time.)
"""

from __future__ import annotations

from .declare import Family

FAMILY = Family("training")
onnx_op = FAMILY.onnx_op

onnx_op("ai.onnx.preview.training.Adagrad")
onnx_op("ai.onnx.preview.training.Adam")
onnx_op("ai.onnx.preview.training.Momentum")
onnx_op("NegativeLogLikelihoodLoss")
onnx_op("SoftmaxCrossEntropyLoss")
