"""Ember bf16 vs Ember fp32 (and onnxruntime fp32) on ResNet-50 and BERT-base, interleaved run by run.

    python benchmarks/bf16_latency.py --out /tmp/ember_bf16 --threads 1,2 --runs 10

The models are benchmarks/model_zoo.py's (random weights; ResNet-50 at 224x224, BERT-base encoder at
sequence 128).  fp32: the default pipeline (O2).  bf16: ``O2,convert-bfloat16`` (BatchNormalization
is folded into the convolutions first, then every op but the precision-sensitive ones computes in
bfloat16; inputs and outputs stay float32), compiled at O2 for the host CPU.  Prints per thread count
each one's median latency, bf16/fp32, and how far bf16's output is from fp32's (max abs error
relative to the largest fp32 output).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from timing import ember_and_onnxruntime_calls, median_ms  # noqa: E402  (paused runs: onnxruntime's pool spins)


def libraries(out: str, name: str, model) -> tuple[str, str, str]:
    """(onnx file, fp32 library, bf16 library) under ``out``: the ONNX file made once, the libraries
    compiled by this checkout every run (one left by an earlier run may come from other code)."""
    import onnx

    from compiler.driver import compile_model
    from frontends.onnx import import_model

    path = os.path.join(out, f"{name}.onnx")
    if not os.path.exists(path):
        onnx.save(model(), path)
    libs = []
    for kind, pipeline in (("fp32", "O2"), ("bf16", "O2,convert-bfloat16")):
        lib = os.path.join(out, f"{name}_{kind}.so")
        start = time.time()
        compile_model(import_model(onnx.load(path)), lib, pipeline=pipeline, prefix=f"{name}_{kind}")
        print(f"{name} {kind}: compiled in {time.time() - start:.1f} s", flush=True)
        libs.append(lib)
    return path, libs[0], libs[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/ember_bf16")
    parser.add_argument("--models", default="resnet50,bert_base")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    from benchmarks.model_zoo import bert_base, resnet50

    models = {"resnet50": (resnet50, (1, 3, 224, 224)), "bert_base": (bert_base, (1, 128, 768))}
    for name in args.models.split(","):
        build, shape = models[name]
        path, f32, bf16 = libraries(args.out, name, build)
        x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
        for threads in (int(t) for t in args.threads.split(",")):
            libs = {"ember_fp32": f32, "ember_bf16": bf16}
            calls = ember_and_onnxruntime_calls(libs, path, "ort_fp32", {"input": x}, threads)
            want = list(calls["ember_fp32"]().values())[0]
            got = list(calls["ember_bf16"]().values())[0]
            error = float(np.abs(got - want).max() / np.abs(want).max())
            ms = median_ms(calls, args.runs)
            print(
                f"{name} threads={threads}: "
                + ", ".join(f"{kind} {value:.2f} ms" for kind, value in ms.items())
                + f" | bf16/fp32 {ms['ember_bf16'] / ms['ember_fp32']:.3f}"
                + f", fp32/ort {ms['ember_fp32'] / ms['ort_fp32']:.3f}"
                + f" | bf16 max error {error:.2e} of the largest output",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
