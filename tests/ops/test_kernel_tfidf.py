"""The interpreter's TfIdfVectorizer (compiler/ops/ngrams.py) against onnxruntime, string pools included.

onnx.reference's kernel fails for IDF/TFIDF without weights; the compiled path counts with the same
tables (tests/codegen/test_tfidf_compiled.py checks it against onnxruntime on integer pools).
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from frontends.onnx.backend import EmberBackend


@pytest.mark.parametrize(
    "mode,weights", [("TF", None), ("IDF", None), ("TFIDF", None), ("TFIDF", [0.5, 2.0, 3.0]), ("IDF", [0.5, 2.0, 3.0])]
)
def test_string_pool_matches_onnxruntime(mode, weights):
    attrs = dict(
        mode=mode,
        min_gram_length=1,
        max_gram_length=2,
        max_skip_count=1,
        ngram_counts=[0, 2],
        ngram_indexes=[0, 1, 2],
        pool_strings=["a", "b", "a", "c"],
    )
    if weights:
        attrs["weights"] = weights
    node = helper.make_node("TfIdfVectorizer", ["x"], ["y"], **attrs)
    graph = helper.make_graph(
        [node],
        "s",
        [helper.make_tensor_value_info("x", TensorProto.STRING, [2, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    x = np.array([["a", "b", "a", "c", "c"], ["c", "a", "x", "c", "b"]], dtype=object)
    got = EmberBackend.prepare(model).run([x])[0]
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.float32
