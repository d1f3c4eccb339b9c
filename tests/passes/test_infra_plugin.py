"""A pass from another package, found through the ``ember.passes`` entry point.

The example package (``tests/passes/example_plugin``) is "installed" into a
temporary site directory: its module is copied there next to a ``.dist-info``
whose ``entry_points.txt`` is generated from the package's own pyproject, which
is what ``pip install`` would write.  Then the pass runs by name, both in-process
and through ``ember opt`` in a fresh interpreter.
"""

from __future__ import annotations

import importlib
import os
import pathlib
import shutil
import subprocess
import sys
import tomllib

import pytest

from compiler import load_ir, parse_ir, save_ir
from compiler.passes import available_passes, get_pass, unregister_pass
from compiler.testing import assert_pass_preserves_semantics

PLUGIN = pathlib.Path(__file__).parent / "example_plugin"
REPO = pathlib.Path(__file__).parents[2]
DOC = REPO / "docs" / "writing-a-pass.md"
GRAPH = """graph @main(%x: f32[2,3]) {
  %a = Neg(%x) : f32[2,3]
  %b = Neg(%a) : f32[2,3]
  %c = Relu(%b) : f32[2,3]
  %d = Relu(%c) : f32[2,3]
  return %d
}"""


def install_plugin(site: pathlib.Path) -> None:
    """Copy the package and write the dist-info that ``pip install`` would."""
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    shutil.copytree(PLUGIN / "ember_example_plugin", site / "ember_example_plugin")
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    lines = [f"{name} = {target}" for name, target in project["entry-points"]["ember.passes"].items()]
    (info / "entry_points.txt").write_text("[ember.passes]\n" + "\n".join(lines) + "\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    site = tmp_path / "site"
    install_plugin(site)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    yield site
    unregister_pass("remove-double-negation")  # forget the class resolved from this temporary site
    for name in [m for m in sys.modules if m.startswith("ember_example_plugin")]:
        del sys.modules[name]


def test_entry_point_pass_is_found_by_name(site):
    assert "remove-double-negation" in available_passes()
    cls = get_pass("remove-double-negation")
    assert cls.__module__ == "ember_example_plugin.double_negation"
    after = assert_pass_preserves_semantics("remove-double-negation,dce", parse_ir(GRAPH))
    assert [n.op for n in after.nodes] == ["Relu"]


def test_ember_opt_runs_the_plugin_pass(site, tmp_path):
    src, out = tmp_path / "in.ir", tmp_path / "out.ir"
    save_ir(parse_ir(GRAPH), str(src))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "compiler.cli",
            "opt",
            str(src),
            "-o",
            str(out),
            "--passes",
            "remove-double-negation,dce",
            "--verify-each",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(tmp_path),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "nodes: 4 -> 1 (constants: 0 -> 0" in proc.stdout
    assert [n.op for n in load_ir(str(out)).nodes] == ["Relu"]


def test_the_doc_shows_exactly_the_code_that_is_tested():
    doc = DOC.read_text()
    for path in (
        "pyproject.toml",
        "ember_example_plugin/double_negation.py",
        "test_double_negation.py",
        "filecheck/remove-double-negation.ir",
    ):
        assert (PLUGIN / path).read_text().strip() in doc, f"docs/writing-a-pass.md does not contain {path} verbatim"
