"""Bounded resources: exact 64-bit sizes and a tensor-size limit at compile time, the interpreter's
loop and allocation caps, and the compile driver's verification (a graph that breaks an op's shape
contract never becomes a library).  Nothing here allocates a large tensor or builds a kernel."""

from __future__ import annotations

import os

import numpy as np
import pytest

from codegen.errors import CodegenError
from codegen.memory import plan_memory
from codegen.plan import build_plan
from codegen.sizes import check_graph_sizes
from compiler.cli import main, parse_bytes
from compiler.diagnostics import EmberError
from compiler.driver import compile_model
from compiler.ir.builder import Builder
from compiler.ir.core import Graph
from compiler.ir.interpreter import Interpreter, ResourceLimitError, interpret
from compiler.ir.parser import parse_ir
from compiler.ir.types import DType, TensorType

F32 = DType.FLOAT32


def _expand(shape, name="big_expand") -> Graph:
    g = Graph("main")
    b = Builder(g)
    x = b.param("x", TensorType(F32, [1]))
    s = b.constant(np.array(shape, np.int64), "shape")
    y = b.op("Expand", [x, s], name=name)
    y.name = "y"
    g.outputs = [y]
    return g


def test_a_size_that_wraps_64_bits_is_refused_naming_the_node(tmp_path):
    with pytest.raises(CodegenError, match="does not fit 64 bits") as info:
        compile_model(_expand([2**31, 2**31]), str(tmp_path / "m.so"))
    assert info.value.node == "big_expand" and info.value.op == "Expand"
    assert not (tmp_path / "m.so").exists()


def test_a_tensor_above_the_limit_is_refused(tmp_path):
    with pytest.raises(CodegenError, match="above the limit of 1048576 bytes") as info:
        compile_model(_expand([1 << 20]), str(tmp_path / "m.so"), max_tensor_bytes=1 << 20)
    assert info.value.node == "big_expand"
    with pytest.raises(CodegenError, match="above the limit of 17179869184 bytes"):  # the 16 GiB default
        check_graph_sizes(_expand([5, 1 << 30]))
    check_graph_sizes(_expand([5, 1 << 30]), max_tensor_bytes=32 << 30)  # raised: accepted


def test_ember_compile_takes_max_tensor_bytes(tmp_path, capsys):
    from compiler.ir.printer import print_ir

    path = tmp_path / "m.ir"
    path.write_text(print_ir(_expand([1 << 20])))
    rc = main(["compile", str(path), "-o", str(tmp_path / "m.so"), "--max-tensor-bytes", "1MiB", "-q"])
    assert rc != 0
    assert "above the limit of 1048576 bytes" in capsys.readouterr().err
    assert parse_bytes("16GiB") == 16 << 30 and parse_bytes("512") == 512
    with pytest.raises(ValueError):
        parse_bytes("-3G")


def _reduce(op, shape) -> Graph:
    g = Graph("main")
    b = Builder(g)
    x = b.param("x", TensorType(F32, shape))
    y = b.op(op, [x], {"keepdims": 0}, name="reduce")
    y.name = "y"
    g.outputs = [y]
    return g


def test_sizes_above_int32_are_exact_and_reductions_use_64_bit_loops():
    tvm = pytest.importorskip("tvm")
    from codegen.aot.emit_c import emit_entry
    from codegen.tvm.kernel import anchor_kind, spec_to_te
    from codegen.tvm.registry import get_lowering
    from codegen.tvm.schedule import apply_schedule

    n = 2**31 + 64
    plan = build_plan(_reduce("ReduceSum", [n]), get_lowering, max_tensor_bytes=1 << 40)
    assert plan.buffers[plan.inputs[0]].nbytes == 4 * n
    memory = plan_memory(plan)
    assert memory.arena_bytes >= 4 * n
    entry = emit_entry(plan, memory, {}, ["k0"], "m", 0, False)
    assert f"{4 * n}ULL" in entry and f"#define ARENA_BYTES {memory.arena_bytes}ULL" in entry
    placeholders, outputs = spec_to_te(plan.calls[0].spec, [])
    mod = tvm.IRModule({"main": tvm.te.create_prim_func(placeholders + outputs)})
    scheduled, _ = apply_schedule(mod, anchor_kind(plan.calls[0].spec), 8)
    assert f"range(T.int64({n}))" in scheduled.script()  # TVM widens a loop whose extent exceeds int32


def test_a_multi_dim_tensor_above_int32_elements_is_refused_cleanly_where_kernels_index_it_in_32_bits():
    from codegen.tvm.registry import get_lowering

    with pytest.raises(CodegenError, match="more than 2") as info:  # an injective op: 32-bit indices
        build_plan(_expand([2, 2**30 + 33]), get_lowering, max_tensor_bytes=1 << 40)
    assert "value 'y'" in str(info.value) and info.value.node == "big_expand"  # before any kernel is built
    build_plan(_reduce("ReduceMax", [2, 2**30 + 33]), get_lowering, max_tensor_bytes=1 << 40)  # 64-bit


RESHAPE_24_TO_5x5 = """graph @main(%x: f32[2,3,4]) {
  %s = Constant() {value = dense<i64[2] [5, 5]>} : i64[2]
  %y = Reshape(%x, %s) : f32[5,5]
  return %y
}"""


def test_a_graph_that_breaks_a_contract_never_compiles(tmp_path):
    graph = parse_ir(RESHAPE_24_TO_5x5, verify=False)
    with pytest.raises(EmberError, match="shape contract") as info:
        compile_model(graph, str(tmp_path / "m.so"))
    assert "fails verification before the graph pipeline" in str(info.value)
    assert not (tmp_path / "m.so").exists()


def test_a_graph_built_in_python_is_verified_before_compiling(tmp_path):
    g = Graph("main")
    b = Builder(g)
    x = b.param("x", TensorType(F32, [2, 3, 4]))
    s = b.constant(np.array([5, 5], np.int64), "s")
    y = b.node("Reshape", [x, s], result_types=[TensorType(F32, [5, 5])], name="bad_reshape").results[0]
    y.name = "y"
    g.outputs = [y]
    with pytest.raises(EmberError, match="bad_reshape"):
        compile_model(g, str(tmp_path / "m.so"))
    assert not (tmp_path / "m.so").exists()


# ---------------------------------------------------------------- interpreter bounds


def _loop(trip_count: bool, condition: bool = True) -> Graph:
    """``v0 + 1`` per iteration: ``m`` iterations (without a condition), or until the always-true
    condition ``c`` fails (without a trip count)."""
    params = ("%m: i64[], " if trip_count else "") + ("%c: bool[], " if condition else "")
    text = """graph @main(PARAMS%v0: f32[1]) {
  %v = Loop(TRIP, COND, %v0) {body = graph @body(%i: i64[], %ci: bool[], %vi: f32[1]) {
    %one = Constant() {value = dense<f32[1] [1.0]>} : f32[1]
    %vo = Add(%vi, %one) : f32[1]
    return %ci, %vo
  }} : f32[1]
  return %v
}"""
    text = text.replace("TRIP", "%m" if trip_count else "none").replace("COND", "%c" if condition else "none")
    g = parse_ir(text.replace("PARAMS", params))
    for node in g.nodes:
        node.name = "the_loop"
    return g


def test_a_loop_of_2_62_iterations_is_refused_at_once():
    g = _loop(True, condition=False)
    feeds = {"m": np.array(2**62, np.int64), "v0": np.zeros(1, np.float32)}
    assert interpret(g, dict(feeds, m=np.array(5, np.int64)))["v"][0] == 5
    with pytest.raises(ResourceLimitError, match="4611686018427387904 iterations") as info:
        interpret(g, feeds)
    assert isinstance(info.value, EmberError) and info.value.node == "the_loop" and info.value.op == "Loop"


def test_a_loop_without_a_trip_count_stops_at_the_cap(monkeypatch):
    feeds = {"c": np.array(True), "v0": np.zeros(1, np.float32)}
    with pytest.raises(ResourceLimitError, match="above the limit of 50"):
        Interpreter(max_loop_iterations=50).run_graph(_loop(False), list(feeds.values()))
    g = _loop(True, condition=False)
    feeds = {"m": np.array(2**62, np.int64), "v0": np.zeros(1, np.float32)}
    monkeypatch.setenv("EMBER_MAX_LOOP_ITERATIONS", "7")
    assert Interpreter().max_loop_iterations == 7
    assert interpret(g, dict(feeds, m=np.array(7, np.int64)))["v"][0] == 7
    with pytest.raises(ResourceLimitError, match="above the limit of 7"):
        interpret(g, dict(feeds, m=np.array(8, np.int64)))


def test_an_absurd_allocation_is_refused_before_the_kernel_runs():
    text = """graph @main(%x: f32[1], %s: i64[2]) {
  %y = Expand(%x, %s) : f32[?,?]
  return %y
}"""
    g = parse_ir(text)
    for node in g.nodes:
        node.name = "big"
    x = np.ones(1, np.float32)
    assert interpret(g, {"x": x, "s": np.array([2, 3])})["y"].shape == (2, 3)
    with pytest.raises(ResourceLimitError, match="4503599627370496 bytes") as info:  # 4 PiB, not allocated
        interpret(g, {"x": x, "s": np.array([2**25, 2**25])})
    assert info.value.node == "big" and info.value.op == "Expand"
    with pytest.raises(ResourceLimitError, match="above the limit of 100"):
        interpret(g, {"x": x, "s": np.array([5, 6])}, max_tensor_bytes=100)


def test_ember_run_takes_the_limits(tmp_path, capsys):
    g = _loop(True, condition=False)
    from compiler.ir.printer import print_ir

    model = tmp_path / "loop.ir"
    model.write_text(print_ir(g))
    for name, value in (("m", np.array(100, np.int64)), ("v0", np.zeros(1, np.float32))):
        np.save(tmp_path / f"{name}.npy", value)
    args = ["run", str(model), "-o", str(tmp_path / "out")]
    args += [f"--input={n}={tmp_path / (n + '.npy')}" for n in ("m", "v0")]
    assert main(args) == 0
    assert main(args + ["--max-loop-iterations", "10"]) != 0
    assert "above the limit of 10" in capsys.readouterr().err
    assert os.path.exists(tmp_path / "out")


def test_tile_and_resize_to_petabytes_are_refused_before_allocating():
    text = """graph @main(%x: f32[2,2], %r: i64[2], %s: f32[2]) {
  %t = Tile(%x, %r) : f32[?,?]
  %roi = Constant() {value = dense<f32[0] []>} : f32[0]
  %z = Resize(%x, %roi, %s) : f32[?,?]
  return %t, %z
}"""
    g = parse_ir(text)
    x = np.ones((2, 2), np.float32)
    small = {"x": x, "r": np.array([2, 3]), "s": np.array([2.0, 2.0], np.float32)}
    t, z = interpret(g, small).values()
    assert t.shape == (4, 6) and z.shape == (4, 4)
    with pytest.raises(ResourceLimitError, match="Tile"):
        interpret(g, dict(small, r=np.array([2**24, 2**24])))
    with pytest.raises(ResourceLimitError, match="Resize"):
        interpret(g, dict(small, s=np.array([2.0**24, 2.0**24], np.float32)))
