"""Calibration: run a model on sample inputs and find the range each watched activation needs.

Three ways to turn what was seen into a range ``(lo, hi)``:

- ``minmax``: the smallest and largest value seen over all samples;
- ``percentile``: clip the magnitude at the given percentile (99.999 by default) of a histogram of
  ``|x|`` over all samples, then intersect with the min/max range (a few outliers no longer stretch
  the scale);
- ``entropy``: TensorRT's threshold search.  A 2048-bin histogram of ``|x|`` is the reference
  distribution P; for each candidate threshold (bin 128 to 2048) the bins past it fold into the last
  one, P is merged into 128 levels and spread back (Q), and the threshold with the least
  KL(P || Q) wins.

Samples are run through the interpreter, which records the watched values as it goes, or through
a library compiled with the watched values as its outputs (``library_runner``); the histogram
methods take two sweeps (ranges first, then histograms over fixed bins).  A progress bar goes to
stderr.
"""

from __future__ import annotations

import sys
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from ..diagnostics import EmberError
from ..ir.core import Graph, Node
from ..ir.interpreter import Interpreter

METHODS = ("minmax", "percentile", "entropy")
HISTOGRAM_BINS = 2048
QUANTIZED_LEVELS = 128


class _Recorder(Interpreter):
    """An interpreter that hands every watched result to ``observe(name, array)``."""

    def __init__(self, watched: set[str], observe):
        super().__init__(check_types=False)
        self.watched, self.observe = watched, observe

    def run_node(self, node: Node) -> None:
        super().run_node(node)
        for r in node.results:
            if r.name in self.watched:
                self.observe(r.name, self._env[id(r)])


Runner = Callable[[list[np.ndarray]], dict[str, np.ndarray]]  # positional inputs -> watched values


def interpreter_runner(graph: Graph, watched: set[str]) -> Runner:
    """Run samples through the interpreter, keeping the watched values."""

    def run(args):
        seen: dict[str, np.ndarray] = {}
        _Recorder(watched, seen.__setitem__).run_graph(graph, args)
        return seen

    return run


def library_runner(graph: Graph, watched: set[str], path: str | None = None) -> Runner:
    """Compile a copy of ``graph`` whose outputs are the watched values into a shared library
    (``path``, or a temporary file) and run samples through it: faster than the interpreter once
    compiled, for many samples or large models."""
    import tempfile

    from ..driver import compile_model
    from ..runtime import load
    from ..testing.assertions import clone_graph

    copy = clone_graph(graph)
    names = [n for n in sorted(watched) if copy.find(n) is not None and copy.find(n).producer is not None]
    copy.outputs = [copy.find(n) for n in names]
    if path is None:
        path = tempfile.mkdtemp(prefix="ember-calibration-") + "/calibration.so"
    compile_model(copy, path)
    model = load(path)
    params = [p.name for p in graph.params]

    def run(args):
        return dict(zip(names, model.run_list(dict(zip(params, args)))))

    return run


def _sweep(graph: Graph, samples, watched: set[str], observe, label: str, progress, runner: Runner):
    params = {p.name: p for p in graph.params}
    for i, sample in enumerate(samples):
        missing = [name for name in params if name not in sample]
        if missing:
            raise EmberError(f"calibration sample {i} lacks input(s) {', '.join(missing)}")
        args = [np.asarray(sample[name], dtype=p.type.dtype.np) for name, p in params.items()]
        for name, a in zip(params, args):
            if name in watched:
                observe(name, a)
        for name, value in runner(args).items():
            observe(name, np.asarray(value))
        if progress:
            progress_bar(label, i + 1, len(samples))


def progress_bar(label: str, done: int, total: int, width: int = 30, stream=None) -> None:
    """``label [#####.....] done/total`` on one stderr line, redrawn in place."""
    stream = stream or sys.stderr
    filled = width * done // max(total, 1)
    stream.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done >= total:
        stream.write("\n")
    stream.flush()


def calibrate(
    graph: Graph,
    samples: Sequence[Mapping[str, np.ndarray]],
    values: Iterable[str],
    *,
    method: str = "minmax",
    percentile: float = 99.999,
    progress: bool = True,
    runner: Runner | None = None,
) -> dict[str, tuple[float, float]]:
    """The range of each named value of ``graph`` over ``samples`` (each a dict by input name);
    ``runner`` runs them (default: the interpreter; ``library_runner`` compiles them first)."""
    if method not in METHODS:
        raise EmberError(f"unknown calibration method '{method}' (methods: {', '.join(METHODS)})")
    if not samples:
        raise EmberError("calibration needs at least one sample")
    watched = set(values)
    runner = runner or interpreter_runner(graph, watched)
    lows: dict[str, float] = {}
    highs: dict[str, float] = {}

    def observe_range(name, a):
        if a.size:
            lows[name] = min(lows.get(name, np.inf), float(np.min(a)))
            highs[name] = max(highs.get(name, -np.inf), float(np.max(a)))

    _sweep(graph, samples, watched, observe_range, "calibrating", progress, runner)
    ranges = {name: (lows[name], highs[name]) for name in lows}
    if method == "minmax":
        return ranges
    hists = {name: np.zeros(HISTOGRAM_BINS, dtype=np.float64) for name in ranges}
    amax = {name: max(abs(lo), abs(hi)) for name, (lo, hi) in ranges.items()}

    def observe_histogram(name, a):
        if name in hists and amax[name] > 0:
            hists[name] += np.histogram(np.abs(a), bins=HISTOGRAM_BINS, range=(0.0, amax[name]))[0]

    _sweep(graph, samples, watched, observe_histogram, f"histograms ({method})", progress, runner)
    out = {}
    for name, (lo, hi) in ranges.items():
        if amax[name] == 0:
            out[name] = (lo, hi)
            continue
        if method == "percentile":
            threshold = percentile_threshold(hists[name], amax[name], percentile)
        else:
            threshold = entropy_threshold(hists[name], amax[name])
        out[name] = (max(lo, -threshold), min(hi, threshold))
    return out


def percentile_threshold(hist: np.ndarray, amax: float, percentile: float) -> float:
    """The magnitude below which ``percentile`` % of the histogram's mass lies (a bin's upper edge)."""
    cdf = np.cumsum(hist) / max(hist.sum(), 1)
    index = int(np.searchsorted(cdf, percentile / 100.0))
    return amax * min(index + 1, len(hist)) / len(hist)


def entropy_threshold(hist: np.ndarray, amax: float, levels: int = QUANTIZED_LEVELS) -> float:
    """TensorRT's KL-divergence threshold on a histogram of ``|x|`` over ``[0, amax]``."""
    bins = len(hist)
    if hist.sum() == 0:
        return amax
    best, best_i = np.inf, bins
    for i in range(levels, bins + 1):
        reference = hist[:i].copy()
        reference[-1] += hist[i:].sum()  # the clipped outliers land in the last kept bin
        kept = hist[:i]
        starts = (np.arange(levels) * i) // levels  # i bins merged into `levels` quantized levels
        level_of_bin = np.repeat(np.arange(levels), np.diff(np.append(starts, i)))
        nonzero = kept != 0
        sums = np.add.reduceat(kept, starts)
        counts = np.add.reduceat(nonzero.astype(np.float64), starts)
        per_bin = np.divide(sums, counts, out=np.zeros(levels), where=counts > 0)[level_of_bin]
        candidate = np.where(nonzero, per_bin, 0.0)  # each level spread over the bins that had mass
        divergence = kl_divergence(reference, candidate)
        if divergence < best:
            best, best_i = divergence, i
    return amax * best_i / bins


def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """KL(P || Q) of two unnormalised histograms; a bin where P has mass and Q none costs infinity."""
    p = p / p.sum()
    q_sum = q.sum()
    if q_sum == 0:
        return np.inf
    q = q / q_sum
    mask = p > 0
    if np.any(q[mask] == 0):
        return np.inf
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))
