"""``dce``: dead pure nodes go, everything else stays."""

from compiler import parse_ir
from compiler.testing import assert_pass_preserves_semantics
from passes.dce import DeadCodeEliminationPass


def ops(g):
    return [n.op for n in g.walk()]


def test_dead_chain_is_removed_in_one_run():
    g = parse_ir("""graph @main(%x: f32[2]) {
  %a = Relu(%x) : f32[2]
  %b = Neg(%a) : f32[2]
  %c = Abs(%x) : f32[2]
  return %c
}""")
    result = DeadCodeEliminationPass().run(g)
    assert result.modified and result.statistics["erased"] == 2
    assert ops(g) == ["Abs"]
    assert not DeadCodeEliminationPass().run(g).modified


def test_random_ops_stay_even_when_unused():
    g = parse_ir("""graph @main(%x: f32[2]) {
  %r = RandomUniformLike(%x) : f32[2]
  return %x
}""")
    assert not DeadCodeEliminationPass().run(g).modified
    assert ops(g) == ["RandomUniformLike"]


def test_dead_nodes_inside_nested_graphs_are_removed():
    g = parse_ir("""graph @main(%c: bool[], %x: f32[2]) {
  %r = If(%c) {then_branch = graph @then() {
    %dead = Neg(%x) : f32[2]
    %a = Abs(%x) : f32[2]
    return %a
  }, else_branch = graph @else() {
    %n = Neg(%x) : f32[2]
    return %n
  }} : f32[2]
  return %r
}""")
    assert DeadCodeEliminationPass().run(g).modified
    assert ops(g) == ["If", "Abs", "Neg"]
    assert_pass_preserves_semantics("dce", g, {"c": True, "x": [1.0, -2.0]})
