"""Property tests over random graphs from ``compiler.testing.strategies``.

- the verifier accepts every generated graph;
- print -> parse -> print is the identity, and the parsed graph verifies and
  computes the same outputs;
- the strategies honour their options (op subsets, dtypes, symbolic dims)
  and their inputs keep every output finite.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import DType, TensorType, interpret, parse_ir, print_ir, verify
from compiler.testing.strategies import SUPPORTED_OPS, SYMBOL, graph_and_inputs, graphs, inputs_for, random_inputs

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outputs_in_order(graph, inputs):
    out = interpret(graph, inputs)
    return [out[v.name] for v in graph.outputs]


@SETTINGS
@given(graph_and_inputs(max_nodes=8, symbolic=True))
def test_random_graphs_verify_and_round_trip_through_text(case):
    graph, inputs = case
    verify(graph)
    resources = {}
    text = print_ir(graph, resources=resources)
    parsed = parse_ir(text, resources)
    assert print_ir(parsed, resources={}) == text
    verify(parsed)
    for a, b in zip(outputs_in_order(graph, inputs), outputs_in_order(parsed, inputs)):
        np.testing.assert_array_equal(a, b)


@SETTINGS
@given(graph_and_inputs(max_nodes=10, dtypes=(DType.FLOAT16, DType.FLOAT32, DType.FLOAT64), symbolic=True))
def test_generated_inputs_keep_outputs_finite(case):
    graph, inputs = case
    for name, value in interpret(graph, inputs).items():
        if value.dtype.kind == "f":
            assert np.isfinite(value).all(), f"{name} is not finite:\n{print_ir(graph)}"


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_ops_option_restricts_the_drawn_ops(data):
    wanted = data.draw(st.lists(st.sampled_from(SUPPORTED_OPS), min_size=1, max_size=3, unique=True))
    graph = data.draw(graphs(ops=wanted, max_nodes=4))
    helpers = {"Constant", "Abs", "Add", "Clip", "Greater", "ReduceSum", "ReduceMean"}  # guards, operands
    assert {n.op for n in graph.nodes} <= set(wanted) | helpers
    verify(graph)


@settings(max_examples=30, deadline=None)
@given(graphs(ops=["Add", "Relu", "MatMul"], max_nodes=3, dtypes=(DType.FLOAT64,)))
def test_dtypes_option_sets_parameter_dtypes(graph):
    assert all(p.type.dtype == DType.FLOAT64 for p in graph.params)
    assert sum(1 for n in graph.nodes if n.op != "Constant") <= 3


@settings(max_examples=40, deadline=None)
@given(graphs(max_nodes=4, symbolic=True).flatmap(lambda g: st.tuples(st.just(g), inputs_for(g))))
def test_symbolic_dims_take_one_size_per_graph(case):
    graph, inputs = case
    sizes = {inputs[p.name].shape[0] for p in graph.params if p.type.shape and p.type.shape[0] == SYMBOL}
    assert len(sizes) <= 1
    interpret(graph, inputs)


@settings(max_examples=20, deadline=None)
@given(graph_and_inputs(ops=["If", "Add"], max_nodes=4))
def test_if_branches_capture_outer_values(case):
    graph, inputs = case
    ifs = [n for n in graph.nodes if n.op == "If"]
    for node in ifs:
        for body in node.subgraphs:
            (inner,) = list(body.nodes)
            assert inner.operands[0].producer is not inner and inner.operands[0] not in body.params
            assert body.parent is node
    resources = {}
    text = print_ir(graph, resources=resources)
    assert print_ir(parse_ir(text, resources), resources={}) == text
    interpret(graph, inputs)


def test_random_inputs_are_deterministic_and_in_range():
    from compiler import Builder, Graph

    g = Graph()
    b = Builder(g)
    x = b.param("x", TensorType(DType.FLOAT32, (SYMBOL, 3)))
    i = b.param("i", TensorType(DType.INT64, (4,)))
    g.outputs = [b.op("Relu", [x])]
    first, second = random_inputs(g, seed=1, symbols={SYMBOL: 5}), random_inputs(g, seed=1, symbols={SYMBOL: 5})
    np.testing.assert_array_equal(first["x"], second["x"])
    assert first["x"].shape == (5, 3) and np.abs(first["x"]).max() <= 2
    assert first["i"].dtype == np.int64 and set(first["i"]) <= {0, 1, 2, 3}
    assert i.type.dtype == DType.INT64


def test_unknown_ops_and_non_float_dtypes_are_refused():
    with pytest.raises(ValueError, match="cannot generate"):
        graphs(ops=["NoSuchOp"])
    with pytest.raises(ValueError, match="float"):
        graphs(dtypes=(DType.INT32,))
