"""Every registered op: type inference and reference kernel against onnx's node test suite.

For each op, every case of the suite that Ember takes as it is (latest-opset
semantics, dtypes Ember has) is rebuilt as an Ember graph and checked: the
verifier accepts it, inferred result types agree with the model's declared
outputs, and the interpreter reproduces the expected outputs within the
case's rtol/atol.  Ops the suite does not exercise, and random ops, have
hand-written cases in ``hand_cases.py``.
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest
from hand_cases import HAND_CASES, run_hand_case
from onnx_node_cases import case_graph, check_case, expected_types, node_cases_by_op, types_agree, usable_cases

from compiler import Trait, all_ops, get_op

OP_NAMES = [op.name for op in all_ops()]

# Suite cases whose failure lies in code owned outside tests/ : case name -> reason (run as xfail).
KNOWN_CASE_BUGS: dict[str, str] = {}
# Ops whose reference kernel needs a package that the test extra does not install: op -> module.
NEEDS_MODULE: dict[str, str] = {}


@pytest.fixture(scope="session")
def suite():
    """onnx's node test cases grouped by op (collected once per session, about 6 s)."""
    return node_cases_by_op()


def test_registry_is_large_enough():
    assert len(OP_NAMES) >= 180
    assert len(set(OP_NAMES)) == len(OP_NAMES)


def test_every_registered_op_has_a_case(suite):
    uncovered = [op for op in OP_NAMES if op not in HAND_CASES and not usable_cases(op)]
    assert not uncovered, f"registered ops with no test case (add one to hand_cases.py): {uncovered}"


def test_hand_cases_name_registered_ops():
    assert sorted(set(HAND_CASES) - set(OP_NAMES)) == []


@pytest.mark.parametrize("op", OP_NAMES)
def test_op(op, suite):
    op_def = get_op(op)
    if op in HAND_CASES:
        run_hand_case(op)
    cases = usable_cases(op)
    if not cases:
        assert op in HAND_CASES
        return
    module = NEEDS_MODULE.get(op)
    if module is not None and importlib.util.find_spec(module) is None:
        for c in cases:
            for v, want in zip(case_graph(c).outputs, expected_types(c)):
                assert types_agree(v.type, want)
        pytest.skip(f"types checked; the reference kernel of {op} needs the '{module}' package")
    failures, known = [], []
    for c in cases:
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                check_case(c, values=not op_def.has(Trait.RANDOM))
        except Exception as exc:  # collect every failing case of the op, not just the first
            message = f"{c.name}: {type(exc).__name__}: {str(exc).strip()[:400]}"
            (known if c.name in KNOWN_CASE_BUGS else failures).append(message)
    assert not failures, f"{len(failures)}/{len(cases)} cases of {op} fail:\n" + "\n".join(failures)
    if known:
        pytest.xfail("; ".join(f"{m} [known: {KNOWN_CASE_BUGS[m.split(':')[0]]}]" for m in known))
