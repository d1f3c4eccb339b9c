"""``cse``: equal pure computations are merged."""

import numpy as np

from compiler import Builder, DType, Graph, TensorType, parse_ir
from compiler.testing import assert_pass_preserves_semantics
from passes.cse import CommonSubexpressionEliminationPass as CSE


def ops(g):
    return [n.op for n in g.walk()]


def test_duplicates_merge_including_commuted_operands():
    g = parse_ir("""graph @main(%x: f32[2], %y: f32[2]) {
  %a = Add(%x, %y) : f32[2]
  %b = Add(%y, %x) : f32[2]
  %s = Sub(%x, %y) : f32[2]
  %t = Sub(%y, %x) : f32[2]
  %m = Mul(%a, %b) : f32[2]
  %n = Mul(%s, %t) : f32[2]
  return %m, %n
}""")
    assert_pass_preserves_semantics("cse", g)
    assert CSE().run(g).modified
    assert ops(g) == ["Add", "Sub", "Sub", "Mul", "Mul"]  # Sub does not commute


def test_attributes_must_match():
    g = parse_ir("""graph @main(%x: f32[2,3]) {
  %a = Softmax(%x) {axis = 0} : f32[2,3]
  %b = Softmax(%x) {axis = 1} : f32[2,3]
  %c = Softmax(%x) {axis = 1} : f32[2,3]
  return %a, %b, %c
}""")
    assert CSE().run(g).modified
    assert ops(g) == ["Softmax", "Softmax", "Identity"]  # outputs are never merged: %c copies %b
    assert [v.name for v in g.outputs] == ["a", "b", "c"]
    assert g.outputs[2].producer.operands[0] is g.outputs[1]


def test_equal_constants_merge_and_different_ones_do_not():
    g = Graph("main")
    b = Builder(g)
    x = b.param("x", TensorType(DType.FLOAT32, (3,)))
    c1 = b.constant(np.arange(3, dtype=np.float32))
    c2 = b.constant(np.arange(3, dtype=np.float32))
    c3 = b.constant(np.arange(3, dtype=np.int64).astype(np.float32) + 1)
    g.outputs = [b.op("Add", [x, c1]), b.op("Add", [x, c2]), b.op("Add", [x, c3])]
    assert_pass_preserves_semantics("cse", g)
    CSE().run(g)
    assert ops(g).count("Constant") == 2 and ops(g).count("Add") == 2


def test_random_ops_are_never_merged():
    g = parse_ir("""graph @main(%x: f32[2]) {
  %a = RandomUniformLike(%x) : f32[2]
  %b = RandomUniformLike(%x) : f32[2]
  return %a, %b
}""")
    assert not CSE().run(g).modified


def test_nested_graph_reuses_an_enclosing_computation():
    g = parse_ir("""graph @main(%c: bool[], %x: f32[2]) {
  %n = Neg(%x) : f32[2]
  %r = If(%c) {then_branch = graph @then() {
    %m = Neg(%x) : f32[2]
    return %m
  }, else_branch = graph @else() {
    %a = Abs(%x) : f32[2]
    return %a
  }} : f32[2]
  return %n, %r
}""")
    assert_pass_preserves_semantics("cse", g, {"c": True, "x": [1.0, -2.0]})
    assert CSE().run(g).modified
    assert ops(g) == ["Neg", "If", "Abs"]


def test_large_constants_differing_between_samples_stay_apart():
    g = Graph("main")
    b = Builder(g)
    x = b.param("x", TensorType(DType.FLOAT32, (1000,)))
    base = np.zeros(1000, np.float32)
    other = base.copy()
    other[1] = 1.0  # not among the hashed sample elements
    g.outputs = [
        b.op("Add", [x, b.constant(base)]),
        b.op("Add", [x, b.constant(other)]),
        b.op("Add", [x, b.constant(base.copy())]),
    ]
    assert_pass_preserves_semantics("cse", g)
    assert CSE().run(g).statistics["merged"] == 2  # the third constant and its Add
    assert ops(g).count("Constant") == 2
