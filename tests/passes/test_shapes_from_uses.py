"""``shapes-from-uses``: an unknown shape learnt from a shape-preserving use with a known result."""

import numpy as np

from compiler import parse_ir, print_ir
from compiler.testing import assert_pass_preserves_semantics
from passes.shapes_from_uses import ShapesFromUsesPass


def test_a_chain_of_unary_ops_gives_its_shape_back_to_a_run_time_reduction():
    g = parse_ir("""graph @main(%x: f32[3,2,2], %axes: i64[1]) {
  %sq = Mul(%x, %x) : f32[3,2,2]
  %s = ReduceSum(%sq, %axes) {keepdims = 0} : f32[*]
  %r = Sqrt(%s) : f32[*]
  %y = Neg(%r) : f32[3,2]
  return %y
}""")
    feeds = {"x": np.random.default_rng(0).standard_normal((3, 2, 2)).astype(np.float32),
             "axes": np.array([2], np.int64)}
    after = assert_pass_preserves_semantics("shapes-from-uses", g, feeds)
    text = print_ir(after)
    assert "%s = ReduceSum(%sq, %axes) {keepdims = 0} : f32[3,2]" in text
    assert "%r = Sqrt(%s) : f32[3,2]" in text


def test_scalar_operands_keep_the_shape_but_broadcasting_ones_do_not():
    g = parse_ir("""graph @main(%x: f32[4,3], %axes: i64[1], %c: f32[], %row: f32[3]) {
  %s = ReduceMax(%x, %axes) {keepdims = 1} : f32[*]
  %a = Add(%s, %c) : f32[1,3]
  %t = ReduceMin(%x, %axes) {keepdims = 1} : f32[*]
  %b = Add(%t, %row) : f32[1,3]
  return %a, %b
}""")
    assert ShapesFromUsesPass().run(g).modified
    text = print_ir(g)
    assert "%s = ReduceMax(%x, %axes) {keepdims = 1} : f32[1,3]" in text
    assert "%t = ReduceMin(%x, %axes) {keepdims = 1} : f32[*]" in text  # (3,) broadcasts from many shapes
    assert not ShapesFromUsesPass().run(g).modified


def test_graph_parameters_keep_their_declared_types():
    g = parse_ir("""graph @main(%x: f32[*]) {
  %y = Relu(%x) : f32[2,2]
  return %y
}""")
    assert not ShapesFromUsesPass().run(g).modified
    assert str(g.params[0].type) == "f32[*]"
