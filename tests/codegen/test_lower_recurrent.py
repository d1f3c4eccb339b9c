"""RNN, GRU and LSTM compiled as one kernel over the whole sequence (codegen/tvm/lower/recurrent.py).

Each case compiles a one-node model and compares the library with the interpreter (whose kernels,
``compiler.ops.kernels_recurrent``, are checked against onnxruntime in test_rnn_controlflow.py);
a few are compared with onnxruntime directly. Weights are initializers (prepacked at compile
time) unless a case makes them run-time inputs.
"""

from __future__ import annotations

import numpy as np
import pytest
from compiled_checks import check_against_interpreter, compiled_and_reference
from onnx import TensorProto, helper, numpy_helper

from codegen.tvm.lower.recurrent import whole_sequence_problem
from compiler.driver import compile_model
from frontends.onnx import import_model
from passes.check_codegen_ready import CheckCodegenReadyPass
from passes.unroll_recurrent import UnrollRecurrentPass

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
F, F64, I32 = TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.INT32


def recurrent_model(
    op,
    steps=5,
    batch=1,
    size=3,
    hidden=4,
    direction="forward",
    layout=0,
    lens=None,
    states=False,
    peepholes=False,
    runtime_weights=False,
    dtype=np.float32,
    outputs=None,
    **attrs,
):
    """A one-node model and its feeds. ``lens``: a list of per-batch lengths (a run-time input);
    ``states``: initial_h (and initial_c) as inputs; ``outputs``: the declared results to keep."""
    dirs, gates = (2 if direction == "bidirectional" else 1), GATES[op]
    elem = {np.float32: F, np.float64: F64, np.float16: TensorProto.FLOAT16}[dtype]
    rng = np.random.default_rng(steps * 7 + hidden + batch + len(attrs))
    x_shape = [batch, steps, size] if layout else [steps, batch, size]
    state = [batch, dirs, hidden] if layout else [dirs, batch, hidden]
    weights = {
        "W": rng.uniform(-0.6, 0.6, (dirs, gates * hidden, size)),
        "R": rng.uniform(-0.6, 0.6, (dirs, gates * hidden, hidden)),
        "B": rng.uniform(-0.5, 0.5, (dirs, 2 * gates * hidden)),
    }
    if peepholes:
        weights["P"] = rng.uniform(-0.5, 0.5, (dirs, 3 * hidden))
    feeds = {"X": rng.standard_normal(x_shape).astype(dtype)}
    inputs = [helper.make_tensor_value_info("X", elem, x_shape)]
    inits = []
    for name, value in weights.items():
        if runtime_weights:
            feeds[name] = value.astype(dtype)
            inputs.append(helper.make_tensor_value_info(name, elem, list(value.shape)))
        else:
            inits.append(numpy_helper.from_array(value.astype(dtype), name))
    names = ["X", "W", "R", "B", "", "", "", ""]
    if lens is not None:
        names[4] = "L"
        feeds["L"] = np.array(lens, np.int32)
        inputs.append(helper.make_tensor_value_info("L", I32, [batch]))
    if states:
        for k, name in enumerate(["h0", "c0"] if op == "LSTM" else ["h0"]):
            names[5 + k] = name
            feeds[name] = rng.standard_normal(state).astype(dtype)
            inputs.append(helper.make_tensor_value_info(name, elem, state))
    if peepholes:
        names[7] = "P"
    while names[-1] == "":
        names.pop()
    results = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    node = helper.make_node(op, names, results, hidden_size=hidden, direction=direction, layout=layout, **attrs)
    kept = [r for r in results if outputs is None or r in outputs]
    graph = helper.make_graph(
        [node], op.lower(), inputs, [helper.make_tensor_value_info(r, elem, None) for r in kept], initializer=inits
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)]), feeds


CASES = [
    # RNN
    ("RNN", dict()),  # batch 1, one direction: each step parallel over blocks of units
    ("RNN", dict(direction="bidirectional", batch=2, lens=[5, 2], states=True)),
    ("RNN", dict(direction="reverse", layout=1, batch=3, lens=[0, 5, 3], clip=0.4)),
    ("RNN", dict(hidden=20, activations=["LeakyRelu"], activation_alpha=[0.3])),
    ("RNN", dict(direction="bidirectional", activations=["Relu", "ThresholdedRelu"], activation_alpha=[0.1])),
    # GRU
    ("GRU", dict()),
    ("GRU", dict(hidden=32, direction="bidirectional", batch=2, lens=[3, 5], states=True, layout=1)),
    ("GRU", dict(linear_before_reset=1, direction="reverse", lens=[4], clip=1.5)),
    ("GRU", dict(linear_before_reset=1, direction="bidirectional", batch=2, states=True, hidden=5)),
    ("GRU", dict(activations=["HardSigmoid", "Softsign"], activation_alpha=[0.3], activation_beta=[0.6])),
    # LSTM
    ("LSTM", dict()),
    ("LSTM", dict(direction="bidirectional", batch=2, lens=[2, 5], states=True, peepholes=True)),
    ("LSTM", dict(direction="reverse", layout=1, batch=2, lens=[5, 0], states=True, hidden=24)),
    ("LSTM", dict(input_forget=1, clip=0.9, peepholes=True, hidden=16)),
    (
        "LSTM",
        dict(activations=["Sigmoid", "ScaledTanh", "Affine"], activation_alpha=[0.8, 0.5], activation_beta=[1.2, 0.1]),
    ),
    ("LSTM", dict(activations=["Elu", "Softplus", "Tanh"], activation_alpha=[0.7], batch=3, size=7)),
    ("LSTM", dict(direction="bidirectional", runtime_weights=True, peepholes=True, lens=[3], states=True)),
    ("LSTM", dict(batch=2, outputs=["Y_h"])),  # only Y_h used
    ("GRU", dict(dtype=np.float64, direction="bidirectional", states=True)),
    # one recurrence with enough work per step (STEP_PARALLEL_MIN_MACS): each step a parallel loop
    ("LSTM", dict(hidden=128, steps=3, size=8, states=True, peepholes=True)),
    ("GRU", dict(hidden=160, steps=3, size=8, lens=[2], direction="reverse")),
    ("GRU", dict(hidden=160, steps=3, size=8, linear_before_reset=1, states=True)),
]


@pytest.mark.parametrize("op,kw", CASES, ids=[f"{op}-{i}" for i, (op, _) in enumerate(CASES)])
def test_compiled_matches_interpreter(op, kw):
    model, feeds = recurrent_model(op, **kw)
    check_against_interpreter(model, feeds, rtol=2e-5, atol=2e-5)


def random_configuration(seed: int) -> tuple[str, dict]:
    """A random cell: op, sizes (hidden sizes that divide 16, 8 or nothing), direction, layout,
    optional operands, clip, GRU's linear_before_reset or LSTM's input_forget and peepholes."""
    rng = np.random.default_rng(seed)
    op = str(rng.choice(["RNN", "GRU", "LSTM"]))
    batch = int(rng.integers(1, 4))
    kw = dict(
        steps=int(rng.integers(1, 7)),
        batch=batch,
        size=int(rng.integers(1, 6)),
        hidden=int(rng.choice([1, 3, 8, 16, 20])),
        direction=str(rng.choice(["forward", "reverse", "bidirectional"])),
        layout=int(rng.integers(0, 2)),
        states=bool(rng.integers(0, 2)),
        runtime_weights=bool(rng.integers(0, 2)),
    )
    if rng.integers(0, 2):
        kw["lens"] = [int(v) for v in rng.integers(0, kw["steps"] + 1, batch)]
    if rng.integers(0, 2):
        kw["clip"] = 0.7
    if op == "GRU" and rng.integers(0, 2):
        kw["linear_before_reset"] = 1
    if op == "LSTM":
        kw["peepholes"] = bool(rng.integers(0, 2))
        if rng.integers(0, 2):
            kw["input_forget"] = 1
    return op, kw


@pytest.mark.parametrize("seed", range(8))
def test_random_configurations_match_interpreter(seed):
    op, kw = random_configuration(seed)
    print(f"seed {seed}: {op} {kw}")
    model, feeds = recurrent_model(op, **kw)
    check_against_interpreter(model, feeds, rtol=2e-5, atol=2e-5)


def test_zero_length_entries_keep_the_initial_state():
    """An entry of length 0: Y is all zeros and Y_h/Y_c are its initial states."""
    model, feeds = recurrent_model("LSTM", batch=2, lens=[0, 3], states=True, direction="bidirectional")
    rep, _ = compiled_and_reference(model)
    y, y_h, y_c = rep.run(feeds)
    assert np.all(y[:, :, 0] == 0) and np.all(y[3:, :, 1] == 0) and np.any(y[:3, :, 1] != 0)
    np.testing.assert_array_equal(y_h[:, 0], feeds["h0"][:, 0])
    np.testing.assert_array_equal(y_c[:, 0], feeds["c0"][:, 0])


def run_ort(model, feeds):
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


@pytest.mark.parametrize(
    "op,kw",
    [
        ("LSTM", dict(direction="bidirectional", batch=2, lens=[6, 3], states=True, steps=6, hidden=16, size=8)),
        ("GRU", dict(direction="reverse", steps=6, hidden=16, linear_before_reset=1)),
        ("GRU", dict(steps=6, hidden=8, batch=2)),
    ],
)
def test_compiled_matches_onnxruntime(op, kw):
    model, feeds = recurrent_model(op, **kw)
    rep, _ = compiled_and_reference(model)
    for got, want in zip(rep.run(feeds), run_ort(model, feeds)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_a_long_sequence_is_one_kernel_call(tmp_path):
    """120 steps: one kernel call for the LSTM, not several per step (the unrolled form)."""
    model, _ = recurrent_model("LSTM", steps=120, hidden=8, direction="bidirectional")
    result = compile_model(model, str(tmp_path / "lstm.so"))
    assert result.num_kernels == 1


def test_unroll_recurrent_keeps_ops_the_kernel_takes():
    graph = import_model(recurrent_model("GRU", steps=3)[0])
    (node,) = [n for n in graph.nodes if n.op == "GRU"]
    assert whole_sequence_problem(node) is None
    stats = UnrollRecurrentPass()(graph).statistics
    assert (stats["unrolled"], stats["kept"]) == (0, 1)
    CheckCodegenReadyPass()(graph)  # a kept op is ready for code generation
    assert UnrollRecurrentPass(force=True)(graph).statistics["unrolled"] == 1
    assert not any(n.op == "GRU" for n in graph.nodes)


def test_the_kernel_refuses_what_it_cannot_compute():
    """float16: the lowering says why, and unroll-recurrent writes the op out per step instead."""
    model, _ = recurrent_model("RNN", steps=2, dtype=np.float16)
    graph = import_model(model)
    (node,) = [n for n in graph.nodes if n.op == "RNN"]
    assert "float16" in whole_sequence_problem(node)
    assert UnrollRecurrentPass()(graph).statistics["unrolled"] == 1


def test_projection_block_is_the_targets_matmul_tile():
    """The input projection's register block follows the target's matmul tile: AVX2 6 rows x 16
    columns (12 of its 16 registers), AVX-512 8 x 32, NEON 6 x 16; narrower where the gate rows or
    the steps do not divide. The AVX-512 block on AVX2 (32 accumulators) spilled."""
    from codegen.target import parse_target
    from codegen.tvm.lower.recurrent import _gemm_rows, _panel_width

    avx2 = parse_target("x86-64:vector_bits=256").schedule_params()
    avx512 = parse_target("x86-64:vector_bits=512").schedule_params()
    neon = parse_target("aarch64").schedule_params()
    assert (_panel_width(1024, avx2), _gemm_rows(80, 16, avx2)) == (16, 5)  # the CRNN's 80 steps
    assert (_panel_width(1024, avx2), _gemm_rows(120, 16, avx2)) == (16, 6)
    assert (_panel_width(1024, avx512), _gemm_rows(80, 32, avx512)) == (32, 8)
    assert (_panel_width(1024, neon), _gemm_rows(120, 16, neon)) == (16, 6)
    assert _panel_width(12, avx2) == 4 and _gemm_rows(7, 16, avx2) == 1
    assert (_panel_width(1024), _gemm_rows(80, 32)) == (32, 8)  # no target: AVX-512's


@pytest.mark.parametrize("direction,steps", [("bidirectional", 80), ("forward", 30)])
def test_avx2_projection_blocks_match_interpreter(direction, steps):
    """Compiled for AVX2 (5 x 16 and 6 x 16 blocks here), with the constant W packed into 16-column
    panels, the LSTM matches the interpreter."""
    model, feeds = recurrent_model("LSTM", steps=steps, size=40, hidden=32, direction=direction)
    check_against_interpreter(model, feeds, rtol=1e-5, atol=1e-5, target="x86-64:vector_bits=256")
