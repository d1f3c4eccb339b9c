"""Interleaved timing of several runtimes in one process, fair to each of them.

onnxruntime's intra-op thread pool (and OpenVINO's TBB arena) keeps its workers spinning for tens to
hundreds of milliseconds after a run returns. Timed back to back, whatever runs next shares its cores
with those spinners: at 2 threads on this 2-core machine, Ember's ResNet-50 measured 57 ms right after
an onnxruntime run and 28 ms alone, while onnxruntime itself ran at 20.6 ms either way (its pool
spins only while it is idle). So every timed run here is preceded by a pause (``settle_s``, 0.2 s by
default; 0.05 s was measured too short for onnxruntime 1.32) in which the previous runtime's threads
go back to sleep. The pause itself costs a cold start (caches and clocks after idling: a 0.17 ms
onnxruntime Softmax took 0.35 ms after 0.2 s of sleep), so one untimed call follows it before the
timed one. Each runtime is then measured as it runs alone and warm, with its default settings, and
the rounds still interleave so that a burst of machine load hits every runtime alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable

SETTLE_S = 0.2


def interleaved_times(
    runners: dict[str, Callable[[], object]],
    rounds: int,
    settle_s: float = SETTLE_S,
    rotate: bool = True,
    before_round: Callable[[], object] | None = None,
) -> dict[str, list[float]]:
    """Seconds per call of each runner, ``rounds`` calls each, one per round.

    Each round calls every runner twice, after a ``settle_s`` pause, and times the second call; with
    ``rotate`` the runner that goes first changes from round to round. ``before_round`` runs at the
    start of each round (the zoo measures the cores' distance there)."""
    order = list(runners)
    times: dict[str, list[float]] = {name: [] for name in order}
    for r in range(rounds):
        if before_round is not None:
            before_round()
        shift = r % len(order) if rotate and order else 0
        for name in order[shift:] + order[:shift]:
            if settle_s > 0:
                time.sleep(settle_s)
                runners[name]()  # warm again after the pause
            start = time.perf_counter()
            runners[name]()
            times[name].append(time.perf_counter() - start)
    return times


def ember_and_onnxruntime_calls(
    libraries: dict[str, str], onnx_model: str, ort_name: str, feed: dict, threads: int
) -> dict[str, Callable[[], object]]:
    """One call per Ember library (loaded with ``threads`` threads) and one onnxruntime session of
    ``onnx_model`` (``threads`` intra-op threads, named ``ort_name``), each running ``feed``."""
    import onnxruntime as ort

    from compiler.runtime import load

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(onnx_model, opts, providers=["CPUExecutionProvider"])
    models = {name: load(path, num_threads=threads) for name, path in libraries.items()}
    calls: dict[str, Callable[[], object]] = {name: (lambda m=m: m.run(feed)) for name, m in models.items()}
    calls[ort_name] = lambda: session.run(None, feed)
    return calls


def median_ms(runners: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Each runner's median milliseconds over ``rounds`` interleaved rounds (``interleaved_times``)."""
    import statistics

    return {name: 1e3 * statistics.median(t) for name, t in interleaved_times(runners, rounds, rotate=False).items()}
