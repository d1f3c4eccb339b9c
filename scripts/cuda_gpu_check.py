"""Run CUDA libraries on a GPU: outputs against onnxruntime-CPU, latency against onnxruntime-gpu.

Two steps, so that the slow part (nvcc) runs on any machine and the GPU machine only runs:

    # anywhere (no GPU needed): compile the models into DIR, with the ONNX files beside them
    PYTHONPATH=$PWD python3 scripts/cuda_gpu_check.py compile --arch sm_90 --dir /tmp/cuda_libs \
        --models resnet50 mobilenet_v2 bert_base squeezenet
    # on the GPU machine: load each library, compare, time; prints a Markdown table
    PYTHONPATH=$PWD python3 scripts/cuda_gpu_check.py run --dir /tmp/cuda_libs --runs 50

Model names as in scripts/cuda_resource_table.py (benchmark models at benchmark size, light zoo
models by stem). The comparison uses benchmarks/light_zoo.py's relative difference and fp32
tolerance. onnxruntime's CUDA execution provider is timed when the installed onnxruntime has it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import onnx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
sys.path.insert(0, os.path.join(ROOT, "scripts"))


def compile_all(args) -> int:
    from cuda_resource_table import load_model

    from compiler.driver import compile_model
    from frontends.onnx import import_model

    os.makedirs(args.dir, exist_ok=True)
    for name in args.models:
        model = load_model(name)
        onnx.save(model, os.path.join(args.dir, f"{name}.onnx"))
        start = time.time()
        compile_model(import_model(model), os.path.join(args.dir, f"{name}.so"), f"cuda:{args.arch}", prefix=name)
        print(f"{name}: compiled for {args.arch} in {time.time() - start:.1f} s", file=sys.stderr, flush=True)
    return 0


def _median_ms(fn, runs: int, *fn_args) -> float:
    fn(*fn_args)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(*fn_args)
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times)


def _gpu_ms(lib, feeds) -> float:
    lib.run(feeds)
    return lib.gpu_time_ms()


def run_all(args) -> int:
    import onnxruntime as ort
    from light_zoo import FP32_TOLERANCE, relative_diff

    from compiler.runtime import load
    from compiler.testing.onnx_feeds import random_feeds

    has_cuda_ep = "CUDAExecutionProvider" in ort.get_available_providers()
    print(
        "| model | worst rel. diff vs ORT-CPU | ok | Ember GPU ms (events) | Ember wall ms | ORT-CUDA wall ms |\n"
        "|---|---|---|---|---|---|"
    )
    failures = 0
    for lib_name in sorted(f for f in os.listdir(args.dir) if f.endswith(".so")):
        name = lib_name[:-3]
        model = onnx.load(os.path.join(args.dir, f"{name}.onnx"))
        feeds = random_feeds(model)
        try:
            lib = load(os.path.join(args.dir, lib_name))
            got = lib.run(feeds)
        except Exception as exc:
            failures += 1
            print(f"| {name} | error: {str(exc)[:120]} | no | | | |")
            continue
        cpu = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        expected = dict(zip([o.name for o in cpu.get_outputs()], cpu.run(None, feeds)))
        worst = max(relative_diff(got[k], v) for k, v in expected.items())
        ok = worst <= FP32_TOLERANCE
        failures += not ok
        wall = _median_ms(lib.run, args.runs, feeds)
        gpu = statistics.median([_gpu_ms(lib, feeds) for _ in range(args.runs)])
        ort_ms = ""
        if has_cuda_ep:
            gpu_sess = ort.InferenceSession(model.SerializeToString(), providers=["CUDAExecutionProvider"])
            ort_ms = f"{_median_ms(gpu_sess.run, args.runs, None, feeds):.3f}"
        print(f"| {name} | {worst:.2e} | {'yes' if ok else 'NO'} | {gpu:.3f} | {wall:.3f} | {ort_ms} |", flush=True)
    return 1 if failures else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="step", required=True)
    c = sub.add_parser("compile")
    c.add_argument("--arch", default="sm_90")
    c.add_argument("--dir", required=True)
    c.add_argument("--models", nargs="+", required=True)
    r = sub.add_parser("run")
    r.add_argument("--dir", required=True)
    r.add_argument("--runs", type=int, default=50)
    args = ap.parse_args(argv)
    np.random.seed(0)
    return compile_all(args) if args.step == "compile" else run_all(args)


if __name__ == "__main__":
    sys.exit(main())
