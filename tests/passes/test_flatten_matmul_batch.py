"""``flatten-matmul-batch``: random batched products keep their results, and the classifier of a
CRNN becomes one Gemm whose bias stays fused.

Each random graph multiplies a parameter ``x[..., M, K]`` by a 2-D weight (constant or parameter),
then applies a chain of unary ops, SiLU diamonds and binary ops with an operand of one of the
shapes a model has (a bias, a row vector, a scalar, a residual of the product's shape, one that
varies along a batch axis, on either side); the interpreter runs it before and after the pass.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.ir.builder import Builder
from compiler.ir.core import Graph
from compiler.ir.types import DType, TensorType
from compiler.pipeline import PassManager
from compiler.testing import assert_pass_is_idempotent, assert_pass_preserves_semantics
from passes.flatten_matmul_batch import MAX_ROWS, FlattenMatMulBatchPass

F32 = DType.FLOAT32
ADDENDS = ("bias", "row", "scalar", "residual", "runtime-bias", "per-batch")  # the last does not follow rows
UNARY = ("Relu", "Sigmoid", "Gelu", "Neg")
BINARY = ("Add", "Mul", "Sub")


def _addend(b: Builder, kind: str, out_shape: tuple[int, ...], rng: np.random.Generator, name: str):
    n = out_shape[-1]
    if kind == "bias":
        return b.constant(rng.standard_normal(n).astype(np.float32))
    if kind == "row":
        return b.constant(rng.standard_normal((1,) * (len(out_shape) - 1) + (n,)).astype(np.float32))
    if kind == "scalar":
        return b.constant(np.float32(rng.standard_normal()))
    if kind == "residual":
        return b.param(name, TensorType(F32, out_shape))
    if kind == "per-batch":
        return b.param(name, TensorType(F32, (out_shape[0],) + (1,) * (len(out_shape) - 1)))
    return b.param(name, TensorType(F32, (n,)))


@st.composite
def batched_products(draw) -> tuple[Graph, bool]:
    """A graph and whether every op after the product should end up on its flat form."""
    lead = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
    m, k, n = draw(st.integers(1, MAX_ROWS - 1)), draw(st.integers(1, 6)), draw(st.integers(1, 7))
    rng = np.random.default_rng(math.prod(lead) * 1000 + m * 100 + k * 10 + n)
    graph = Graph("batched_product")
    b = Builder(graph)
    x = b.param("x", TensorType(F32, (*lead, m, k)))
    w_shape = (1,) * draw(st.integers(0, len(lead))) + (k, n)  # leading 1s: still one weight
    if draw(st.booleans()):
        w = b.constant(rng.standard_normal(w_shape).astype(np.float32))
    else:
        w = b.param("w", TensorType(F32, w_shape))
    y = b.op("MatMul", [x, w])
    follows = True
    for step in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(("unary", "binary", "silu")))
        if kind == "unary":
            y = b.op(draw(st.sampled_from(UNARY)), [y])
        elif kind == "silu":  # a diamond: the Reshape has two readers and stays before it
            y = b.op("Mul", [y, b.op("Sigmoid", [y])])
            follows = False
        else:
            addend = draw(st.sampled_from(ADDENDS))
            c = _addend(b, addend, (*lead, m, n), rng, f"r{step}")
            y = b.op(draw(st.sampled_from(BINARY)), [y, c] if draw(st.booleans()) else [c, y])
            follows = follows and addend != "per-batch"
    graph.outputs = [y]
    return graph, follows and math.prod(lead) > 1


SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(batched_products())
def test_flattening_preserves_semantics_and_is_idempotent(case):
    graph, all_flat = case
    lead = graph.params[0].type.shape[:-2]
    after = assert_pass_preserves_semantics(FlattenMatMulBatchPass(), graph)
    assert_pass_is_idempotent(FlattenMatMulBatchPass(), after, "flatten-matmul-batch")
    ranks = [len(n.results[0].type.shape) for n in after.nodes if n.op == "MatMul"]
    assert ranks == ([2] if math.prod(lead) > 1 else [len(lead) + 2])
    if all_flat:  # every elementwise op on the flat product, one Reshape back at the end
        assert after.outputs[0].producer.op == "Reshape"
        assert all(len(n.results[0].type.shape) <= 2 for n in after.nodes if n.op in UNARY + BINARY)


def test_many_rows_per_batch_element_are_left_alone():
    graph = Graph("tall")
    b = Builder(graph)
    x = b.param("x", TensorType(F32, (2, MAX_ROWS, 3)))
    graph.outputs = [b.op("MatMul", [x, b.constant(np.ones((3, 4), np.float32))])]
    assert not FlattenMatMulBatchPass().run(graph).modified


def _classifier() -> Graph:
    """A CRNN's head, small: BiLSTM states [T, 1, 2, H] merged to [T, 1, 2H], then Linear."""
    rng = np.random.default_rng(7)
    graph = Graph("classifier")
    b = Builder(graph)
    h = b.param("h", TensorType(F32, (80, 1, 2, 16)))
    t = b.op("Transpose", [h], {"perm": [0, 2, 1, 3]})
    a = b.op("Reshape", [t, b.constant(np.array([80, 1, 32], np.int64))])
    m = b.op("MatMul", [a, b.constant(rng.standard_normal((32, 40)).astype(np.float32))])
    graph.outputs = [b.op("Add", [b.constant(rng.standard_normal(40).astype(np.float32)), m])]
    return graph


def test_the_crnn_classifier_becomes_one_gemm_with_its_bias_fused():
    """Through O2 and codegen-prepare the per-time-step classifier is one Gemm (bias as its C)
    between views: one kernel that reads the weight once, and the same outputs."""
    graph = _classifier()
    after = assert_pass_preserves_semantics(PassManager("O2,codegen-prepare"), graph)
    ops = [n.op for n in after.nodes if n.op != "Constant"]
    assert ops.count("Gemm") == 1 and "MatMul" not in ops and "Add" not in ops
    gemm = next(n for n in after.nodes if n.op == "Gemm")
    assert tuple(gemm.results[0].type.shape) == (80, 40) and len(gemm.operands) == 3
    assert after.outputs[0].producer.op == "Reshape"
