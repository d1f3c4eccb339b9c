"""Runs every ``.ir`` FileCheck test under ``tests/filecheck/`` with ``compiler.testing.filecheck``.

A test file holds one or more cases separated by ``// -----``.  Each case has a
``// RUN: <pipeline>`` line, the input IR and ``// CHECK`` lines.  The runner parses
the IR, checks that it round-trips through the printer, runs the pipeline with
verification after each pass, prints the result and checks it.  Files under
``passes/<pass-name>/`` test that pass; any new directory is picked up as it is.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from compiler.testing.filecheck import (
    CheckFailure,
    Directive,
    FileCheckCase,
    check_output,
    collect_cases,
    main,
    run_case,
    run_filecheck_file,
)

ROOT = pathlib.Path(__file__).parent
REPO = ROOT.parents[1]
CASES = collect_cases(ROOT)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_filecheck_case(case):
    run_case(case)


def test_there_is_a_filecheck_file_per_core_pass():
    for name in ("dce", "cse", "fold-constants", "infer-shapes"):
        assert list((ROOT / "passes" / name).glob("*.ir")), f"no FileCheck test for {name}"


def test_discovery_finds_every_file_in_any_directory():
    files = {c.path for c in CASES}
    assert files == set(ROOT.rglob("*.ir"))
    assert all(c.id.startswith(str(c.path.relative_to(ROOT))) for c in CASES)


OUTPUT = """graph @main(%x: f32[2]) {
  %0 = Relu(%x) : f32[2]
  %1 = Neg(%0) : f32[2]
  return %1
}"""


def _check(*lines: str) -> None:
    check_output(OUTPUT, [Directive(*line.split(": ", 1), n) for n, line in enumerate(lines, 1)], "self-test")


def test_checker_accepts_captures_and_next_lines():
    _check(
        "CHECK-LABEL: graph @main",
        "CHECK: %[[R:[0-9]+]] = Relu(%x)",
        "CHECK-NEXT: Neg(%[[R]])",
        "CHECK-SAME: f32[{{[0-9]}}]",
        "CHECK-NOT: Relu",
        "CHECK: return",
    )


@pytest.mark.parametrize(
    "lines",
    [
        ("CHECK: Sigmoid",),
        ("CHECK: Relu", "CHECK-NEXT: return"),
        ("CHECK-NOT: Neg", "CHECK: return"),
        ("CHECK: %[[R:[0-9]+]] = Relu", "CHECK: Neg(%[[R]]1)"),
        ("CHECK: Neg", "CHECK: Relu"),
    ],
)
def test_checker_rejects_wrong_expectations(lines):
    with pytest.raises(CheckFailure):
        _check(*lines)


GOOD = """// RUN: dce
graph @main(%x: f32[2]) {
  %a = Neg(%x) : f32[2]
  %b = Relu(%x) : f32[2]
  return %b
}
// CHECK: Relu
// CHECK-NOT: Neg
"""
BAD = GOOD.replace("// CHECK-NOT: Neg", "// CHECK: Neg")


def test_run_filecheck_file_runs_each_case_and_reports_the_failing_line(tmp_path):
    path = tmp_path / "mine.ir"
    path.write_text(GOOD + "\n// -----\n" + GOOD)
    assert run_filecheck_file(path) == 2
    path.write_text(GOOD + "// -----\n" + BAD)
    with pytest.raises(CheckFailure) as info:
        run_filecheck_file(path)
    assert str(info.value).startswith(f"{path}:17: CHECK: Neg")


def test_a_case_without_run_or_check_lines_fails(tmp_path):
    ir = GOOD.split("// CHECK")[0]
    for text, why in ((ir.replace("// RUN: dce\n", ""), "no // RUN: line"), (ir, "no CHECK lines")):
        with pytest.raises(CheckFailure, match=why):
            run_case(FileCheckCase(tmp_path / "x.ir", 1, text, "x"))


def test_parse_errors_in_a_case_give_the_line_in_the_file(tmp_path):
    path = tmp_path / "wrong.ir"
    path.write_text(GOOD + "// -----\n" + GOOD.replace("%b = Relu(%x) : f32[2]", "%b = Relu(%x) : f32[3]"))
    with pytest.raises(Exception, match=rf"{path}:13:8: node 'b' \(Relu\)"):
        run_filecheck_file(path)


def test_command_line_runs_files_and_directories(tmp_path, capsys):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "good.ir").write_text(GOOD)
    assert main([str(tmp_path)]) == 0
    assert "1/1 FileCheck cases passed" in capsys.readouterr().out
    (tmp_path / "bad.ir").write_text(BAD)
    assert main([str(tmp_path)]) == 1
    assert f"FAIL {tmp_path / 'bad.ir'}:1" in capsys.readouterr().err
    proc = subprocess.run(
        [sys.executable, "-m", "compiler.testing.filecheck", str(tmp_path / "sub")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
