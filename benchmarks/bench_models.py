"""Batch-1 latency of Ember vs onnxruntime on ResNet-50, MobileNetV2 and a BERT-base-style encoder.

    python benchmarks/bench_models.py [--models resnet50,mobilenet_v2,bert_base] [--runs 20]

Builds each model with fixed random weights (benchmarks/model_zoo.py), compiles it with Ember, checks
Ember's output against onnxruntime, then measures median latency for 1 and 2 threads, interleaving
the engines run by run so that machine noise hits both alike (each after a pause for the other's
spinning thread pool: ``benchmarks/timing.py``), and prints the ratio to onnxruntime.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _ort_session(model, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _tvm_relax_runner(model, input_name: str):
    """TVM's own Relax default build of ``model`` (untuned), or None when it cannot be built."""
    try:
        import tvm
        from tvm import relax
        from tvm.relax.frontend.onnx import from_onnx

        mod = from_onnx(model, keep_params_in_input=False)
        ex = tvm.compile(mod, tvm.target.Target({"kind": "llvm", "mcpu": "znver4"}))
        vm = relax.VirtualMachine(ex, tvm.cpu())
        config = tvm.get_global_func("runtime.config_threadpool", allow_missing=True)

        def run(x, threads):
            if config is not None:
                config(0, threads)
            vm["main"](tvm.runtime.tensor(x))

        return run
    except Exception as exc:  # report and carry on with the other engines
        print(f"  (TVM Relax default build unavailable: {type(exc).__name__}: {str(exc)[:200]})")
        return None


def bench_model(name: str, runs: int, thread_counts: list[int], workdir: str, tvm_runs: int = 0) -> list[dict]:
    from model_zoo import MODELS

    import compiler
    from compiler.runtime import load

    model = MODELS[name]()
    lib = os.path.join(workdir, f"{name}.so")
    start = time.time()
    result = compiler.compile(model, lib, prefix=name)  # the one driver: O2, codegen-prepare, codegen
    compile_s = time.time() - start
    inp = model.graph.input[0]
    shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    rows = []
    relax_run = _tvm_relax_runner(model, inp.name) if tvm_runs else None
    for threads in thread_counts:
        ember = load(lib, num_threads=threads)
        sess = _ort_session(model, threads)
        out_name = sess.get_outputs()[0].name
        ref = sess.run(None, {inp.name: x})[0]
        got = ember.run({inp.name: x})[out_name]
        err = float(np.abs(got - ref).max() / (np.abs(ref).max() + 1e-12))
        for _ in range(2):  # warm-up
            ember.run({inp.name: x})
            sess.run(None, {inp.name: x})
        from timing import interleaved_times

        feeds = {inp.name: x}
        calls = {"ember": lambda e=ember, f=feeds: e.run(f), "ort": lambda s=sess, f=feeds: s.run(None, f)}
        times = interleaved_times(calls, runs, rotate=False)
        t_ember, t_ort = times["ember"], times["ort"]
        ember.close()
        t_tvm = []
        if relax_run is not None:
            relax_run(x, threads)
            for _ in range(tvm_runs):
                t0 = time.perf_counter()
                relax_run(x, threads)
                t_tvm.append(time.perf_counter() - t0)
        row = {
            "model": name,
            "threads": threads,
            "ember_ms": 1e3 * statistics.median(t_ember),
            "ort_ms": 1e3 * statistics.median(t_ort),
            "ember_min_ms": 1e3 * min(t_ember),
            "ort_min_ms": 1e3 * min(t_ort),
            "rel_err": err,
            "compile_s": compile_s,
            "tvm_ms": 1e3 * statistics.median(t_tvm) if t_tvm else None,
            "arena_mb": result.arena_bytes / 2**20,
            "kernels": result.num_unique_kernels,
        }
        row["ratio"] = row["ember_ms"] / row["ort_ms"]
        rows.append(row)
        tvm_text = f"  tvm-relax {row['tvm_ms']:9.1f} ms" if t_tvm else ""
        print(
            f"{name:13s} threads={threads}  ember {row['ember_ms']:8.2f} ms (min {row['ember_min_ms']:.2f})"
            f"  onnxruntime {row['ort_ms']:8.2f} ms (min {row['ort_min_ms']:.2f}){tvm_text}"
            f"  ratio {row['ratio']:5.2f}x  max rel err {err:.1e}  (compile {compile_s:.0f} s, "
            f"{row['kernels']} kernels, arena {row['arena_mb']:.1f} MiB)",
            flush=True,
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet50,mobilenet_v2,bert_base")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument(
        "--tvm-runs",
        type=int,
        default=0,
        help="also time TVM's untuned Relax build this many times (slow: 45-100x ORT)",
    )
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.models.split(","):
            rows += bench_model(name, args.runs, threads, workdir, args.tvm_runs)
    for t in threads:  # the closing lines: one figure per thread count over every model
        ratios = {r["model"]: r["ratio"] for r in rows if r["threads"] == t}
        worst = max(ratios, key=ratios.get)
        geomean = statistics.geometric_mean(ratios.values())
        print(
            f"threads={t}: Ember / onnxruntime over {len(ratios)} models: geometric mean {geomean:.2f}x, "
            f"worst {ratios[worst]:.2f}x ({worst})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
