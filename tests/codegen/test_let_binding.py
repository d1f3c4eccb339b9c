"""Binding a scalar read once in the functions that use it several times, and cutting chains of them
too deep to inline (``codegen/tvm/let_binding.py``)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from tvm import te, tirx

from codegen.tvm.let_binding import CHAIN_DEPTH_LIMIT, CHAIN_SIZE_LIMIT, bound, chain_measure, tensor_loads
from codegen.tvm.lower.vector_math import tanh_f32
from frontends.onnx.backend import EmberBackend

F = TensorProto.FLOAT


def test_a_read_is_bound_once_and_a_pure_expression_is_not():
    x = te.placeholder((8,), "float32", "x")
    read = bound(x[0], lambda m: m * m + m)
    assert isinstance(read, tirx.Let) and len(tensor_loads(read)) == 1
    v = tirx.Var("v", "float32")
    assert not isinstance(bound(v * v, lambda m: m + m), tirx.Let)


def test_bfloat16_reads_are_left_unbound():
    """TVM 0.27 legalises a Let of a widened bfloat16 read wrongly: those stay unbound."""
    x = te.placeholder((8,), "bfloat16", "x")
    assert not isinstance(bound(x[0].astype("float32"), lambda m: m * m), tirx.Let)


def _chain(length, fn):
    stages = [te.placeholder((64,), "float32", "x")]
    for k in range(length):
        stages.append(_stage(stages[-1], fn, f"f{k}"))
    return stages


def _stage(prev, fn, name):
    return te.compute(prev.shape, lambda i: fn(prev[i]), name=name)


def _leaky(v):
    return bound(v, lambda m: tirx.Select(m > tirx.const(0.0, "float32"), m, m * tirx.const(0.1, "float32")))


def test_a_chain_of_small_functions_is_cut_at_the_depth_limit():
    """Each stage binds its read (one Let): the stage whose read would bring ``CHAIN_DEPTH_LIMIT``
    Lets with it reads a materialised copy instead, and the depth starts again."""
    stages = _chain(CHAIN_DEPTH_LIMIT + 1, _leaky)
    depths = [chain_measure(t)[1] for t in stages]
    assert depths == [*range(CHAIN_DEPTH_LIMIT + 1), 1]
    cut = stages[-1].op.input_tensors[0]
    assert cut.op.name == f"f{CHAIN_DEPTH_LIMIT - 1}_cut" and chain_measure(cut) == (1, 0)
    assert cut.op.input_tensors[0].op.same_as(stages[-2].op)


def test_a_chain_of_large_functions_is_cut_at_the_size_limit():
    """tanh's expression is large: its chain is cut by size before the depth limit, and no stage
    reads a chain past either limit."""
    stages = _chain(8, tanh_f32)
    reads = [t.op.input_tensors[0] for t in stages[1:]]
    cuts = [r for r in reads if r.op.name.endswith("_cut")]
    assert cuts and all(chain_measure(r)[0] <= CHAIN_SIZE_LIMIT for r in reads)
    assert all(chain_measure(r)[1] < CHAIN_DEPTH_LIMIT for r in reads)
    assert all(chain_measure(c.op.input_tensors[0])[0] > CHAIN_SIZE_LIMIT for c in cuts)


def _chain_model(ops):
    """A model applying ``ops`` in turn to x: ONNX op names, or "Square" for Mul(v, v) (a reader
    of an inlined producer twice, whose bound variable then appears twice)."""
    nodes, prev = [], "x"
    for k, op in enumerate(ops):
        inputs = [prev, prev] if op == "Square" else [prev]
        nodes.append(helper.make_node("Mul" if op == "Square" else op, inputs, [f"y{k}"]))
        prev = f"y{k}"
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", F, [4096])],
        [helper.make_tensor_value_info(prev, F, [4096])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


@pytest.mark.parametrize(
    "ops",
    [
        ["Tanh", "Exp", "Tanh", "Exp", "Tanh", "Exp", "Tanh", "Exp", "Tanh", "Exp"],
        ["Softplus", "Tanh", "Square", "Log", "Softplus", "Elu", "Square", "Tanh"],
        ["LeakyRelu"] * 10,
    ],
    ids=["exp-tanh", "mixed", "leaky-relu"],
)
def test_long_chains_of_bound_functions_compile_and_match(ops):
    """Ten nested Tanh/Exp, or ten LeakyRelu, fused in one kernel: without the binding the kernel
    compiler ran for minutes (three Tanh: four; eight LeakyRelu: over 100 s) and, five deep,
    crashed out of memory; now each compiles in seconds and matches the interpreter."""
    x = np.linspace(-3, 3, 4096, dtype=np.float32)
    model = _chain_model(ops)
    got = EmberBackend.prepare(model, compile=True).run({"x": x})[0]
    want = EmberBackend.prepare(model).run({"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6)


def test_a_conv_followed_by_a_long_transcendental_chain_keeps_its_conv_schedule(tmp_path):
    """``fuse`` nests two transcendental ops in the conv's epilogue and gives the rest a kernel of
    its own: the conv kernel keeps the conv schedule (a materialised stage inside its epilogue sent
    it to the generic schedule), and the library matches the interpreter."""
    from compiler import compile as compile_model

    rng = np.random.default_rng(0)
    w = (rng.standard_normal((32, 16, 3, 3)) * 0.2).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])]
    prev = "c"
    for k, op in enumerate(["Tanh", "Exp", "Tanh", "Exp", "Tanh", "Exp"]):
        nodes.append(helper.make_node(op, [prev], [f"t{k}"]))
        prev = f"t{k}"
    graph = helper.make_graph(
        nodes,
        "conv_chain",
        [helper.make_tensor_value_info("x", F, [1, 16, 28, 28])],
        [helper.make_tensor_value_info(prev, F, [1, 32, 28, 28])],
        [helper.make_tensor("w", F, w.shape, w.ravel())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    result = compile_model(model, str(tmp_path / "conv_chain.so"))
    assert result.stats["schedules"] == {"conv": 1, "generic": 1}
    x = rng.standard_normal((1, 16, 28, 28)).astype(np.float32)
    got = EmberBackend.prepare(model, compile=True).run({"x": x})[0]
    want = EmberBackend.prepare(model).run({"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6)


def test_a_long_float16_chain_is_cut_too():
    """A float16 Tanh or Exp binds its plain read and widens the bound value, so a float16 chain is
    measured and cut as a float32 one is (ten nested Tanh compile; the interpreter's answer within
    a few float16 units)."""
    x = np.linspace(-3, 3, 4096).astype(np.float16)
    nodes, prev = [], "x"
    for k, op in enumerate(["Tanh", "Exp"] * 5):
        nodes.append(helper.make_node(op, [prev], [f"y{k}"]))
        prev = f"y{k}"
    half = TensorProto.FLOAT16
    graph = helper.make_graph(
        nodes,
        "half_chain",
        [helper.make_tensor_value_info("x", half, [4096])],
        [helper.make_tensor_value_info(prev, half, [4096])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    got = EmberBackend.prepare(model, compile=True).run({"x": x})[0].astype(np.float64)
    want = EmberBackend.prepare(model).run({"x": x})[0].astype(np.float64)
    np.testing.assert_allclose(got, want, rtol=4 * 2.0**-10, atol=1e-3)
