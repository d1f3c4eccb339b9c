"""The ONNX node conformance suite through ``frontends.onnx.backend`` (Ember's interpreter).

One test runs every case the installed onnx ships (1,884 with onnx 1.23; about
30 s) and requires at least 1,840 passes; on failure its message is the table
of failing cases by op.  ``scripts/onnx_conformance.py`` prints the same table.
A second test sends a quarter of the cases through import -> export -> onnx.reference.
"""

from __future__ import annotations

from conformance import ExportRoundTrip, collect_cases, failure_table, run_suite, sample_cases

REQUIRED_PASSES = 1840
SUITE_SIZE = 1884  # onnx 1.23; the requirement scales if another onnx ships more or fewer cases


def test_node_conformance_suite():
    cases = collect_cases()
    assert len(cases) > 1000, "the onnx package ships far fewer node cases than expected"
    results = run_suite(cases)
    passed = sum(r.ok for r in results)
    needed = REQUIRED_PASSES * len(cases) // SUITE_SIZE
    assert passed >= needed, (
        f"{passed} of {len(cases)} ONNX node cases pass, need {needed}; failures by op:\n{failure_table(results)}"
    )


EXPORT_SAMPLE_EVERY = 4
EXPORT_REQUIRED = 1855  # of 1884: import -> export -> onnx.reference passed 1863 when written


def test_node_conformance_through_the_exporter():
    """A deterministic quarter of the suite: import, export, full ONNX check, run with onnx.reference."""
    cases = collect_cases()
    sample = sample_cases(cases, EXPORT_SAMPLE_EVERY)
    results = run_suite(sample, backend=ExportRoundTrip("reference"))
    passed = sum(r.ok for r in results)
    needed = len(sample) - (SUITE_SIZE - EXPORT_REQUIRED) * len(cases) // SUITE_SIZE
    assert passed >= needed, (
        f"{passed} of {len(sample)} sampled cases survive export, need {needed}; "
        f"failures by op:\n{failure_table(results)}"
    )
