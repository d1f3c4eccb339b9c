"""Pass pipelines: the text syntax, its parser, named pipelines and the ``PassManager``.

Syntax (whitespace is ignored)::

    pipeline := element ("," element)*
    element  := NAME ["{" key=value ("," key=value)* "}"] ["(" pipeline ")"]
    value    := text up to "," or "}"  |  "[" items "]"  |  "quoted text"

    fold-constants{max-bytes=1048576},simplify,cse,dce
    fixed-point{max-iterations=4}(simplify,cse,dce)    # repeat until nothing changes
    O2                                                 # a named pipeline, expanded in place

``NAME`` is a pass (see ``compiler.passes.get_pass``), a named pipeline from
``passes/pipelines.py`` (``O0``..``O3``) or ``fixed-point``, the one nesting
element: it reruns its body until no pass reports a change (at most
``max-iterations`` rounds, default 8).

``PassManager(pipeline, instruments=[...], verify_each=True).run(graph)`` runs
the steps; instruments (``compiler.instruments``) see each pass, and a failing
pass becomes an ``EmberError`` naming it (with the crash reproducer's path when
one is installed).  ``verify_each`` defaults to ``verify_each_by_default()``,
which the test suite turns on.
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass
from typing import Iterator, Sequence, Union

from .diagnostics import EmberError
from .ir.core import Graph
from .passes import Pass, PassResult, get_pass

_VERIFY_EACH: contextvars.ContextVar[bool] = contextvars.ContextVar("ember_verify_each", default=False)


@contextlib.contextmanager
def verify_each_by_default(enabled: bool = True) -> Iterator[None]:
    """Make every ``PassManager`` created inside the block verify after each pass."""
    token = _VERIFY_EACH.set(enabled)
    try:
        yield
    finally:
        _VERIFY_EACH.reset(token)


@dataclass(frozen=True)
class FixedPoint:
    """Nested steps rerun until none reports a change, at most ``max_iterations`` rounds."""

    steps: tuple["Step", ...]
    max_iterations: int = 8

    def pipeline_text(self) -> str:
        inner = ",".join(s.pipeline_text() for s in self.steps)
        return f"fixed-point{{max-iterations={self.max_iterations}}}({inner})"


Step = Union[Pass, FixedPoint]


# --------------------------------------------------------------------------- parsing


class _PipelineParser:
    def __init__(self, text: str, expanding: tuple[str, ...] = ()):
        self.text, self.pos, self.expanding = text, 0, expanding

    def error(self, msg: str) -> EmberError:
        return EmberError(f"bad pipeline at column {self.pos + 1}: {msg}", details=[self.text, " " * self.pos + "^"])

    def peek(self) -> str:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, ch: str) -> None:
        if self.peek() != ch:
            raise self.error(f"expected '{ch}'")
        self.pos += 1

    def name(self) -> str:
        self.peek()
        start = self.pos
        while self.pos < len(self.text) and (self.text[self.pos].isalnum() or self.text[self.pos] in "-_."):
            self.pos += 1
        if start == self.pos:
            raise self.error("expected a pass name")
        return self.text[start : self.pos]

    def pipeline(self, closing: str = "") -> list[Step]:
        steps: list[Step] = []
        if self.peek() in ("", closing):
            return steps
        while True:
            steps.extend(self.element())
            if self.peek() != ",":
                break
            self.pos += 1
        if self.peek() != closing:
            raise self.error(f"unexpected '{self.peek()}'" if self.peek() else "unexpected end")
        return steps

    def options(self) -> dict[str, str]:
        opts: dict[str, str] = {}
        if self.peek() != "{":
            return opts
        self.pos += 1
        while self.peek() != "}":
            key = self.name()
            self.expect("=")
            opts[key] = self.value()
            if self.peek() == ",":
                self.pos += 1
            elif self.peek() != "}":
                raise self.error("expected ',' or '}' after an option")
        self.pos += 1
        return opts

    def value(self) -> str:
        ch = self.peek()
        start = self.pos
        if ch in "[\"'":
            close = "]" if ch == "[" else ch
            end = self.text.find(close, start + 1)
            if end < 0:
                raise self.error(f"unclosed {ch}")
            self.pos = end + 1
            return self.text[start : end + 1] if ch == "[" else self.text[start + 1 : end]
        while self.pos < len(self.text) and self.text[self.pos] not in ",}":
            self.pos += 1
        return self.text[start : self.pos].strip()

    def element(self) -> list[Step]:
        name = self.name()
        opts = self.options()
        nested = None
        if self.peek() == "(":
            self.pos += 1
            nested = self.pipeline(")")
            self.expect(")")
        if name == "fixed-point":
            if nested is None:
                raise self.error("fixed-point needs a nested pipeline: fixed-point(a,b)")
            unknown = set(opts) - {"max-iterations"}
            if unknown:
                raise EmberError(f"fixed-point has no option '{sorted(unknown)[0]}' (options: max-iterations)")
            return [FixedPoint(tuple(nested), int(opts.get("max-iterations", 8)))]
        if nested is not None:
            raise self.error(f"only fixed-point takes a nested pipeline, not '{name}'")
        named = named_pipelines()
        if name in named:
            if opts:
                raise EmberError(f"named pipeline '{name}' takes no options")
            if name in self.expanding:
                raise EmberError(f"named pipeline '{name}' refers to itself")
            return parse_pipeline(named[name], self.expanding + (name,))
        return [get_pass(name).from_options(opts)]


def named_pipelines() -> dict[str, str]:
    """Named pipelines (``O0``..``O3`` and others) from ``passes/pipelines.py``."""
    try:
        from passes.pipelines import NAMED_PIPELINES
    except ImportError:
        return {}
    return dict(NAMED_PIPELINES)


def parse_pipeline(text: str, _expanding: tuple[str, ...] = ()) -> list[Step]:
    """Parse pipeline text into steps; ``EmberError`` on bad syntax or unknown passes/options."""
    return _PipelineParser(text, _expanding).pipeline()


def pipeline_text(steps: Sequence[Step]) -> str:
    """The text form of ``steps`` (parses back to equal steps)."""
    return ",".join(s.pipeline_text() for s in steps)


# --------------------------------------------------------------------------- running


class PassManager:
    """Runs pipeline steps on a graph with instruments; ``run`` returns whether anything changed."""

    def __init__(
        self, pipeline: str | Sequence[Step] | Step, instruments: Sequence = (), *, verify_each: bool | None = None
    ):
        if isinstance(pipeline, str):
            self.steps = parse_pipeline(pipeline)
        elif isinstance(pipeline, (Pass, FixedPoint)):
            self.steps = [pipeline]
        else:
            self.steps = list(pipeline)
        self.instruments = list(instruments)
        self.verify_each = _VERIFY_EACH.get() if verify_each is None else verify_each
        if self.verify_each:
            from .instruments import VerifyInstrument

            if not any(isinstance(i, VerifyInstrument) for i in self.instruments):
                self.instruments.append(VerifyInstrument())

    @property
    def pipeline_text(self) -> str:
        return pipeline_text(self.steps)

    def run(self, graph: Graph) -> PassResult:
        for inst in self.instruments:
            inst.run_start(graph, self.pipeline_text)
        modified = self._run_steps(self.steps, graph)
        for inst in self.instruments:
            inst.run_end(graph)
        return PassResult(modified)

    def _run_steps(self, steps: Sequence[Step], graph: Graph) -> bool:
        modified = False
        for step in steps:
            if isinstance(step, FixedPoint):
                modified |= self._run_fixed_point(step, graph)
            else:
                modified |= self._run_pass(step, graph)
        return modified

    def _run_fixed_point(self, group: FixedPoint, graph: Graph) -> bool:
        modified = False
        for _ in range(group.max_iterations):
            if not self._run_steps(group.steps, graph):
                break
            modified = True
        return modified

    def _run_pass(self, p: Pass, graph: Graph) -> bool:
        for inst in self.instruments:
            inst.before_pass(p, graph)
        outputs_before = [v.name for v in graph.outputs]
        try:
            result = p(graph)
        except Exception as exc:
            details = [d for inst in self.instruments if (d := inst.pass_failed(p, graph, exc))]
            if isinstance(exc, EmberError):
                exc.details.extend(details)
                raise EmberError(
                    f"pass '{p.name}' failed: {exc.message}",
                    file=exc.file,
                    node=exc.node,
                    op=exc.op,
                    details=exc.details,
                ) from exc
            raise EmberError(f"pass '{p.name}' failed: {type(exc).__name__}: {exc}", details=details) from exc
        if not isinstance(result, PassResult):
            raise EmberError(f"pass '{p.name}' returned {type(result).__name__}, not a PassResult")
        outputs_after = [v.name for v in graph.outputs]
        if outputs_after != outputs_before:  # outputs are sacred: never renamed, dropped or merged
            raise EmberError(
                f"pass '{p.name}' changed the graph outputs from {outputs_before} to {outputs_after} "
                "(a pass must keep every output's name and place; use compiler.rewrite.Rewriter)"
            )
        for inst in self.instruments:
            inst.after_pass(p, graph, result)
        return result.modified


def run_pipeline(graph: Graph, pipeline: str | Sequence[Step] | Step, **kw) -> PassResult:
    """Shorthand for ``PassManager(pipeline, **kw).run(graph)``."""
    return PassManager(pipeline, **kw).run(graph)
