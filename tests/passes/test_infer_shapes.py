"""``infer-shapes``: refine result types, turn static shape queries into constants."""

import numpy as np

from compiler import parse_ir
from compiler.ir.types import DType, TensorType
from compiler.testing import assert_pass_preserves_semantics
from passes.infer_shapes import InferShapesPass, refines

F32 = DType.FLOAT32


def test_refines_only_adds_information():
    assert refines(TensorType(F32, (2, 3)), TensorType(F32, None))
    assert refines(TensorType(F32, (2, 3)), TensorType(F32, ("N", None)))
    assert not refines(TensorType(F32, ("N", 3)), TensorType(F32, (2, 3)))
    assert not refines(TensorType(F32, (2, 4)), TensorType(F32, (2, 3)))
    assert not refines(TensorType(DType.INT64, (2, 3)), TensorType(F32, None))


def test_unknown_shapes_get_propagated():
    g = parse_ir("""graph @main(%x: f32[N,3,4]) {
  %shape = Constant() {value = dense<i64[2] [-1, 12]>} : i64[2]
  %r = Reshape(%x, %shape) : f32[*]
  %y = Relu(%r) : f32[*]
  return %y
}""")
    assert InferShapesPass().run(g).modified
    assert str(g.outputs[0].type) == "f32[?,12]"


def test_static_shape_queries_become_constants():
    g = parse_ir("""graph @main(%x: f32[N,3,4]) {
  %s = Shape(%x) : i64[3]
  %tail = Shape(%x) {start = 1} : i64[2]
  %i = Constant() {value = dense<i64[1] [2]>} : i64[1]
  %d = Gather(%s, %i) {axis = 0} : i64[1]
  return %s, %tail, %d
}""")
    after = assert_pass_preserves_semantics("infer-shapes", g, {"x": np.zeros((5, 3, 4), np.float32)})
    assert [n.op for n in after.nodes].count("Shape") == 1  # the full Shape reads the symbolic N
    np.testing.assert_array_equal(after.outputs[1].const_value, [3, 4])
    np.testing.assert_array_equal(after.outputs[2].const_value, [4])


def test_gather_of_a_symbolic_dim_stays():
    g = parse_ir("""graph @main(%x: f32[N,3]) {
  %s = Shape(%x) : i64[2]
  %i = Constant() {value = dense<i64[] [0]>} : i64[]
  %d = Gather(%s, %i) {axis = 0} : i64[]
  return %d
}""")
    assert not InferShapesPass().run(g).modified
