"""The plugin's own tests: its pass keeps the graph's values, on random graphs too, and its FileCheck cases hold."""

from pathlib import Path

import pytest
from ember_example_plugin.double_negation import RemoveDoubleNegationPass
from hypothesis import given, settings

from compiler import parse_ir
from compiler.passes import register_pass, unregister_pass
from compiler.testing import assert_pass_preserves_semantics, graph_and_inputs
from compiler.testing.filecheck import collect_cases, run_case

GRAPH = """graph @main(%x: f32[2,3]) {
  %a = Neg(%x) : f32[2,3]
  %b = Neg(%a) : f32[2,3]
  %c = Relu(%b) : f32[2,3]
  %d = Relu(%c) : f32[2,3]
  %e = LeakyRelu(%d) {alpha = -2.0} : f32[2,3]
  %f = LeakyRelu(%e) : f32[2,3]
  return %f
}"""


def test_removes_double_negation_and_keeps_values():
    after = assert_pass_preserves_semantics(RemoveDoubleNegationPass(), parse_ir(GRAPH))
    assert [n.op for n in after.nodes] == ["Relu", "LeakyRelu", "LeakyRelu"]  # alpha -2 does not merge


@settings(max_examples=50, deadline=None)
@given(graph_and_inputs(ops=["Neg", "Relu", "LeakyRelu", "Add"], max_nodes=6))
def test_random_graphs_keep_their_values(case):
    graph, inputs = case
    assert_pass_preserves_semantics(RemoveDoubleNegationPass(), graph, inputs)


CASES = collect_cases(Path(__file__).parent / "filecheck")


@pytest.fixture
def by_name():
    """Make the pass available by name in this process, as installing the package would."""
    register_pass(RemoveDoubleNegationPass)
    yield
    unregister_pass(RemoveDoubleNegationPass.name)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_filecheck(case, by_name):
    run_case(case)
