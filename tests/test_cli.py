"""The ``ember`` command line: help, version, ops, show, run and its error reporting."""

import subprocess
import sys

import numpy as np
import pytest

from compiler.cli import main

RELU_IR = """graph @main(%x: f32[2,3]) {
  %y = Relu(%x) : f32[2,3]
  return %y
}
"""


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "compiler.cli", *args], capture_output=True, text=True)


def test_help_lists_the_subcommands():
    result = run_cli("--help")
    assert result.returncode == 0
    for name in ("show", "ops", "run"):
        assert name in result.stdout


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("ember ")


def test_ops_lists_at_least_180_names(capsys):
    assert main(["ops"]) == 0
    names = capsys.readouterr().out.split()
    assert len(names) >= 180
    assert {"Conv", "Gemm", "Loop", "If", "Scan", "Softmax"} <= set(names)


def test_show_prints_the_ir(tmp_path, capsys):
    path = tmp_path / "relu.ir"
    path.write_text(RELU_IR)
    assert main(["show", str(path), "--verify"]) == 0
    assert capsys.readouterr().out == RELU_IR


def test_run_writes_npy_outputs(tmp_path):
    model = tmp_path / "relu.ir"
    model.write_text(RELU_IR)
    x = np.array([[-1, 2, -3], [4, -5, 6]], dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(model), "--input", f"x={tmp_path / 'x.npy'}", "-o", str(tmp_path / "out")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "y.npy"), np.maximum(x, 0))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("graph @main(%x: f32[2]) {\n  %y = Relu(%z) : f32[2]\n  return %y\n}\n", "undefined value %z"),
        ("graph @main(%x: f32[2]) {\n  %y = Relu(%x) : f32[3]\n  return %y\n}\n", "inference gives f32[2]"),
        ("graph @main(%x: f32[2]) {\n  %y = Relu(%x) \n", "expected ':'"),
    ],
)
def test_bad_ir_gives_one_clear_line(tmp_path, text, expected):
    path = tmp_path / "bad.ir"
    path.write_text(text)
    result = run_cli("show", str(path), "--verify")
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_file_is_an_error():
    result = run_cli("show", "/no/such/model.onnx")
    assert result.returncode == 1
    assert "no such file" in result.stderr


def test_bench_compiles_into_a_temp_dir_it_removes(tmp_path, monkeypatch, capsys):
    import tempfile

    model = tmp_path / "relu.ir"
    model.write_text(RELU_IR)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    assert main(["bench", str(model), "-n", "2", "--instances", "1", "--threads", "1"]) == 0
    assert "latency over 2 runs" in capsys.readouterr().out
    assert list(scratch.iterdir()) == [], "the compiled library's folder is removed"
