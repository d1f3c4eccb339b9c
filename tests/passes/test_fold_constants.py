"""``fold-constants``: pure ops on constants become constants, within the size limit."""

import numpy as np
import pytest

from compiler import Builder, DType, Graph, TensorType, parse_ir, print_ir
from compiler.pipeline import run_pipeline
from compiler.testing import assert_pass_preserves_semantics
from passes.fold_constants import FoldConstantsPass

F32 = DType.FLOAT32


def ops(g):
    return [n.op for n in g.walk()]


def test_arithmetic_on_constants_folds_to_one_constant():
    g = Graph("main")
    b = Builder(g)
    x = b.param("x", TensorType(F32, (2, 2)))
    a = b.constant(np.array([[1, 2], [3, 4]], np.float32))
    c = b.op("Mul", [b.op("Add", [a, a]), b.op("Transpose", [a], {"perm": [1, 0]})])
    g.outputs = [b.op("Add", [x, c])]
    after = assert_pass_preserves_semantics("fold-constants", g)
    assert ops(after) == ["Constant", "Add"]
    folded = after.first.attrs["value"]
    np.testing.assert_array_equal(folded, (2 * np.array([[1, 2], [3, 4]])) * np.array([[1, 3], [2, 4]]))


def test_shape_subgraph_of_static_dims_folds_into_reshape():
    g = parse_ir("""graph @main(%x: f32[2,3,4]) {
  %s = Shape(%x) : i64[3]
  %i = Constant() {value = dense<i64[] [0]>} : i64[]
  %d = Gather(%s, %i) {axis = 0} : i64[]
  %u = Constant() {value = dense<i64[1] [0]>} : i64[1]
  %d1 = Unsqueeze(%d, %u) : i64[1]
  %m = Constant() {value = dense<i64[1] [-1]>} : i64[1]
  %shape = Concat(%d1, %m) {axis = 0} : i64[2]
  %r = Reshape(%x, %shape) : f32[?,?]
  return %r
}""")
    after = assert_pass_preserves_semantics("fold-constants,dce", g)
    assert ops(after) == ["Constant", "Reshape"]
    np.testing.assert_array_equal(after.first.attrs["value"], [2, -1])


def test_shape_of_dynamic_dims_stays():
    g = parse_ir("""graph @main(%x: f32[N,3]) {
  %s = Shape(%x) : i64[2]
  return %s
}""")
    assert not FoldConstantsPass().run(g).modified


def test_size_limit_keeps_weights_from_growing():
    g = Graph("main")
    b = Builder(g)
    x = b.param("x", TensorType(F32, (64, 64)))
    small = b.constant(np.ones((1, 64), np.float32))
    reps = b.constant(np.array([64, 1], np.int64))
    tiled = b.op("Tile", [small, reps])  # 16 KiB from 256 bytes
    g.outputs = [b.op("Add", [x, tiled])]
    assert not FoldConstantsPass(max_bytes=1024).run(g).modified
    assert FoldConstantsPass(max_bytes=1 << 20).run(g).modified


def test_large_result_folds_when_it_replaces_inputs_of_the_same_size():
    g = Graph("main")
    b = Builder(g)
    x = b.param("x", TensorType(F32, (64, 64)))
    w = b.constant(np.arange(64 * 64, dtype=np.float32).reshape(64, 64))
    g.outputs = [b.op("MatMul", [x, b.op("Transpose", [w], {"perm": [1, 0]})])]
    after = assert_pass_preserves_semantics("fold-constants{max-bytes=16}", g)
    assert ops(after) == ["Constant", "MatMul"]


def test_random_ops_are_not_folded():
    g = parse_ir("""graph @main() {
  %s = Constant() {value = dense<f32[2] [1.0, 2.0]>} : f32[2]
  %r = RandomUniformLike(%s) : f32[2]
  return %r
}""")
    assert not FoldConstantsPass().run(g).modified


def test_output_name_survives_folding():
    g = parse_ir("""graph @main() {
  %a = Constant() {value = dense<f32[2] [1.0, 2.0]>} : f32[2]
  %out = Neg(%a) : f32[2]
  return %out
}""")
    FoldConstantsPass().run(g)
    assert ops(g) == ["Constant"] and g.outputs[0].name == "out"


def test_folds_inside_nested_graphs():
    g = parse_ir("""graph @main(%c: bool[]) {
  %r = If(%c) {then_branch = graph @then() {
    %a = Constant() {value = dense<f32[2] [1.0, -2.0]>} : f32[2]
    %n = Abs(%a) : f32[2]
    return %n
  }, else_branch = graph @else() {
    %b = Constant() {value = dense<f32[2] [0.0, 0.0]>} : f32[2]
    return %b
  }} : f32[2]
  return %r
}""")
    after = assert_pass_preserves_semantics("fold-constants", g, {"c": True})
    assert "Abs" not in ops(after)


@pytest.mark.parametrize("pipeline", ["fold-constants", "infer-shapes,fold-constants,cse,dce"])
def test_folding_is_idempotent(pipeline):
    g = Graph("main")
    b = Builder(g)
    x = b.param("x", TensorType(F32, (2, 3)))
    c = b.constant(np.full((3,), 2.0, np.float32))
    g.outputs = [b.op("Mul", [x, b.op("Sqrt", [c])])]
    run_pipeline(g, pipeline)
    once = print_ir(g)
    assert not run_pipeline(g, pipeline).modified
    assert print_ir(g) == once
