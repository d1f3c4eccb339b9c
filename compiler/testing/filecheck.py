"""FileCheck tests for passes: run a pipeline on IR text and check the printed result.

A test file (``*.ir``) holds one or more cases separated by ``// -----`` lines.
Each case has a ``// RUN: <pipeline>`` line, the input IR and ``// CHECK`` lines::

    // RUN: remove-double-negation,dce
    graph @main(%x: f32[2]) {
      %a = Neg(%x) : f32[2]
      %b = Neg(%a) : f32[2]
      return %b
    }
    // CHECK: return %x
    // CHECK-NOT: Neg

Running a case (``run_case``) parses the IR (verified), checks that it
round-trips through the printer, runs the pipeline with verification after
every pass, prints the result and checks it against the directives:

- ``CHECK: text``       the text occurs on some line at or after the current position;
- ``CHECK-LABEL: text`` same as CHECK (use it for graph headers);
- ``CHECK-NEXT: text``  the text occurs on the line right after the previous match;
- ``CHECK-SAME: text``  the text occurs on the same line as the previous match, after it;
- ``CHECK-NOT: text``   the text does not occur between the previous and the next match
                        (or the end of the output).

Inside the text, ``{{regex}}`` is a regular expression, ``[[NAME:regex]]`` captures
what ``regex`` matches and ``[[NAME]]`` must equal an earlier capture; runs of
spaces match any horizontal whitespace.  Typical use: ``%[[X:.*]] = Relu(%x)``.

For a plugin's own test suite::

    import pytest
    from compiler.testing.filecheck import collect_cases, run_case

    CASES = collect_cases("tests/filecheck")      # every *.ir below, in any subdirectory

    @pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
    def test_filecheck(case):
        run_case(case)

``run_filecheck_file(path)`` runs every case of one file, and
``python -m compiler.testing.filecheck FILE_OR_DIR...`` runs them from a shell
(exit status 1 and the failing directive with the output when a check fails).
"""

from __future__ import annotations

import pathlib
import re
import sys
from dataclasses import dataclass

DIRECTIVE = re.compile(r"^\s*//\s*(CHECK(?:-NEXT|-SAME|-NOT|-LABEL)?):\s?(.*)$")
RUN = re.compile(r"^\s*//\s*RUN:(.*)$", re.MULTILINE)
SPLIT = "// -----"
_TOKEN = re.compile(r"\{\{(.+?)\}\}|\[\[([A-Za-z_][A-Za-z0-9_]*)(?::(.+?))?\]\]")


class CheckFailure(AssertionError):
    """A case did not hold; the message gives ``file:line``, the directive and the output."""


@dataclass
class Directive:
    """One CHECK line: its kind (``CHECK``, ``CHECK-NEXT``, ...), its text and its line in the file."""

    kind: str
    text: str
    line: int


@dataclass(frozen=True)
class FileCheckCase:
    """One ``// -----``-separated case of a test file; ``line`` is where it starts in ``path``."""

    path: pathlib.Path
    line: int
    text: str
    id: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


# ----------------------------------------------------------------------------- the checker


def parse_directives(source: str, first_line: int = 1) -> list[Directive]:
    """The CHECK directives of ``source`` in order; line numbers count from ``first_line``."""
    out = []
    for number, line in enumerate(source.splitlines(), first_line):
        m = DIRECTIVE.match(line)
        if m:
            out.append(Directive(m.group(1), m.group(2).rstrip(), number))
    return out


def to_regex(text: str, captures: dict[str, str]) -> tuple[re.Pattern, list[str]]:
    """Compile a CHECK text; returns the regex and the names it captures (in group order)."""
    parts, names, pos = [], [], 0
    for m in _TOKEN.finditer(text):
        parts.append(_literal(text[pos : m.start()]))
        regex, name, definition = m.groups()
        if regex is not None:
            parts.append(f"(?:{regex})")
        elif definition is not None:
            parts.append(f"({definition})")
            names.append(name)
        else:
            if name not in captures:
                raise CheckFailure(f"[[{name}]] is used before it is captured")
            parts.append(re.escape(captures[name]))
        pos = m.end()
    parts.append(_literal(text[pos:]))
    return re.compile("".join(parts)), names


def _literal(text: str) -> str:
    return r"[ \t]+".join(re.escape(chunk) for chunk in re.split(r"[ \t]+", text))


def check_output(output: str, directives: list[Directive], where: str = "") -> None:
    """Raise ``CheckFailure`` unless ``output`` satisfies ``directives``."""
    lines = output.splitlines()
    captures: dict[str, str] = {}
    pos, last_line, last_end = 0, -1, 0
    pending_not: list[Directive] = []

    def fail(d: Directive, why: str) -> None:
        raise CheckFailure(f"{where}:{d.line}: {d.kind}: {d.text}\n  {why}\n--- output ---\n{output}")

    def check_nots(end: int) -> None:
        for d in pending_not:
            regex, _ = to_regex(d.text, captures)
            for i in range(pos, end):
                if regex.search(lines[i]):
                    fail(d, f"found on output line {i + 1}: {lines[i]}")
        pending_not.clear()

    for d in directives:
        if d.kind == "CHECK-NOT":
            pending_not.append(d)
            continue
        regex, names = to_regex(d.text, captures)
        if d.kind == "CHECK-SAME":
            m = regex.search(lines[last_line], last_end) if last_line >= 0 else None
            if m is None:
                fail(d, "not found on the line of the previous match")
            found, match = last_line, m
        elif d.kind == "CHECK-NEXT":
            i = last_line + 1
            match = regex.search(lines[i]) if i < len(lines) else None
            if match is None:
                fail(d, f"not on the next line ({lines[i] if i < len(lines) else 'end of output'!r})")
            found = i
        else:
            found, match = -1, None
            for i in range(pos, len(lines)):
                match = regex.search(lines[i])
                if match:
                    found = i
                    break
            if match is None:
                fail(d, f"not found after output line {pos}")
        check_nots(found)
        for index, name in enumerate(names, 1):
            captures[name] = match.group(index)
        last_line, last_end, pos = found, match.end(), found + 1
    check_nots(len(lines))


# ----------------------------------------------------------------------------- files and cases


def split_cases(source: str) -> list[tuple[int, str]]:
    """Split a test file on ``// -----`` lines; returns (first line number, text) per case."""
    cases, start, current = [], 1, []
    for number, line in enumerate(source.splitlines(), 1):
        if line.strip() == SPLIT:
            cases.append((start, "\n".join(current)))
            start, current = number + 1, []
        else:
            current.append(line)
    cases.append((start, "\n".join(current)))
    return cases


def cases_of_file(path: str | pathlib.Path, root: str | pathlib.Path | None = None) -> list[FileCheckCase]:
    """The cases of one test file; ids read ``<path relative to root>:<line>``."""
    path = pathlib.Path(path)
    shown = path.relative_to(root) if root is not None else path
    return [FileCheckCase(path, line, text, f"{shown}:{line}") for line, text in split_cases(path.read_text())]


def collect_cases(root: str | pathlib.Path, pattern: str = "*.ir") -> list[FileCheckCase]:
    """Every case of every file matching ``pattern`` anywhere below ``root`` (sorted by path).

    Discovery is generic: a new directory such as ``passes/<pass-name>/`` needs no registration.
    """
    root = pathlib.Path(root)
    return [case for path in sorted(root.rglob(pattern)) for case in cases_of_file(path, root)]


def run_case(case: FileCheckCase) -> str:
    """Parse, round-trip, run the ``RUN`` pipeline (verifying after each pass) and check; returns the output."""
    from ..ir.parser import parse_ir
    from ..ir.printer import print_ir
    from ..pipeline import PassManager

    run = RUN.search(case.text)
    if run is None:
        raise CheckFailure(f"{case.where}: no // RUN: line")
    directives = parse_directives(case.text, case.line)
    if not directives:
        raise CheckFailure(f"{case.where}: no CHECK lines")
    # padded so that parse errors give the line in the file, not in the case
    graph = parse_ir("\n" * (case.line - 1) + case.text, filename=str(case.path))
    resources: dict = {}
    printed = print_ir(graph, resources=resources)
    if print_ir(parse_ir(printed, resources), resources={}) != printed:
        raise CheckFailure(f"{case.where}: the input does not round-trip through the printer")
    PassManager(run.group(1).strip(), verify_each=True).run(graph)
    output = print_ir(graph)
    check_output(output, directives, str(case.path))
    return output


def run_filecheck_file(path: str | pathlib.Path) -> int:
    """Run every case of the test file ``path``; raises ``CheckFailure`` at the first failing one.

    Returns the number of cases run.
    """
    cases = cases_of_file(path)
    for case in cases:
        run_case(case)
    return len(cases)


def main(argv: list[str] | None = None) -> int:
    """``python -m compiler.testing.filecheck FILE_OR_DIR...``: run the cases, report failures."""
    targets = argv if argv is not None else sys.argv[1:]
    if not targets:
        print("usage: python -m compiler.testing.filecheck FILE_OR_DIR...", file=sys.stderr)
        return 2
    cases: list[FileCheckCase] = []
    for target in map(pathlib.Path, targets):
        cases += collect_cases(target) if target.is_dir() else cases_of_file(target)
    failed = 0
    for case in cases:
        try:
            run_case(case)
        except Exception as exc:  # report every failing case, whatever it raised
            failed += 1
            print(f"FAIL {case.where}: {type(exc).__name__}: {exc}", file=sys.stderr)
    print(f"{len(cases) - failed}/{len(cases)} FileCheck cases passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
