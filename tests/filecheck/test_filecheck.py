"""Runs every ``.ir`` FileCheck test under ``tests/filecheck/``.

A test file holds one or more cases separated by ``// -----``.  Each case has a
``// RUN: <pipeline>`` line, the input IR and ``// CHECK`` lines (see
``ir_filecheck.py``).  The runner parses the IR, checks that it round-trips through
the printer, runs the pipeline with verification after each pass, prints the
result and checks it.  Files under ``passes/<pass-name>/`` test that pass.
"""

from __future__ import annotations

import pathlib
import re

import pytest

from compiler import parse_ir, print_ir
from compiler.pipeline import PassManager

from ir_filecheck import CheckFailure, Directive, check_output, parse_directives, split_cases

ROOT = pathlib.Path(__file__).parent
RUN = re.compile(r"^\s*//\s*RUN:(.*)$", re.MULTILINE)
FILES = sorted(ROOT.rglob("*.ir"))


def _cases():
    for path in FILES:
        for line, text in split_cases(path.read_text()):
            yield pytest.param(path, line, text, id=f"{path.relative_to(ROOT)}:{line}")


@pytest.mark.parametrize("path,line,text", list(_cases()))
def test_filecheck_case(path, line, text):
    where = f"{path}:{line}"
    run = RUN.search(text)
    assert run is not None, f"{where}: no // RUN: line"
    directives = parse_directives(text)
    assert directives, f"{where}: no CHECK lines"
    for d in directives:
        d.line += line - 1
    graph = parse_ir(text, filename=str(path))
    printed = print_ir(graph)
    assert print_ir(parse_ir(printed)) == printed, f"{where}: the input does not round-trip"
    PassManager(run.group(1).strip(), verify_each=True).run(graph)
    check_output(print_ir(graph), directives, str(path))


def test_there_is_a_filecheck_file_per_core_pass():
    for name in ("dce", "cse", "fold-constants", "infer-shapes"):
        assert list((ROOT / "passes" / name).glob("*.ir")), f"no FileCheck test for {name}"


OUTPUT = """graph @main(%x: f32[2]) {
  %0 = Relu(%x) : f32[2]
  %1 = Neg(%0) : f32[2]
  return %1
}"""


def _check(*lines: str) -> None:
    check_output(OUTPUT, [Directive(*line.split(": ", 1), n) for n, line in enumerate(lines, 1)], "self-test")


def test_checker_accepts_captures_and_next_lines():
    _check("CHECK-LABEL: graph @main", "CHECK: %[[R:[0-9]+]] = Relu(%x)", "CHECK-NEXT: Neg(%[[R]])",
           "CHECK-SAME: f32[{{[0-9]}}]", "CHECK-NOT: Relu", "CHECK: return")


@pytest.mark.parametrize("lines", [
    ("CHECK: Sigmoid",),
    ("CHECK: Relu", "CHECK-NEXT: return"),
    ("CHECK-NOT: Neg", "CHECK: return"),
    ("CHECK: %[[R:[0-9]+]] = Relu", "CHECK: Neg(%[[R]]1)"),
    ("CHECK: Neg", "CHECK: Relu"),
])
def test_checker_rejects_wrong_expectations(lines):
    with pytest.raises(CheckFailure):
        _check(*lines)
