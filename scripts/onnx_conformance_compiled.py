"""Run the ONNX node conformance suite through Ember's COMPILED path and print the pass count.

    python scripts/onnx_conformance_compiled.py                       # all 1,884 cases, 2 processes
    python scripts/onnx_conformance_compiled.py --sample 100 --seed 1 # a random sample of 100 cases
    python scripts/onnx_conformance_compiled.py -k Reduce -v          # matching cases, with reasons
    python scripts/onnx_conformance_compiled.py --jobs 4              # worker processes

Each case is imported with its input shapes pinned from its first data set (the suite's inputs
are static), compiled with ``frontends.onnx.backend.prepare(model, compile=True)`` into a shared
library in a temporary directory, run on every data set and compared with the case's own
``rtol``/``atol`` by the interpreter harness's ``compare``.  A data set whose input shapes differ
from the first one's compiles its own library.  An op that cannot be lowered fails the case at
compile time with an ``EmberError``; it is counted as a failure, never a crash.

Exit status 0 when the pass count meets ``--min`` (scaled to the number of cases run).
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.connection as mp_connection
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (ROOT, os.path.join(ROOT, "tests", "frontends", "onnx")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from conformance import CaseResult, case_op, check_outputs, collect_cases, failed_with, failure_table, to_runtime  # noqa: E402

TOTAL_CASES = 1884  # cases in onnx 1.23's node suite; the bar below is out of this many
PASS_BAR = 1400  # cases required to pass through the compiled path
CASE_TIMEOUT_S = 180  # a case still compiling after this long fails (stuck builds do not stall a run)


class CaseTimeout(Exception):
    """A case ran past ``CASE_TIMEOUT_S``."""


def _input_names(case) -> list[str]:
    init = {t.name for t in case.model.graph.initializer}
    return [i.name for i in case.model.graph.input if i.name not in init]


def run_compiled_case(case, backend=None) -> CaseResult:
    """Compile ``case`` (shapes pinned from its data) and compare every data set's outputs.

    Every model input stays a run-time input of the library, including those that feed shape
    parameters (Reshape's shape, Slice's starts, Resize's scales...): the library computes with
    their values and checks them against its compiled shapes. A data set whose input shapes
    differ from the first one's compiles its own library.
    """
    if backend is None:
        from frontends.onnx import backend
    import numpy as np

    op = case_op(case)
    reps: dict[tuple, object] = {}
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            names = _input_names(case)
            for k, (inputs, expected) in enumerate(case.data_sets):
                feeds = dict(zip(names, (to_runtime(x) for x in inputs)))
                shapes = {n: tuple(int(d) for d in v.shape) for n, v in feeds.items() if isinstance(v, np.ndarray)}
                key = tuple(sorted(shapes.items()))
                if key not in reps:
                    reps[key] = backend.prepare(case.model, compile=True, input_shapes=shapes)
                actual = reps[key].run(feeds)
                failure = check_outputs(case, op, k, expected, actual)
                if failure:
                    return failure
    except Exception as exc:  # a failing case is a data point, not a crash of the harness
        return failed_with(case, op, exc)
    return CaseResult(case.name, op, True)


# ------------------------------------------------------------------ process pool

_CASES: list = []  # the cases a forked worker indexes into (set before the pool forks)


def _on_alarm(signum, frame):
    raise CaseTimeout(f"no result within {CASE_TIMEOUT_S} s")


def _run_index(index: int) -> CaseResult:
    """Worker: run case ``index`` of ``_CASES`` under a wall-clock alarm."""
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(CASE_TIMEOUT_S)
    try:
        return run_compiled_case(_CASES[index])
    except CaseTimeout as exc:
        case = _CASES[index]
        return CaseResult(case.name, case_op(case), False, f"CaseTimeout: {exc}")
    finally:
        signal.alarm(0)


def _worker(conn, tmpdir: str) -> None:
    """Worker process: run the case indices it receives until it receives None.

    Its temporary files (libraries, kernel build folders) go under ``tmpdir``, which the parent
    removes when the worker ends, crashed or not.
    """
    os.environ["TMPDIR"] = tmpdir
    tempfile.tempdir = tmpdir
    while True:
        index = conn.recv()
        if index is None:
            return
        conn.send(_run_index(index))


def run_cases(cases: list, jobs: int = 2, progress=None) -> list[CaseResult]:
    """Run ``cases`` in ``jobs`` forked worker processes; one result per case, in list order.

    A case that kills its worker (a segfault in a kernel or in TVM) fails with the exit code and
    the worker is replaced.  Workers are not daemonic, so codegen may start its kernel-build pool.
    """
    global _CASES
    _CASES = list(cases)
    import frontends.onnx.backend  # noqa: F401  (import once, before forking, so workers start fast)
    from codegen.tvm.registry import supported_ops

    supported_ops()  # loads every lowering module (get_lowering("") found no op, so loaded nothing)
    ctx = multiprocessing.get_context("fork")
    todo = list(range(len(_CASES)))[::-1]
    results: list = [None] * len(_CASES)
    running: dict = {}  # connection -> (process, case index)
    tmpdirs: dict = {}  # process -> its temporary folder

    def start():
        parent, child = ctx.Pipe()
        tmpdir = tempfile.mkdtemp(prefix="ember_conformance_")
        proc = ctx.Process(target=_worker, args=(child, tmpdir), daemon=False)
        proc.start()
        tmpdirs[proc] = tmpdir
        child.close()
        return parent, proc

    def stop(proc) -> None:
        proc.join()
        shutil.rmtree(tmpdirs.pop(proc), ignore_errors=True)

    def feed(conn, proc) -> None:
        if todo:
            index = todo.pop()
            conn.send(index)
            running[conn] = (proc, index)
        else:
            conn.send(None)
            stop(proc)
            conn.close()

    try:
        for _ in range(max(1, min(jobs, len(todo)))):
            feed(*start())
        while running:
            for conn in mp_connection.wait(list(running)):
                proc, index = running.pop(conn)
                try:
                    result = conn.recv()
                except (EOFError, OSError):
                    stop(proc)
                    case = _CASES[index]
                    result = CaseResult(
                        case.name,
                        case_op(case),
                        False,
                        f"WorkerCrashed: exit code {proc.exitcode} while running the case",
                    )
                    conn.close()
                    conn, proc = start()
                results[index] = result
                if progress:
                    progress(result)
                feed(conn, proc)
    finally:  # interrupted: end the workers still running, then remove every worker's folder
        for proc in list(tmpdirs):
            if proc.is_alive():
                proc.kill()
            stop(proc)
    return results


def pick_cases(cases: list, sample: int = 0, seed: int = 0, keyword: str = "") -> list:
    """Cases whose name contains ``keyword``; ``sample`` of them when given; in a ``seed``-shuffled order.

    The shuffled order makes any prefix of a long run (one cut short, or watched with
    ``--progress``) a uniform random sample of the chosen cases.
    """
    chosen = sorted(cases, key=lambda c: c.name)
    if keyword:
        chosen = [c for c in chosen if keyword.lower() in c.name.lower()]
    rng = random.Random(seed)
    if sample and sample < len(chosen):
        return rng.sample(chosen, sample)
    rng.shuffle(chosen)
    return chosen


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", dest="keyword", default="", help="only cases whose name contains this")
    parser.add_argument("--sample", type=int, default=0, help="run a random sample of N cases")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("-v", "--verbose", action="store_true", help="list each failing case and its reason")
    parser.add_argument("--progress", action="store_true", help="print each case as it finishes")
    parser.add_argument("--min", type=int, default=PASS_BAR, help=f"pass count required of all {TOTAL_CASES}")
    args = parser.parse_args(argv)

    start = time.time()
    all_cases = collect_cases()
    cases = pick_cases(all_cases, args.sample, args.seed, args.keyword)

    def show(r: CaseResult) -> None:
        print(f"{'ok  ' if r.ok else 'FAIL'} {r.name}" + ("" if r.ok else f": {r.reason}"), flush=True)

    results = run_cases(cases, args.jobs, show if args.progress else None)
    passed = sum(r.ok for r in results)
    print(failure_table(results, reasons=args.verbose) or "(no failures)")
    print(
        f"\npassed {passed} of {len(results)} ONNX node test cases through the compiled path "
        f"({len(all_cases)} in the suite) in {time.time() - start:.0f} s"
    )
    needed = args.min * len(results) // len(all_cases) if all_cases else 0
    return 0 if passed >= needed else 1


if __name__ == "__main__":
    sys.exit(main())
