"""TVM lowerings live in the op registry: one per op, from the family modules, whatever was imported
first; the ops without one are the checked-in table of docs/codegen.md."""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys

import pytest

from codegen.tvm import coverage
from codegen.tvm.registry import BACKEND, OpLowering, lowering
from codegen.tvm.schedule import SCHEDULES
from compiler.ops import Fusion, add_lowering, all_ops, get_op, ops_with_lowering

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_every_lowering_belongs_to_its_registered_op():
    lowered = ops_with_lowering(BACKEND)
    assert len(lowered) > 150
    for op in lowered:
        record = op.lowerings[BACKEND]
        assert isinstance(record, OpLowering), op.name
        assert get_op(record.op) is op, f"{op.name}'s lowering says it lowers {record.op}"
        assert record.build.__module__.startswith("codegen.tvm.lower."), (op.name, record.build.__module__)
        assert record.kind in {*SCHEDULES, "injective", "reduce", "pool", "extern"}, (op.name, record.kind)
        assert set(record.runtime) <= set(record.static_operands), op.name


def test_the_planner_facts_come_from_the_op():
    """What codegen used to keep on the lowering (view, elementwise epilogue, conv/matmul anchor) is the
    op's: every anchor has a schedule family of its own (conv, matmul, the integer vnni_conv, ...),
    views never fuse."""
    from codegen.tvm.schedule import SCHEDULES

    for op in ops_with_lowering(BACKEND):
        kind = op.lowerings[BACKEND].kind
        if op.fusion == Fusion.ANCHOR:  # an anchor's epilogue is tiled by its own schedule (pools have one too)
            assert kind in SCHEDULES, op.name
        assert not hasattr(op.lowerings[BACKEND], "view") and not hasattr(op.lowerings[BACKEND], "elementwise")
    assert {op.name for op in all_ops() if op.view} >= {"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity"}


def test_a_second_lowering_for_an_op_raises():
    relu = get_op("Relu")
    first = relu.lowering(BACKEND)
    with pytest.raises(ValueError, match="already has a tvm lowering"):
        add_lowering("Relu", BACKEND, OpLowering("Relu", lambda ctx, x: x))
    with pytest.raises(ValueError, match="already has a tvm lowering"):
        lowering("Relu")(lambda ctx, x: x)
    with pytest.raises(ValueError, match="unknown op"):
        lowering("NoSuchOp")(lambda ctx, x: x)
    assert relu.lowering(BACKEND) is first


_PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
from compiler.ops import get_op, ops_with_lowering
reshape = get_op("Reshape").lowering("tvm")
print(json.dumps({"reshape": [reshape.op, reshape.build.__module__, list(reshape.runtime)],
                  "ops": sorted(op.name for op in ops_with_lowering("tvm")),
                  "modules": sorted(m for m in sys.modules if m.startswith("codegen.tvm.lower."))}))
"""


def _registered_after_importing(*modules: str) -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, *modules], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "first",
    ["codegen.tvm.lower.tensor.views", "codegen.tvm.lower.nn.conv", "codegen.tvm.lower.ml", "codegen.tvm.kernel"],
)
def test_what_is_registered_does_not_depend_on_import_order(first):
    fresh = _registered_after_importing()
    assert fresh["reshape"][:2] == ["Reshape", "codegen.tvm.lower.tensor.views"]
    assert _registered_after_importing(first) == fresh


def test_the_first_lowering_query_loads_every_family_module():
    """codegen.tvm.lowering imports every module of codegen/tvm/lower (a new family module that it
    misses would leave its ops without lowerings)."""
    import codegen.tvm.lower as lower

    every = sorted(m.name for m in pkgutil.walk_packages(lower.__path__, "codegen.tvm.lower."))
    assert _registered_after_importing()["modules"] == every


def test_docs_list_the_ops_without_a_lowering():
    """docs/codegen.md's table is the registry's, as a fresh process sees it (ops registered by other
    tests do not count). Regenerate: PYTHONPATH=$PWD python3 -m codegen.tvm.coverage --write docs/codegen.md"""
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run(
        [sys.executable, "-m", "codegen.tvm.coverage"], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )
    print(out.stderr.strip())  # "161 ops lowered, 65 not"
    table = out.stdout.strip("\n")
    assert "| `If` |" in table and "| `SequenceAt` |" in table and "| `Relu` |" not in table
    with open(os.path.join(ROOT, "docs", "codegen.md")) as f:
        checked_in = coverage.checked_in_table(f.read())
    assert checked_in == table, (
        "docs/codegen.md lists other unlowered ops than the registry: "
        + "PYTHONPATH=$PWD python3 -m codegen.tvm.coverage --write docs/codegen.md"
    )
    assert {op.name for op in coverage.unlowered_ops()}.isdisjoint(op.name for op in coverage.lowered_ops())
