"""Signal lowerings (codegen/tvm/lower/signal/) compiled: DFT with a run-time axis and length, the
window functions, MelWeightMatrix and STFT with run-time parameters.

Each model is one node with declared output shapes, as exported models with static shapes have;
parameters are model inputs where the op allows it. The compiled library must give the
interpreter's answer for every value consistent with those shapes, and fail the run with a message
naming the op, never a wrong result, for a value that is not."""

from __future__ import annotations

import compiled_checks
import numpy as np
import pytest
from compiled_checks import compiled_and_reference, refused
from onnx import TensorProto, helper

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def check_first(rep, ref, feeds, tol=1e-5):
    """The first output, after checking every output against the interpreter (interpolation: 1e-5)."""
    return compiled_checks.check(rep, ref, feeds, tol)[0]


def dft_model(x_shape, out_shape, inputs, **attrs):
    node = helper.make_node("DFT", ["x"] + [name for name, _, _ in inputs], ["y"], **attrs)
    graph = helper.make_graph(
        [node],
        "dft",
        [helper.make_tensor_value_info("x", F, x_shape)] + [helper.make_tensor_value_info(*i) for i in inputs if i[0]],
        [helper.make_tensor_value_info("y", F, out_shape)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def test_dft_axis_at_run_time_transforms_along_the_axis_read():
    """(1, 5, 5, 2) -> (1, 5, 5, 2) fits axes 1 and 2 (and the length-1 axis 0): each is computed."""
    x = np.random.default_rng(0).standard_normal((1, 5, 5, 2)).astype(np.float32)
    rep, ref = compiled_and_reference(dft_model([1, 5, 5, 2], [1, 5, 5, 2], [("", None, None), ("a", I64, [])]))
    results = [check_first(rep, ref, [x, np.array(a, np.int64)], tol=1e-4) for a in (1, 2, -2, 0)]
    assert not np.allclose(results[0], results[1])
    np.testing.assert_allclose(results[1], results[2])
    refused(rep, [x, np.array(3, np.int64)], ["DFT", "(1, 5, 5, 2)"])


def test_onesided_dft_with_run_time_length_and_axis():
    x = np.random.default_rng(1).standard_normal((1, 6, 4, 1)).astype(np.float32)
    model = dft_model([1, 6, 4, 1], [1, 4, 4, 2], [("n", I64, []), ("a", I64, [])], onesided=1)
    rep, ref = compiled_and_reference(model)
    for n, a in ((6, 1), (7, 1), (6, -3)):  # N = 7 pads the signal with a zero
        check_first(rep, ref, [x, np.array(n, np.int64), np.array(a, np.int64)], tol=1e-4)
    refused(rep, [x, np.array(6, np.int64), np.array(2, np.int64)], ["DFT"])  # would keep dim 1 at 6
    refused(rep, [x, np.array(8, np.int64), np.array(1, np.int64)], ["DFT"])  # 5 bins, not 4


def signal_model(op, inputs, out_shape, opset=17, **attrs):
    node = helper.make_node(op, [name for name, _, _ in inputs], ["y"], **attrs)
    graph = helper.make_graph(
        [node],
        op.lower(),
        [helper.make_tensor_value_info(*i) for i in inputs if i[0]],
        [helper.make_tensor_value_info("y", F, out_shape)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("op,periodic", [("HannWindow", 1), ("HammingWindow", 0), ("BlackmanWindow", 0)])
def test_window_with_run_time_size(op, periodic):
    rep, ref = compiled_and_reference(signal_model(op, [("n", TensorProto.INT32, [])], [7], periodic=periodic))
    check_first(rep, ref, [np.array(7, np.int32)])
    refused(rep, [np.array(8, np.int32)], [op, "7"])


def test_mel_weight_matrix_reads_rate_and_edges_at_run_time():
    i32 = TensorProto.INT32
    model = signal_model(
        "MelWeightMatrix", [("m", i32, []), ("n", i32, []), ("r", i32, []), ("lo", F, []), ("hi", F, [])], [9, 5]
    )
    rep, ref = compiled_and_reference(model)

    def feeds(bins, dft_length, rate, low, high):
        return [np.array(v, np.int32) for v in (bins, dft_length, rate)] + [
            np.array(v, np.float32) for v in (low, high)
        ]

    first = check_first(rep, ref, feeds(5, 16, 8000, 0.0, 4000.0))
    second = check_first(rep, ref, feeds(5, 17, 16000, 300.0, 7000.0))
    assert not np.array_equal(first, second)
    refused(rep, feeds(6, 16, 8000, 0.0, 4000.0), ["MelWeightMatrix", "(9, 5)"])
    refused(rep, feeds(5, 16, 4000, 0.0, 4000.0), ["MelWeightMatrix"])  # edges past the spectrogram


def test_stft_with_run_time_step_and_length():
    x = np.random.default_rng(2).standard_normal((1, 40, 1)).astype(np.float32)
    model = signal_model("STFT", [("x", F, [1, 40, 1]), ("s", I64, []), ("", None, None), ("n", I64, [])], [1, 4, 5, 2])
    rep, ref = compiled_and_reference(model)
    for step, n in ((10, 8), (10, 9), (8, 9)):  # 1 + (40 - n) // step frames = 4, n // 2 + 1 bins = 5
        check_first(rep, ref, [x, np.array(step, np.int64), np.array(n, np.int64)], tol=1e-4)
    refused(rep, [x, np.array(5, np.int64), np.array(8, np.int64)], ["STFT", "(1, 4, 5, 2)"])
    window = np.hanning(8).astype(np.float32)
    model = signal_model("STFT", [("x", F, [1, 40, 1]), ("s", I64, []), ("w", F, [8])], [1, 4, 5, 2])
    rep, ref = compiled_and_reference(model)
    check_first(rep, ref, [x, np.array(9, np.int64), window], tol=1e-4)
    refused(rep, [x, np.array(3, np.int64), window], ["STFT"])
