"""``ember tune`` and ``ember compile --tuning-db`` (``compiler/tune.py``, ``codegen/tvm/tuning.py``).

One short MetaSchedule search (a MatMul + Relu kernel, 8 trials, kept even if slower: about 20 s,
most of it starting worker processes) makes the database the other tests read: the compiled
library takes the tuned schedule and still matches onnxruntime, a record for another CPU is not
used, and a directory that is not a database fails with a message naming ``ember tune``. The
tests time nothing: whether a schedule wins is measured by ``ember tune`` itself on the user's
machine.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
import tvm
import tvm_ffi
from onnx import TensorProto, helper, numpy_helper

from compiler.diagnostics import EmberError


def _matmul_relu(path: str) -> str:
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((64, 128)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Relu", ["m"], ["y"])],
        "mm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [32, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [32, 128])],
        [w],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """(model path, database path, what ``ember tune`` printed)."""
    import contextlib
    import io

    from compiler.cli import main

    work = tmp_path_factory.mktemp("tune")
    model = _matmul_relu(str(work / "mm.onnx"))
    db = str(work / "db")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(
            [
                "tune",
                model,
                "--db",
                db,
                "--trials",
                "8",
                "--kernels",
                "1",
                "--keep-slower",
                "--strategy",
                "replay-trace",
            ]
        )
    assert code == 0
    return model, db, out.getvalue()


def test_tune_reports_and_keeps_the_kernel(tuned):
    _, db, printed = tuned
    assert "ember_model_k0" in printed and "MatMul+Relu" in printed
    assert "kept" in printed and "1 of 1 kernel(s) kept" in printed
    assert sorted(os.listdir(db)) == ["database_tuning_record.json", "database_workload.json", "ember_kernels.json"]
    from codegen.target import parse_target
    from codegen.tvm.tuning import TuningDatabase, kernel_key

    database = TuningDatabase(db)
    assert len(database) == 1
    key = kernel_key(_only_spec(tuned[0]), parse_target(None).schedule_params())
    assert database.holds(key) and database.index[key]["ops"] == "MatMul+Relu"


def test_compile_takes_the_tuned_schedule_and_matches(tuned, tmp_path):
    import onnxruntime

    from compiler import compile_model
    from compiler.runtime import load

    model, db, _ = tuned
    with_db = compile_model(model, str(tmp_path / "tuned.so"), tuning_db=db)
    plain = compile_model(model, str(tmp_path / "plain.so"))
    assert with_db.stats["schedules"] == {"tuned": 1}
    assert "tuned" not in plain.stats["schedules"]
    x = np.random.default_rng(1).standard_normal((32, 64)).astype(np.float32)
    got = load(with_db.library).run({"x": x})["y"]
    want = onnxruntime.InferenceSession(model).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_tune_skips_a_kernel_already_in_the_database(tuned):
    from compiler import tune_model

    model, db, _ = tuned
    messages = []
    outcomes = tune_model(model, db, trials=8, kernels=1, progress=messages.append)
    assert outcomes == []
    assert any("already in the database" in m for m in messages)


def test_a_record_for_another_cpu_is_not_used(tuned):
    from codegen.target import parse_target
    from codegen.tvm.tuning import TuningDatabase, workload

    model, db, _ = tuned
    spec = _only_spec(model)
    target = parse_target(None)
    database = TuningDatabase(db)
    mod = workload(spec, target.schedule_params())
    here = tvm.target.Target(target.to_tvm())
    assert database.record(mod, here) is not None
    other = tvm.target.Target({**target.to_tvm(), "mcpu": "cascadelake" if target.mcpu != "cascadelake" else "znver4"})
    assert database.record(mod, other) is None
    assert database.scheduled(mod, other) is None


def _only_spec(model: str):
    from codegen.plan import build_plan
    from codegen.target import parse_target
    from codegen.tvm.registry import get_lowering
    from compiler.driver import load_graph, prepare_for_codegen

    target = parse_target(None)
    graph = prepare_for_codegen(load_graph(model, None), "O2", None, target)
    plan = build_plan(graph, get_lowering, target_name=target.kind, schedule=target.schedule_params())
    (spec,) = {call.spec for call in plan.calls}
    return spec


def test_a_directory_that_is_not_a_database_is_a_clear_error(tmp_path):
    from compiler import compile_model

    model = _matmul_relu(str(tmp_path / "mm.onnx"))
    with pytest.raises(EmberError, match=r"is not a tuning database.*ember tune"):
        compile_model(model, str(tmp_path / "m.so"), tuning_db=str(tmp_path / "nowhere"))


def test_workload_is_built_without_lets():
    """A SiLU epilogue binds its operand with a Let in Ember's kernel; the tuned workload has none
    (MetaSchedule's FLOP estimate has no case for one), and two builds of it are equal (the key)."""
    from onnx import helper as h
    from tvm import te

    from codegen.plan import build_plan
    from codegen.target import parse_target
    from codegen.tvm.kernel import spec_to_te
    from codegen.tvm.registry import get_lowering
    from codegen.tvm.tuning import workload
    from compiler.driver import load_graph, prepare_for_codegen

    graph = h.make_graph(
        [h.make_node("Sigmoid", ["x"], ["s"]), h.make_node("Mul", ["x", "s"], ["y"])],
        "silu",
        [h.make_tensor_value_info("x", TensorProto.FLOAT, [4, 64])],
        [h.make_tensor_value_info("y", TensorProto.FLOAT, [4, 64])],
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    target = parse_target(None)
    prepared = prepare_for_codegen(load_graph(model, None), "O2", None, target)
    plan = build_plan(prepared, get_lowering, target_name=target.kind, schedule=target.schedule_params())
    spec = plan.calls[0].spec
    placeholders, outputs = spec_to_te(spec, [], target.schedule_params())
    ember = tvm.IRModule({"main": te.create_prim_func(placeholders + outputs)})
    assert "T.Let" in ember.script() or "T.let" in ember.script()
    tuned = workload(spec, target.schedule_params())
    assert "T.Let" not in tuned.script() and "T.let" not in tuned.script()
    assert tvm_ffi.structural_equal(tuned, workload(spec, target.schedule_params()))


def test_schedules_that_compute_other_values_are_not_kept():
    """``_compare`` finds a kernel whose outputs differ (as a wrong tuned schedule would)."""
    from tvm import te

    from codegen.tvm.tuning import _compare

    def lib(factor):
        a = te.placeholder((256,), "float32", name="in0")
        b = te.compute((256,), lambda i: a[i] * factor, name="out")
        func = te.create_prim_func([a, b]).with_attr("global_symbol", "k")
        return tvm.IRModule({"main": func}), tvm.tirx.build(tvm.IRModule({"k": func}), "llvm")

    mod, twice = lib(2.0)
    _, thrice = lib(3.0)
    assert _compare(twice, twice, "k", mod, 1, rounds=1)[2]
    assert not _compare(twice, thrice, "k", mod, 1, rounds=1)[2]


def test_tuning_for_another_architecture_needs_an_rpc_tracker(tmp_path):
    from compiler import tune_model

    model = _matmul_relu(str(tmp_path / "mm.onnx"))
    with pytest.raises(EmberError, match=r"needs --rpc HOST:PORT:KEY"):
        tune_model(model, str(tmp_path / "db"), "aarch64")


def test_an_unknown_kernel_name_is_a_clear_error(tmp_path):
    from compiler import tune_model

    model = _matmul_relu(str(tmp_path / "mm.onnx"))
    with pytest.raises(EmberError, match=r"no kernel named ember_model_k7 .*ember_model_k0 to ember_model_k0"):
        tune_model(model, str(tmp_path / "db"), only=["ember_model_k7"])


def test_a_search_registers_only_the_cpu_tensor_intrinsics():
    """MetaSchedule's search imports ``tvm.s_tir.tensor_intrin`` (every target's intrinsics, about
    27 s here, CUDA's the most); Ember's ``_meta_schedule`` leaves it the CPU families, so a
    ``TuneContext`` finds x86's dot products registered and CUDA's module never imported (the
    package stays one, so another family still imports on request). In a fresh interpreter: this
    process may have imported either already."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from codegen.tvm.tuning import _meta_schedule\n"
        "import tvm\n"
        "from tvm.s_tir import TensorIntrin\n"
        "ms = _meta_schedule()\n"
        "ms.TuneContext(target=tvm.target.Target('llvm'))\n"
        "assert TensorIntrin.get('dot_16x4_vnni', allow_missing=True) is not None\n"
        "assert 'tvm.s_tir.tensor_intrin.cuda' not in sys.modules\n"
        "assert sys.modules['tvm.s_tir.tensor_intrin'].__path__  # a package: other families import\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]
