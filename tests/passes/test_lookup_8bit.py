"""``lookup-8bit``: random quantized activation chains of one 8-bit value become one ``ember.Lookup``
with the interpreter's results unchanged; chains it must not take are left alone; SiLU written the
QDQ way (two QuantizeLinears) is one table whichever is rewritten first; a compiled quantized conv +
SiLU fuses the lookup into the conv's kernel and equals the interpreter."""

from __future__ import annotations

import numpy as np
import pytest
from compiled_graph import compiled_outputs_and_kernels
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.ir.builder import Builder
from compiler.ir.core import Graph
from compiler.ir.interpreter import interpret_list
from compiler.ir.types import DType, TensorType
from compiler.ops import Trait, get_op
from compiler.testing import assert_pass_is_idempotent, assert_pass_preserves_semantics
from passes.lookup_8bit import Lookup8BitPass

U8, I8 = np.dtype(np.uint8), np.dtype(np.int8)
# unary float ops a chain may hold (some transcendental: ``Trait.TRANSCENDENTAL``), and binary ones
UNARY = ["Sigmoid", "Tanh", "Relu", "Abs", "Neg", "Exp", "Erf", "Softsign", "HardSwish"]
BINARY = ["Add", "Mul", "Sub", "Max", "Min"]


def _dq(b: Builder, x, scale: float, zero: int, dtype):
    return b.op("DequantizeLinear", [x, b.constant(np.float32(scale)), b.constant(np.array(zero, dtype))])


def _q(b: Builder, v, scale: float, zero: int, dtype):
    return b.op("QuantizeLinear", [v, b.constant(np.float32(scale)), b.constant(np.array(zero, dtype))])


@st.composite
def chains(draw) -> tuple[Graph, dict]:
    """``Q(f(DQ(x)))`` for a random chain f of unary ops and binary ops against a scalar or against
    another dequantization of ``x`` (requantized part-way at times, as QDQ files do)."""
    dtype = draw(st.sampled_from((U8, I8)))
    info = np.iinfo(dtype)
    graph = Graph("chain")
    b = Builder(graph)
    x = b.param("x", TensorType(DType.from_np(dtype), (2, 3, 5)))
    value = _dq(b, x, draw(st.floats(0.01, 0.1)), draw(st.integers(info.min, info.max)), dtype)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["unary", "binary", "requantize"]))
        if kind == "unary":
            value = b.op(draw(st.sampled_from(UNARY)), [value])
        elif kind == "binary":
            other = _dq(b, x, 0.05, 3, dtype) if draw(st.booleans()) else b.constant(np.float32(draw(st.floats(-2, 2))))
            value = b.op(draw(st.sampled_from(BINARY)), [value, other])
        else:
            value = _dq(b, _q(b, value, 0.03, 1, dtype), 0.03, 1, dtype)
    graph.outputs = [_q(b, value, draw(st.floats(0.005, 0.05)), draw(st.integers(info.min, info.max)), dtype)]
    feeds = {"x": np.random.default_rng(0).integers(info.min, info.max, (2, 3, 5), endpoint=True).astype(dtype)}
    return graph, feeds


def _ops(graph: Graph) -> list[str]:
    return [node.op for node in graph.nodes if node.op != "Constant"]


SETTINGS = settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(chains())
def test_chains_keep_their_results_exactly(case):
    graph, feeds = case
    transcendental = any(get_op(op).has(Trait.TRANSCENDENTAL) for op in _ops(graph))
    after = assert_pass_preserves_semantics("lookup-8bit,dce", graph, feeds)
    assert_pass_is_idempotent(Lookup8BitPass(), after, "lookup-8bit")
    assert (_ops(after) == ["ember.Lookup"]) == transcendental, _ops(after)


def _silu(inner_first: bool) -> Graph:
    """SiLU after a quantized producer as a QDQ file writes it: Q(DQ(x) * DQ(Q(Sigmoid(DQ(x))))); with
    ``inner_first`` the gate's QuantizeLinear is a lookup already when the rest is written."""
    graph = Graph("silu")
    b = Builder(graph)
    x = b.param("x", TensorType(DType.UINT8, (1, 4, 3, 3)))
    graph.outputs = [_q(b, b.op("Sigmoid", [_dq(b, x, 0.05, 120, U8)]), 1 / 256, 0, U8)]
    if inner_first:
        assert Lookup8BitPass().run(graph).modified
    (gate,) = graph.outputs
    graph.outputs = [_q(b, b.op("Mul", [_dq(b, x, 0.05, 120, U8), _dq(b, gate, 1 / 256, 0, U8)]), 0.03, 10, U8)]
    return graph


@pytest.mark.parametrize("inner_first", [False, True])
def test_silu_is_one_table_whichever_quantize_goes_first(inner_first):
    feeds = {"x": (np.arange(36, dtype=np.uint8) * 7).reshape(1, 4, 3, 3)}
    (want,) = interpret_list(_silu(False), feeds)
    after = assert_pass_preserves_semantics("lookup-8bit,dce", _silu(inner_first), feeds)
    np.testing.assert_array_equal(interpret_list(after, feeds)[0], want)
    assert _ops(after) == ["ember.Lookup"]


def _left_alone(build) -> bool:
    graph = Graph("left")
    b = Builder(graph)
    x = b.param("x", TensorType(DType.UINT8, (1, 4, 3, 3)))
    graph.outputs = [build(b, x)]
    return not Lookup8BitPass().run(graph).modified


def test_what_is_left_alone():
    """Cheap ops only, a per-channel (4-element) scale, two run-time values, and a float result."""
    assert _left_alone(lambda b, x: _q(b, b.op("Relu", [_dq(b, x, 0.05, 3, U8)]), 0.05, 3, U8))

    def per_channel(b, x):
        scale = b.constant(np.full(4, 0.05, np.float32))
        deq = b.op("DequantizeLinear", [x, scale, b.constant(np.zeros(4, U8))], {"axis": 1})
        return _q(b, b.op("Sigmoid", [deq]), 0.01, 0, U8)

    assert _left_alone(per_channel)

    def two_values(b, x):
        y = b.param("y", TensorType(DType.UINT8, (1, 4, 3, 3)))
        return _q(b, b.op("Sigmoid", [b.op("Add", [_dq(b, x, 0.05, 3, U8), _dq(b, y, 0.05, 3, U8)])]), 0.01, 0, U8)

    assert _left_alone(two_values)
    assert _left_alone(lambda b, x: b.op("Sigmoid", [_dq(b, x, 0.05, 3, U8)]))


def test_compiled_conv_with_silu_fuses_the_lookup_and_equals_the_interpreter(tmp_path):
    """A QLinearConv (the packed integer kernel) and SiLU the QDQ way: the lookup joins the conv's
    epilogue, one kernel, and the library's output equals the interpreter's exactly."""
    rng = np.random.default_rng(2)
    graph = Graph("conv_silu")
    b = Builder(graph)
    x = b.param("x", TensorType(DType.UINT8, (1, 16, 8, 8)))
    params = [b.constant(np.float32(0.02)), b.constant(np.array(120, U8))]
    weight = b.constant(rng.integers(-60, 60, (32, 16, 3, 3), endpoint=True).astype(np.int8))
    operands = [x, *params, weight, b.constant(np.float32(0.01)), b.constant(np.array(0, np.int8))]
    conv = b.op(
        "QLinearConv", [*operands, b.constant(np.float32(0.1)), b.constant(np.array(128, U8))], {"pads": [1] * 4}
    )
    gate = _q(b, b.op("Sigmoid", [_dq(b, conv, 0.1, 128, U8)]), 1 / 256, 0, U8)
    graph.outputs = [_q(b, b.op("Mul", [_dq(b, conv, 0.1, 128, U8), _dq(b, gate, 1 / 256, 0, U8)]), 0.05, 20, U8)]
    feeds = {"x": rng.integers(0, 255, (1, 16, 8, 8), endpoint=True).astype(np.uint8)}
    (want,) = interpret_list(graph, feeds)
    (got,), kernels = compiled_outputs_and_kernels(graph, feeds, tmp_path)
    np.testing.assert_array_equal(got, want)
    assert 2 < len(np.unique(want))  # not all saturated
    assert [ops for ops in kernels if "ember.Lookup" in ops] == [("QLinearConv", "ember.Lookup")], kernels
