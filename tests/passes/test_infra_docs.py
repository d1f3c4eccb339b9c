"""docs/writing-a-pass.md stays true: its Python snippets run in order, its FileCheck case holds,
and the pipelines in its shell commands parse."""

from __future__ import annotations

import contextlib
import inspect
import io
import pathlib
import shlex
import sys

import pytest

from compiler.passes import available_passes, register_pass, unregister_pass
from compiler.pipeline import PassManager
from compiler.testing.filecheck import FileCheckCase, run_case

REPO = pathlib.Path(__file__).parents[2]
DOC_PATH = REPO / "docs" / "writing-a-pass.md"
DOC = DOC_PATH.read_text()
PLUGIN = pathlib.Path(__file__).parent / "example_plugin"


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """``(language, body)`` of every fenced code block, in order (language "" for a bare fence)."""
    out, lang, body = [], None, []
    for line in text.splitlines(keepends=True):
        if line.startswith("```"):
            if lang is None:
                lang, body = line[3:].strip(), []
            else:
                out.append((lang, "".join(body)))
                lang = None
        elif lang is not None:
            body.append(line)
    assert lang is None, "an unclosed code block"
    return out


def blocks(lang: str) -> list[str]:
    """The bodies of the doc's fenced code blocks written as ```lang."""
    return [body for kind, body in fenced_blocks(DOC) if kind == lang]


@pytest.fixture
def plugin_on_path(monkeypatch, tmp_path):
    """The example package importable (as if installed), the cwd a scratch dir; new pass names forgotten after."""
    monkeypatch.syspath_prepend(str(PLUGIN))
    monkeypatch.chdir(tmp_path)
    before = set(available_passes())
    yield
    for name in set(available_passes()) - before:
        unregister_pass(name)
    for name in [m for m in sys.modules if m.startswith("ember_example_plugin")]:
        del sys.modules[name]


def test_python_snippets_run_in_order(plugin_on_path):
    snippets = blocks("python")
    assert len(snippets) >= 5
    # the last snippet is the plugin's test file, which finds its FileCheck cases beside itself
    scope: dict = {"__name__": "writing_a_pass_doc", "__file__": str(PLUGIN / "test_double_negation.py")}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for snippet in snippets:
            exec(compile(snippet, str(DOC_PATH), "exec", dont_inherit=True), scope)
        # the plugin's test file is a snippet too: run its plain test functions
        for name, fn in list(scope.items()):
            if name.startswith("test_") and callable(fn) and not inspect.signature(fn).parameters:
                fn()
    printed = out.getvalue()
    assert "Concat has 2 inputs" in printed and "the inner LeakyRelu's alpha is not positive" in printed


def test_the_shown_statistics_table_is_what_the_snippet_prints(plugin_on_path):
    snippet = next(s for s in blocks("python") if "PatternStatistics()" in s)
    scope: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(snippet, str(DOC_PATH), "exec", dont_inherit=True), scope)
    (shown,) = [b for b in blocks("") if b.startswith("rule ")]
    assert [line.rstrip() for line in shown.splitlines()] == [
        line.rstrip() for line in scope["stats"].report().splitlines()
    ]


def test_filecheck_blocks_hold(plugin_on_path):
    from ember_example_plugin.double_negation import RemoveDoubleNegationPass

    register_pass(RemoveDoubleNegationPass)
    texts = [b for b in blocks("") if b.lstrip().startswith("// RUN:")]
    assert texts
    for text in texts:
        for part in text.split("// -----\n"):
            run_case(FileCheckCase(DOC_PATH, 1, part, "doc"))


def test_pipelines_in_shell_commands_parse(plugin_on_path):
    from ember_example_plugin.double_negation import RemoveDoubleNegationPass

    register_pass(RemoveDoubleNegationPass)
    commands = [line for block in blocks("sh") for line in block.replace("\\\n", " ").splitlines()]
    pipelines = []
    for command in commands:
        words = shlex.split(command)
        pipelines += [words[i + 1] for i, w in enumerate(words) if w in ("--passes", "-p")]
    assert len(pipelines) >= 2
    for text in pipelines:
        assert PassManager(text).steps
