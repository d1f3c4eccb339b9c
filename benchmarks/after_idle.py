"""Latency in a tight loop against latency after an idle spell, Ember beside onnxruntime.

    python benchmarks/after_idle.py MODEL.onnx --library MODEL.so --threads 2

Times ``--loop`` runs back to back, then ``--rounds`` runs each after a ``--pause`` of sleep and
one untimed run (``benchmarks/zoo.py``'s procedure), then the same with three untimed runs, and
prints the shortest and median of each, for the Ember library and for onnxruntime on the model.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def measure(run, loop: int, rounds: int, pause: float) -> dict[str, list[float]]:
    def timed() -> float:
        start = time.perf_counter()
        run()
        return time.perf_counter() - start

    for _ in range(20):
        run()
    found = {"tight loop": [timed() for _ in range(loop)], "pause + 1 run": [], "pause + 3 runs": []}
    for warm, key in ((1, "pause + 1 run"), (3, "pause + 3 runs")):
        for _ in range(rounds):
            time.sleep(pause)
            for _ in range(warm):
                run()
            found[key].append(timed())
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--library", required=True, help="the model compiled by ember compile")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--loop", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--pause", type=float, default=0.2)
    args = ap.parse_args()
    import onnxruntime

    from compiler.runtime import load

    lib = load(args.library, num_threads=args.threads)
    feeds = {i.name: np.random.default_rng(0).random(i.shape).astype(i.dtype) for i in lib.inputs}
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = onnxruntime.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    for who, run in (("Ember", lambda: lib.run(feeds)), ("onnxruntime", lambda: session.run(None, feeds))):
        for key, times in measure(run, args.loop, args.rounds, args.pause).items():
            print(f"{who:12s} {key:15s} min {min(times) * 1e3:7.2f} ms  median {np.median(times) * 1e3:7.2f} ms")


if __name__ == "__main__":
    main()
