"""``simplify`` on random graphs and on real models: semantics, idempotence, and the onnxsim bar.

- random graphs over the ops the rules target: outputs unchanged (with and without fast-math,
  inputs are finite) and a second run changes nothing;
- real models (onnx ``light_*`` zoo, ``benchmarks/model_zoo.py``): after ``O2`` a second
  ``simplify`` changes nothing; Ember leaves no more nodes than onnx-simplifier and the exported
  model gives onnxruntime the same outputs as the original.
"""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import HealthCheck, given, settings

from compiler import print_ir
from compiler.pipeline import PassManager
from compiler.testing import (
    SUPPORTED_OPS,
    assert_pass_is_idempotent,
    assert_pass_preserves_semantics,
    graph_and_inputs,
    graphs,
)
from passes.simplify import SimplifyPass

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

RULE_OPS = [
    op
    for op in (
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Identity",
        "Neg",
        "Relu",
        "Sigmoid",
        "HardSigmoid",
        "Erf",
        "Tanh",
        "Exp",
        "MatMul",
        "Gemm",
        "Conv",
        "Reshape",
        "Transpose",
        "Squeeze",
        "Unsqueeze",
        "Cast",
        "Slice",
        "Softmax",
        "LayerNormalization",
        "Clip",
        "ReduceSum",
        "ReduceMean",
        "ReduceMax",
        "AveragePool",
        "MaxPool",
        "Constant",
    )
    if op in SUPPORTED_OPS
]
RANDOM = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("fast_math", [False, True])
def test_simplify_keeps_outputs_on_random_graphs(fast_math):
    pass_ = SimplifyPass(fast_math=fast_math)
    changed = []

    @RANDOM
    @given(graph_and_inputs(ops=RULE_OPS, max_nodes=8))
    def check(case):
        graph, inputs = case
        after = assert_pass_preserves_semantics(pass_, graph, inputs)
        changed.append(print_ir(after) != print_ir(graph))

    check()
    assert len(changed) >= 100 and sum(changed) >= 10, f"{sum(changed)} of {len(changed)} graphs simplified"


def test_simplify_is_idempotent_on_random_graphs():
    pass_ = SimplifyPass()

    @RANDOM
    @given(graphs(ops=RULE_OPS, max_nodes=8, symbolic=True))
    def check(graph):
        assert_pass_is_idempotent(pass_, graph, "simplify")

    check()


def _small_bert():
    from model_zoo import bert_base

    return bert_base(seq=8, hidden=32, heads=2, layers=2)


@pytest.mark.parametrize("name", ["light_squeezenet", "light_inception_v1", "mobilenet_v2", "small_bert"])
def test_simplify_is_idempotent_on_real_models(name):
    from compare_onnxsim import load

    from frontends.onnx import import_model

    graph = import_model(_small_bert() if name == "small_bert" else load(name))
    PassManager("O2").run(graph)
    once = print_ir(graph)
    assert not SimplifyPass()(graph).modified
    assert print_ir(graph) == once


@pytest.mark.parametrize("name", ["light_squeezenet", "light_inception_v1", "light_resnet50", "mobilenet_v2"])
def test_o2_leaves_no_more_nodes_than_onnxsim_and_same_outputs(name):
    from compare_onnxsim import ember_optimize, load, onnxsim_count, output_difference

    model = load(name)
    optimized = ember_optimize(model, "O2")
    assert len(optimized.graph.node) <= onnxsim_count(model) < len(model.graph.node)
    assert output_difference(model, optimized) <= 1e-4


def test_o2_recognises_gelu_and_attention_in_a_bert_encoder():
    from compare_onnxsim import ember_optimize, onnxsim_count, output_difference

    model = _small_bert()
    optimized = ember_optimize(model, "O2")
    ops = [n.op_type for n in optimized.graph.node]
    assert ops.count("Gelu") == 2 and "Erf" not in ops
    assert ops.count("Attention") == 2 and "Softmax" not in ops and "Transpose" not in ops
    assert ops.count("Split") == 2  # Q, K and V projections share one MatMul per layer
    assert len(ops) <= onnxsim_count(model)
    assert output_difference(model, optimized) <= 1e-4


def test_batchnorm_folds_into_a_grouped_conv_transpose_as_onnxruntime_computes_it():
    """Grouped ConvTranspose (checked against onnxruntime: the reference kernel lacks groups)."""
    import numpy as np
    from compare_onnxsim import ember_optimize, output_difference
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(1)
    arrays = {
        "w": rng.standard_normal((4, 3, 3, 3)),
        "b": rng.standard_normal(6),
        "g": rng.standard_normal(6),
        "be": rng.standard_normal(6),
        "m": rng.standard_normal(6),
        "v": rng.random(6) + 0.5,
    }
    inits = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in arrays.items()]
    nodes = [
        helper.make_node("ConvTranspose", ["x", "w", "b"], ["c"], group=2, strides=[2, 2]),
        helper.make_node("BatchNormalization", ["c", "g", "be", "m", "v"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", 1, [1, 4, 5, 5])],
        [helper.make_tensor_value_info("y", 1, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    optimized = ember_optimize(model, "O2")
    assert [n.op_type for n in optimized.graph.node] == ["ConvTranspose"]
    assert output_difference(model, optimized) <= 1e-5
