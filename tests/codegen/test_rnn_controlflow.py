"""Recurrent ops and control flow rewritten into straight-line code before code generation.

RNN/GRU/LSTM become per-step primitive ops (``unroll-recurrent``), Loops with constant
trip counts are unrolled (``unroll-loops``) and Ifs with a run-time condition become ``Where``
selections (``select-ifs``), all in the ``codegen-prepare`` pipeline.  The rewritten graphs are checked against
onnxruntime and the interpreter on the original graph (whose recurrent kernels are checked against
onnxruntime too); a few are compiled and run.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

import compiler
from codegen.errors import CodegenError
from compiler.driver import prepare_for_codegen as run_driver_prepare
from frontends.onnx import import_model
from passes.check_codegen_ready import CheckCodegenReadyPass
from passes.unroll_recurrent import MAX_STEPS, UnrollRecurrentPass, recurrent_problem

F, I32, I64, BOOL = TensorProto.FLOAT, TensorProto.INT32, TensorProto.INT64, TensorProto.BOOL
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def prepare_for_codegen(graph):
    """``codegen-prepare`` alone (``O0``: no graph optimisation), as every compile driver runs it."""
    return run_driver_prepare(graph, "O0")


def expand_recurrent(graph, strict: bool = True) -> int:
    """``unroll-recurrent`` (forced: also the ops code generation would run as one kernel, whose
    tests are tests/codegen/test_lower_recurrent.py); returns how many ops it wrote out.
    ``strict``: a recurrent op left raises ``check-codegen-ready``'s CodegenError."""
    count = UnrollRecurrentPass(force=True)(graph).statistics["unrolled"]
    if strict:
        CheckCodegenReadyPass()(graph)
    return count


def rnn_model(
    op,
    steps=3,
    batch=2,
    size=3,
    hidden=4,
    direction="forward",
    layout=0,
    optional=("B", "sequence_lens", "initial_h", "initial_c", "P"),
    **attrs,
):
    """A one-node recurrent model whose every operand is a run-time input; returns (model, feeds)."""
    dirs = 2 if direction == "bidirectional" else 1
    gates, rng = GATES[op], np.random.default_rng(len(attrs) + steps + 7 * layout)
    x_shape = [batch, steps, size] if layout else [steps, batch, size]
    state = [batch, dirs, hidden] if layout else [dirs, batch, hidden]
    specs = {
        "X": (F, x_shape),
        "W": (F, [dirs, gates * hidden, size]),
        "R": (F, [dirs, gates * hidden, hidden]),
        "B": (F, [dirs, 2 * gates * hidden]),
        "sequence_lens": (I32, [batch]),
        "initial_h": (F, state),
        "initial_c": (F, state),
        "P": (F, [dirs, 3 * hidden]),
    }
    order = ["X", "W", "R", "B", "sequence_lens", "initial_h"] + (["initial_c", "P"] if op == "LSTM" else [])
    names = [n if n in ("X", "W", "R") or n in optional else "" for n in order]
    while names[-1] == "":
        names.pop()
    outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    node = helper.make_node(op, names, outs, hidden_size=hidden, direction=direction, layout=layout, **attrs)
    inputs = [helper.make_tensor_value_info(n, *specs[n]) for n in names if n]
    graph = helper.make_graph([node], op.lower(), inputs, [helper.make_tensor_value_info(o, F, None) for o in outs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])
    feeds = {}
    for n in filter(None, names):
        dtype, shape = specs[n]
        feeds[n] = (
            rng.integers(1, steps + 1, shape).astype(np.int32)
            if dtype == I32
            else rng.standard_normal(shape).astype(np.float32)
        )
    return model, feeds


def run_rewritten(model, feeds):
    graph = import_model(model)
    assert expand_recurrent(graph) == 1
    assert not any(n.op in GATES for n in graph.walk())
    out = compiler.interpret(graph, feeds)
    return list(out.values()) if isinstance(out, dict) else list(out)


def run_original(model, feeds):
    out = compiler.interpret(import_model(model), feeds)
    return list(out.values()) if isinstance(out, dict) else list(out)


def run_ort(model, feeds):
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def assert_close(got, want, tol=1e-5):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert np.shape(g) == np.shape(w)
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)


ORT_CASES = [  # layout 0: onnxruntime is the reference
    ("RNN", {}),
    ("RNN", dict(direction="bidirectional", activations=["Relu", "LeakyRelu"], activation_alpha=[0.2])),
    ("RNN", dict(direction="reverse", clip=0.7, optional=("B",))),
    ("GRU", {}),
    ("GRU", dict(linear_before_reset=1, direction="reverse", clip=1.5)),
    ("GRU", dict(direction="bidirectional", optional=("initial_h",))),
    ("LSTM", {}),
    ("LSTM", dict(direction="bidirectional", steps=4)),
    (
        "LSTM",
        dict(
            input_forget=1,
            activations=["HardSigmoid", "Tanh", "Softsign"],
            activation_alpha=[0.3],
            activation_beta=[0.4],
        ),
    ),
    ("LSTM", dict(direction="reverse", optional=("B", "P"))),
]


@pytest.mark.parametrize("op,kw", ORT_CASES, ids=[f"{op}-{i}" for i, (op, _) in enumerate(ORT_CASES)])
def test_rewrite_matches_onnxruntime(op, kw):
    model, feeds = rnn_model(op, **kw)
    assert_close(run_rewritten(model, feeds), run_ort(model, feeds))


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_batch_first_layout_matches_interpreter(op, direction):
    model, feeds = rnn_model(op, layout=1, direction=direction, optional=("B", "initial_h", "initial_c"))
    assert_close(run_rewritten(model, feeds), run_original(model, feeds))


@st.composite
def random_cells(draw):
    """(op, layout, rnn_model keywords) of a random cell: direction, sizes, optional inputs, clip and
    GRU's linear_before_reset or LSTM's input_forget."""
    op = draw(st.sampled_from(["RNN", "GRU", "LSTM"]))
    attrs = {} if (clip := draw(st.sampled_from([None, 0.8]))) is None else {"clip": clip}
    if draw(st.booleans()) and op != "RNN":
        attrs["linear_before_reset" if op == "GRU" else "input_forget"] = 1
    optional = draw(st.sets(st.sampled_from(["B", "sequence_lens", "initial_h", "initial_c", "P"])))
    kw = dict(
        steps=draw(st.integers(1, 4)),
        batch=draw(st.integers(1, 3)),
        direction=draw(st.sampled_from(["forward", "reverse", "bidirectional"])),
        optional=tuple(sorted(optional)),
        **attrs,
    )
    return op, draw(st.sampled_from([0, 1])), kw


@settings(max_examples=60, deadline=None)
@given(cell=random_cells())
def test_rewrite_agrees_on_random_configurations(cell):
    """Random cells: the rewritten graph agrees with onnxruntime."""
    op, layout, kw = cell
    model, feeds = rnn_model(op, layout=layout, **kw)
    assert_close(run_rewritten(model, feeds), run_ort_any_layout(op, layout, kw, feeds))


def run_ort_any_layout(op, layout, kw, feeds):
    """onnxruntime's outputs; batch-first (layout 1) through the layout-0 model on transposed data."""
    if layout == 0:
        return run_ort(rnn_model(op, **kw)[0], feeds)
    swap = {"X", "initial_h", "initial_c"}
    feeds0 = {k: v.transpose(1, 0, 2) if k in swap else v for k, v in feeds.items()}
    y, *states = run_ort(rnn_model(op, layout=0, **kw)[0], feeds0)
    return [y.transpose(2, 0, 1, 3)] + [s.transpose(1, 0, 2) for s in states]


@pytest.mark.parametrize("op,kw", ORT_CASES, ids=[f"{op}-{i}" for i, (op, _) in enumerate(ORT_CASES)])
def test_interpreter_matches_onnxruntime(op, kw):
    """The interpreter's own recurrent kernels (onnx.reference ignores sequence_lens, clip and
    activation alpha/beta) agree with onnxruntime."""
    model, feeds = rnn_model(op, **kw)
    assert_close(run_original(model, feeds), run_ort(model, feeds))


@settings(max_examples=40, deadline=None)
@given(cell=random_cells())
def test_interpreter_agrees_on_random_configurations(cell):
    op, layout, kw = cell
    model, feeds = rnn_model(op, layout=layout, **kw)
    assert_close(run_original(model, feeds), run_ort_any_layout(op, layout, kw, feeds))


def test_constant_full_sequence_lens_needs_no_masks():
    model, feeds = rnn_model("GRU", optional=("sequence_lens",))
    graph = import_model(model)
    lens = graph.params[3]
    from compiler.ir.builder import Builder

    const = Builder(graph, before=graph.first).constant(np.full(2, 3, np.int32))
    lens.replace_all_uses_with(const)
    expand_recurrent(graph)
    assert not any(n.op == "Where" for n in graph.walk())


def test_static_sequence_length_is_required():
    model, feeds = rnn_model("LSTM", steps=MAX_STEPS + 1, batch=1, size=1, hidden=1, optional=())
    graph = import_model(model)
    (lstm,) = [n for n in graph.nodes if n.op == "LSTM"]
    assert "time steps" in recurrent_problem(lstm)
    assert expand_recurrent(graph) == 0  # too long to write out; code generation runs it as one kernel
    model = rnn_model("RNN", optional=())[0]
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "T"
    with pytest.raises(CodegenError, match="sequence length must be static"):
        expand_recurrent(import_model(model))
    graph = import_model(model)
    assert expand_recurrent(graph, strict=False) == 0  # left for shape inference to make static
    with pytest.raises(CodegenError, match="RNN.*sequence length must be static"):
        prepare_for_codegen(graph)


def test_rewrite_hoists_the_input_projection():
    """One MatMul with X for all steps; per step one Gemm H.R^T + x_t."""
    model, _ = rnn_model("LSTM", steps=5, optional=())
    graph = import_model(model)
    expand_recurrent(graph)
    ops = [n.op for n in graph.walk()]
    assert ops.count("MatMul") == 1 and ops.count("Gemm") == 5


# compiled ---------------------------------------------------------------------------------------


def compiled(model):
    from frontends.onnx.backend import EmberBackend

    return EmberBackend.prepare(model, compile=True)


@pytest.mark.parametrize(
    "op,kw",
    [
        ("LSTM", dict(direction="bidirectional")),
        ("RNN", dict(steps=70, batch=1, size=2, hidden=2)),  # Y gathers more steps than a kernel call's buffers
        ("GRU", dict(linear_before_reset=1, layout=0, clip=2.0)),
    ],
)
def test_compiled_matches_onnxruntime(op, kw):
    model, feeds = rnn_model(op, **kw)
    rep = compiled(model)
    want = run_ort(model, feeds)
    assert_close(rep.run(feeds), want, tol=1e-4)
    feeds["sequence_lens"] = np.ones_like(feeds["sequence_lens"])  # a run-time input: other lengths
    assert_close(rep.run(feeds), run_ort(model, feeds), tol=1e-4)


def loop_model(trips_input=False, cond_input=False, scan_shape=None):
    """Loop(M=4): s = s + x * i, scanning out s each step (``ys`` declared with ``scan_shape``)."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["c"], ["c_out"]),
            helper.make_node("Cast", ["i"], ["fi"], to=F),
            helper.make_node("Mul", ["x", "fi"], ["xi"]),
            helper.make_node("Add", ["s", "xi"], ["s_out"]),
            helper.make_node("Identity", ["s_out"], ["scan"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", I64, []),
            helper.make_tensor_value_info("c", BOOL, []),
            helper.make_tensor_value_info("s", F, [2]),
        ],
        [
            helper.make_tensor_value_info("c_out", BOOL, []),
            helper.make_tensor_value_info("s_out", F, [2]),
            helper.make_tensor_value_info("scan", F, [2]),
        ],
    )
    nodes = [helper.make_node("Loop", ["M", "cond", "s0"], ["s", "ys"], body=body)]
    inits, inputs = [], [helper.make_tensor_value_info("s0", F, [2]), helper.make_tensor_value_info("x", F, [2])]
    for name, is_input, dtype, value in (("M", trips_input, I64, 4), ("cond", cond_input, BOOL, True)):
        if is_input:
            inputs.append(helper.make_tensor_value_info(name, dtype, []))
        else:
            inits.append(helper.make_tensor(name, dtype, [], [value]))
    graph = helper.make_graph(
        nodes,
        "loop",
        inputs,
        [helper.make_tensor_value_info("s", F, [2]), helper.make_tensor_value_info("ys", F, scan_shape)],
        initializer=inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])


def test_loop_with_constant_trip_count_is_unrolled():
    model = loop_model()
    feeds = {"s0": np.array([1, 2], np.float32), "x": np.array([0.5, -1], np.float32)}
    graph = import_model(model)
    want = run_original(model, feeds)
    prepare_for_codegen(graph)
    assert not any(n.op == "Loop" for n in graph.walk())
    out = compiler.interpret(graph, feeds)
    assert_close(list(out.values()) if isinstance(out, dict) else list(out), want)
    assert want[1].shape == (4, 2)
    assert_close(compiled(model).run(feeds), want)


def test_loop_with_run_time_trip_count_is_refused():
    graph = import_model(loop_model(trips_input=True))
    with pytest.raises(CodegenError, match="Loop.*trip count is not a compile-time constant"):
        prepare_for_codegen(graph)


def test_loop_with_run_time_trip_count_and_declared_scan_length_is_checked_at_run_time():
    """The declared scan length fixes the iterations written out; another trip count fails the run."""
    from compiler.runtime import RuntimeLoadError

    model = loop_model(trips_input=True, scan_shape=[4, 2])
    feeds = {"s0": np.array([1, 2], np.float32), "x": np.array([0.5, -1], np.float32), "M": np.array(4, np.int64)}
    graph = import_model(model)
    prepare_for_codegen(graph)
    assert not any(n.op == "Loop" for n in graph.walk())
    assert sum(n.op == "ember.CheckCount" for n in graph.walk()) == 2
    want = run_original(model, feeds)
    assert_close(list(compiler.interpret(graph, feeds).values()), want)
    rep = compiled(model)
    assert_close(rep.run(feeds), want)
    with pytest.raises(RuntimeLoadError, match="trip count"):
        rep.run({**feeds, "M": np.array(3, np.int64)})


def if_model(else_op="Neg", else_shape=(2, 3)):
    """If(cond): then x * 2 + y, else else_op(x) (of else_shape)."""
    then = helper.make_graph(
        [
            helper.make_node("Constant", [], ["two"], value=helper.make_tensor("t", F, [], [2.0])),
            helper.make_node("Mul", ["x", "two"], ["x2"]),
            helper.make_node("Add", ["x2", "y"], ["out_t"]),
        ],
        "then",
        [],
        [helper.make_tensor_value_info("out_t", F, [2, 3])],
    )
    other = [helper.make_node(else_op, ["x"], ["out_e"])]
    if else_shape != (2, 3):
        other = [helper.make_node("ReduceSum", ["x"], ["out_e"], keepdims=0)]
    els = helper.make_graph(other, "else", [], [helper.make_tensor_value_info("out_e", F, list(else_shape))])
    node = helper.make_node("If", ["cond"], ["z"], then_branch=then, else_branch=els)
    graph = helper.make_graph(
        [node],
        "if",
        [
            helper.make_tensor_value_info("cond", BOOL, []),
            helper.make_tensor_value_info("x", F, [2, 3]),
            helper.make_tensor_value_info("y", F, [2, 3]),
        ],
        [helper.make_tensor_value_info("z", F, None)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_if_with_run_time_condition_selects_with_where():
    model = if_model()
    x, y = np.arange(6, dtype=np.float32).reshape(2, 3), np.full((2, 3), 0.5, np.float32)
    graph = import_model(model)
    prepare_for_codegen(graph)
    assert [n.op for n in graph.walk() if n.op in ("If", "Where")] == ["Where"]
    rep = compiled(model)
    for cond in (True, False):
        feeds = {"cond": np.array(cond), "x": x, "y": y}
        want = run_original(model, feeds)
        out = compiler.interpret(graph, feeds)
        assert_close(list(out.values()) if isinstance(out, dict) else list(out), want)
        assert_close(rep.run(feeds), want)


def test_if_with_branches_of_different_shapes_is_refused():
    graph = import_model(if_model(else_shape=()))
    with pytest.raises(CodegenError, match="If.*different or non-static types"):
        prepare_for_codegen(graph)


def test_if_branches_of_one_element_count_take_the_if_shape():
    """then gives f32[1], else f32[]: with the If's result typed f32[1], both are reshaped to it."""
    then = helper.make_graph(
        [helper.make_node("Unsqueeze", ["x", "zero"], ["t"])], "then", [], [helper.make_tensor_value_info("t", F, [1])]
    )
    els = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["e"])], "else", [], [helper.make_tensor_value_info("e", F, [])]
    )
    node = helper.make_node("If", ["cond"], ["z"], then_branch=then, else_branch=els)
    graph = helper.make_graph(
        [node],
        "if",
        [helper.make_tensor_value_info("cond", BOOL, [1]), helper.make_tensor_value_info("x", F, [])],
        [helper.make_tensor_value_info("z", F, [1])],
        initializer=[helper.make_tensor("zero", I64, [1], [0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    ir = import_model(model)
    if ir.outputs[0].type.shape != (1,):
        pytest.skip("the importer does not keep the If's declared result shape")
    prepare_for_codegen(ir)
    for cond in (True, False):
        feeds = {"cond": np.array([cond]), "x": np.array(1.5, np.float32)}
        out = compiler.interpret(ir, feeds)
        got = list(out.values()) if isinstance(out, dict) else list(out)
        np.testing.assert_allclose(got[0], [1.5 if cond else -1.5])


def while_model():
    """Loop(M=6, cond): s = s + x while sum(s) < limit (cond and limit run-time inputs)."""
    body = helper.make_graph(
        [
            helper.make_node("Add", ["s", "x"], ["s_out"]),
            helper.make_node("ReduceSum", ["s_out"], ["total"], keepdims=0),
            helper.make_node("Less", ["total", "limit"], ["c_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", I64, []),
            helper.make_tensor_value_info("c", BOOL, []),
            helper.make_tensor_value_info("s", F, [2]),
        ],
        [helper.make_tensor_value_info("c_out", BOOL, []), helper.make_tensor_value_info("s_out", F, [2])],
    )
    graph = helper.make_graph(
        [helper.make_node("Loop", ["M", "cond", "s0"], ["s"], body=body)],
        "while",
        [
            helper.make_tensor_value_info("cond", BOOL, []),
            helper.make_tensor_value_info("s0", F, [2]),
            helper.make_tensor_value_info("x", F, [2]),
            helper.make_tensor_value_info("limit", F, []),
        ],
        [helper.make_tensor_value_info("s", F, [2])],
        initializer=[helper.make_tensor("M", I64, [], [6])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])


def test_loop_with_run_time_condition_masks_the_remaining_iterations():
    model = while_model()
    graph = import_model(model)
    prepare_for_codegen(graph)
    assert not any(n.op == "Loop" for n in graph.walk())
    rep = compiled(model)
    for cond, limit in ((True, 3.0), (True, 100.0), (False, 100.0), (True, -1.0)):
        feeds = {
            "cond": np.array(cond),
            "s0": np.array([1, 0], np.float32),
            "x": np.array([0.5, 1], np.float32),
            "limit": np.array(limit, np.float32),
        }
        want = run_original(model, feeds)
        out = compiler.interpret(graph, feeds)
        assert_close(list(out.values()) if isinstance(out, dict) else list(out), want)
        assert_close(rep.run(feeds), want)


def test_loop_with_run_time_condition_and_scan_outputs_is_refused():
    graph = import_model(loop_model(cond_input=True))
    with pytest.raises(CodegenError, match="scan outputs' length would depend on it"):
        prepare_for_codegen(graph)


def test_code_that_could_fail_when_not_taken_runs_as_a_real_branch():
    """A Gather with a run-time index in an If branch could fail when the branch is not taken: it is
    not selected with Where but kept as a real branch, which runs only when taken."""
    then = helper.make_graph(
        [helper.make_node("Gather", ["x", "k"], ["t"])], "then", [], [helper.make_tensor_value_info("t", F, [])]
    )
    els = helper.make_graph(
        [helper.make_node("ReduceMax", ["x"], ["e"], keepdims=0)],
        "else",
        [],
        [helper.make_tensor_value_info("e", F, [])],
    )
    graph = helper.make_graph(
        [helper.make_node("If", ["cond"], ["z"], then_branch=then, else_branch=els)],
        "if",
        [
            helper.make_tensor_value_info("cond", BOOL, []),
            helper.make_tensor_value_info("x", F, [4]),
            helper.make_tensor_value_info("k", I64, []),
        ],
        [helper.make_tensor_value_info("z", F, [])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    ir = import_model(model)
    prepare_for_codegen(ir)
    assert [n.op for n in ir.nodes if n.op in ("If", "Where")] == ["If"]
    rep = compiled(model)
    x = np.array([3, -1, 5, 8], np.float32)
    for cond, k in ((True, 2), (False, 100)):  # index 100 is out of range, in the branch not taken
        feeds = {"cond": np.array(cond), "x": x, "k": np.array(k, np.int64)}
        assert_close(rep.run(feeds), [np.array(5 if cond else 8, np.float32)])


def test_ember_compile_writes_control_flow_out_too():
    """``ember compile`` prepares graphs as ``prepare(compile=True)`` does."""
    from codegen.cli import prepare_for_codegen as cli_prepare  # the driver's, re-exported

    graph = cli_prepare(import_model(if_model()), "O2")
    assert [n.op for n in graph.walk() if n.op in ("If", "Where")] == ["Where"]
    graph = cli_prepare(import_model(rnn_model("LSTM")[0]), "O2")
    assert [n.op for n in graph.walk() if n.op in GATES] == ["LSTM"]  # kept: one kernel over the sequence


def test_kernel_with_more_than_64_buffers_runs():
    """A 100-input Concat: the C entry point sizes its kernel-argument arrays for the largest call
    (a fixed 64 overflowed the stack)."""
    n = 100
    nodes = [helper.make_node("Neg", ["x"], [f"y{i}"]) for i in range(n)]
    nodes.append(helper.make_node("Concat", [f"y{i}" for i in range(n)], ["z"], axis=0))
    graph = helper.make_graph(
        nodes, "wide", [helper.make_tensor_value_info("x", F, [1, 2])], [helper.make_tensor_value_info("z", F, None)]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = np.array([[1, -2]], np.float32)
    np.testing.assert_array_equal(compiled(model).run({"x": x})[0], np.repeat(-x, n, axis=0))


def test_loop_with_run_time_trip_count_and_a_passed_through_condition():
    """A body that returns its condition unchanged runs M iterations or none: c ? M : 0 must be N."""
    from compiler.runtime import RuntimeLoadError

    model = loop_model(trips_input=True, cond_input=True, scan_shape=[4, 2])
    feeds = {
        "s0": np.array([1, 2], np.float32),
        "x": np.array([0.5, -1], np.float32),
        "M": np.array(4, np.int64),
        "cond": np.array(True),
    }
    rep = compiled(model)
    assert_close(rep.run(feeds), run_original(model, feeds))
    for bad in ({"cond": np.array(False)}, {"M": np.array(5, np.int64)}):
        with pytest.raises(RuntimeLoadError, match="trip count"):
            rep.run({**feeds, **bad})
