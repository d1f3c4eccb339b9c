"""``If`` with a run-time condition compiled to real branches: only the taken branch's kernels run.

Each model is compiled once and run for every condition value against the interpreter on the
original graph; the profile's call counts show which kernels ran.  Plan-level checks (no compile)
cover the memory plan (both branches share arena bytes), in-place results and the refusals.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import compiler
from codegen.branches import IfStep
from codegen.errors import CodegenError
from codegen.memory import plan_memory
from codegen.plan import build_plan, count_flops
from codegen.tvm.registry import get_lowering
from compiler.driver import prepare_for_codegen
from compiler.profiling import chrome_trace
from compiler.runtime import load
from frontends.onnx import import_model

F, I64, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL
SHAPE = [1, 4, 8, 8]
LAYERS = 33  # 66 nodes per branch: above select-ifs' old 64-node limit


def _model(nodes, inputs, outputs, inits=()):
    graph = helper.make_graph(nodes, "ifbr", inputs, outputs, initializer=list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _branch(name, nodes, outputs):
    return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(o, F, s) for o, s in outputs])


def conv_or_matmul_model(else_shape=SHAPE):
    """y = If(cond){then: LAYERS x Relu(Conv(h, w_i)); else: LAYERS x Tanh(MatMul(h, m_i))} + s, with
    s = Sigmoid(x) computed outside and read by both branches, the weights outer constants."""
    rng = np.random.default_rng(0)
    inits, then_nodes, else_nodes = [], [], []
    h = "s"
    for i in range(LAYERS):
        inits.append(numpy_helper.from_array((0.3 * rng.standard_normal((4, 4, 3, 3))).astype(np.float32), f"w{i}"))
        then_nodes += [
            helper.make_node("Conv", [h, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", [f"c{i}"], [f"t{i}"]),
        ]
        h = f"t{i}"
    then = _branch("then", then_nodes, [(h, SHAPE)])
    h = "s"
    for i in range(LAYERS):
        inits.append(numpy_helper.from_array((0.4 * rng.standard_normal((8, 8))).astype(np.float32), f"m{i}"))
        else_nodes += [
            helper.make_node("MatMul", [h, f"m{i}"], [f"mm{i}"]),
            helper.make_node("Tanh", [f"mm{i}"], [f"e{i}"]),
        ]
        h = f"e{i}"
    if else_shape != SHAPE:
        else_nodes.append(helper.make_node("MaxPool", [h], ["pooled"], kernel_shape=[2, 2], strides=[2, 2]))
        h = "pooled"
    els = _branch("else", else_nodes, [(h, else_shape)])
    nodes = [
        helper.make_node("Sigmoid", ["x"], ["s"]),
        helper.make_node("If", ["cond"], ["z"], then_branch=then, else_branch=els, name="branchy"),
        helper.make_node("Add", ["z", "s"], ["y"]),
    ]
    inputs = [helper.make_tensor_value_info("cond", BOOL, []), helper.make_tensor_value_info("x", F, SHAPE)]
    return _model(nodes, inputs, [helper.make_tensor_value_info("y", F, SHAPE)], inits)


def _chain(prefix, source, ops, scale):
    """len(ops) * 2 elementwise nodes: h = op(h * scale) per op."""
    nodes, h = [], source
    for i, op in enumerate(ops):
        nodes += [
            helper.make_node("Mul", [h, scale], [f"{prefix}_m{i}"]),
            helper.make_node(op, [f"{prefix}_m{i}"], [f"{prefix}_{i}"]),
        ]
        h = f"{prefix}_{i}"
    return nodes, h


def sample_rate_model():
    """Silero-VAD-like: the condition is computed (Greater(sr, 8000)); two If outputs each, the
    second an outer value (x) in one branch and a constant in the other (both copied)."""
    k = helper.make_tensor("k", F, [16], np.linspace(-2, 2, 16).tolist())
    then_nodes, t = _chain("t", "x", ["Tanh", "Sin", "Exp", "Cos", "Sigmoid"], "half")
    else_nodes, e = _chain("e", "x", ["Sigmoid", "Cos", "Neg", "Abs", "Sqrt"], "half")
    else_nodes.append(helper.make_node("Constant", [], ["k_out"], value=k))
    then = _branch("then", then_nodes, [(t, [16]), ("x", [16])])
    els = _branch("else", else_nodes, [(e, [16]), ("k_out", [16])])
    nodes = [
        helper.make_node("Greater", ["sr", "eight_k"], ["wide"]),
        helper.make_node("If", ["wide"], ["y", "aux"], then_branch=then, else_branch=els, name="by_rate"),
    ]
    inputs = [helper.make_tensor_value_info("sr", I64, []), helper.make_tensor_value_info("x", F, [16])]
    inits = [
        numpy_helper.from_array(np.array(8000, np.int64), "eight_k"),
        numpy_helper.from_array(np.float32(0.5), "half"),
    ]
    outputs = [helper.make_tensor_value_info("y", F, [16]), helper.make_tensor_value_info("aux", F, None)]
    return _model(nodes, inputs, outputs, inits)


def nested_model():
    """If(a){then: If(b){Tanh chain}{Exp chain} then Sin; else: Cos chain}: three leaf paths."""
    inner_then, it = _chain("it", "x", ["Tanh"] * 5, "half")
    inner_else, ie = _chain("ie", "x", ["Exp"] * 5, "half")
    inner = helper.make_node(
        "If",
        ["b"],
        ["inner"],
        name="inner_if",
        then_branch=_branch("inner_then", inner_then, [(it, [16])]),
        else_branch=_branch("inner_else", inner_else, [(ie, [16])]),
    )
    outer_then = [inner, *_chain("ot", "inner", ["Sin"] * 5, "half")[0]]
    outer_else, oe = _chain("oe", "x", ["Cos"] * 5, "half")
    outer = helper.make_node(
        "If",
        ["a"],
        ["y"],
        name="outer_if",
        then_branch=_branch("outer_then", outer_then, [("ot_4", [16])]),
        else_branch=_branch("outer_else", outer_else, [(oe, [16])]),
    )
    inputs = [
        helper.make_tensor_value_info("a", BOOL, [1]),
        helper.make_tensor_value_info("b", BOOL, []),
        helper.make_tensor_value_info("x", F, [16]),
    ]
    inits = [numpy_helper.from_array(np.float32(0.5), "half")]
    return _model([outer], inputs, [helper.make_tensor_value_info("y", F, [16])], inits)


def _interpret(model, feeds):
    out = compiler.interpret(import_model(model), feeds)
    return list(out.values()) if isinstance(out, dict) else list(out)


def _check(lib_model, model, feeds):
    got, want = lib_model.run(feeds), _interpret(model, feeds)
    got = list(got.values()) if isinstance(got, dict) else list(got)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.reshape(g, np.shape(w)), w, rtol=1e-4, atol=1e-5)


def _plan(model):
    graph = import_model(model)
    prepare_for_codegen(graph)
    return graph, build_plan(graph, get_lowering)


@pytest.fixture(scope="module")
def conv_or_matmul(tmp_path_factory):
    model = conv_or_matmul_model()
    path = str(tmp_path_factory.mktemp("ifbr") / "branchy.so")
    return model, compiler.compile(model, path)


def test_large_branches_run_only_the_taken_branch(conv_or_matmul):
    model, result = conv_or_matmul
    assert result.num_kernels >= 2 * LAYERS + 2
    assert result.num_unique_kernels <= 5  # one Conv+Relu and one MatMul+Tanh kernel, reused per layer
    lib = load(result.library, num_threads=1, profile=True)
    x = np.random.default_rng(1).standard_normal(SHAPE).astype(np.float32)
    ran = {}
    for cond in (True, False, True):
        _check(lib, model, {"cond": np.array(cond), "x": x})
        profile = lib.profile()
        for op in ("Conv", "MatMul"):
            counts = {c.calls for c in profile.calls if c.op_types[0] == op}
            assert len(counts) == 1, f"every {op} call ran equally often: {counts}"
            ran[op] = counts.pop()
        assert {c.calls for c in profile.calls if c.op_types[0] in ("Sigmoid", "Add")} == {profile.runs}
        trace = chrome_trace([profile])
        traced = {e["args"]["ops"][0] for e in trace["traceEvents"] if e.get("cat") == "Node"}
        assert ("Conv" in traced) == cond and ("MatMul" in traced) != cond  # the latest run only
    assert ran == {"Conv": 2, "MatMul": 1}
    per_call = {c.op_types[0]: c.flops for c in profile.calls}
    assert profile.flops_per_run() * 3 == sum(c.flops * c.calls for c in profile.calls)
    assert per_call["Conv"] > 0 and per_call["MatMul"] > 0


def test_branches_share_arena_bytes_and_write_results_in_place():
    graph, plan = _plan(conv_or_matmul_model())
    (step,) = [s for s in plan.steps if isinstance(s, IfStep)]
    assert step.node == "branchy" and len(step.then.steps) == LAYERS and len(step.orelse.steps) == LAYERS
    assert not step.then.copies and not step.orelse.copies  # the last kernel of each branch writes z
    for block in (step.then, step.orelse):
        (last,) = plan.calls[block.steps[-1]].outputs
        assert plan.buffers[last].storage == plan.buffers[step.results[0]].storage
    memory = plan_memory(plan)

    def extents(block):
        out = set()
        for i in block.steps:
            for b in plan.calls[i].outputs:
                s = plan.buffers[b].storage
                out.add((memory.offsets[s], memory.offsets[s] + plan.buffers[b].nbytes))
        return out

    then_bytes, else_bytes = extents(step.then), extents(step.orelse)
    assert any(a < d and c < b for a, b in then_bytes for c, d in else_bytes), "no arena bytes shared"
    layer = 4 * 8 * 8 * 4
    assert memory.arena_bytes <= 5 * layer  # x, s, z and two temporaries, whichever branch runs
    conv = plan.calls[step.then.steps[0]].flops
    matmul = plan.calls[step.orelse.steps[0]].flops
    outside = sum(plan.calls[i].flops for i in plan.steps if not isinstance(i, IfStep))
    assert count_flops(plan) == outside + LAYERS * max(conv, matmul)


def test_computed_condition_and_copied_results(tmp_path):
    model = sample_rate_model()
    graph, plan = _plan(model)
    (step,) = [s for s in plan.steps if isinstance(s, IfStep)]
    assert plan.buffers[step.cond].dtype == np.bool_  # Greater's result, computed at run time
    assert len(step.then.copies) == 1 and len(step.orelse.copies) == 1  # x and the constant are copied
    lib = load(compiler.compile(model, str(tmp_path / "rate.so")).library, num_threads=1)
    x = np.linspace(0.1, 2.0, 16, dtype=np.float32)
    for sr in (16000, 8000, 4000):
        _check(lib, model, {"sr": np.array(sr, np.int64), "x": x})


def test_nested_ifs(tmp_path):
    model = nested_model()
    graph, plan = _plan(model)
    (outer,) = [s for s in plan.steps if isinstance(s, IfStep)]
    assert [s.node for s in outer.then.steps if isinstance(s, IfStep)] == ["inner_if"]
    lib = load(compiler.compile(model, str(tmp_path / "nested.so")).library, num_threads=1, profile=True)
    x = np.linspace(-1.0, 1.0, 16, dtype=np.float32)
    for a in (True, False):
        for b in (True, False):
            _check(lib, model, {"a": np.array([a]), "b": np.array(b), "x": x})
    profile = lib.profile()
    runs_of = {c.op_types[-1]: c.calls for c in profile.calls}
    assert runs_of == {"Tanh": 1, "Exp": 1, "Sin": 2, "Cos": 2}


def test_branch_outputs_of_different_shapes_are_refused():
    graph = import_model(conv_or_matmul_model(else_shape=[1, 4, 4, 4]))
    with pytest.raises(CodegenError, match="different or non-static types") as info:
        prepare_for_codegen(graph)
    assert info.value.node == "branchy" and info.value.op == "If"


def test_cuda_refuses_branches_clearly():
    graph = import_model(sample_rate_model())
    prepare_for_codegen(graph)
    with pytest.raises(CodegenError, match="cuda cannot compile it yet") as info:
        build_plan(graph, get_lowering, target_name="cuda")
    assert info.value.node == "by_rate"


def test_cuda_prepares_ifs_as_selections():
    """CUDA's driver does not branch yet: its preparation selects an If of up to 64 nodes a branch,
    heavy ops included, so what compiled for CUDA before real branches still does."""
    graph = import_model(sample_rate_model())
    prepare_for_codegen(graph, target="cuda:sm_80")
    assert not [n for n in graph.walk() if n.op == "If"]
    build_plan(graph, get_lowering, target_name="cuda")


def test_a_problem_inside_a_branch_is_named_with_its_node():
    """``prepare-if-branches`` runs ``check-codegen-ready`` in each branch: its error names the inner node."""
    graph = compiler.parse_ir("""graph @main(%c: bool[], %M: i64[], %s0: f32[2]) {
  %z = If(%c) {else_branch = graph @else() {
    %e = Neg(%s0) : f32[2]
    return %e
  }, then_branch = graph @then() {
    %t = Constant() {value = dense<bool[] [true]>} : bool[]
    %s = Loop(%M, %t, %s0) {body = graph @body(%i: i64[], %k: bool[], %s_1: f32[2]) {
      %s_out = Neg(%s_1) : f32[2]
      return %k, %s_out
    }} : f32[2]
    %u = MatMul(%s, %s) : f32[]
    %v = Mul(%s, %u) : f32[2]
    return %v
  }} : f32[2]
  return %z
}""")
    with pytest.raises(CodegenError, match="trip count is not a compile-time constant") as info:
        prepare_for_codegen(graph, "O0")
    assert info.value.op == "Loop"
