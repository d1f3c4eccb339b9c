"""Import -> export round trip of the ``light_*`` zoo models shipped inside onnx.

Each exported model must pass the full ONNX checker and give onnxruntime the
same outputs as the original model on the same input (the max abs diff is
printed).  The light models' own weights are constant fills (their outputs are almost
uniform), so every weight is first replaced by seeded random data of the same
shape, scaled to keep activations finite.
"""

from __future__ import annotations

import glob
import os

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from frontends.onnx import export_model, import_model
from frontends.onnx.exporter import ort_session

LIGHT_DIR = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
MODELS = sorted(glob.glob(os.path.join(LIGHT_DIR, "light_*.onnx")))
# With random weights these three carry 240-560 MB of parameters (10-25 s each on 2 cores):
# run them with EMBER_SLOW_TESTS=1.
BIG = ("light_bvlc_alexnet.onnx", "light_vgg19.onnx", "light_zfnet512.onnx")
RUN_SLOW = os.environ.get("EMBER_SLOW_TESTS") == "1"


def _params():
    for path in MODELS:
        big = os.path.basename(path) in BIG
        marks = (
            [pytest.mark.slow] + ([pytest.mark.skip(reason="large; set EMBER_SLOW_TESTS=1")] if not RUN_SLOW else [])
            if big
            else []
        )
        yield pytest.param(path, marks=marks, id=os.path.basename(path)[len("light_") : -len(".onnx")])


def _input_of(model: onnx.ModelProto) -> tuple[str, np.ndarray]:
    """The model's one real input (not an initializer) with deterministic random data."""
    inits = {t.name for t in model.graph.initializer}
    (inp,) = [i for i in model.graph.input if i.name not in inits]
    shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    return inp.name, np.random.default_rng(0).random(shape, dtype=np.float32)


def _random_weight(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """He-scaled normal for kernels and matrices, U(0.5, 1.5) for vectors (BN variances stay positive)."""
    if len(shape) >= 2:
        fan_in = int(np.prod(shape[1:]))
        return (rng.standard_normal(shape) * np.sqrt(2.0 / max(fan_in, 1))).astype(np.float32)
    return rng.uniform(0.5, 1.5, shape).astype(np.float32)


def _randomized(model: onnx.ModelProto, seed: int = 0) -> onnx.ModelProto:
    """A copy whose weights (ConstantOfShape fills of constant shape, float initializers) are random."""
    rng = np.random.default_rng(seed)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    weights = {}
    for node in list(graph.node):
        if node.op_type == "ConstantOfShape" and node.input[0] in inits:
            weights[node.output[0]] = _random_weight(rng, tuple(int(d) for d in inits[node.input[0]]))
            graph.node.remove(node)
    for name, array in inits.items():
        if array.dtype == np.float32:
            weights[name] = _random_weight(rng, array.shape)
    kept = [t for t in graph.initializer if t.name not in weights]
    del graph.initializer[:]
    graph.initializer.extend(kept + [numpy_helper.from_array(w, n) for n, w in weights.items()])
    return out


def test_zoo_models_are_present():
    assert len(MODELS) == 9, f"expected 9 light models in {LIGHT_DIR}"


@pytest.mark.parametrize("path", list(_params()))
def test_import_export_round_trip_matches_onnxruntime(path):
    original = _randomized(onnx.load(path))
    exported = export_model(import_model(original))
    onnx.checker.check_model(exported, full_check=True)
    name, x = _input_of(original)
    assert [i.name for i in exported.graph.input] == [name]
    assert [o.name for o in exported.graph.output] == [o.name for o in original.graph.output]
    expected = ort_session(original).run(None, {name: x})
    actual = ort_session(exported).run(None, {name: x})
    for e, a in zip(expected, actual):
        assert np.all(np.isfinite(e)) and float(np.std(e)) > 0, "degenerate reference output"
        diff = float(np.max(np.abs(e.astype(np.float64) - a)))
        print(f"{os.path.basename(path)}: max abs diff {diff:.3g} (output std {float(np.std(e)):.3g})")
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-5 * float(np.max(np.abs(e))))


@pytest.mark.parametrize("model_name", ["squeezenet", "shufflenet"])
def test_optimized_graph_exports_and_matches_onnxruntime(model_name):
    """After the O2 pipeline (folding, BN folds, CSE...) the graph still exports to a model ORT runs alike."""
    from compiler import verify
    from compiler.pipeline import run_pipeline

    original = _randomized(onnx.load(os.path.join(LIGHT_DIR, f"light_{model_name}.onnx")))
    graph = import_model(original)
    before = len(graph)
    run_pipeline(graph, "O2")
    verify(graph)
    assert len(graph) < before
    exported = export_model(graph)
    onnx.checker.check_model(exported, full_check=True)
    name, x = _input_of(original)
    (expected,) = ort_session(original).run(None, {name: x})
    (actual,) = ort_session(exported).run(None, {name: x})
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5 * float(np.max(np.abs(expected))))
