"""``assert_pass_preserves_semantics``: the differential check every pass must pass.

It copies the graph (print -> parse, so the caller's graph is untouched), runs the
pass or pipeline on the copy with verification after each pass, verifies the
result, runs both graphs through the reference interpreter on the same inputs and
compares the outputs position by position: same count, dtype and shape, values
equal within a tolerance chosen per dtype (exact for integers, booleans and
strings; NaN matches NaN).  On a mismatch the ``AssertionError`` names the
pipeline and the output, gives the worst difference and prints both graphs.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..ir.core import Graph
from ..ir.interpreter import Interpreter
from ..ir.parser import parse_ir
from ..ir.printer import print_ir
from ..ir.verifier import VerifyError, verify

# (rtol, atol) by numpy dtype name; anything not listed compares exactly.
TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-9, 1e-12),
    "float32": (1e-4, 1e-5),
    "float16": (1e-2, 1e-3),
    "bfloat16": (4e-2, 1e-2),
    "float8_e4m3fn": (0.25, 0.05),
    "float8_e4m3fnuz": (0.25, 0.05),
    "float8_e5m2": (0.5, 0.1),
    "float8_e5m2fnuz": (0.5, 0.1),
}


def clone_graph(graph: Graph) -> Graph:
    """A deep copy of ``graph`` through the textual IR (which round-trips); invalid graphs copy too."""
    resources: dict[str, np.ndarray] = {}
    text = print_ir(graph, resources=resources)
    return parse_ir(text, {k: v.copy() for k, v in resources.items()}, verify=False)


def run_positional(graph: Graph, inputs: Mapping[str, Any]) -> list[Any]:
    """Interpreter outputs in output order (two outputs may be the same value)."""
    missing = [p.name for p in graph.params if p.name not in inputs]
    if missing:
        raise ValueError(f"no input given for {', '.join(missing)}")
    args = [inputs[p.name] for p in graph.params]
    args = [
        np.asarray(a, dtype=p.type.dtype.np) if hasattr(p.type, "dtype") and not isinstance(a, np.ndarray) else a
        for a, p in zip(args, graph.params)
    ]
    return Interpreter().run_graph(graph, args)


def _as_runner(pass_or_pipeline: Any) -> tuple[Callable[[Graph], Any], str]:
    """A callable that transforms a graph, and its description."""
    from ..passes import Pass
    from ..pipeline import FixedPoint, PassManager

    if isinstance(pass_or_pipeline, type) and issubclass(pass_or_pipeline, Pass):
        pass_or_pipeline = pass_or_pipeline()
    if isinstance(pass_or_pipeline, PassManager):
        return pass_or_pipeline.run, pass_or_pipeline.pipeline_text
    if isinstance(pass_or_pipeline, (str, Pass, FixedPoint)) or isinstance(pass_or_pipeline, Sequence):
        pm = PassManager(pass_or_pipeline, verify_each=True)
        return pm.run, pm.pipeline_text
    if callable(pass_or_pipeline):
        return pass_or_pipeline, getattr(pass_or_pipeline, "__name__", repr(pass_or_pipeline))
    raise TypeError(f"expected a Pass, a pipeline string or steps, got {type(pass_or_pipeline).__name__}")


def _compare(before: Any, after: Any, what: str) -> str | None:
    """None if the two outputs agree, else a description of the difference."""
    if isinstance(before, list) or isinstance(after, list):
        if not (isinstance(before, list) and isinstance(after, list)) or len(before) != len(after):
            return f"{what}: sequence outputs differ in kind or length"
        for i, (b, a) in enumerate(zip(before, after)):
            problem = _compare(b, a, f"{what}[{i}]")
            if problem:
                return problem
        return None
    if before is None or after is None:
        return None if before is after else f"{what}: one side is empty (None)"
    b, a = np.asarray(before), np.asarray(after)
    if b.dtype != a.dtype:
        return f"{what}: dtype {b.dtype} became {a.dtype}"
    if b.shape != a.shape:
        return f"{what}: shape {b.shape} became {a.shape}"
    tol = TOLERANCES.get(b.dtype.name)
    if tol is None:
        if np.array_equal(b, a) if b.dtype.kind in "OUSb" else np.array_equal(b, a, equal_nan=b.dtype.kind in "fc"):
            return None
        bad = int(np.sum(b != a))
        return f"{what}: {bad} of {b.size} elements differ (exact comparison for {b.dtype})"
    bf, af = b.astype(np.float64), a.astype(np.float64)
    close = np.isclose(af, bf, rtol=tol[0], atol=tol[1], equal_nan=True)
    if close.all():
        return None
    diff = np.abs(np.where(close, 0.0, np.nan_to_num(af - bf, nan=np.inf)))
    worst = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.ndim else ()
    return (
        f"{what}: {int((~close).sum())} of {b.size} elements differ beyond rtol={tol[0]}, atol={tol[1]}; "
        f"worst at {tuple(int(i) for i in worst)}: before {bf[worst]!r}, after {af[worst]!r}"
    )


def assert_pass_preserves_semantics(
    pass_or_pipeline: Any, graph: Graph, inputs: Mapping[str, Any] | None = None, *, seed: int = 0
) -> Graph:
    """Check that running ``pass_or_pipeline`` on (a copy of) ``graph`` keeps its outputs; returns the copy.

    ``pass_or_pipeline``: a Pass (instance or class), pipeline text such as
    ``"fold-constants,dce"``, a list of steps, a ``PassManager`` or any callable
    ``graph -> ...``.  ``inputs`` default to ``random_inputs(graph, seed)``.
    """
    verify(graph)
    if inputs is None:
        from .strategies import random_inputs

        inputs = random_inputs(graph, seed)
    run, description = _as_runner(pass_or_pipeline)
    expected = run_positional(graph, inputs)
    transformed = clone_graph(graph)
    run(transformed)
    try:
        verify(transformed)
    except VerifyError as exc:
        raise AssertionError(
            f"'{description}' produced invalid IR:\n  " + "\n  ".join(exc.problems) + _show(graph, transformed)
        ) from None
    if len(transformed.outputs) != len(graph.outputs):
        raise AssertionError(
            f"'{description}' changed the number of outputs from {len(graph.outputs)} to "
            f"{len(transformed.outputs)}" + _show(graph, transformed)
        )
    actual = run_positional(transformed, inputs)
    for i, (before, after) in enumerate(zip(expected, actual)):
        name = graph.outputs[i].name or f"output{i}"
        problem = _compare(before, after, f"output {i} (%{name})")
        if problem:
            raise AssertionError(f"'{description}' changed the result: {problem}" + _show(graph, transformed))
    return transformed


def assert_pass_is_idempotent(pass_: Callable[[Graph], Any], graph: Graph, name: str = "") -> None:
    """Run ``pass_`` twice on ``graph`` (in place): the second run must report and make no change."""
    pass_(graph)
    once = print_ir(graph)
    assert not pass_(graph).modified, f"a second run of {name or pass_} changed:\n{once}"
    assert print_ir(graph) == once, f"a second run of {name or pass_} changed the IR without saying so"


def _show(before: Graph, after: Graph, limit: int = 4000) -> str:
    def clip(text: str) -> str:
        return text if len(text) <= limit else text[:limit] + "\n  ... (truncated)"

    return f"\n--- IR before ---\n{clip(print_ir(before))}\n--- IR after ---\n{clip(print_ir(after))}"
