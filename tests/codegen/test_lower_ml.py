"""Traditional-ML lowerings (codegen/tvm/lower/ml.py) compiled: Binarizer and ArrayFeatureExtractor
(tree ensembles: test_trees_compiled.py).

Each model is one node with declared output shapes, as exported models with static shapes have;
parameters are model inputs where the op allows it. The compiled library must give the
interpreter's answer for every value consistent with those shapes, and fail the run with a message
naming the op, never a wrong result, for a value that is not."""

from __future__ import annotations

import numpy as np
import pytest
from compiled_checks import check_against_interpreter, node_model
from onnx import TensorProto

from compiler.runtime import RuntimeLoadError

F, I64, H = TensorProto.FLOAT, TensorProto.INT64, TensorProto.FLOAT16


# Binarizer, ArrayFeatureExtractor, TensorScatter, MaxUnpool, Col2Im, Det -----------------------------------

ML = "ai.onnx.ml"


def test_binarizer():
    x = np.random.default_rng(5).standard_normal((3, 4)).astype(np.float32)
    check_against_interpreter(
        node_model("Binarizer", [("x", F, [3, 4])], [("y", F, [3, 4])], domain=ML, threshold=0.3), {"x": x}
    )


def test_array_feature_extractor_checks_indices():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    m = node_model("ArrayFeatureExtractor", [("x", F, [3, 4]), ("y", I64, [3])], [("z", F, [3, 3])], domain=ML)
    rep = check_against_interpreter(m, {"x": x, "y": np.array([3, 0, 1], np.int64)})
    with pytest.raises(RuntimeLoadError, match="outside"):
        rep.run({"x": x, "y": np.array([4, 0, 1], np.int64)})
