"""The benchmark zoo: Ember vs onnxruntime vs OpenVINO (CPU, f32) on 14 architectures, batch 1.

    python benchmarks/zoo.py [--models resnet50,crnn] [--threads 1,2] [--rounds 10] [--profile]

Needs the ``bench`` extra (torch, torchvision, onnxscript, openvino).  Each model is exported once
to the cache (``benchmarks/zoo_models.py``), compiled with Ember's one driver (``compiler.compile``),
then for each thread count the three runtimes are timed interleaved round by round, so machine
load hits all three alike, each after a pause that lets the previous one's spinning thread pool go
idle (``benchmarks/timing.py``).  The table gives each runtime's median latency, its ratio to
onnxruntime (median of the per-round ratios), Ember's GFLOP/s and share of the FMA peak (FLOPs as
Ember's ops count them), Ember's compile time and its max abs error against onnxruntime.  A model
that fails to export, compile, run or match is reported in the error column; the run goes on.
``--profile`` adds each model's three slowest Ember kernels (``EMBER_PROFILE=1``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_models import _ort_session  # noqa: E402  (one way to make an onnxruntime session)
from core_latency import available as core_latency_available  # noqa: E402
from core_latency import round_trip_ns  # noqa: E402
from timing import SETTLE_S, interleaved_times  # noqa: E402
from zoo_models import ZooModel, cache_dir, export, select  # noqa: E402
from zoo_report import Row, format_table, kernel_kinds, summary, top_kernels  # noqa: E402

TOLERANCE = 1e-3  # max abs error allowed, relative to the output's largest magnitude (plus ABS_FLOOR)
ABS_FLOOR = 1e-5


def _openvino_runner(path: str, threads: int):
    import openvino as ov

    compiled = ov.Core().compile_model(
        path,
        "CPU",
        {
            "INFERENCE_PRECISION_HINT": "f32",  # the CPU plugin's default here is bf16 (lossy)
            "INFERENCE_NUM_THREADS": threads,
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
        },
    )
    request = compiled.create_infer_request()

    def run(x):
        request.infer({0: x})
        return request.get_output_tensor(0).data

    return run


@contextlib.contextmanager
def _stderr_to(path: str):
    """Send the process's file descriptor 2 (C code's stderr included) to ``path`` for a while."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "w") as f:
        os.dup2(f.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def profile_kernels(lib: str, x: np.ndarray, input_name: str, threads: int, runs: int = 3) -> str:
    """The three slowest kernel calls of ``runs`` Ember runs and the three costliest kinds of kernel, as one line."""
    from compiler.runtime import load

    os.environ["EMBER_PROFILE"] = "1"
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as log:
        try:
            with _stderr_to(log.name):
                model = load(lib, num_threads=threads)
                for _ in range(runs):
                    model.run({input_name: x})
                model.close()  # prints the profile
        finally:
            del os.environ["EMBER_PROFILE"]
        text = log.read()
    calls = "; ".join(f"{ms:.1f} ms {share:.0f}% {label}" for ms, share, label in top_kernels(text))
    kinds = ", ".join(f"{kind} {share:.0f}%" for _, share, kind in kernel_kinds(text))
    return f"{calls}  [by kind: {kinds}]"


def bench_model(
    spec: ZooModel,
    thread_counts: list[int],
    rounds: int,
    workdir: str,
    profile: bool,
    peak_per_core: float = 0.0,
    settle_s: float = SETTLE_S,
) -> list[Row]:
    import onnx

    import compiler
    from compiler.runtime import load

    rows = [Row(spec.name, t, peak_per_core=peak_per_core) for t in thread_counts]

    def fail(what: str, exc: BaseException, runtime: str | None = None, only: Row | None = None):
        message = f"{what}: {type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
        for row in [only] if only else rows:
            row.errors.append(message)
            if runtime:
                row.times.pop(runtime, None)
        print(f"  {spec.name}: {message}", flush=True)

    try:
        path = export(spec)
    except Exception as exc:
        fail("export", exc)
        return rows
    model = onnx.load(path)
    input_name = model.graph.input[0].name
    x = np.random.default_rng(0).standard_normal(spec.input_shape).astype(np.float32)
    lib = os.path.join(workdir, f"{spec.name}.so")
    start = time.perf_counter()
    try:
        result = compiler.compile(model, lib, prefix=spec.name.replace("-", "_"))
        compile_s = time.perf_counter() - start
        flops = int(result.stats.get("flops", 0))
    except Exception as exc:
        fail("Ember compile", exc)
        lib, compile_s, flops = None, None, 0
    for row in rows:
        row.compile_s, row.flops = compile_s, flops
        runners = {}
        try:
            sess = _ort_session(model, row.threads)
            runners["ort"] = lambda x, s=sess: s.run(None, {input_name: x})[0]
        except Exception as exc:
            fail("onnxruntime", exc, only=row)
        if lib:
            try:
                ember = load(lib, num_threads=row.threads)
                runners["ember"] = lambda x, m=ember: m.run_list({input_name: x})[0]
            except Exception as exc:
                fail("Ember load", exc, only=row)
        try:
            runners["openvino"] = _openvino_runner(path, row.threads)
        except Exception as exc:
            fail("OpenVINO", exc, only=row)
        outputs = {}
        for name, run in list(runners.items()):  # check and warm up each
            try:
                outputs[name] = np.asarray(run(x), dtype=np.float64)
                run(x)
            except Exception as exc:
                fail(f"{name} run", exc, only=row)
                del runners[name]
        if "ember" in outputs and "ort" in outputs:
            ref, got = outputs["ort"], outputs["ember"]
            if got.shape != ref.shape:
                row.errors.append(f"Ember output shape {got.shape} != onnxruntime's {ref.shape}")
            else:
                row.max_abs_err = float(np.abs(got - ref).max())
                row.ref_max = float(np.abs(ref).max())
                if not row.max_abs_err <= TOLERANCE * row.ref_max + ABS_FLOOR:
                    row.errors.append("Ember mismatch vs onnxruntime")
        calls = {name: (lambda run=run: run(x)) for name, run in runners.items()}
        probe = None
        if row.threads > 1 and core_latency_available():

            def probe(row=row):
                row.core_ns.append(round_trip_ns())

        row.times = interleaved_times(calls, rounds, settle_s, before_round=probe)
        if "ember" in runners:
            ember.close()
            if profile:
                try:
                    row.hotspots = profile_kernels(lib, x, input_name, row.threads)
                except Exception as exc:
                    fail("profile", exc, only=row)
        print(format_table([row]).splitlines()[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated names (default: the whole zoo)")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--profile", action="store_true", help="add Ember's three slowest kernels per model")
    parser.add_argument(
        "--settle-ms",
        type=float,
        default=1e3 * SETTLE_S,
        help="pause before each timed run, for the previous runtime's spinning threads to go idle",
    )
    args = parser.parse_args(argv)
    models = select(args.models)
    threads = [int(t) for t in args.threads.split(",")]
    from compiler.fma_peak import measure_fma_peak

    peak = measure_fma_peak()
    print(
        f"{len(models)} models, threads {threads}, {args.rounds} rounds; ONNX cache {cache_dir()}; "
        f"measured f32 FMA peak {peak:.0f} GFLOP/s per core (compiler.fma_peak)",
        flush=True,
    )
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="ember_zoo_") as workdir:
        for spec in models:
            try:
                settle_s = args.settle_ms / 1e3
                rows += bench_model(spec, threads, args.rounds, workdir, args.profile, peak, settle_s)
            except Exception as exc:  # a bug in one model's measurement must not lose the others
                traceback.print_exc()
                error = f"benchmark: {type(exc).__name__}: {exc}"
                rows += [Row(spec.name, t, peak_per_core=peak, errors=[error]) for t in threads]
    print()
    print(format_table(rows))
    print()
    for line in summary(rows):
        print(line)
    if args.profile:
        print("\nEmber's three slowest kernels (EMBER_PROFILE=1):")
        for row in rows:
            print(f"  {row.model} threads={row.threads}: {row.hotspots or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
