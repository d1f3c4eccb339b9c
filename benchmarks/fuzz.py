"""Long mutation-fuzzing run of Ember's frontends: a table of outcomes, seeded and repeatable.

    PYTHONPATH=$PWD python3 benchmarks/fuzz.py --onnx 10000 --prototxt 2000
    PYTHONPATH=$PWD python3 benchmarks/fuzz.py --onnx 2000 --interpret --seed 7 -v

Case ``i`` of a kind mutates a seed model with ``random.Random(f"{seed}:{kind}:{i}")`` (the
mutators and seeds of ``tests/fuzz/mutations.py``), so any case reruns alone with
``--only onnx:123``.  Cases run in a worker process: a case past ``--timeout`` seconds is a
hang (the worker is replaced), a worker that dies is a crash.  Outcomes: accepted, refused
cleanly (an EmberError naming the file, and the op wherever it names a node), unnamed (an
EmberError without them), raw traceback, hang, crash.  ``--interpret`` also runs each
accepted graph through the interpreter on random inputs.  ``--ort`` loads each accepted ONNX
model in onnxruntime too and counts the ones it refuses, by class of onnxruntime's reason
(``ORT_CLASSES``): ``ort-documented`` where Ember accepts the model on purpose (an intended
extension or an onnxruntime limitation, each described in docs/robustness.md), ``ort-refuses``
for the rest (Ember is more lenient than it should be).  Exit status 1 when any case is a raw
traceback, unnamed, a hang or a crash.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import os
import random
import re
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests", "fuzz")]

import mutations  # noqa: E402

KINDS = ("onnx", "prototxt")
BAD = ("unnamed", "traceback", "hang", "crash")


def make_case(kind: str, seed: int, index: int):
    """(name of the seed model, mutated data, mutations applied) of case ``index``."""
    rnd = random.Random(f"{seed}:{kind}:{index}")
    seeds = SEEDS[kind]
    name = rnd.choice(sorted(seeds))
    mutate = mutations.mutate_onnx if kind == "onnx" else mutations.mutate_prototxt
    data, applied = mutate(seeds[name], rnd)
    return name, data, applied


SEEDS = {"onnx": mutations.onnx_seeds(), "prototxt": mutations.prototxt_seeds()}


# (class, pattern in onnxruntime's reason, why Ember accepts it on purpose or None); first match wins
ORT_CLASSES = [
    (
        "IR < 4 initializer not listed as a graph input",
        r"initializer_arg was false",
        "intended extension: an initializer is a constant at any IR version",
    ),
    (
        "onnxruntime's shape inference cannot read external data",
        r"Cannot parse data from external tensors",
        "onnxruntime limitation: the model is valid and Ember reads the data",
    ),
    ("attribute outside its enum", r"StringTo\w+Mode|Unknown value for", None),
    ("element type UNDEFINED or unknown", r"Invalid tensor data type", None),
    ("Loop body types", r"Op \(Loop\).*element type mismatch", None),
    ("negative or overflowing inferred dims", r"Dimension mismatch in unification|Integer overflow while", None),
]


def ort_class(reason: str) -> tuple[str, str | None]:
    """(class, why Ember accepts it on purpose or None) of onnxruntime's refusal ``reason``."""
    for name, pattern, documented in ORT_CLASSES:
        if re.search(pattern, reason):
            return name, documented
    text = re.sub(r"/tmp/\S+|\d+", "N", reason.split("failed:")[-1]).strip()
    return f"other: {text[:90]}", None


def ort_refuses(path: str) -> str:
    """onnxruntime's reason for refusing the model file at ``path`` ("" when it loads it)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4
    try:
        ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc)[:240]}"
    return ""


def worker(conn, seed: int, soft_seconds: float, interpret: bool, ort: bool) -> None:
    folder = tempfile.mkdtemp(prefix="ember_fuzz_")
    while True:
        job = conn.recv()
        if job is None:
            return
        kind, index = job
        name, data, applied = make_case(kind, seed, index)
        outcome = mutations.run_case(kind, data, folder, seconds=soft_seconds, interpret=interpret)
        if ort and kind == "onnx" and outcome.kind == "accepted":
            reason = ort_refuses(os.path.join(folder, "fuzz.onnx"))
            if reason:
                _, documented = ort_class(reason)
                outcome = mutations.Outcome("ort-documented" if documented else "ort-refuses", reason)
        conn.send((outcome.kind, outcome.detail, name, applied))


class Runner:
    """One worker process at a time; replaced after a hang or a crash."""

    def __init__(self, seed: int, timeout: float, interpret: bool, ort: bool = False):
        self.args = (seed, timeout, interpret, ort)
        self.timeout = timeout
        self.ctx = mp.get_context("fork")
        self.proc = None

    def start(self):
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=worker, args=(child, *self.args), daemon=True)
        self.proc.start()

    def run(self, kind: str, index: int):
        if self.proc is None or not self.proc.is_alive():
            self.start()
        self.conn.send((kind, index))
        # the worker's own alarm fires at ``timeout``; a case stuck in C code gets twice that
        if self.conn.poll(2 * self.timeout + 5):
            try:
                return self.conn.recv()
            except EOFError:
                pass
        self.proc.join(2)  # a worker that died is reaped here: its exit code tells a crash from a hang
        code = self.proc.exitcode
        self.stop(kill=True)
        if code is None:
            return ("hang", f"no answer in {2 * self.timeout + 5:.0f} s (killed)", "?", [])
        return ("crash", f"worker exit code {code}", "?", [])

    def stop(self, kill: bool = False):
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            self.conn.send(None)
        self.proc.join(5)
        self.proc = None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", type=int, default=1000, help="number of mutated ONNX models")
    parser.add_argument("--prototxt", type=int, default=200, help="number of mutated prototxts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per case before it is a hang")
    parser.add_argument("--interpret", action="store_true", help="also interpret accepted graphs")
    parser.add_argument("--ort", action="store_true", help="count accepted ONNX models onnxruntime refuses")
    parser.add_argument("--only", default="", help="one case, e.g. onnx:123 (prints its outcome in full)")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every bad case")
    args = parser.parse_args(argv)

    runner = Runner(args.seed, args.timeout, args.interpret, args.ort)
    if args.only:
        kind, index = args.only.split(":")
        name, _, applied = make_case(kind, args.seed, int(index))
        outcome = runner.run(kind, int(index))
        runner.stop()
        print(f"{kind}:{index} seed model {name}, mutations {applied}: {outcome[0]}\n{outcome[1]}")
        return 1 if outcome[0] in BAD else 0

    counts = {kind: collections.Counter() for kind in KINDS}
    examples: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    ort_classes: collections.Counter = collections.Counter()
    start = time.time()
    for kind, total in (("onnx", args.onnx), ("prototxt", args.prototxt)):
        for index in range(total):
            outcome, detail, name, applied = runner.run(kind, index)
            counts[kind][outcome] += 1
            if outcome in BAD or outcome == "ort-refuses":
                examples[(kind, outcome)].append(f"{kind}:{index} ({name}, {'+'.join(applied)}): {detail}")
            if outcome.startswith("ort-"):
                ort_classes[ort_class(detail)] += 1
    runner.stop()
    elapsed = time.time() - start

    columns = ("accepted", "refused", "unnamed", "traceback", "hang", "crash")
    columns += ("ort-refuses", "ort-documented") if args.ort else ()
    print(f"{'kind':<10}{'cases':>8}" + "".join(f"{c:>15}" for c in columns))
    for kind in KINDS:
        c = counts[kind]
        print(f"{kind:<10}{sum(c.values()):>8}" + "".join(f"{c[col]:>15}" for col in columns))
    print(f"\nseed {args.seed}, interpret={args.interpret}, {elapsed:.0f} s")
    if ort_classes:
        print("\naccepted but onnxruntime refuses, by class:")
        for (name, documented), count in ort_classes.most_common():
            print(f"  {count:>6}  {name}" + (f"  (documented: {documented})" if documented else ""))
    for (kind, outcome), lines in sorted(examples.items()):
        print(f"\n{kind} {outcome}: {len(lines)}")
        for line in lines if args.verbose else lines[:10]:
            print(f"  {line}")
    return 1 if any(outcome in BAD for _, outcome in examples) else 0


if __name__ == "__main__":
    sys.exit(main())
