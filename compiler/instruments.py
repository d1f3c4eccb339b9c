"""Pass instruments: hooks around every pass a ``PassManager`` runs.

- ``Timing``: wall time per pass; ``report()`` gives a table (slowest first).
- ``PrintIR``: print the IR before/after chosen passes, after every pass, or
  only after passes that changed something.
- ``VerifyInstrument``: run the verifier after each pass; a broken graph becomes
  an ``EmberError`` naming the pass that broke it.
- ``CrashReproducer``: remembers the pipeline's input IR; when a pass throws it
  writes ``<path>`` (IR text, with the pipeline string on a leading
  ``// RUN:`` line, exactly like a FileCheck test) so the crash replays with
  ``ember opt <path> --passes "<pipeline>"``.
- ``PatternStatistics``: counts, per rewrite rule, how often it applied and how
  often (and why) it was tried and failed; ``report()`` gives a table.
"""

from __future__ import annotations

import sys
import time
from collections import Counter, defaultdict
from typing import IO, Iterable

from .diagnostics import EmberError
from .ir.core import Graph
from .passes import Pass, PassResult


class Instrument:
    """Base class: every hook is a no-op."""

    def run_start(self, graph: Graph, pipeline: str) -> None:
        pass

    def before_pass(self, p: Pass, graph: Graph) -> None:
        pass

    def after_pass(self, p: Pass, graph: Graph, result: PassResult) -> None:
        pass

    def pass_failed(self, p: Pass, graph: Graph, exc: Exception) -> str | None:
        """Called when ``p`` raised; may return a line to add to the error's details."""
        return None

    def run_end(self, graph: Graph) -> None:
        pass


class Timing(Instrument):
    """Accumulates wall time and run counts per pass name."""

    def __init__(self):
        self.seconds: Counter[str] = Counter()
        self.runs: Counter[str] = Counter()
        self._start = 0.0

    def before_pass(self, p: Pass, graph: Graph) -> None:
        self._start = time.perf_counter()

    def after_pass(self, p: Pass, graph: Graph, result: PassResult) -> None:
        self.seconds[p.name] += time.perf_counter() - self._start
        self.runs[p.name] += 1

    def report(self) -> str:
        total = sum(self.seconds.values()) or 1e-12
        lines = [f"{'pass':<28} {'runs':>5} {'seconds':>10} {'%':>6}"]
        for name, secs in self.seconds.most_common():
            lines.append(f"{name:<28} {self.runs[name]:>5} {secs:>10.4f} {100 * secs / total:>5.1f}%")
        lines.append(f"{'total':<28} {sum(self.runs.values()):>5} {sum(self.seconds.values()):>10.4f}")
        return "\n".join(lines)


class PrintIR(Instrument):
    """Prints IR around passes: ``before``/``after`` name sets, ``after_all``, or ``after_change``."""

    def __init__(
        self,
        *,
        before: Iterable[str] = (),
        after: Iterable[str] = (),
        after_all: bool = False,
        after_change: bool = False,
        stream: IO[str] | None = None,
    ):
        self.before, self.after = set(before), set(after)
        self.after_all, self.after_change = after_all, after_change
        self.stream = stream

    def _emit(self, title: str, graph: Graph) -> None:
        from .ir.printer import print_ir

        out = self.stream or sys.stdout
        out.write(f"// ----- {title} -----\n{print_ir(graph)}\n")

    def before_pass(self, p: Pass, graph: Graph) -> None:
        if p.name in self.before:
            self._emit(f"IR before {p.pipeline_text()}", graph)

    def after_pass(self, p: Pass, graph: Graph, result: PassResult) -> None:
        if p.name in self.after or self.after_all or (self.after_change and result.modified):
            changed = "" if result.modified else " (no change)"
            self._emit(f"IR after {p.pipeline_text()}{changed}", graph)


class VerifyInstrument(Instrument):
    """Verifies the graph after every pass (and once before the first)."""

    def run_start(self, graph: Graph, pipeline: str) -> None:
        self._check(graph, "the pipeline's input")

    def after_pass(self, p: Pass, graph: Graph, result: PassResult) -> None:
        self._check(graph, f"pass '{p.name}'", p)

    @staticmethod
    def _check(graph: Graph, what: str, p: Pass | None = None) -> None:
        from .ir.verifier import VerifyError, verify

        try:
            verify(graph)
        except VerifyError as exc:
            title = f"IR is invalid after {what}" if p is not None else f"{what} is invalid IR"
            raise EmberError(title, details=exc.problems) from exc


class CrashReproducer(Instrument):
    """On a failing pass, writes the pipeline's input IR and pipeline string to ``path``."""

    def __init__(self, path: str):
        self.path = path
        self.pipeline = ""
        self._input_text = ""
        self._resources: dict = {}

    def run_start(self, graph: Graph, pipeline: str) -> None:
        from .ir.printer import print_ir

        self.pipeline = pipeline
        self._resources = {}
        self._input_text = print_ir(graph, resources=self._resources)

    def pass_failed(self, p: Pass, graph: Graph, exc: Exception) -> str | None:
        import numpy as np

        with open(self.path, "w") as f:
            f.write(f"// RUN: {self.pipeline}\n// crashed in pass '{p.name}': {type(exc).__name__}\n")
            f.write(self._input_text + "\n")
        if self._resources:
            np.savez(self.path + ".npz", **self._resources)
        return f'reproducer written to {self.path} (replay: ember opt {self.path} --passes "{self.pipeline}")'


class PatternStatistics(Instrument):
    """Per-rule counts of applications and failed attempts (with the most common reasons)."""

    def __init__(self):
        from .rewrite.driver import RewriteObserver

        stats = self
        self.applied: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.reasons: dict[str, Counter[str]] = defaultdict(Counter)

        class _Observer(RewriteObserver):
            def rule_applied(self, rule, node) -> None:
                stats.applied[rule.name] += 1

            def rule_failed(self, rule, node, reason: str) -> None:
                stats.failed[rule.name] += 1
                stats.reasons[rule.name][reason] += 1

        self._observer = _Observer()
        self._context = None

    def before_pass(self, p: Pass, graph: Graph) -> None:
        from .rewrite.driver import observing

        self._context = observing(self._observer)
        self._context.__enter__()

    def after_pass(self, p: Pass, graph: Graph, result: PassResult) -> None:
        self._leave()

    def pass_failed(self, p: Pass, graph: Graph, exc: Exception) -> str | None:
        self._leave()
        return None

    def _leave(self) -> None:
        if self._context is not None:
            self._context.__exit__(None, None, None)
            self._context = None

    def report(self) -> str:
        names = sorted(set(self.applied) | set(self.failed), key=lambda n: (-self.applied[n], n))
        lines = [f"{'rule':<36} {'applied':>8} {'failed':>8}  most common failure"]
        for n in names:
            common = self.reasons[n].most_common(1)
            why = common[0][0] if common else ""
            lines.append(f"{n:<36} {self.applied[n]:>8} {self.failed[n]:>8}  {why[:100]}")
        return "\n".join(lines)
