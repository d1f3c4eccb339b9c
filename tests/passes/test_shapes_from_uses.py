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
    feeds = {
        "x": np.random.default_rng(0).standard_normal((3, 2, 2)).astype(np.float32),
        "axes": np.array([2], np.int64),
    }
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


def test_operands_of_one_class_share_the_declared_shape_through_a_binary_op():
    """A window built from Range(0, n): Add(Sub(a, Cos), Mul(b, Cos)) keeps the Range's shape."""
    g = parse_ir("""graph @main(%n: f32[]) {
  %zero = Constant() {value = dense<f32[] [0.0]>} : f32[]
  %one = Constant() {value = dense<f32[] [1.0]>} : f32[]
  %r = Range(%zero, %n, %one) : f32[?]
  %t = Mul(%one, %r) : f32[?]
  %c = Cos(%t) : f32[?]
  %a = Sub(%one, %c) : f32[?]
  %b = Mul(%c, %one) : f32[?]
  %s = Add(%a, %b) : f32[?]
  %y = Cast(%s) {to = 1} : f32[10]
  return %y
}""")
    after = assert_pass_preserves_semantics("shapes-from-uses", g, {"n": np.array(10, np.float32)})
    text = print_ir(after)
    assert ": f32[?]" not in text
    assert "%r = Range(%zero, %n, %one) : f32[10]" in text


def test_a_binary_op_of_two_unrelated_unknown_shapes_learns_nothing():
    g = parse_ir("""graph @main(%n: f32[], %m: f32[]) {
  %zero = Constant() {value = dense<f32[] [0.0]>} : f32[]
  %one = Constant() {value = dense<f32[] [1.0]>} : f32[]
  %r = Range(%zero, %n, %one) : f32[?]
  %q = Range(%zero, %m, %one) : f32[?]
  %s = Add(%r, %q) : f32[?]
  %y = Cast(%s) {to = 1} : f32[10]
  return %y
}""")
    ShapesFromUsesPass().run(g)
    text = print_ir(g)
    assert "%r = Range(%zero, %n, %one) : f32[?]" in text  # 1 or 10: broadcasting cannot tell
    assert "%s = Add(%r, %q) : f32[10]" in text
