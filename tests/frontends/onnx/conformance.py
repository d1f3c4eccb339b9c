"""The ONNX node conformance suite (shipped inside the onnx package) run through Ember.

``run_suite()`` collects the suite's test cases, runs each through
``frontends.onnx.backend`` and compares every output with the case's own
``rtol``/``atol``: sequences and optionals element by element, exotic dtypes
(float8, int4, bfloat16...) by value after widening to float64.  A case
passes when every data set of it matches.  ``failures_by_op`` groups the
failures for a table (used by ``scripts/onnx_conformance.py`` and the test).
"""

from __future__ import annotations

import collections
import functools
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np


@dataclass
class CaseResult:
    """The outcome of one test case: ``ok`` or the first reason it failed."""

    name: str
    op: str
    ok: bool
    reason: str = ""


def collect_cases() -> list:
    """Every node test case of the installed onnx (about 1,900 with onnx 1.23; generated once)."""
    return list(_collect_once())


@functools.lru_cache(maxsize=1)
def _collect_once() -> tuple:
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tuple(collect_testcases())


def case_op(case) -> str:
    """The op a case tests: the longest op name prefixing the case name among the graph's ops
    (among all ONNX ops for ``_expanded`` cases, whose graph holds only the function body:
    ``test_bernoulli_double_expanded`` -> ``Bernoulli``), else the first non-Constant node's op."""
    squashed = case.name.removeprefix("test_").replace("_", "").lower()
    nodes = [n for n in case.model.graph.node if n.op_type != "Constant"] or list(case.model.graph.node)
    candidates = {n.op_type for n in case.model.graph.node}
    if "_expanded" in case.name:
        candidates |= set(_onnx_op_names())
    best = max((op for op in candidates if squashed.startswith(op.lower())), key=len, default=None)
    return best or (nodes[0].op_type if nodes else "?")


@functools.lru_cache(maxsize=1)
def _onnx_op_names() -> tuple[str, ...]:
    from onnx import defs

    return tuple({s.name for s in defs.get_all_schemas_with_history()})


def sample_cases(cases: list, every: int) -> list:
    """A deterministic sample: every ``every``-th case in name order."""
    ordered = sorted(cases, key=lambda c: c.name)
    return ordered[::every]


# ------------------------------------------------------------------ comparing values


def _widen(array: np.ndarray) -> np.ndarray:
    """Exotic dtypes (ml_dtypes floats and 4-bit ints) as float64, others unchanged."""
    if array.dtype.kind == "V" or array.dtype.type.__module__.startswith("ml_dtypes"):
        return array.astype(np.float64)
    return array


def to_runtime(value: Any) -> Any:
    """A case's value as Ember's runtime form: TensorProto -> ndarray (ml_dtypes for exotic types),
    SequenceProto -> list, OptionalProto -> value or None; other values unchanged."""
    import onnx
    from onnx import numpy_helper

    if isinstance(value, onnx.TensorProto):
        from compiler import onnx_bridge

        return onnx_bridge.array_from_proto(value)
    if isinstance(value, (onnx.SequenceProto, onnx.OptionalProto)):
        return to_runtime(
            numpy_helper.to_list(value) if isinstance(value, onnx.SequenceProto) else numpy_helper.to_optional(value)
        )
    if isinstance(value, list):
        return [to_runtime(v) for v in value]
    return value


def compare(expected: Any, actual: Any, rtol: float, atol: float, where: str = "output") -> str | None:
    """None when ``actual`` matches ``expected``, else a one-line reason."""
    expected = to_runtime(expected)
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return f"{where}: expected a sequence, got {type(actual).__name__}"
        if len(expected) != len(actual):
            return f"{where}: sequence length {len(actual)}, expected {len(expected)}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            reason = compare(e, a, rtol, atol, f"{where}[{i}]")
            if reason:
                return reason
        return None
    if expected is None:
        return None if actual is None else f"{where}: expected an empty optional, got a value"
    if actual is None:
        return f"{where}: expected a value, got an empty optional"
    if isinstance(actual, list):
        return f"{where}: expected a tensor, got a sequence"
    e, a = np.asarray(expected), np.asarray(actual)
    if e.shape != a.shape:
        return f"{where}: shape {a.shape}, expected {e.shape}"
    if e.dtype != a.dtype and not (e.dtype.kind in "OUS" and a.dtype.kind in "OUS"):
        return f"{where}: dtype {a.dtype}, expected {e.dtype}"
    e, a = _widen(e), _widen(a)
    if e.dtype.kind in "OUS" or e.dtype == bool:
        return None if np.array_equal(e, a) else f"{where}: values differ"
    try:
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, equal_nan=True)
    except AssertionError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if "Max absolute" in ln]
        return f"{where}: values differ ({lines[0] if lines else 'mismatch'})"
    return None


# ------------------------------------------------------------------ running


def run_case(case, backend=None, **prepare_kw) -> CaseResult:
    """Run one case through ``backend`` (anything with ``prepare(model).run(inputs)``;
    ``frontends.onnx.backend`` by default)."""
    if backend is None:
        from frontends.onnx import backend
    op = case_op(case)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            rep = backend.prepare(case.model, **prepare_kw)
            for k, (inputs, expected) in enumerate(case.data_sets):
                actual = rep.run([to_runtime(x) for x in inputs])
                failure = check_outputs(case, op, k, expected, actual)
                if failure:
                    return failure
    except Exception as exc:  # a failing case is a data point, not a crash of the harness
        return failed_with(case, op, exc)
    return CaseResult(case.name, op, True)


def check_outputs(case, op: str, k: int, expected, actual) -> "CaseResult | None":
    """The failing result for data set ``k`` of ``case``, or None when every output matches."""
    if len(actual) != len(expected):
        return CaseResult(case.name, op, False, f"{len(actual)} outputs, expected {len(expected)}")
    for i, (e, a) in enumerate(zip(expected, actual)):
        reason = compare(e, a, case.rtol, case.atol, f"data set {k} output {i}")
        if reason:
            return CaseResult(case.name, op, False, reason)
    return None


def failed_with(case, op: str, exc: Exception) -> "CaseResult":
    """A failing result carrying the first line of ``exc``."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return CaseResult(case.name, op, False, f"{type(exc).__name__}: {first[:300]}")


class ExportRoundTrip:
    """A backend that imports a case, exports it again, checks the export and runs it with
    ``onnx.reference`` (or onnxruntime with ``runtime="ort"``): a conformance run of the exporter."""

    def __init__(self, runtime: str = "reference"):
        self.runtime = runtime

    def prepare(self, model, **kw):
        import onnx

        from frontends.onnx import export_model, import_model

        exported = export_model(import_model(model))
        onnx.checker.check_model(exported, full_check=True)
        names = [i.name for i in exported.graph.input]
        if self.runtime == "ort":
            from frontends.onnx.exporter import ort_session

            session = ort_session(exported)
            return _Rep(lambda feeds: session.run(None, feeds), names)
        from onnx.reference import ReferenceEvaluator

        evaluator = ReferenceEvaluator(exported)
        return _Rep(lambda feeds: evaluator.run(None, feeds), names)


class _Rep:
    def __init__(self, fn, names):
        self.fn, self.names = fn, names

    def run(self, inputs):
        feeds = {n: np.asarray(v) if isinstance(v, np.generic) else v for n, v in zip(self.names, inputs)}
        return list(self.fn(feeds))


def run_suite(
    cases: Iterable | None = None, progress: Callable[[CaseResult], None] | None = None, backend=None, **prepare_kw
) -> list[CaseResult]:
    """Run ``cases`` (all of them by default); returns one result per case."""
    results = []
    for case in collect_cases() if cases is None else cases:
        result = run_case(case, backend, **prepare_kw)
        results.append(result)
        if progress is not None:
            progress(result)
    return results


def failures_by_op(results: list[CaseResult]) -> dict[str, list[CaseResult]]:
    """Failed cases grouped by op, ops with the most failures first."""
    groups: dict[str, list[CaseResult]] = collections.defaultdict(list)
    for r in results:
        if not r.ok:
            groups[r.op].append(r)
    return dict(sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])))


def failure_table(results: list[CaseResult], reasons: bool = True) -> str:
    """A text table: op, number of failures, and each failing case with its reason."""
    lines = []
    for op, fails in failures_by_op(results).items():
        lines.append(f"{op:<32} {len(fails):>4}")
        if reasons:
            lines.extend(f"    {r.name}: {r.reason}" for r in fails)
    return "\n".join(lines)
