"""The plugin's own test: its pass keeps the graph's values, on random graphs too."""

from hypothesis import given, settings

from compiler import parse_ir
from compiler.testing import assert_pass_preserves_semantics, graph_and_inputs
from ember_example_plugin.double_negation import RemoveDoubleNegationPass

GRAPH = """graph @main(%x: f32[2,3]) {
  %a = Neg(%x) : f32[2,3]
  %b = Neg(%a) : f32[2,3]
  %c = Relu(%b) : f32[2,3]
  %d = Relu(%c) : f32[2,3]
  return %d
}"""


def test_removes_double_negation_and_keeps_values():
    after = assert_pass_preserves_semantics(RemoveDoubleNegationPass(), parse_ir(GRAPH))
    assert [n.op for n in after.nodes] == ["Relu"]


@settings(max_examples=50, deadline=None)
@given(graph_and_inputs(ops=["Neg", "Relu", "Add"], max_nodes=6))
def test_random_graphs_keep_their_values(case):
    graph, inputs = case
    assert_pass_preserves_semantics(RemoveDoubleNegationPass(), graph, inputs)
