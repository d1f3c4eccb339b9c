"""fuse-qdq's dynamic MatMul rewrite (passes/fuse_qdq.py) against the interpreter: small transformer-like
blocks quantized by ``ember quantize --mode dynamic`` (the ``quantize`` pass) give the same outputs
after ``MatMul(DQ, DQ) -> Mul(Cast(MatMulInteger), sa * sw)`` up to float rounding, and the compiled
library gives the interpreter's answer."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler import interpret
from compiler.pipeline import run_pipeline
from frontends.onnx.importer import import_model
from passes.fuse_qdq import FuseQdqPass


def dense_block(seed: int, rows: int, hidden: int, inner: int):
    """x[1, rows, hidden] -> MatMul + bias -> Relu -> MatMul + bias (+ x): float weights, random sizes."""
    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array(a, n)
        for n, a in (
            ("w1", rng.normal(0, 0.2, (hidden, inner)).astype(np.float32)),
            ("b1", rng.normal(0, 0.1, inner).astype(np.float32)),
            ("w2", rng.normal(0, 0.2, (inner, hidden)).astype(np.float32)),
            ("b2", rng.normal(0, 0.1, hidden).astype(np.float32)),
        )
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["m1"]),
        helper.make_node("Add", ["m1", "b1"], ["a1"]),
        helper.make_node("Relu", ["a1"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["m2"]),
        helper.make_node("Add", ["m2", "b2"], ["a2"]),
        helper.make_node("Add", ["a2", "x"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, rows, hidden])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, rows, hidden])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _dynamic_quantized(model, per_channel: bool):
    from compiler.compression import quantize_model

    graph = import_model(model)
    quantize_model(graph, mode="dynamic", per_channel=per_channel, progress=False)
    return graph


@pytest.mark.parametrize("seed", range(6))
def test_dynamic_matmuls_become_integer_products_with_the_same_result(seed):
    rng = np.random.default_rng(seed)
    rows, hidden, inner = (int(v) for v in rng.integers(1, 9, 3) * (1, 4, 4))
    graph = _dynamic_quantized(dense_block(seed, rows, hidden, inner), per_channel=bool(seed % 2))
    feeds = [{"x": rng.normal(0, 1, (1, rows, hidden)).astype(np.float32)} for _ in range(3)]
    before = [interpret(graph, f)["y"] for f in feeds]
    assert FuseQdqPass()(graph).statistics["MatMulInteger"] == 2
    run_pipeline(graph, "dce")
    ops = [n.op for n in graph.nodes]
    assert ops.count("MatMulInteger") == 2 and "MatMul" not in ops and "DequantizeLinear" not in ops
    for f, want in zip(feeds, before):
        got = interpret(graph, f)["y"]
        # the same integer sum, scaled once instead of per element: float rounding only
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_onnxruntime_quantize_dynamic_output_is_left_as_it_is(tmp_path):
    """onnxruntime's quantize_dynamic already writes MatMulInteger: the rewrite finds nothing to do."""
    import onnx
    from onnxruntime.quantization import quantize_dynamic

    src, out = tmp_path / "f32.onnx", tmp_path / "q.onnx"
    onnx.save(dense_block(0, 4, 16, 32), src)
    quantize_dynamic(str(src), str(out))
    graph = import_model(str(out))
    ops = [n.op for n in graph.nodes]
    assert not FuseQdqPass()(graph).statistics["MatMulInteger"] and [n.op for n in graph.nodes] == ops


def test_compiled_dynamic_block_matches_interpreter(tmp_path):
    """The rewritten block through code generation: DynamicQuantizeLinear and MatMulInteger kernels
    with their Cast/Mul/Add epilogues give the interpreter's result."""
    from compiler.driver import compile_model
    from compiler.runtime import load

    graph = _dynamic_quantized(dense_block(3, 8, 32, 64), per_channel=True)
    run_pipeline(graph, "fuse-qdq,dce")
    x = np.random.default_rng(7).normal(0, 1, (1, 8, 32)).astype(np.float32)
    want = interpret(graph, {"x": x})["y"]
    compile_model(graph, str(tmp_path / "block.so"))
    got = load(str(tmp_path / "block.so")).run({"x": x})["y"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
