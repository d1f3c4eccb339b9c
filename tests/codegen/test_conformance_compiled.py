"""ONNX node conformance through the compiled path, on a fixed sample of the suite.

The full run (``python scripts/onnx_conformance_compiled.py``, see docs/codegen-conformance.md)
takes tens of minutes: every case builds a shared library.  Here a fixed random sample
(``SAMPLE`` cases drawn with ``SEED`` from the suite in name order) runs in two worker processes,
and its pass rate must meet the project's bar of 1,400 of 1,884 cases, scaled to the sample.
Failures are listed in the assertion message, one per line with the reason.
"""

from __future__ import annotations

import math

import pytest
from compiled_checks import conformance_runner

SAMPLE = 48
SEED = 0
# The sample's failures when measured (docs/codegen-conformance.md): values the library cannot carry
# (sequences), random draws, and a data-dependent size the case does not declare.  Any other failure
# in the sample is a regression.
EXPECTED_FAILURES = {
    "test_sequence_map_identity_1_sequence_expanded",
    "test_bernoulli_seed_expanded",
    "test_unique_length_1",
    "test_unique_sorted_with_negative_axis",
}


@pytest.fixture(scope="module")
def runner():
    return conformance_runner()


@pytest.fixture(scope="module")
def sample_results(runner):
    cases = runner.pick_cases(runner.collect_cases(), sample=SAMPLE, seed=SEED)
    return runner.run_cases(cases, jobs=2)


def test_sample_is_fixed(runner):
    """The same seed draws the same cases (the test measures a fixed sample, not a moving one)."""
    cases = runner.collect_cases()
    first = [c.name for c in runner.pick_cases(cases, sample=SAMPLE, seed=SEED)]
    again = [c.name for c in runner.pick_cases(cases, sample=SAMPLE, seed=SEED)]
    assert first == again and len(set(first)) == SAMPLE


def test_sample_meets_the_pass_bar(runner, sample_results):
    passed = [r for r in sample_results if r.ok]
    needed = math.ceil(runner.PASS_BAR * len(sample_results) / runner.TOTAL_CASES)
    failures = "\n".join(f"  {r.name} [{r.op}]: {r.reason}" for r in sample_results if not r.ok)
    assert len(passed) >= needed, (
        f"{len(passed)} of {len(sample_results)} sampled cases pass through prepare(compile=True); "
        f"the bar ({runner.PASS_BAR}/{runner.TOTAL_CASES}) needs {needed}. Failures:\n{failures}"
    )


def test_sample_fails_only_where_expected(sample_results):
    """Cases that passed when the sample was measured still pass (each regression listed with its reason)."""
    regressions = [
        f"  {r.name} [{r.op}]: {r.reason}" for r in sample_results if not r.ok and r.name not in EXPECTED_FAILURES
    ]
    assert not regressions, "sampled cases that used to pass now fail:\n" + "\n".join(regressions)


def test_unlowerable_ops_fail_with_an_ember_error(runner):
    """A case whose op has no lowering fails at compile time with an EmberError naming the op."""
    from compiler.diagnostics import EmberError
    from frontends.onnx import backend

    case = next(c for c in runner.collect_cases() if c.name == "test_string_concat")
    with pytest.raises(EmberError, match="StringConcat"):
        backend.prepare(case.model, compile=True)
