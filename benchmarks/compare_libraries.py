"""Latency of two builds of one model, alternated run by run (e.g. before and after a kernel change).

    python benchmarks/compare_libraries.py old/resnet50.so new/resnet50.so --threads 1,2 --runs 15

Both libraries get the same random input; the medians and their ratio (new / old) are printed per
thread count, and the outputs must agree.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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
    args = parser.parse_args()
    from compiler.runtime import load

    for threads in (int(t) for t in args.threads.split(",")):
        old, new = load(args.old, num_threads=threads), load(args.new, num_threads=threads)
        rng = np.random.default_rng(0)
        feeds = {i.name: rng.standard_normal(i.shape).astype(i.dtype) for i in old.inputs}
        for name, value in old.run(feeds).items():
            np.testing.assert_allclose(new.run(feeds)[name], value, rtol=1e-4, atol=args.atol)
        times = {"old": [], "new": []}
        for _ in range(args.runs):
            for key, lib in (("old", old), ("new", new)):
                start = time.perf_counter()
                lib.run(feeds)
                times[key].append(time.perf_counter() - start)
        a, b = (1e3 * statistics.median(times[k]) for k in ("old", "new"))
        print(f"threads={threads}: old {a:.2f} ms, new {b:.2f} ms, new/old {b / a:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
