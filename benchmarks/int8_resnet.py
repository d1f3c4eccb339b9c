"""Ember INT8 vs onnxruntime INT8 vs Ember fp32 on ResNet-50 (random weights), alternated run by run.

    python benchmarks/int8_resnet.py --out /tmp/int8 --threads 1,2 --runs 10

The int8 model is onnxruntime's ``quantize_static`` of benchmarks/model_zoo.py's ResNet-50 after the
quantizer's ``quant_pre_process`` (BatchNormalization folded into the convolutions): QDQ format,
per-channel int8 weights, uint8 activations, MinMax calibration on a few random images.  Both the
fp32 and the QDQ model are compiled by ``ember compile`` (default pipeline, host CPU); the medians, their
ratios, and the median of the per-round Ember int8 / onnxruntime int8 ratios (the zoo's measure: a burst
of load that slows one round cancels out of it; the runner that goes first rotates) are printed per
thread count.
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

from timing import ember_and_onnxruntime_calls, interleaved_times  # noqa: E402  (paused before each run: onnxruntime's pool spins)


def quantized_resnet(out: str, samples: int) -> tuple[str, str]:
    """fp32 and static QDQ int8 ResNet-50 files under ``out`` (made once)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from benchmarks.model_zoo import resnet50

    f32, qdq = os.path.join(out, "resnet50.onnx"), os.path.join(out, "resnet50_qdq.onnx")
    prepared = os.path.join(out, "resnet50_prepared.onnx")
    if not os.path.exists(f32):
        onnx.save(resnet50(), f32)
    if not os.path.exists(prepared):  # the quantizer's recommended pre-processing: BatchNormalization folded
        quant_pre_process(f32, prepared)
    if not os.path.exists(qdq):
        rng = np.random.default_rng(0)
        images = [{"input": rng.standard_normal((1, 3, 224, 224)).astype(np.float32)} for _ in range(samples)]

        class Images(CalibrationDataReader):
            def __init__(self):
                self.it = iter(images)

            def get_next(self):
                return next(self.it, None)

        quantize_static(
            prepared,
            qdq,
            Images(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    return f32, qdq


def output_step(qdq: str) -> float:
    """The scale of the QuantizeLinear that makes the model's output (one step of the int8 logits)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(qdq)
    last = next(n for n in model.graph.node if n.output[0] == model.graph.output[0].name)
    scale = last.input[1]
    return float(next(numpy_helper.to_array(i) for i in model.graph.initializer if i.name == scale))


def compiled(model: str) -> str:
    """``model`` compiled by this checkout, every run: a library left by an earlier run may come from
    other code (the ONNX files are kept, as they only depend on the model and the quantizer)."""
    lib = model[: -len(".onnx")] + ".so"
    subprocess.run([sys.executable, "-m", "compiler.cli", "compile", model, "-o", lib, "-q"], check=True)
    return lib


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/ember_int8")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--calibration-samples", type=int, default=4)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    f32, qdq = quantized_resnet(args.out, args.calibration_samples)
    libs = {"ember_f32": compiled(f32), "ember_int8": compiled(qdq)}
    image = np.random.default_rng(1).standard_normal((1, 3, 224, 224)).astype(np.float32)
    for threads in (int(t) for t in args.threads.split(",")):
        calls = ember_and_onnxruntime_calls(libs, qdq, "ort_int8", {"input": image}, threads)
        want = calls["ort_int8"]()[0]
        step = output_step(qdq)
        got = list(calls["ember_int8"]().values())[0]
        agree = float(np.mean(np.argmax(got, -1) == np.argmax(want, -1)))
        for call in calls.values():
            call()  # warm up
        times = interleaved_times(calls, args.runs)
        ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
        per_round = statistics.median(e / o for e, o in zip(times["ember_int8"], times["ort_int8"]))
        print(
            f"threads={threads}: "
            + ", ".join(f"{name} {value:.2f} ms" for name, value in ms.items())
            + f" | ember_int8/ort_int8 {ms['ember_int8'] / ms['ort_int8']:.3f}"
            + f" (median of the per-round ratios {per_round:.3f})"
            + f", ember_int8/ember_f32 {ms['ember_int8'] / ms['ember_f32']:.3f}"
            + f" | max |ember - ort| {np.abs(got - want).max() / step:.0f} output steps, top-1 agree {agree:.0%}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
