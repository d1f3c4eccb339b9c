"""``decompose-contrib``: every com.microsoft case of ``contrib_cases`` rewritten into standard ops gives
what the contrib op gave (interpreter before vs after) and what onnxruntime gives; a few compile
end-to-end through ``compiler.compile`` and ``compiler.runtime.load``."""

from __future__ import annotations

import numpy as np
import pytest
from contrib_cases import CASES, MS, assert_matches, contrib_graph, expected_outputs, model, q8, scalar

import compiler
import compiler.runtime
from compiler import EmberError, interpret, verify
from compiler.passes import get_pass
from compiler.pipeline import run_pipeline
from frontends.onnx import import_model


def decomposed(m):
    graph = contrib_graph(m)
    result = get_pass("decompose-contrib")().run(graph)
    verify(graph)
    return graph, result


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_decomposition_matches_the_op_and_onnxruntime(case):
    case_id, m, feeds, quantized = case
    before = interpret(contrib_graph(m), feeds)
    graph, result = decomposed(m)
    assert not [n.op for n in graph.walk() if n.op.startswith(MS)]
    after = interpret(graph, feeds)
    for name, expected in expected_outputs(m, feeds).items():
        if quantized is True:  # the same float32 arithmetic: identical integers
            np.testing.assert_array_equal(after[name], before[name], err_msg=name)
        else:
            np.testing.assert_allclose(after[name], before[name], rtol=1e-5, atol=1e-5, err_msg=name)
        assert_matches(after[name], expected, quantized, f"{case_id}: {name}")


def test_kept_nodes_are_left_whole(tmp_path):
    """An activation the pass does not know leaves the node whole; compiling names it."""
    rng = np.random.default_rng(0)
    m, feeds = model(
        "FusedConv",
        [
            ("x", rng.standard_normal((1, 2, 4, 4)).astype(np.float32), False),
            ("w", np.ones((2, 2, 1, 1), np.float32), True),
        ],
        {"activation": "Softsign"},
    )
    graph, result = decomposed(m)
    assert result.statistics == {"decomposed": 0, "kept": 1} and not result.modified
    assert [n.op for n in graph.nodes if n.op != "Constant"] == [f"{MS}.FusedConv"]
    with pytest.raises(EmberError, match=r"com\.microsoft\.FusedConv \(1 node, e\.g\. 'n'\)"):
        compiler.compile(m, str(tmp_path / "kept.so"))


def compiled_run(m, feeds, tmp_path):
    path = str(tmp_path / "model.so")
    compiler.compile(m, path)
    return compiler.runtime.load(path).run(feeds)


@pytest.mark.parametrize(
    "case_id",
    [
        "QLinearAdd-uint8",
        "QLinearSigmoid-int8",
        "QLinearConcat",
        "FusedConv-LeakyRelu",
        "SkipSimplifiedLayerNormalization-stats",
        "DynamicQuantizeLSTM",
        "QGemm-column",
        "Attention-1d-{'unidirectional': 1}",
    ],
)
def test_compiled_matches_onnxruntime(case_id, tmp_path):
    (case,) = [c for c in CASES if c[0] == case_id]
    _, m, feeds, quantized = case
    got = compiled_run(m, feeds, tmp_path)
    for name, expected in expected_outputs(m, feeds).items():
        assert_matches(got[name], expected, quantized, f"{case_id}: {name}")


def test_an_int8_chain_compiles(tmp_path):
    """Quantize -> QLinearAdd -> QLinearGlobalAveragePool -> Dequantize, as onnxruntime's quantizer writes."""
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 4, 5, 5)).astype(np.float32)
    consts = {
        "s": scalar(0.03),
        "z": scalar(128, np.uint8),
        "b": q8(rng, (1, 4, 5, 5)),
        "sb": scalar(0.02),
        "zb": scalar(120, np.uint8),
        "s2": scalar(0.05),
        "z2": scalar(110, np.uint8),
    }
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
        helper.make_node("QLinearAdd", ["xq", "s", "z", "b", "sb", "zb", "s2", "z2"], ["aq"], domain=MS),
        helper.make_node("QLinearGlobalAveragePool", ["aq", "s2", "z2", "s", "z"], ["pq"], domain=MS),
        helper.make_node("DequantizeLinear", ["pq", "s", "z"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", 1, list(x.shape))],
        [helper.make_tensor_value_info("y", 1, None)],
        initializer=[numpy_helper.from_array(v, k) for k, v in consts.items()],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)])
    m.ir_version = 8
    want = expected_outputs(m, {"x": x})["y"]
    assert np.abs(interpret(import_model(m), {"x": x})["y"] - want).max() <= 0.03 + 1e-6
    prepared = import_model(m)
    run_pipeline(prepared, "O2,codegen-prepare")
    assert not [n.op for n in prepared.walk() if n.op.startswith(MS)]
    got = compiled_run(m, {"x": x}, tmp_path)["y"]
    assert np.abs(got - want).max() <= 0.03 + 1e-6  # one output quantization step
