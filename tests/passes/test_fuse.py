"""The ``fuse`` pass: random graphs keep their results (the interpreter runs each group's body),
groups round-trip through the text IR, a second run changes nothing, and diamonds and epilogues
become one group.  Golden cases are in tests/filecheck/passes/fuse/."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from compiler import parse_ir, print_ir
from compiler.ir.verifier import verify
from compiler.testing import assert_pass_is_idempotent, assert_pass_preserves_semantics, graph_and_inputs, graphs
from passes.fuse import FUSED_OP, FusePass

# ops of every fusion kind: elementwise, injective, reduction, anchor, opaque, views and control flow
FUSION_OPS = [
    "Relu", "Sigmoid", "Exp", "Neg", "Tanh", "Add", "Mul", "Sub", "Div", "Where", "Clip", "Cast",
    "Transpose", "Concat", "Slice", "Gather", "ReduceSum", "ReduceMax", "Softmax", "LayerNormalization",
    "MatMul", "Gemm", "Conv", "GlobalAveragePool", "MaxPool", "Reshape", "Unsqueeze", "If",
]  # fmt: skip
SETTINGS = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


def _fused(graph):
    return [n for n in graph.nodes if n.op == FUSED_OP]


@SETTINGS
@given(graph_and_inputs(ops=FUSION_OPS, max_nodes=8))
def test_fuse_preserves_semantics_on_random_graphs(case):
    graph, inputs = case
    after = assert_pass_preserves_semantics(FusePass(), graph, inputs)
    for node in _fused(after):
        body = node.attrs["body"]
        assert len(list(body.nodes)) >= 2 and len(body.params) == len(node.operands)
        assert [v.type for v in body.outputs] == [r.type for r in node.results]
        assert not any(n.op == FUSED_OP for n in body.nodes)
    resources: dict = {}
    text = print_ir(after, resources=resources)
    assert print_ir(parse_ir(text, resources), resources={}) == text


@settings(SETTINGS, max_examples=40)
@given(graphs(ops=FUSION_OPS, max_nodes=8, symbolic=True))
def test_fuse_is_idempotent(graph):
    assert_pass_is_idempotent(FusePass(), graph, "fuse")


def _fuse_text(text: str):
    graph = parse_ir(text)
    FusePass()(graph)
    verify(graph)
    return graph


def test_silu_after_conv_is_one_group_with_every_node():
    graph = _fuse_text(
        """graph @g(%x: f32[1,4,8,8], %w: f32[4,4,1,1]) {
  %c = Conv(%x, %w) : f32[1,4,8,8]
  %s = Sigmoid(%c) : f32[1,4,8,8]
  %y = Mul(%c, %s) : f32[1,4,8,8]
  %z = Add(%y, %x) : f32[1,4,8,8]
  %r = Relu(%z) : f32[1,4,8,8]
  return %r
}"""
    )
    (fused,) = list(graph.nodes)
    assert fused.op == FUSED_OP and fused.results[0].name == "r"
    assert [n.op for n in fused.attrs["body"].nodes] == ["Conv", "Sigmoid", "Mul", "Add", "Relu"]


def test_groups_never_wait_on_each_other():
    """Two groups that would each need the other's result (t -> g(s, t) and s -> f(t, s)): one is
    dissolved, and the graph stays in a valid order."""
    graph = _fuse_text(
        """graph @g(%x: f32[8], %y: f32[8]) {
  %t = Exp(%x) : f32[8]
  %s = Neg(%y) : f32[8]
  %a = Add(%t, %s) : f32[8]
  %b = Sub(%s, %t) : f32[8]
  return %a, %b
}"""
    )
    verify(graph)
    assert len(_fused(graph)) >= 1
