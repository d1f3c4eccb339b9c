"""Latency of two builds of one model, alternated run by run (e.g. before and after a kernel change).

    python benchmarks/compare_libraries.py old/resnet50.so new/resnet50.so --threads 1,2 --runs 15

Both libraries get the same random input; the medians and the median of the per-round ratios (new
/ old) are printed per thread count, and the outputs must agree. Each timed run follows a pause
(``--settle-ms``) and one untimed call, and the library that goes first alternates
(``timing.interleaved_times``): an Ember library's idle workers spin for 5 ms after a run
(``EMBER_SPIN_US``), and at 2 threads on 2 cores whatever ran next shared them. Timed back to back,
one library against a copy of itself measured 1.10 at 2 threads. At 2 threads and more the ratio is
also given over the rounds whose cores were near and far apart (``core_latency.py``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from core_latency import NEAR_NS, round_trip_ns  # noqa: E402
from core_latency import available as core_latency_available  # noqa: E402
from timing import interleaved_times  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--atol",
        type=float,
        default=1e-5,
        help="largest difference allowed (a quantized model's rounding may move by a step)",
    )
    parser.add_argument("--settle-ms", type=float, default=50.0, help="pause before each timed run")
    args = parser.parse_args()
    from compiler.runtime import load

    for threads in (int(t) for t in args.threads.split(",")):
        old, new = load(args.old, num_threads=threads), load(args.new, num_threads=threads)
        rng = np.random.default_rng(0)
        feeds = {i.name: rng.standard_normal(i.shape).astype(i.dtype) for i in old.inputs}
        for name, value in old.run(feeds).items():
            np.testing.assert_allclose(new.run(feeds)[name], value, rtol=1e-4, atol=args.atol)
        calls = {key: (lambda lib=lib, f=feeds: lib.run(f)) for key, lib in (("old", old), ("new", new))}
        core_ns: list[float] = []
        probe = None
        if threads > 1 and core_latency_available():

            def probe(found=core_ns):
                found.append(round_trip_ns())

        times = interleaved_times(calls, args.runs, settle_s=args.settle_ms / 1e3, before_round=probe)
        a, b = (1e3 * statistics.median(times[k]) for k in ("old", "new"))
        ratios = [n / o for o, n in zip(times["old"], times["new"])]
        line = f"threads={threads}: old {a:.2f} ms, new {b:.2f} ms, new/old {statistics.median(ratios):.3f}"
        for near, label in ((True, "cores near"), (False, "far")):  # see core_latency.py
            kept = [r for r, ns in zip(ratios, core_ns) if (ns < NEAR_NS) == near]
            if kept:
                line += f"; {label} {statistics.median(kept):.3f} ({len(kept)} rounds)"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
