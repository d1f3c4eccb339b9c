"""The reference interpreter: plain graphs, If/Loop/Scan, and its error reports."""

import numpy as np
import pytest

from compiler import Builder, DType, Graph, InterpreterError, Node, TensorType, interpret, parse_ir, verify

F32 = DType.FLOAT32


def test_straight_line_graph_matches_numpy():
    g = parse_ir("""graph @main(%x: f32[2,3], %w: f32[3,4]) {
  %m = MatMul(%x, %w) : f32[2,4]
  %s = Softmax(%m) {axis = -1} : f32[2,4]
  %axes = Constant() {value = dense<i64[1] [1]>} : i64[1]
  %r = ReduceSum(%s, %axes) : f32[2,1]
  return %m, %r
}""")
    verify(g)
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32)
    out = interpret(g, {"x": x, "w": w})
    np.testing.assert_allclose(out["m"], x @ w, rtol=1e-6)
    np.testing.assert_allclose(out["r"], np.ones((2, 1)), rtol=1e-6)


IF_GRAPH = """graph @main(%c: bool[], %x: f32[3]) {
  %y = If(%c) {else_branch = graph @else() {
    %n = Neg(%x) : f32[3]
    return %n
  }, then_branch = graph @then() {
    %two = Constant() {value = dense<f32[] [2.0]>} : f32[]
    %d = Mul(%x, %two) : f32[3]
    return %d
  }} : f32[3]
  return %y
}"""


@pytest.mark.parametrize("cond", [True, False])
def test_if_runs_the_chosen_branch_reading_outer_values(cond):
    g = parse_ir(IF_GRAPH)
    verify(g)
    x = np.array([1.0, -2.0, 3.0], np.float32)
    out = interpret(g, {"c": np.array(cond), "x": x})
    np.testing.assert_array_equal(out["y"], x * 2 if cond else -x)


LOOP_GRAPH = """graph @main(%n: i64[], %x: f32[2]) {
  %acc, %steps = Loop(%n, none, %x) {body = graph @body(%i: i64[], %c: bool[], %a: f32[2]) {
    %a2 = Add(%a, %x) : f32[2]
    %fi = Cast(%i) {to = 1} : f32[]
    %s = Mul(%a2, %fi) : f32[2]
    return %c, %a2, %s
  }} : f32[2], f32[?,2]
  return %acc, %steps
}"""


@pytest.mark.parametrize("trips", [0, 1, 4])
def test_loop_carries_values_and_stacks_scan_outputs(trips):
    g = parse_ir(LOOP_GRAPH)
    verify(g)
    x = np.array([1.0, 2.0], np.float32)
    out = interpret(g, {"n": np.array(trips, np.int64), "x": x})
    acc, steps = x.copy(), []
    for i in range(trips):
        acc = acc + x
        steps.append(acc * i)
    np.testing.assert_array_equal(out["acc"], acc)
    assert out["steps"].shape == (trips, 2)
    if trips:
        np.testing.assert_array_equal(out["steps"], np.stack(steps))


def test_loop_stops_when_the_condition_turns_false():
    g = parse_ir("""graph @main(%limit: f32[]) {
  %true = Constant() {value = dense<bool[] [true]>} : bool[]
  %zero = Constant() {value = dense<f32[] [0.0]>} : f32[]
  %total = Loop(none, %true, %zero) {body = graph @body(%i: i64[], %c: bool[], %t: f32[]) {
    %one = Constant() {value = dense<f32[] [1.0]>} : f32[]
    %t2 = Add(%t, %one) : f32[]
    %go = Less(%t2, %limit) : bool[]
    return %go, %t2
  }} : f32[]
  return %total
}""")
    verify(g)
    assert float(interpret(g, {"limit": np.array(5.5, np.float32)})["total"]) == 6.0


def test_scan_runs_forward_and_backward():
    text = """graph @main(%init: f32[2], %xs: f32[3,2]) {
  %final, %partial = Scan(%init, %xs) {body = graph @step(%s: f32[2], %row: f32[2]) {
    %n = Add(%s, %row) : f32[2]
    %o = Identity(%n) : f32[2]
    return %n, %o
  }, num_scan_inputs = 1, scan_input_directions = [DIR]} : f32[2], f32[3,2]
  return %final, %partial
}"""
    xs = np.arange(6, dtype=np.float32).reshape(3, 2)
    init = np.array([10, 20], np.float32)
    for direction in (0, 1):
        g = parse_ir(text.replace("DIR", str(direction)))
        verify(g)
        out = interpret(g, {"init": init, "xs": xs})
        rows = xs[::-1] if direction else xs
        np.testing.assert_array_equal(out["partial"], init + np.cumsum(rows, axis=0))
        np.testing.assert_array_equal(out["final"], init + xs.sum(axis=0))


def test_if_nested_in_a_loop_reads_values_two_levels_up():
    g = parse_ir("""graph @main(%n: i64[], %x: f32[2]) {
  %out = Loop(%n, none, %x) {body = graph @body(%i: i64[], %c: bool[], %a: f32[2]) {
    %two = Constant() {value = dense<i64[] [2]>} : i64[]
    %r = Mod(%i, %two) : i64[]
    %zero = Constant() {value = dense<i64[] [0]>} : i64[]
    %even = Equal(%r, %zero) : bool[]
    %b = If(%even) {else_branch = graph @odd() {
      %m = Mul(%a, %x) : f32[2]
      return %m
    }, then_branch = graph @even_step() {
      %p = Add(%a, %x) : f32[2]
      return %p
    }} : f32[2]
    return %c, %b
  }} : f32[2]
  return %out
}""")
    verify(g)
    x = np.array([2.0, 3.0], np.float32)
    out = interpret(g, {"n": np.array(3, np.int64), "x": x})
    np.testing.assert_array_equal(out["out"], ((x + x) * x) + x)


def relu_graph():
    g = Graph()
    b = Builder(g)
    x = b.param("x", TensorType(F32, ("n", 3)))
    g.outputs = [b.op("Relu", [x], names=["y"])]
    return g


@pytest.mark.parametrize(
    "inputs, message",
    [
        ({}, "missing inputs: x"),
        ({"x": np.zeros((1, 3), np.float32), "z": 1}, "unknown inputs: z"),
        ({"x": np.zeros((1, 3), np.float64)}, "input 'x': expected dtype f32, got float64"),
        ({"x": np.zeros((1, 4), np.float32)}, "input 'x': expected shape f32[n,3], got [1, 4]"),
        ({"x": np.zeros((3,), np.float32)}, "input 'x': expected shape f32[n,3], got [3]"),
    ],
)
def test_bad_inputs_are_reported(inputs, message):
    with pytest.raises(InterpreterError, match=message.replace("[", r"\[").replace("]", r"\]")):
        interpret(relu_graph(), inputs)


def test_symbolic_dims_accept_any_size_and_python_values_are_converted():
    out = interpret(relu_graph(), {"x": [[-1.0, 2.0, -3.0]] * 5})
    assert out["y"].shape == (5, 3) and out["y"].dtype == np.float32


def test_kernel_failures_name_the_node():
    g = Graph()
    b = Builder(g)
    x = b.param("x", TensorType(F32, (2, 3)))
    bad = Node(
        "Reshape",
        [x, b.constant(np.array([4, 4], np.int64))],
        [TensorType(F32, (4, 4))],
        result_names=["r"],
        name="reshape_1",
    )
    g.append(bad)
    g.outputs = [bad.result]
    with pytest.raises(InterpreterError, match=r"node 'reshape_1' \(Reshape\)"):
        interpret(g, {"x": np.zeros((2, 3), np.float32)})


def test_kernel_output_must_match_the_declared_type():
    g = Graph()
    b = Builder(g)
    x = b.param("x", TensorType(F32, (2,)))
    wrong = Node("Relu", [x], [TensorType(F32, (3,))], result_names=["y"])
    g.append(wrong)
    g.outputs = [wrong.result]
    with pytest.raises(InterpreterError, match=r"node 'y' \(Relu\) result %y: expected shape f32\[3\]"):
        interpret(g, {"x": np.zeros(2, np.float32)})
    out = interpret(g, {"x": np.zeros(2, np.float32)}, check_types=False)
    assert out["y"].shape == (2,)


def test_ops_without_a_kernel_are_reported():
    g = Graph()
    node = g.append(Node("no.such", [], [TensorType(F32, (1,))], result_names=["q"]))
    g.outputs = [node.result]
    with pytest.raises(InterpreterError, match="has no reference implementation"):
        interpret(g, {})
