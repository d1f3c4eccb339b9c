"""Reference kernels of ``ai.onnx.ml.TreeEnsemble`` and ``TreeEnsembleRegressor`` (compiler/ops/trees.py).

onnx.reference's TreeEnsemble ignores ``post_transform``, gives ``float32.max`` to a target that
no tree reaches under MIN/MAX (onnxruntime gives 0) and stops reading a member set at a member 0.0;
these kernels walk the same tables that codegen compiles.
"""

from __future__ import annotations

import numpy as np

from .kernels import kernel
from .trees import evaluate, tables_from_tree_ensemble, tables_from_tree_regressor


@kernel("ai.onnx.ml.TreeEnsemble")
def tree_ensemble(inputs, attrs, ctx):
    (x,) = inputs
    return [evaluate(x, tables_from_tree_ensemble(attrs)).astype(x.dtype)]


@kernel("ai.onnx.ml.TreeEnsembleRegressor")
def tree_ensemble_regressor(inputs, attrs, ctx):
    (x,) = inputs
    return [evaluate(np.atleast_2d(x), tables_from_tree_regressor(attrs)).astype(np.float32)]
