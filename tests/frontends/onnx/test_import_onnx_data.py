"""Real exporter output shipped with onnx (PyTorch-converted and "simple" models) imports and runs.

Each folder under ``onnx/backend/test/data/{pytorch-converted,pytorch-operator,simple}``
holds a model (many at opset 6-9, written by early PyTorch exporters) and
reference inputs/outputs; the import must verify and reproduce the outputs.
Opset-6 models go through onnx.version_converter up to opset 7 first.
"""

from __future__ import annotations

import glob
import os

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from compiler import EmberError, interpret, verify
from frontends.onnx import import_model

DATA = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
FOLDERS = sorted(
    d
    for sub in ("pytorch-converted", "pytorch-operator", "simple")
    for d in glob.glob(os.path.join(DATA, sub, "*"))
    if os.path.isfile(os.path.join(d, "model.onnx"))
)
TRAINING_ONLY = {"test_gradient_of_add", "test_gradient_of_add_and_mul"}  # ai.onnx.preview.training


def _tensors(folder, prefix):
    return [numpy_helper.to_array(onnx.load_tensor(f)) for f in sorted(glob.glob(os.path.join(folder, prefix)))]


@pytest.mark.parametrize("folder", FOLDERS, ids=os.path.basename)
def test_shipped_model_reproduces_reference_outputs(folder):
    path = os.path.join(folder, "model.onnx")
    if os.path.basename(folder) in TRAINING_ONLY:
        try:
            graph = import_model(path)
        except EmberError as err:  # refused until Ember declares the training-only Gradient op
            assert "unsupported op" in str(err) and "Gradient x1" in str(err)
            return
    else:
        graph = import_model(path)
    verify(graph)
    for case in sorted(glob.glob(os.path.join(folder, "test_data_set_*"))):
        inputs, expected = _tensors(case, "input_*.pb"), _tensors(case, "output_*.pb")
        outputs = list(interpret(graph, {p.name: v for p, v in zip(graph.params, inputs)}).values())
        assert len(outputs) == len(expected)
        for got, want in zip(outputs, expected):
            if want.dtype.kind in "biufc":
                np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
            else:
                np.testing.assert_array_equal(got, want)
