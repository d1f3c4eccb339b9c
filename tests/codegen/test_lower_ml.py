"""Traditional-ML lowerings (codegen/tvm/lower/ml.py) compiled: Binarizer and ArrayFeatureExtractor
(tree ensembles: test_trees_compiled.py).

Each model is one node with declared output shapes, as exported models with static shapes have;
parameters are model inputs where the op allows it. The compiled library must give the
interpreter's answer for every value consistent with those shapes, and fail the run with a message
naming the op, never a wrong result, for a value that is not."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from compiler.runtime import RuntimeLoadError
from frontends.onnx.backend import EmberBackend

F, I64, H = TensorProto.FLOAT, TensorProto.INT64, TensorProto.FLOAT16


def node_model(op, inputs, outputs, opset=21, domain="", initializers=(), **attrs):
    """A one-node node_model: ``inputs`` / ``outputs`` are (name, elem type, shape); "" skips an operand."""
    node = helper.make_node(
        op, [i[0] if i else "" for i in inputs], [name for name, _, _ in outputs], domain=domain, **attrs
    )
    graph = helper.make_graph(
        [node],
        op.lower(),
        [helper.make_tensor_value_info(*i) for i in inputs if i],
        [helper.make_tensor_value_info(*o) for o in outputs],
        initializer=list(initializers),
    )
    opsets = [helper.make_opsetid("", opset)]
    if domain:
        opsets.append(helper.make_opsetid(domain, 1))
    return helper.make_model(graph, opset_imports=opsets)


def check_against_interpreter(onnx_model, feeds, rtol=1e-5, atol=1e-5):
    """The compiled library's results equal the interpreter's."""
    rep, ref = EmberBackend.prepare(onnx_model, compile=True), EmberBackend.prepare(onnx_model)
    got, want = rep.run(feeds), ref.run(feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol, atol=atol)
    return rep


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
