"""Ember dynamic INT8 vs onnxruntime dynamic INT8 vs fp32 on BERT-base (random weights), alternated run by run.

    python benchmarks/int8_bert.py --out /tmp/int8_bert --threads 1,2 --runs 15
    python benchmarks/int8_bert.py --out /tmp/int8_bert --threads 1,2 --runs 15 --static

The fp32 model is benchmarks/model_zoo.py's ``bert_base()`` (12 encoder layers, sequence 128, on
precomputed embeddings), read from ``~/.cache/ember/zoo/bert_base.onnx`` when that exists.  Two int8
models are made from it:

- ``ort_int8``: onnxruntime's ``quantize_dynamic`` (default options: int8 weights per tensor, uint8
  activations quantized at run time): ``DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul``;
- ``ember_int8``: ``ember quantize --mode dynamic`` (int8 weights per column): ``MatMul(DQ(
  DynamicQuantizeLinear(x)), DQ(w))``, which ``fuse-qdq`` rewrites into the same integer form.

With ``--static``, three statically quantized models are added, calibrated on the same four random
inputs (seed 0): ``static_ortq``, onnxruntime's ``quantize_static`` (QDQ, per-channel int8 weights,
its default int8 activations; the attention's activation x activation MatMuls quantized too),
``static_ortq_qop``, the same in QOperator form (QLinearMatMul, QLinearAdd, ... nodes), and
``static_emberq``, ``ember quantize --calibration`` (per-column int8 weights, int8 activations; the
attention MatMuls left in float). In Ember their Linear layers run on QLinearMatMul's packed integer
kernel and the quantized attention products on the float matmul's tile over the centred integers
(exact for K <= 256); each model is timed in Ember and in onnxruntime.

With ``--uint8-weights``, ``ort_int8_u8w`` is added: ``quantize_dynamic(..., weight_type=QUInt8)``,
the older quantizers' uint8 weights with a zero point, timed in Ember and in onnxruntime.

Each is compiled by ``ember compile`` (default pipeline, host CPU).  Per thread count, Ember's three
libraries (``ember_f32``; ``ember_int8_ortq``: onnxruntime's int8 model; ``ember_int8_emberq``: its
own int8 model) and onnxruntime on the fp32 and int8
models run in one loop, one call each in turn; onnxruntime's sessions do not spin between runs
(``session.intra_op.allow_spinning = 0``: a spinning pool steals the core from the next call).
Printed per thread count: the median of each and the ratios to onnxruntime's int8 latency, and the
largest difference of each int8 output from onnxruntime's int8 output and from the fp32 output.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ZOO_COPY = os.path.expanduser("~/.cache/ember/zoo/bert_base.onnx")


def models(out: str) -> dict[str, str]:
    """The fp32, onnxruntime-int8 and Ember-int8 model files under ``out`` (each made once)."""
    import onnx
    from onnxruntime.quantization import quantize_dynamic

    paths = {name: os.path.join(out, f"bert_{name}.onnx") for name in ("f32", "ort_int8", "ember_int8")}
    if not os.path.exists(paths["f32"]):
        if os.path.exists(ZOO_COPY):
            shutil.copy(ZOO_COPY, paths["f32"])
        else:
            from benchmarks.model_zoo import bert_base

            onnx.save(bert_base(), paths["f32"])
    if not os.path.exists(paths["ort_int8"]):
        quantize_dynamic(paths["f32"], paths["ort_int8"])
    if not os.path.exists(paths["ember_int8"]):
        cli = [sys.executable, "-m", "compiler.cli", "quantize", paths["f32"], "--mode", "dynamic"]
        subprocess.run([*cli, "--no-progress", "-o", paths["ember_int8"]], check=True, stdout=subprocess.DEVNULL)
    return paths


def static_models(out: str, f32: str) -> dict[str, str]:
    """The two statically quantized models (module docstring) under ``out``, each made once."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    rng = np.random.default_rng(0)
    samples = [{"input": rng.standard_normal((1, 128, 768)).astype(np.float32)} for _ in range(4)]
    names = ("static_ortq", "static_ortq_qop", "static_emberq")
    paths = {name: os.path.join(out, f"bert_{name}.onnx") for name in names}

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.samples = iter(samples)

        def get_next(self):
            return next(self.samples, None)

    for name, form in (("static_ortq", QuantFormat.QDQ), ("static_ortq_qop", QuantFormat.QOperator)):
        if not os.path.exists(paths[name]):
            quantize_static(f32, paths[name], Reader(), quant_format=form, per_channel=True)
    if not os.path.exists(paths["static_emberq"]):
        calibration = os.path.join(out, "calibration")
        os.makedirs(calibration, exist_ok=True)
        for i, sample in enumerate(samples):
            np.savez(os.path.join(calibration, f"sample{i}.npz"), **sample)
        cli = [sys.executable, "-m", "compiler.cli", "quantize", f32, "--calibration", calibration]
        subprocess.run([*cli, "--no-progress", "-o", paths["static_emberq"]], check=True, stderr=subprocess.DEVNULL)
    return paths


def uint8_weight_model(out: str, f32: str) -> str:
    """``quantize_dynamic`` with uint8 weights under ``out`` (made once)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = os.path.join(out, "bert_int8_u8w.onnx")
    if not os.path.exists(path):
        quantize_dynamic(f32, path, weight_type=QuantType.QUInt8)
    return path


def compiled(model: str) -> str:
    """``model`` compiled by this checkout, every run: a library left by an earlier run may come from
    other code (the ONNX files are kept, as they only depend on the model and the quantizers)."""
    lib = model[: -len(".onnx")] + ".so"
    subprocess.run([sys.executable, "-m", "compiler.cli", "compile", model, "-o", lib, "-q"], check=True)
    return lib


def ort_session(path: str, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def measure(calls: dict, runs: int) -> dict[str, float]:
    """Median milliseconds of each call, the calls alternated run by run."""
    times = {name: [] for name in calls}
    for call in calls.values():
        call()  # warm up
    for _ in range(runs):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/ember_int8_bert")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--static", action="store_true", help="add the statically quantized models")
    parser.add_argument("--uint8-weights", action="store_true", help="add quantize_dynamic with uint8 weights")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    from compiler.runtime import load

    paths = models(args.out)
    libs = {
        "ember_f32": compiled(paths["f32"]),
        "ember_int8_ortq": compiled(paths["ort_int8"]),  # onnxruntime's quantized model, compiled by Ember
        "ember_int8_emberq": compiled(paths["ember_int8"]),  # Ember's own quantized model
    }
    extra = static_models(args.out, paths["f32"]) if args.static else {}
    if args.uint8_weights:
        extra["int8_u8w"] = uint8_weight_model(args.out, paths["f32"])
    for name, path in extra.items():
        libs[f"ember_{name}"] = compiled(path)
    x = {"input": np.random.default_rng(1).standard_normal((1, 128, 768)).astype(np.float32)}
    for threads in (int(t) for t in args.threads.split(",")):
        runners = {name: load(path, num_threads=threads) for name, path in libs.items()}
        calls = {name: (lambda m=m: list(m.run(x).values())[0]) for name, m in runners.items()}
        sessions = {"ort_f32": ort_session(paths["f32"], threads), "ort_int8": ort_session(paths["ort_int8"], threads)}
        sessions.update({f"ort_{name}": ort_session(path, threads) for name, path in extra.items()})
        for name, session in sessions.items():
            calls[name] = lambda s=session: s.run(None, x)[0]
        outputs = {name: call() for name, call in calls.items()}
        ms = measure(calls, args.runs)
        ref, exact = outputs["ort_int8"], outputs["ort_f32"]
        print(f"threads={threads}: " + ", ".join(f"{name} {value:.2f} ms" for name, value in ms.items()), flush=True)
        for name in ("ember_int8_ortq", "ember_int8_emberq", "ember_f32"):
            print(
                f"  {name}: {ms[name] / ms['ort_int8']:.3f}x ort_int8, {ms[name] / ms['ember_f32']:.3f}x ember_f32"
                f" | max |out - ort_int8| {np.abs(outputs[name] - ref).max():.4f},"
                f" max |out - fp32| {np.abs(outputs[name] - exact).max():.4f}",
                flush=True,
            )
        for name in extra:  # each added model in Ember against onnxruntime on the same file
            ours, theirs = ms[f"ember_{name}"], ms[f"ort_{name}"]
            print(
                f"  ember_{name}: {ours / theirs:.3f}x ort_{name} (onnxruntime, same model),"
                f" {ours / ms['ort_int8']:.3f}x ort_int8, {ours / ms['ember_f32']:.3f}x ember_f32"
                f" | max |out - ort_{name}| {np.abs(outputs[f'ember_{name}'] - outputs[f'ort_{name}']).max():.4f},"
                f" max |out - fp32| {np.abs(outputs[f'ember_{name}'] - exact).max():.4f}",
                flush=True,
            )
        print(
            f"  ort_int8: {ms['ort_int8'] / ms['ort_f32']:.3f}x ort_f32"
            f" | max |out - fp32| {np.abs(ref - exact).max():.4f}"
            f" (output range {np.abs(exact).max():.2f})",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
