"""``factorize``: SVD splits MatMul, Gemm and 1x1 Conv weights when it saves FLOPs; exact for
low-rank weights, within the dropped energy otherwise."""

from __future__ import annotations

import numpy as np
from compression_models import as_graph, mlp, residual_cnn, samples

from compiler import parse_ir
from compiler.compression import graph_flops
from compiler.ir.builder import Builder
from compiler.ir.core import Graph
from compiler.ir.interpreter import interpret
from compiler.ir.types import DType, TensorType
from compiler.testing import assert_pass_preserves_semantics
from passes.factorize import FactorizePass


def _low_rank_graph(op: str, rank: int = 3, k: int = 32, n: int = 24) -> Graph:
    rng = np.random.default_rng(0)
    w = (rng.normal(size=(k, rank)) @ rng.normal(size=(rank, n))).astype(np.float32)
    graph = Graph()
    b = Builder(graph)
    if op == "Conv":
        x = b.param("x", TensorType(DType.FLOAT32, (1, k, 3, 3)))
        y = b.op(
            "Conv", [x, b.constant(np.ascontiguousarray(w.T).reshape(n, k, 1, 1)), b.constant(np.ones(n, np.float32))]
        )
    elif op == "Gemm":
        x = b.param("x", TensorType(DType.FLOAT32, (2, k)))
        y = b.op(
            "Gemm",
            [x, b.constant(np.ascontiguousarray(w.T)), b.constant(np.ones(n, np.float32))],
            {"transB": 1, "alpha": 0.5},
        )
    else:
        x = b.param("x", TensorType(DType.FLOAT32, (2, 5, k)))
        y = b.op("MatMul", [x, b.constant(w)])
    graph.outputs = [y]
    return graph


def test_low_rank_weights_factorize_exactly():
    for op in ("MatMul", "Gemm", "Conv"):
        graph = _low_rank_graph(op)
        after = assert_pass_preserves_semantics(FactorizePass(energy=0.999999), graph)
        assert [n.op for n in after.nodes if n.op != "Constant"] == (
            ["Conv", "Conv"] if op == "Conv" else ["MatMul", op]
        )
        ranks = [
            np.shape(n.attrs["value"]) for n in after.nodes if n.op == "Constant" and np.ndim(n.attrs["value"]) >= 2
        ]
        assert min(min(s[:2]) for s in ranks) == 3
        assert graph_flops(after) < 0.3 * graph_flops(graph)


def test_rank_option_and_no_saving_skips():
    graph = as_graph(mlp())
    result = FactorizePass(rank=2)(graph)
    assert result.statistics == {"factorized": 2, "skipped": 0}
    graph = as_graph(mlp())
    assert FactorizePass(rank=16)(graph).statistics == {"factorized": 0, "skipped": 2}  # 16 * 48 >= 16 * 32


def test_energy_bounds_the_weight_error():
    graph = as_graph(mlp(features=32, hidden=32))
    w = np.asarray(next(n for n in graph.nodes if n.op == "MatMul").operands[1].const_value, dtype=np.float64)
    assert FactorizePass(energy=0.6)(graph).statistics["factorized"] >= 1
    first = next(n for n in graph.nodes if n.op == "MatMul")
    second = next(n for n in graph.nodes if n.op == "MatMul" and n.operands[0] is first.results[0])
    approx = np.asarray(first.operands[1].const_value) @ np.asarray(second.operands[1].const_value)
    assert np.linalg.norm(w - approx) <= np.sqrt(1 - 0.6) * np.linalg.norm(w) + 1e-5


def test_random_cnn_still_runs():
    graph = as_graph(residual_cnn(channels=16))
    assert FactorizePass(energy=0.9)(graph).statistics["factorized"] >= 1  # the 1x1 convolutions, the Gemm
    probs = interpret(graph, samples(1, (1, 3, 8, 8))[0])["probs"]
    assert probs.shape == (1, 5) and abs(probs.sum() - 1) < 1e-5


def test_parsed_gemm_keeps_its_bias_and_alpha():
    graph = parse_ir("""graph @main(%x: f32[1,4]) {
  %w = Constant() {value = dense<f32[4,4] [1, 2, 3, 4, 2, 4, 6, 8, 0.5, 1, 1.5, 2, 0, 0, 0, 0]>} : f32[4,4]
  %c = Constant() {value = dense<f32[4] [1, 1, 1, 1]>} : f32[4]
  %y = Gemm(%x, %w, %c) {alpha = 2.0} : f32[1,4]
  return %y
}""")
    after = assert_pass_preserves_semantics(FactorizePass(rank=1), graph)
    gemm = next(n for n in after.nodes if n.op == "Gemm")
    assert gemm.operands[0].producer.op == "MatMul" and gemm.attrs["alpha"] == 2.0
