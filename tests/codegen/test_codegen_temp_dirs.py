"""Compiling leaves no temporary folders behind: not on success, not on failure, not when a
compiled-conformance worker crashes. Each test points ``tempfile`` at its own ``tmp_path`` folder
and checks that the folder is empty afterwards."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import onnx
import pytest
from compiled_checks import conformance_runner
from onnx import TensorProto, helper

from codegen import CodegenError, compile_graph
from compiler import parse_ir

RELU_IR = """graph @main(%x: f32[2,3]) {
  %y = Relu(%x) : f32[2,3]
  return %y
}
"""


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """A folder that ``tempfile`` uses for this test (forked children inherit it)."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_compile_removes_its_build_folder(tmp_path, scratch):
    compile_graph(parse_ir(RELU_IR), str(tmp_path / "relu.so"))
    assert (tmp_path / "relu.so").exists()
    assert list(scratch.iterdir()) == []


def test_failed_kernel_build_removes_its_build_folder(tmp_path, scratch, monkeypatch):
    import codegen.tvm.backend as tvm_backend

    def broken(specs, target, build_dir, jobs, progress, tuning_db=None):
        assert os.path.dirname(build_dir) == str(scratch)
        raise CodegenError("kernel compilation failed: simulated")

    monkeypatch.setattr(tvm_backend, "compile_kernels", broken)
    with pytest.raises(CodegenError, match="simulated"):
        compile_graph(parse_ir(RELU_IR), str(tmp_path / "relu.so"))
    assert list(scratch.iterdir()) == []


def test_onnx_backend_prepare_compile_removes_its_folder(scratch):
    from frontends.onnx import backend

    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    rep = backend.prepare(onnx.ModelProto.FromString(model.SerializeToString()), compile=True)
    x = np.array([[-1, 2, -3], [4, -5, 6]], np.float32)
    np.testing.assert_array_equal(rep.run([x])[0], np.maximum(x, 0))
    assert list(scratch.iterdir()) == []


class _Case(int):
    """A stand-in conformance case: an index with a name."""

    @property
    def name(self) -> str:
        return f"case{int(self)}"


def test_conformance_worker_folders_are_removed_even_after_a_crash(scratch, monkeypatch):
    runner = conformance_runner("onnx_conformance_compiled_tmp")

    def leaky_case(case, backend=None):
        """Leaves a build folder behind like a compile killed half-way; case 1 kills its worker."""
        tempfile.mkdtemp(prefix="ember_build_")
        if case == 1:
            os._exit(3)
        return runner.CaseResult(case.name, "Relu", True)

    monkeypatch.setattr(runner, "run_compiled_case", leaky_case)
    monkeypatch.setattr(runner, "case_op", lambda case: "Relu")
    results = runner.run_cases([_Case(k) for k in range(4)], jobs=2)
    assert [r.ok for r in results] == [True, False, True, True]
    assert "WorkerCrashed: exit code 3" in results[1].reason
    assert list(scratch.iterdir()) == []
