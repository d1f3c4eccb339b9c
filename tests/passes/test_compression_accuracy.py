"""Accuracy on real data: the digits CNN (``benchmarks/digits_cnn.py``, trained on scikit-learn's
handwritten digits) through the interpreter in fp32, static int8 (calibrated on training images
only), fp16, bf16, channel-pruned at 25% without fine-tuning, and factorised.  The accuracies are
printed (``pytest -s``) and bounded as the issue asks: int8 within 1 point of fp32, fp16 and bf16
within 0.3."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from compiler.compression import quantize_model
from compiler.ir.interpreter import interpret
from frontends.onnx import import_model
from passes.convert_float import ConvertBFloat16Pass, ConvertFloat16Pass
from passes.factorize import FactorizePass
from passes.prune import PrunePass

DATA = pathlib.Path(__file__).resolve().parent.parent / "data" / "digits"


@pytest.fixture(scope="module")
def digits():
    data = np.load(DATA / "digits.npz")
    scale = lambda a: (a[:, None] / 16.0).astype(np.float32)  # noqa: E731
    return scale(data["x_test"]), data["y_test"], scale(data["calibration"])


def accuracy(graph, x, y) -> float:
    return float((interpret(graph, {"x": x})["probs"].argmax(1) == y).mean() * 100)


def compressed(step):
    graph = import_model(str(DATA / "digits_cnn.onnx"))
    step(graph)
    return graph


def test_digits_accuracy_fp32_int8_fp16_bf16_pruned_factorized(digits):
    x, y, calibration = digits
    batches = [{"x": calibration[i : i + 32]} for i in range(0, len(calibration), 32)]
    results = {
        "fp32": compressed(lambda g: None),
        "int8 static (minmax)": compressed(lambda g: quantize_model(g, batches, progress=False)),
        "int8 static (entropy)": compressed(lambda g: quantize_model(g, batches, method="entropy", progress=False)),
        "fp16": compressed(ConvertFloat16Pass()),
        "bf16": compressed(ConvertBFloat16Pass()),
        "magnitude-pruned 50%": compressed(PrunePass(sparsity=0.5)),
        "channel-pruned 25%": compressed(PrunePass(method="channel", ratio=0.25)),
        "factorized (energy 0.95)": compressed(FactorizePass(energy=0.95)),
    }
    pruned = {
        n.name: n.operands[1].type.shape for n in results["channel-pruned 25%"].nodes if n.name in ("conv1", "fc")
    }
    assert pruned == {"conv1": (24, 12, 3, 3), "fc": (10, 24 * 4 * 4)}  # through the Flatten of a 4x4 map
    scores = {name: accuracy(graph, x, y) for name, graph in results.items()}
    print("\ndigits CNN test accuracy (%d images):" % len(y))
    for name, score in scores.items():
        print(f"  {name:26s} {score:6.2f}%")
    fp32 = scores["fp32"]
    assert fp32 > 95
    assert abs(scores["int8 static (minmax)"] - fp32) <= 1.0
    assert abs(scores["fp16"] - fp32) <= 0.3
    assert abs(scores["bf16"] - fp32) <= 0.3
    assert scores["magnitude-pruned 50%"] > 90
    assert scores["channel-pruned 25%"] > 50  # no fine-tuning: a measurement, bounded loosely
    assert scores["factorized (energy 0.95)"] > 80


def sqnr_db(reference: np.ndarray, approx: np.ndarray) -> float:
    return float(10 * np.log10((reference**2).sum() / ((approx - reference) ** 2).sum()))


def test_int8_sqnr_at_least_onnxruntime_quantizer(digits, tmp_path):
    """Same calibration batches, both per-channel QDQ with MinMax: Ember's int8 output SQNR against
    fp32 is at least onnxruntime's quantizer's, within 1 dB."""
    ort_quant = pytest.importorskip("onnxruntime.quantization")
    import onnxruntime

    x, _, calibration = digits
    batches = [{"x": calibration[i : i + 32]} for i in range(0, len(calibration), 32)]
    reference = interpret(compressed(lambda g: None), {"x": x})["probs"]
    ours = interpret(compressed(lambda g: quantize_model(g, batches, progress=False)), {"x": x})["probs"]

    class Reader(ort_quant.CalibrationDataReader):
        def __init__(self):
            self.batches = iter(batches)

        def get_next(self):
            return next(self.batches, None)

    out = tmp_path / "digits_ort_int8.onnx"
    ort_quant.quantize_static(
        str(DATA / "digits_cnn.onnx"), str(out), Reader(), quant_format=ort_quant.QuantFormat.QDQ, per_channel=True
    )
    theirs = onnxruntime.InferenceSession(str(out)).run(None, {"x": x})[0]
    ember_db, ort_db = sqnr_db(reference, ours), sqnr_db(reference, theirs)
    print(f"\nint8 SQNR on the digits test set: Ember {ember_db:.1f} dB, onnxruntime's quantizer {ort_db:.1f} dB")
    assert ember_db >= ort_db - 1.0
