"""Traditional machine learning (``ai.onnx.ml``): linear models, SVMs, tree ensembles, encoders.

Tree ensembles walk the flat tables of ``trees.py``, which codegen compiles too.
onnx.reference's TreeEnsemble ignores ``post_transform``, gives ``float32.max``
to a target no tree reaches under MIN/MAX (onnxruntime gives 0) and stops
reading a member set at a member 0.0; Ember's kernels do neither.
"""

from __future__ import annotations

import numpy as np

from .. import onnx_bridge as bridge
from .declare import Family
from .registry import Fusion
from .trees import evaluate, tables_from_tree_ensemble, tables_from_tree_regressor

FAMILY = Family("ml")
onnx_op = FAMILY.onnx_op

ML = "ai.onnx.ml."


def tree_ensemble(inputs, attrs, ctx):
    (x,) = inputs
    return [evaluate(x, tables_from_tree_ensemble(attrs)).astype(x.dtype)]


def tree_ensemble_regressor(inputs, attrs, ctx):
    (x,) = inputs
    return [evaluate(np.atleast_2d(x), tables_from_tree_regressor(attrs)).astype(np.float32)]


def _legacy_tree_infer(ctx):
    """TreeEnsembleRegressor: float32 [N, n_targets] (onnx's latest schema of it is deprecated)."""
    x = ctx.input_types[0]
    rows = x.shape[:1] if isinstance(x, bridge.TensorType) and x.shape is not None and len(x.shape) else None
    n_targets = int(ctx.attrs.get("n_targets") or 1)
    return [bridge.TensorType(bridge.DType.FLOAT32, None if rows is None else tuple(rows) + (n_targets,))]


onnx_op(ML + "ArrayFeatureExtractor", fusion=Fusion.INJECTIVE)
onnx_op(ML + "Binarizer", fusion=Fusion.ELEMENTWISE)
onnx_op(ML + "CastMap")
onnx_op(ML + "CategoryMapper")
onnx_op(ML + "DictVectorizer")
onnx_op(ML + "FeatureVectorizer")
onnx_op(ML + "Imputer")
onnx_op(ML + "LabelEncoder")
onnx_op(ML + "LinearClassifier")
onnx_op(ML + "LinearRegressor")
onnx_op(ML + "Normalizer")
onnx_op(ML + "OneHotEncoder")
onnx_op(ML + "SVMClassifier")
onnx_op(ML + "SVMRegressor")
onnx_op(ML + "Scaler")
onnx_op(ML + "ZipMap")
onnx_op(ML + "TreeEnsemble", kernel=tree_ensemble)
# deprecated in onnx, still exported by scikit-learn converters: declared from its last schema
onnx_op(ML + "TreeEnsembleRegressor", kernel=tree_ensemble_regressor, infer=_legacy_tree_infer)
