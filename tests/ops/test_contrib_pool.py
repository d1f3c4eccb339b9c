"""GlobalMaxPool and GlobalAveragePool at every rank (3-D, 4-D, 5-D inputs), interpreted and compiled,
against onnxruntime (issue 16: GlobalMaxPool on a rank-3 input had the wrong result shape)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import compiler
import compiler.runtime
from compiler import interpret
from frontends.onnx import import_model

SHAPES = [(2, 3, 5), (2, 3, 4, 5), (1, 2, 3, 4, 5)]


def pool_model(op, shape):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph([helper.make_node(op, ["x"], ["y"])], "g", [x], [y])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def case(op, shape):
    m = pool_model(op, shape)
    x = np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32)
    (want,) = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    assert want.shape == shape[:2] + (1,) * (len(shape) - 2)
    return m, x, want


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"rank{len(s)}")
@pytest.mark.parametrize("op", ["GlobalMaxPool", "GlobalAveragePool"])
def test_interpreter_matches_onnxruntime(op, shape):
    m, x, want = case(op, shape)
    graph = import_model(m)
    assert graph.outputs[0].type.shape == want.shape
    got = interpret(graph, {"x": x})["y"]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [SHAPES[0], SHAPES[2]], ids=lambda s: f"rank{len(s)}")
@pytest.mark.parametrize("op", ["GlobalMaxPool", "GlobalAveragePool"])
def test_compiled_matches_onnxruntime(op, shape, tmp_path):
    m, x, want = case(op, shape)
    path = str(tmp_path / "pool.so")
    compiler.compile(m, path)
    got = compiler.runtime.load(path).run({"x": x})["y"]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
