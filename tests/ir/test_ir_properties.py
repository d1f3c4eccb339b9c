"""Property tests over random graphs from ``compiler.testing.strategies``.

- the verifier accepts every generated graph;
- print -> parse -> print is the identity, and the parsed graph verifies and
  computes the same outputs, also when values are unnamed or share names and
  when constants are too large to print inline (their data collected in a dict,
  or embedded in the text);
- the strategies honour their options (op subsets, dtypes, symbolic dims)
  and their inputs keep every output finite.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import Builder, DType, Graph, TensorType, interpret, parse_ir, print_ir, verify
from compiler.ir.interpreter import Interpreter
from compiler.ir.printer import DEFAULT_INLINE_LIMIT
from compiler.testing.strategies import (
    CLASHING_NAMES,
    SUPPORTED_OPS,
    SYMBOL,
    graph_and_inputs,
    graphs,
    inputs_for,
    random_inputs,
)

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


def outputs_by_position(graph, inputs):
    """The graph's outputs in order (names may be empty or repeated)."""
    return Interpreter().run_graph(graph, [inputs[p.name] for p in graph.params])


def constants_of(graph) -> list[np.ndarray]:
    return [n.attrs["value"] for n in graph.walk() if n.op == "Constant"]


def assert_round_trips(graph, inputs=None) -> None:
    """print -> parse -> print is the identity; the parsed graph verifies, holds equal constants and computes
    the same outputs."""
    resources = {}
    text = print_ir(graph, resources=resources)
    parsed = parse_ir(text, resources)
    assert print_ir(parsed, resources={}) == text
    assert print_ir(parsed) == text  # the resource names do not depend on the dict they are collected in
    verify(parsed)
    before, after = constants_of(graph), constants_of(parsed)
    assert len(before) == len(after)
    for a, b in zip(before, after):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    if inputs is not None:
        for a, b in zip(outputs_by_position(graph, inputs), outputs_by_position(parsed, inputs)):
            np.testing.assert_array_equal(a, b)
    # the text alone, with the large constants' data embedded, round-trips too
    embedded = print_ir(graph, embed_resources=True)
    alone = parse_ir(embedded)
    assert print_ir(alone, embed_resources=True) == embedded
    for a, b in zip(before, constants_of(alone)):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


@SETTINGS
@given(graph_and_inputs(max_nodes=8, symbolic=True, names="none"))
def test_graphs_of_unnamed_values_round_trip_through_text(case):
    graph, inputs = case
    assert all(not v.name for n in graph.walk() for v in n.results)
    verify(graph)
    assert_round_trips(graph, inputs)


@SETTINGS
@given(graph_and_inputs(max_nodes=8, names="clashing"))
def test_graphs_with_clashing_names_round_trip_through_text(case):
    graph, inputs = case
    verify(graph)
    assert_round_trips(graph, inputs)


def test_name_modes_do_what_they_say():
    with pytest.raises(ValueError, match="names="):
        graphs(names="some")


ARRAY_DTYPES = st.sampled_from([np.float32, np.float64, np.float16, np.int64, np.int8, np.bool_])


@st.composite
def large_constant_graphs(draw):
    """Graphs of 1..4 Constants of 17..80 elements, unnamed or sharing names, some in an If branch."""
    g = Graph("main")
    b = Builder(g)
    cond = b.param("c", TensorType(DType.BOOL, ()))
    outputs = []
    for _ in range(draw(st.integers(1, 4))):
        size = draw(st.integers(DEFAULT_INLINE_LIMIT + 1, 80))
        seed = draw(st.integers(0, 2**32 - 1))
        array = (np.random.default_rng(seed).standard_normal(size) * 10).astype(draw(ARRAY_DTYPES))
        if draw(st.booleans()):
            array = array.reshape(draw(st.sampled_from([d for d in range(1, size + 1) if size % d == 0])), -1)
        name = draw(st.sampled_from(CLASHING_NAMES))
        if draw(st.booleans()):
            branch = {}
            for key in ("then_branch", "else_branch"):
                body = Graph(key)
                body.outputs = [
                    Builder(body).constant(array if key == "then_branch" else array[::-1].copy(), name=name)
                ]
                branch[key] = body
            outputs.append(b.op("If", [cond], branch))
        else:
            outputs.append(b.constant(array, name=name))
    g.outputs = outputs
    return g


@settings(max_examples=60, deadline=None)
@given(large_constant_graphs(), st.booleans())
def test_large_constants_round_trip_whatever_their_names(graph, flag):
    assert_round_trips(graph, {"c": np.array(flag)})


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
