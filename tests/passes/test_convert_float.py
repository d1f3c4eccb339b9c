"""``convert-float16`` / ``convert-bfloat16``: I/O types kept, sensitive ops left in fp32, casts
between converted nodes cancelled, values within the 16-bit rounding; onnxruntime runs the fp16 model."""

from __future__ import annotations

import numpy as np
import pytest
from compression_models import as_graph, mlp, residual_cnn, samples

from compiler.ir.interpreter import interpret
from compiler.ir.types import DType
from frontends.onnx.exporter import export_model, ort_session
from passes.convert_float import ConvertBFloat16Pass, ConvertFloat16Pass


@pytest.mark.parametrize("pass_, tolerance", [(ConvertFloat16Pass(), 5e-3), (ConvertBFloat16Pass(), 4e-2)])
def test_cnn_keeps_io_types_and_sensitive_ops(pass_, tolerance):
    graph = as_graph(residual_cnn())
    data = samples(3, (1, 3, 8, 8))
    reference = [interpret(graph, s)["probs"] for s in data]
    result = pass_(graph)
    assert result.modified
    assert [p.type.dtype for p in graph.params] == [DType.FLOAT32]
    assert [v.type.dtype for v in graph.outputs] == [DType.FLOAT32]
    by_op = {}
    for node in graph.nodes:
        by_op.setdefault(node.op, set()).add(node.results[0].type.dtype)
    assert by_op["Conv"] == by_op["Gemm"] == by_op["Relu"] == {pass_.target}
    assert by_op["BatchNormalization"] == by_op["Softmax"] == {DType.FLOAT32}  # precision-sensitive
    left = dict(graph.metadata["convert-float-left"])
    assert left["node 'softmax' (Softmax)"] == "precision-sensitive op"
    # a Relu feeding a Conv: no cast pair between them
    relu_to_conv = [n for n in graph.nodes if n.op == "Conv" and n.operands[0].producer.op == "Relu"]
    assert relu_to_conv
    for sample, ref in zip(data, reference):
        np.testing.assert_allclose(interpret(graph, sample)["probs"], ref, atol=tolerance)


def test_float16_models_run_in_onnxruntime_and_agree():
    graph = as_graph(mlp())
    ConvertFloat16Pass()(graph)
    assert {n.results[0].type.dtype for n in graph.nodes if n.op == "MatMul"} == {DType.FLOAT16}
    session = ort_session(export_model(graph))
    for sample in samples(3, (2, 16)):
        np.testing.assert_allclose(session.run(None, sample)[0], interpret(graph, sample)["y"], rtol=2e-3, atol=2e-3)
    graph = as_graph(residual_cnn())  # casts around the fp32 BatchNormalizations and Softmax
    ConvertFloat16Pass()(graph)
    session = ort_session(export_model(graph))
    for sample in samples(2, (1, 3, 8, 8)):
        np.testing.assert_allclose(session.run(None, sample)[0], interpret(graph, sample)["probs"], atol=1e-3)


def test_block_and_allow_sensitive_options():
    graph = as_graph(residual_cnn())
    ConvertFloat16Pass(block=("Gemm", "stem"), allow_sensitive=True)(graph)
    dtypes = {n.name: n.results[0].type.dtype for n in graph.nodes if n.name}
    assert dtypes["fc"] == dtypes["stem"] == DType.FLOAT32
    assert dtypes["softmax"] == dtypes["block1_bn"] == dtypes["block1"] == DType.FLOAT16
