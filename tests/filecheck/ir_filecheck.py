"""A tiny FileCheck: check the printed IR against ``// CHECK`` lines.

Directives (each on a ``//`` comment line of the test file):

- ``CHECK: text``       the text occurs on some line at or after the current position;
- ``CHECK-LABEL: text`` same as CHECK (use it for graph headers);
- ``CHECK-NEXT: text``  the text occurs on the line right after the previous match;
- ``CHECK-SAME: text``  the text occurs on the same line as the previous match, after it;
- ``CHECK-NOT: text``   the text does not occur between the previous and the next match
                        (or the end of the output).

Inside the text, ``{{regex}}`` is a regular expression, ``[[NAME:regex]]`` captures
what ``regex`` matches and ``[[NAME]]`` must equal an earlier capture; runs of
spaces match any horizontal whitespace.  Typical use: ``%[[X:.*]] = Relu(%x)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DIRECTIVE = re.compile(r"^\s*//\s*(CHECK(?:-NEXT|-SAME|-NOT|-LABEL)?):\s?(.*)$")
_TOKEN = re.compile(r"\{\{(.+?)\}\}|\[\[([A-Za-z_][A-Za-z0-9_]*)(?::(.+?))?\]\]")


class CheckFailure(AssertionError):
    """A CHECK line did not hold; the message shows the directive and the output."""


@dataclass
class Directive:
    kind: str
    text: str
    line: int


def parse_directives(source: str) -> list[Directive]:
    """The CHECK directives of ``source`` in order, with their line numbers."""
    out = []
    for number, line in enumerate(source.splitlines(), 1):
        m = DIRECTIVE.match(line)
        if m:
            out.append(Directive(m.group(1), m.group(2).rstrip(), number))
    return out


def to_regex(text: str, captures: dict[str, str]) -> tuple[re.Pattern, list[str]]:
    """Compile a CHECK text; returns the regex and the names it captures (in group order)."""
    parts, names, pos = [], [], 0
    for m in _TOKEN.finditer(text):
        parts.append(_literal(text[pos:m.start()]))
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


def split_cases(source: str) -> list[tuple[int, str]]:
    """Split a test file on ``// -----`` lines; returns (first line number, text) per case."""
    cases, start, current = [], 1, []
    for number, line in enumerate(source.splitlines(), 1):
        if line.strip() == "// -----":
            cases.append((start, "\n".join(current)))
            start, current = number + 1, []
        else:
            current.append(line)
    cases.append((start, "\n".join(current)))
    return cases
