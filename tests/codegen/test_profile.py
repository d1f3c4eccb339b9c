"""The profiler: ``<prefix>_profile`` in the library, ``Model.profile()``, the table and Chrome trace of
``ember bench --profile``, all checked on one compiled convnet against the plan the compiler made."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess

import codegen_models as models
import numpy as np
import pytest
from compiled_checks import check

from codegen.plan import build_plan
from codegen.tvm.registry import get_lowering
from compiler.cli import main
from compiler.profiling import chrome_trace, format_profile
from compiler.runtime import RuntimeLoadError, load
from frontends.onnx.backend import EmberBackend

HERE = os.path.dirname(os.path.abspath(__file__))
RUNS = 5


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """The convnet compiled by the driver (checked against the interpreter), its plan, and an input."""
    out = tmp_path_factory.mktemp("profile")
    lib = str(out / "model.so")
    onnx_model = models.convnet()
    rep = EmberBackend.prepare(onnx_model, compile=True, library=lib)
    x = np.random.default_rng(3).standard_normal((1, 3, 32, 32)).astype(np.float32)
    check(rep, EmberBackend.prepare(onnx_model), [x], tol=1e-4)
    from codegen.target import parse_target

    # the graph the driver prepared, planned as it was: for the host's tiles (AVX2 packs a 24-channel
    # conv's weight in 8-channel blocks, AVX-512 pads it to 32 channels), whose packed bytes it reports
    plan = build_plan(rep.graph, get_lowering, schedule=parse_target("x86-64").schedule_params())
    return lib, plan, {"x": x}


def _profiled(lib, feeds, runs=RUNS, snapshots=False):
    model = load(lib, num_threads=1, profile=True)
    taken = []
    for _ in range(runs):
        model.run(feeds)
        if snapshots:
            taken.append(model.profile())
    profile = model.profile()
    model.close()
    return (profile, taken) if snapshots else profile


def test_every_call_of_the_plan_is_profiled_with_its_ops_and_nodes(compiled):
    lib, plan, feeds = compiled
    profile, snapshots = _profiled(lib, feeds, snapshots=True)
    assert profile.runs == RUNS and profile.threads == 1
    assert len(profile.calls) == len(plan.calls)
    for got, call in zip(profile.calls, plan.calls):
        assert got.op_types == tuple(op.op for op in call.spec.ops)
        assert got.node_names == tuple(call.node_names)
        assert got.flops == call.flops
        assert got.bytes == sum(plan.buffers[b].nbytes for b in call.inputs + call.outputs)
        assert re.fullmatch(r"ember_model_k\d+", got.kernel)
        assert got.calls == RUNS and got.seconds >= 0 and got.last_seconds >= 0
        assert 0 <= got.min_seconds <= got.seconds / RUNS <= got.seconds
    assert any(len(c.op_types) > 1 for c in profile.calls), "the convnet has fused calls"
    # the calls lie inside the run, one after another: their sum is at most the run's time, and the
    # run adds only the binding of each call's tensors (the best of the runs: a busy machine may
    # preempt the process between two calls)
    assert sum(c.seconds for c in profile.calls) <= profile.seconds * (1 + 1e-9)
    assert max(sum(c.last_seconds for c in s.calls) / s.last_run_seconds for s in snapshots) >= 0.5
    starts = [c.last_start for c in profile.calls]
    assert starts == sorted(starts) and starts[0] >= 0
    last = profile.calls[-1]
    assert last.last_start + last.last_seconds <= profile.last_run_seconds


def test_conv_and_gemm_flops_follow_the_formula(compiled):
    lib, _, feeds = compiled
    calls = {c.node_names[0]: c for c in _profiled(lib, feeds, runs=1).calls}
    # c2: 1x1 Conv 16 -> 24 channels on 16x16 (after the stride-2 c1), alone in its call (c2 has two users)
    assert calls["c2"].op_types == ("Conv",)
    assert calls["c2"].flops == 2 * (1 * 24 * 16 * 16) * (16 * 1 * 1)
    assert calls["c2"].bytes >= 4 * (16 * 16 * 16 + 24 * 16 * 16 + 24 * 16)
    # logits: Gemm [1, 24] x [24, 10]^T
    assert calls["logits"].op_types == ("Gemm",)
    assert calls["logits"].flops == 2 * 1 * 10 * 24


def test_profile_is_an_error_while_off_and_restarts_at_zero(compiled):
    lib, _, feeds = compiled
    with load(lib, num_threads=1) as model:
        model.run(feeds)
        with pytest.raises(RuntimeLoadError, match=r"code 8.*profiling is off"):
            model.profile()
        model.enable_profile()
        assert model.profile().runs == 0
        model.run(feeds)
        model.run(feeds)
        assert model.profile().runs == 2 and all(c.calls == 2 for c in model.profile().calls)
        model.enable_profile()  # restart
        assert model.profile().runs == 0 and all(c.calls == 0 and c.seconds == 0 for c in model.profile().calls)
        model.enable_profile(False)
        with pytest.raises(RuntimeLoadError, match="code 8"):
            model.profile()


def test_chrome_trace_is_valid_trace_event_format(compiled):
    lib, plan, feeds = compiled
    _, snapshots = _profiled(lib, feeds, runs=3, snapshots=True)
    trace = json.loads(json.dumps(chrome_trace(snapshots, name="convnet", pid=42)))
    events = trace["traceEvents"]
    complete = [e for e in events if e["ph"] == "X"]
    assert {e["ph"] for e in events} <= {"X", "M"}
    runs = [e for e in complete if e["cat"] == "Session"]
    nodes = [e for e in complete if e["cat"] == "Node"]
    assert len(runs) == 3 and len(nodes) == 3 * len(plan.calls)
    for e in complete:
        assert isinstance(e["name"], str) and e["pid"] == 42 and isinstance(e["tid"], int)
        assert isinstance(e["ts"], (int, float)) and isinstance(e["dur"], (int, float))
        assert e["ts"] >= 0 and e["dur"] >= 0
    for run, e in enumerate(runs):  # each call lies inside its run; runs follow each other
        inside = nodes[run * len(plan.calls) : (run + 1) * len(plan.calls)]
        assert all(e["ts"] <= n["ts"] and n["ts"] + n["dur"] <= e["ts"] + e["dur"] + 1e-3 for n in inside)
        assert [n["args"]["call"] for n in inside] == list(range(len(plan.calls)))
        if run:
            assert e["ts"] >= runs[run - 1]["ts"] + runs[run - 1]["dur"]
    first = nodes[0]["args"]
    assert first["ops"] == [op.op for op in plan.calls[0].spec.ops]
    assert first["nodes"] == plan.calls[0].node_names and first["flops"] == plan.calls[0].flops
    assert first["bytes"] > 0


def test_trace_events_have_the_fields_of_onnxruntime_profiles(compiled, tmp_path):
    """onnxruntime's profiler writes the same Session/Node "X" events: ours carry all its top-level fields."""
    ort = pytest.importorskip("onnxruntime")
    lib, _, feeds = compiled
    options = ort.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(tmp_path / "ort")
    session = ort.InferenceSession(models.convnet().SerializeToString(), options, providers=["CPUExecutionProvider"])
    session.run(None, feeds)
    with open(session.end_profiling()) as f:
        theirs = [e for e in json.load(f) if e.get("cat") == "Node"]
    _, snapshots = _profiled(lib, feeds, runs=1, snapshots=True)
    ours = [e for e in chrome_trace(snapshots)["traceEvents"] if e.get("cat") == "Node"]
    assert theirs and ours
    assert {e["ph"] for e in theirs} == {e["ph"] for e in ours} == {"X"}
    assert set(theirs[0]) <= set(ours[0])
    assert {e["args"]["op_name"] for e in ours} <= {node.op_type for node in models.convnet().graph.node}


def test_table_is_sorted_by_time_and_shows_peak_share(compiled):
    lib, plan, feeds = compiled
    profile = _profiled(lib, feeds)
    text = format_profile(profile, peak_gflops_per_core=100.0)
    rows = [line for line in text.splitlines() if re.match(r"\s+\d+\s+ember_model_k\d+", line)]
    assert len(rows) == len(plan.calls)
    totals = [float(row.split()[3]) for row in rows]
    assert totals == sorted(totals, reverse=True)
    top = profile.by_time()[0]
    gflops = top.flops * top.calls / top.seconds / 1e9
    assert f"{gflops:.1f}" in rows[0] and f"{gflops:.1f}%" in rows[0]  # peak 100 GFLOP/s: % equals GFLOP/s
    assert f"{top.ops} [{', '.join(top.node_names)}]" in rows[0]
    assert "peak 100 = 100 x 1" in text


def test_bench_profile_prints_the_table_and_writes_the_trace(compiled, tmp_path, capsys):
    lib, plan, _ = compiled
    trace = tmp_path / "trace.json"
    args = ["bench", lib, "-n", "3", "--instances", "1", "--threads", "1", "--profile", "--profile-json", str(trace)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "latency over 3 runs" in out and "profile: 3 runs, 1 thread(s)" in out
    rows = re.findall(r"^\s+(\d+)\s+ember_model_k(\d+) ", out, re.M)
    assert sorted(int(i) for i, _ in rows) == list(range(len(plan.calls)))  # every call, once
    assert {int(k) for _, k in rows} == set(range(len({c.spec for c in plan.calls})))  # every kernel
    events = json.loads(trace.read_text())["traceEvents"]
    assert sum(e.get("cat") == "Node" for e in events) == 3 * len(plan.calls)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_c_api_profile_calls(compiled, tmp_path):
    lib, plan, _ = compiled
    exe = str(tmp_path / "profile_driver")
    folder = os.path.dirname(lib)
    subprocess.run(
        ["gcc", "-O1", "-Wall", "-Werror", "-o", exe, os.path.join(HERE, "profile_driver.c"), f"-I{folder}", lib]
        + [f"-Wl,-rpath,{folder}"],
        check=True,
    )
    env = {k: v for k, v in os.environ.items() if k != "EMBER_PROFILE"}
    proc = subprocess.run([exe], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"calls {len(plan.calls)}"
    assert len(lines) == 1 + len(plan.calls)
    for i, (line, call) in enumerate(zip(lines[1:], plan.calls)):
        assert line.split(" ", 3)[1] == str(i)
        assert line.split(" ", 3)[3] == "+".join(op.op for op in call.spec.ops), line
    # EMBER_PROFILE=1 at create: destroy prints one line per call, from the same table
    assert "ember profile: 2 runs" in proc.stderr
    printed = [line for line in proc.stderr.splitlines() if re.match(r"\s+\d+\s+[\d.]+ ms", line)]
    assert len(printed) == len(plan.calls)
    assert math.isclose(sum(float(line.split("%")[0].split()[-1]) for line in printed), 100, abs_tol=0.5)
