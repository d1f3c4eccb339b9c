"""Each op is declared once, in its family's module of compiler/ops, whatever was imported before.

- every registered op belongs to exactly one family, and the family's module declared it;
- no op is claimed by two families, and a second declaration raises;
- every declared name is a real op: onnx defines it, or it is one of Ember's own domains;
- every op onnx defines (in the domains Ember takes, not deprecated) is declared;
- a fresh interpreter that imports only ``compiler`` knows every op (caffe.DetectionOutput included).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from compiler import all_ops, get_op
from compiler.ops.declare import FAMILY_MODULES, Family, families
from compiler.ops.onnx_schemas import onnx_op_names, schema_of

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OWN_DOMAINS = ("ember", "test", "caffe", "com.microsoft")  # com.microsoft: onnxruntime's contrib ops


FAMILIES = families()


def test_every_op_belongs_to_one_declared_family():
    assert sorted(FAMILIES) == sorted(FAMILY_MODULES)
    for op in all_ops():
        assert op.family in FAMILIES, f"{op.name} has family {op.family!r}"
        assert op.name in FAMILIES[op.family].names, f"{op.name} is not declared by its family {op.family}"


def test_no_op_is_claimed_by_two_families():
    claimed: dict[str, list[str]] = {}
    for family in FAMILIES.values():
        for name in family.names:
            claimed.setdefault(name, []).append(family.name)
    twice = {name: fams for name, fams in claimed.items() if len(fams) > 1}
    assert not twice
    assert sorted(claimed) == sorted(op.name for op in all_ops())


def test_every_declared_name_is_a_real_op():
    for family in FAMILIES.values():
        for name in family.names:
            op = get_op(name)
            assert op is not None
            assert schema_of(name) is not None or op.domain in OWN_DOMAINS, f"{family.name} declares {name}"


def test_every_onnx_op_is_declared():
    registered = {op.name for op in all_ops()}
    assert sorted(onnx_op_names() - registered) == []


@pytest.fixture
def scratch_family():
    family = Family("scratch-for-test")
    yield family
    del FAMILIES[family.name]


def test_declaring_an_unknown_or_second_op_raises(scratch_family):
    with pytest.raises(ValueError, match="onnx defines no op 'NoSuchOp'"):
        scratch_family.onnx_op("NoSuchOp")
    with pytest.raises(ValueError, match="already registered"):
        scratch_family.onnx_op("Relu")
    assert get_op("Relu").family == "elementwise"
    assert scratch_family.names == []


def test_a_deprecated_op_needs_its_own_infer_and_kernel(scratch_family):
    with pytest.raises(ValueError, match="deprecated"):
        scratch_family.onnx_op("Upsample")


def test_ops_are_known_whatever_was_imported(tmp_path):
    """A .ir file using caffe.DetectionOutput parses, verifies and runs with only ``compiler`` imported,
    and ``ember opt`` optimizes it."""
    path = tmp_path / "detect.ir"
    attrs = "{num_classes = 3, confidence_threshold = 0.5}"
    path.write_text(
        textwrap.dedent(f"""\
        graph @detect(%loc: f32[1,8], %conf: f32[1,6], %priors: f32[1,2,8]) {{
          %out = caffe.DetectionOutput(%loc, %conf, %priors) {attrs} : f32[1,1,?,7]
          return %out
        }}
        """)
    )
    script = textwrap.dedent(f"""\
        import sys
        import numpy as np
        from compiler import interpret, load_ir, verify
        graph = load_ir({str(path)!r})
        verify(graph)
        inputs = {{"loc": np.zeros((1, 8), np.float32), "conf": np.array([[0, .9, 0, 0, .1, .8]], np.float32),
                  "priors": np.tile(np.array([.1, .1, .5, .5, .5, .5, .9, .9], np.float32), (1, 2, 1))}}
        out = interpret(graph, inputs)["out"]
        assert out.shape == (1, 1, 2, 7), out.shape
        assert not [m for m in sys.modules if m.startswith("frontends")], "frontends was imported"
        print("ok")
        """)
    env = dict(os.environ, PYTHONPATH=ROOT)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    out = tmp_path / "out.ir"
    done = subprocess.run(
        [sys.executable, "-m", "compiler.cli", "opt", str(path), "-p", "O2", "-o", str(out)],
        env=env,
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "caffe.DetectionOutput(" in out.read_text()
