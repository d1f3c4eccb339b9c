"""``quantize`` and ``ember quantize``: calibration ranges on known distributions, the QDQ shape,
values within the quantization error, onnxruntime agreeing with the interpreter on the result."""

from __future__ import annotations

import numpy as np
import pytest
from compression_models import as_graph, mlp, residual_cnn, samples

from compiler.compression import calibrate, calibration_values, quantize_model
from compiler.compression.calibration import entropy_threshold, percentile_threshold
from compiler.ir.interpreter import interpret
from frontends.onnx.exporter import export_model, ort_session


def _histogram(x):
    amax = float(np.abs(x).max())
    return np.histogram(np.abs(x), bins=2048, range=(0, amax))[0].astype(np.float64), amax


def test_percentile_and_entropy_clip_a_gaussian_tail_but_not_a_uniform():
    gauss = np.random.default_rng(0).normal(size=200_000)
    hist, amax = _histogram(gauss)
    p999 = percentile_threshold(hist, amax, 99.9)
    assert abs(p999 - 3.29) < 0.05  # the 99.9th percentile of |N(0,1)|
    kl = entropy_threshold(hist, amax)
    assert 2.5 < kl < amax  # clips the sparse tail, keeps the bulk
    uniform = np.random.default_rng(0).uniform(-2, 2, size=200_000)
    hist, amax = _histogram(uniform)
    assert entropy_threshold(hist, amax) > 0.95 * amax  # nothing to clip in a uniform
    assert percentile_threshold(hist, amax, 99.999) > 0.99 * amax


def test_calibrate_methods_on_the_model_input():
    graph = as_graph(mlp())
    data = samples(8, (2, 16))
    seen = np.concatenate([s["x"] for s in data])
    lo, hi = calibrate(graph, data, ["x"], method="minmax", progress=False)["x"]
    assert (lo, hi) == (float(seen.min()), float(seen.max()))
    plo, phi = calibrate(graph, data, ["x"], method="percentile", percentile=90.0, progress=False)["x"]
    assert lo < plo < 0 < phi < hi
    elo, ehi = calibrate(graph, data, ["x", "h"], method="entropy", progress=False)["x"]
    assert lo <= elo < 0 < ehi <= hi


def _ops_feeding(graph, op):
    return [
        [v.producer.op if v is not None and v.producer else None for v in n.operands] for n in graph.nodes if n.op == op
    ]


@pytest.mark.parametrize("method", ["minmax", "percentile", "entropy"])
def test_static_qdq_cnn_stays_close_and_onnxruntime_agrees(method):
    graph = as_graph(residual_cnn())
    data = samples(6, (1, 3, 8, 8))
    reference = [interpret(graph, s)["probs"] for s in data]
    report = quantize_model(graph, data, method=method, progress=False)
    # every Conv and the Gemm read dequantized activations, weights and (int32) biases
    for operands in _ops_feeding(graph, "Conv") + _ops_feeding(graph, "Gemm"):
        assert operands == ["DequantizeLinear"] * 3
    assert [n for n in graph.nodes if n.op == "Softmax"][0].operands[0].producer.op == "Gemm"  # softmax stays float
    biases = [
        n.operands[0] for n in graph.nodes if n.op == "DequantizeLinear" and n.operands[0].type.dtype.name == "INT32"
    ]
    assert len(biases) == 7
    assert report.weight_bytes_after < 0.45 * report.weight_bytes_before
    session = ort_session(export_model(graph))
    for sample, ref in zip(data, reference):
        ours = interpret(graph, sample)["probs"]
        # int8 error on class probabilities; entropy clips harder on a few hundred values a tensor
        assert np.abs(ours - ref).max() < (0.2 if method == "entropy" else 0.05)
        (theirs,) = session.run(None, sample)
        np.testing.assert_allclose(theirs, ours, atol=2e-3)  # rounding ties may differ by one quantum


def test_dynamic_and_weight_only_modes_on_matmul():
    data = samples(3, (2, 16))
    for mode, activation_op in (("dynamic", "DynamicQuantizeLinear"), ("weight-only", None)):
        graph = as_graph(mlp())
        reference = [interpret(graph, s)["y"] for s in data]
        quantize_model(graph, mode=mode, progress=False)
        ops = {n.op for n in graph.nodes}
        assert ("DynamicQuantizeLinear" in ops) == (activation_op is not None)
        assert not any(n.op == "QuantizeLinear" for n in graph.nodes)
        session = ort_session(export_model(graph))
        for sample, ref in zip(data, reference):
            ours = interpret(graph, sample)["y"]
            assert np.abs(ours - ref).max() < 0.05 * np.abs(ref).max()
            # onnxruntime fuses DynamicQuantizeLinear into an integer MatMul: a quantum or so apart
            np.testing.assert_allclose(session.run(None, sample)[0], ours, atol=0.01 * np.abs(ref).max())


def test_exclude_by_op_and_by_node_name_and_report_says_why():
    graph = as_graph(residual_cnn())
    data = samples(2, (1, 3, 8, 8))
    assert "stem_c" in calibration_values(graph) and "stem_c" not in calibration_values(graph, ["stem"])
    report = quantize_model(graph, data, exclude=["Gemm", "stem"], progress=False)
    left = dict(report.left_float)
    assert left == {"node 'stem' (Conv)": "excluded", "node 'fc' (Gemm)": "excluded"}
    stem = next(n for n in graph.nodes if n.name == "stem")
    assert stem.operands[1].producer.op == "Constant"
    assert "left in float: node 'fc' (Gemm): excluded" in report.text()


def test_static_without_range_leaves_the_node_float():
    from passes.quantize import QuantizePass

    graph = as_graph(mlp())
    result = QuantizePass(ranges=("x:-3:3",))(graph)
    assert result.statistics == {"quantized": 1, "left-float": 1}
    assert graph.metadata["quantize-left-float"] == [("node 'fc2' (MatMul)", "no calibration range for %hr")]


def test_cli_quantize_writes_qdq_onnx(tmp_path, capsys):
    import onnx

    from compiler.cli import main

    model = tmp_path / "cnn.onnx"
    onnx.save(residual_cnn(), model)
    calib = tmp_path / "calib"
    calib.mkdir()
    for i, s in enumerate(samples(3, (1, 3, 8, 8))):
        np.savez(calib / f"{i}.npz", **s)
    out = tmp_path / "cnn_int8.onnx"
    args = [str(model), "-o", str(out), "--calibration", str(calib), "--method", "entropy", "--exclude", "fc"]
    assert main(["quantize", *args, "--no-progress"]) == 0
    written = onnx.load(out)
    onnx.checker.check_model(written)
    ops = [n.op_type for n in written.graph.node]
    assert ops.count("QuantizeLinear") >= 6 and "Gemm" in ops
    fc = next(n for n in written.graph.node if n.op_type == "Gemm")
    assert "fc_w" in fc.input  # excluded: still the float weight
    (probs,) = ort_session(written).run(None, samples(1, (1, 3, 8, 8), seed=9)[0])
    assert probs.shape == (1, 5) and abs(probs.sum() - 1) < 1e-4
    ir_out = tmp_path / "cnn_int8.ir"
    assert main(["quantize", str(model), "-o", str(ir_out), "--mode", "weight-only", "--format", "ir"]) == 0
    assert "DequantizeLinear" in ir_out.read_text()
    assert main(["quantize", str(model), "-o", str(out), "--format", "ir"]) == 1  # format and suffix disagree
    assert main(["quantize", str(model), "-o", str(out)]) == 1  # static needs --calibration
    assert "static quantization needs calibration samples" in capsys.readouterr().err


def test_calibration_shows_a_progress_bar(capsys):
    graph = as_graph(mlp())
    calibrate(graph, samples(4, (2, 16)), ["h"], method="percentile")
    err = capsys.readouterr().err
    assert "calibrating [" in err and "4/4" in err and "histograms (percentile)" in err


def test_cli_quantize_pins_input_shapes(tmp_path):
    import pathlib

    from compiler.cli import main
    from compiler.ir.parser import load_ir

    digits = pathlib.Path(__file__).resolve().parent.parent / "data" / "digits" / "digits_cnn.onnx"
    out = tmp_path / "digits.ir"
    assert main(["quantize", str(digits), "-o", str(out), "--mode", "dynamic", "--input-shape", "x=4,1,8,8"]) == 0
    graph = load_ir(str(out))
    assert graph.params[0].type.shape == (4, 1, 8, 8)
    assert sum(n.op == "DynamicQuantizeLinear" for n in graph.nodes) == 3  # two Convs and the Gemm


@pytest.mark.slow  # compiles the calibration library once (about 30 s on 2 cores)
def test_calibration_through_a_compiled_library_matches_the_interpreter(tmp_path):
    import onnx

    from compiler.cli import main

    model = tmp_path / "mlp.onnx"
    onnx.save(mlp(), model)
    calib = tmp_path / "calib"
    calib.mkdir()
    for i, s in enumerate(samples(4, (2, 16))):
        np.savez(calib / f"{i}.npz", **s)
    library = tmp_path / "calibration.so"
    common = ["--calibration", str(calib), "--method", "percentile", "--no-progress"]
    assert main(["quantize", str(model), "-o", str(tmp_path / "lib.ir"), "--library", str(library), *common]) == 0
    assert library.exists()
    assert main(["quantize", str(model), "-o", str(tmp_path / "interp.ir"), *common]) == 0
    from compiler.ir.parser import load_ir

    by_library, by_interpreter = (load_ir(str(tmp_path / f"{n}.ir")) for n in ("lib", "interp"))
    assert [n.op for n in by_library.nodes] == [n.op for n in by_interpreter.nodes]
    for a, b in zip(by_library.nodes, by_interpreter.nodes):
        if a.op == "Constant":  # scales within float rounding, quantized values within one step
            x, y = np.asarray(a.attrs["value"], dtype=np.float64), np.asarray(b.attrs["value"], dtype=np.float64)
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=1.0 if a.attrs["value"].dtype.kind == "i" else 0)
