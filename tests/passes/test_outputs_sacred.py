"""Outputs are sacred: no pipeline renames, drops, reorders or merges a graph output.

Every named pipeline runs over random graphs (``compiler.testing.strategies``) whose outputs are
drawn from all values, parameters included, with repeats; the output names and order must be
unchanged and the interpreter must give the same values, output by output.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.diagnostics import EmberError
from compiler.ir.builder import Builder
from compiler.ir.core import Graph
from compiler.ir.interpreter import Interpreter
from compiler.ir.types import DType, TensorType
from compiler.passes import Pass, PassResult
from compiler.pipeline import PassManager, run_pipeline
from compiler.rewrite import Rewriter
from compiler.testing import graphs, inputs_for
from passes.pipelines import NAMED_PIPELINES

PIPELINES = sorted(NAMED_PIPELINES)  # O0..O3 and codegen-prepare


@st.composite
def cases(draw):
    """A random graph whose outputs are any values (parameters too), some listed twice, some
    through Identity nodes that simplification removes."""
    graph = draw(graphs(max_nodes=5))
    values = list(graph.params) + [r for n in graph.nodes for r in n.results]
    b = Builder(graph)
    for i in draw(st.lists(st.sampled_from(range(len(values))), max_size=2)):
        copy = b.op("Identity", [values[i]])
        copy.name = f"copy{len(values)}"
        values.append(copy)
    picks = draw(st.lists(st.sampled_from(range(len(values))), min_size=1, max_size=4))
    graph.outputs = [values[i] for i in picks]
    return graph, draw(inputs_for(graph))


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_pipelines_keep_output_names_and_order(pipeline):
    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    @given(cases())
    def check(case):
        graph, inputs = case
        names = [v.name for v in graph.outputs]
        args = [inputs[p.name] for p in graph.params]
        expected = Interpreter().run_graph(graph, args)
        run_pipeline(graph, pipeline)
        assert [v.name for v in graph.outputs] == names
        got = Interpreter().run_graph(graph, args)
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)

    check()


def _squeeze_unsqueeze() -> Graph:
    g = Graph("main")
    b = Builder(g)
    x = b.param("x", TensorType(DType.FLOAT32, [2, 3]))
    axes = b.constant(np.array([0], np.int64), "axes")
    u = b.op("Unsqueeze", [x, axes])
    y = b.op("Squeeze", [u, axes])
    y.name = "y"
    g.outputs = [y, y, x]
    return g


@pytest.mark.parametrize("pipeline", ["O1", "O2", "O3"])
def test_squeeze_unsqueeze_output_keeps_its_name(pipeline):
    g = _squeeze_unsqueeze()
    run_pipeline(g, pipeline)
    assert [v.name for v in g.outputs] == ["y", "y", "x"]
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    outs = Interpreter().run_graph(g, [x])
    assert len(outs) == 3 and all(np.array_equal(o, x) for o in outs)


def test_cse_does_not_merge_two_outputs():
    g = Graph("main")
    b = Builder(g)
    x = b.param("x", TensorType(DType.FLOAT32, [4]))
    r1, r2 = b.op("Relu", [x]), b.op("Relu", [x])
    r1.name, r2.name = "a", "b"
    g.outputs = [r1, r2]
    run_pipeline(g, "O2")
    assert [v.name for v in g.outputs] == ["a", "b"]


def test_pass_manager_refuses_a_pass_that_renames_an_output():
    class Renamer(Pass):
        name = "test-rename-output"

        def run(self, graph):
            graph.outputs[0].name = "other"
            return PassResult(True)

    g = _squeeze_unsqueeze()
    with pytest.raises(EmberError, match="changed the graph outputs"):
        PassManager([Renamer()]).run(g)


def test_rewriter_replacing_an_output_by_a_param_keeps_the_output():
    g = _squeeze_unsqueeze()
    squeeze = g.outputs[0].producer
    rw = Rewriter(g)
    rw.set_insertion_point_before(squeeze)
    rw.replace_node(squeeze, [g.params[0]])
    assert [v.name for v in g.outputs] == ["y", "y", "x"]
    assert g.outputs[0].producer.op == "Identity" and g.outputs[0].producer.operands[0] is g.params[0]
