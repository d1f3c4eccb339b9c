"""The layout issue 12 set: op knowledge in the registry, code grouped by concern, one-way imports.

- no module of ``codegen/``, ``passes/``, ``compiler/ir`` or ``compiler/ops`` imports ``frontends``
  (frontends build graphs; nothing downstream of a graph depends on how it was imported);
- no file under ``codegen/`` is named after the order it was written (``ops_more_*``);
- no library module outgrows the size at which it should be split.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOWNSTREAM = ["codegen", "passes", "compiler/ir", "compiler/ops"]
MAX_LINES = 600


def _modules(*dirs):
    for d in dirs:
        yield from sorted((ROOT / d).rglob("*.py"))


def _imported(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("where", DOWNSTREAM)
def test_nothing_downstream_of_the_graph_imports_frontends(where):
    offenders = {
        str(p.relative_to(ROOT)): sorted(n for n in _imported(p) if n == "frontends" or n.startswith("frontends."))
        for p in _modules(where)
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    assert any(True for _ in _modules(where)), f"{where} holds no modules (moved?)"


def test_no_codegen_module_is_named_after_the_order_it_was_written():
    assert [str(p.relative_to(ROOT)) for p in (ROOT / "codegen").rglob("ops_more_*")] == []


def test_library_modules_stay_small():
    big = {
        str(p.relative_to(ROOT)): n
        for p in _modules("compiler", "passes", "codegen", "frontends")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert big == {}, f"split these modules by concern: {big}"
