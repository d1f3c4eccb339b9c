"""Zoo models quantized by onnxruntime (static QDQ and dynamic), each file run by Ember and by
onnxruntime, with Ember's fp32 library beside them, interleaved.

    python benchmarks/int8_zoo.py --models mobilenet_v2,efficientnet_b0,resnet50 --threads 1,2 --rounds 10

Per model (``benchmarks/zoo_models.py``'s export, cached under ``~/.cache/ember/zoo``), two files are
made once under ``--out``:

- ``static``: ``quantize_static`` after ``quant_pre_process`` (BatchNormalization folded), QDQ,
  per-channel int8 weights, onnxruntime's default activations, MinMax on four random inputs (seed 0);
- ``dynamic``: ``quantize_dynamic`` with its defaults (a Conv becomes DynamicQuantizeLinear ->
  ConvInteger, a MatMul MatMulInteger);
- with ``--uint8-weights``, ``static_u8w``: as ``static`` with uint8 weights and activations
  (``weight_type=activation_type=QUInt8``: a zero point per weight channel; onnxruntime's "U8U8"
  format, which it refuses with int8 activations).

Each file is compiled by ``ember compile`` (this checkout, every run). Per thread count, Ember's fp32
library and, for each file, Ember's library and an onnxruntime session run once per round, with a
pause before each timed call (``timing.interleaved_times``). Printed: median ms, Ember / onnxruntime
on the same file (the median of the per-round ratios), Ember int8 / Ember fp32, and the largest
difference of Ember's output from onnxruntime's on the same file next to the output's range.
A profile of where such files ran on generic integer kernels is in docs/compression-kernels.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from timing import interleaved_times  # noqa: E402


def quantized(model_path: str, out: str, uint8_weights: bool = False) -> dict[str, str]:
    """The ``static`` and ``dynamic`` (and ``static_u8w``) files of ``model_path`` under ``out``
    (module docstring)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    stem = os.path.join(out, os.path.basename(model_path)[: -len(".onnx")])
    paths = {"static": f"{stem}_static.onnx", "dynamic": f"{stem}_dynamic.onnx"}
    static_files = {"static": {}}  # onnxruntime's defaults: int8 weights and activations
    if uint8_weights:
        paths["static_u8w"] = f"{stem}_static_u8w.onnx"
        static_files["static_u8w"] = dict(weight_type=QuantType.QUInt8, activation_type=QuantType.QUInt8)
    if not all(os.path.exists(paths[kind]) for kind in static_files):
        prepared = f"{stem}_prepared.onnx"
        quant_pre_process(model_path, prepared)
        graph_input = onnx.load(prepared).graph.input[0]
        shape = [d.dim_value for d in graph_input.type.tensor_type.shape.dim]
        rng = np.random.default_rng(0)
        samples = [{graph_input.name: rng.standard_normal(shape).astype(np.float32)} for _ in range(4)]

        class Samples(CalibrationDataReader):
            def __init__(self):
                self.it = iter(samples)

            def get_next(self):
                return next(self.it, None)

        for kind, types in static_files.items():
            quantize_static(prepared, paths[kind], Samples(), quant_format=QuantFormat.QDQ, per_channel=True, **types)
    if not os.path.exists(paths["dynamic"]):
        quantize_dynamic(model_path, paths["dynamic"])
    return paths


def compiled(model: str, out: str) -> str:
    lib = os.path.join(out, os.path.basename(model)[: -len(".onnx")] + ".so")
    cli = [sys.executable, "-m", "compiler.cli", "compile", model, "-o", lib, "-q"]
    subprocess.run(cli, check=True, stdout=subprocess.DEVNULL)
    return lib


def ort_session(path: str, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.log_severity_level = 3
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mobilenet_v2,efficientnet_b0,resnet50")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--out", default="/tmp/ember_int8_zoo")
    parser.add_argument("--uint8-weights", action="store_true", help="add quantize_static with uint8 weights")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    import onnx
    import zoo_models

    from compiler.runtime import load

    columns = ["model", "file", "threads", "Ember ms", "onnxruntime ms", "Ember / onnxruntime", "Ember / Ember fp32"]
    print("| " + " | ".join([*columns, "max abs diff"]) + " |")
    print("|---|---|---|---|---|---|---|---|")
    for spec in zoo_models.select(args.models):
        f32 = zoo_models.export(spec)
        files = quantized(f32, args.out, args.uint8_weights)
        libs = {"fp32": compiled(f32, args.out), **{kind: compiled(path, args.out) for kind, path in files.items()}}
        graph_input = onnx.load(f32).graph.input[0]
        shape = [d.dim_value for d in graph_input.type.tensor_type.shape.dim]
        feed = {graph_input.name: np.random.default_rng(1).standard_normal(shape).astype(np.float32)}
        for threads in (int(t) for t in args.threads.split(",")):
            models = {kind: load(lib, num_threads=threads) for kind, lib in libs.items()}
            sessions = {kind: ort_session(path, threads) for kind, path in files.items()}
            calls = {f"ember_{kind}": (lambda m=m, f=feed: list(m.run(f).values())[0]) for kind, m in models.items()}
            calls.update({f"ort_{kind}": (lambda s=s, f=feed: s.run(None, f)[0]) for kind, s in sessions.items()})
            outputs = {name: call() for name, call in calls.items()}
            times = interleaved_times(calls, args.rounds)
            ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
            for kind in files:
                ours, theirs = times[f"ember_{kind}"], times[f"ort_{kind}"]
                ratio = statistics.median(e / o for e, o in zip(ours, theirs))
                want = outputs[f"ort_{kind}"]
                diff = float(np.abs(outputs[f"ember_{kind}"] - want).max())
                print(
                    f"| {spec.name} | {kind} | {threads} | {ms[f'ember_{kind}']:.2f} | {ms[f'ort_{kind}']:.2f} | "
                    f"{ratio:.2f}x | {ms[f'ember_{kind}'] / ms['ember_fp32']:.2f}x | "
                    f"{diff:.3g} (of {float(np.abs(want).max()):.2g}) |",
                    flush=True,
                )
            for model in models.values():
                model.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
