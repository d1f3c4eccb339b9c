"""The light_* zoo models shipped inside onnx import, verify and match onnxruntime.

Their weights come from ConstantOfShape nodes, so the final Softmax is nearly
uniform; the logits feeding it are compared as well, by exposing them as an
extra model output.  The four largest models are marked ``slow``.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from compiler import interpret, verify
from frontends.onnx import import_model

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
SMALL = ["bvlc_alexnet", "squeezenet", "shufflenet", "inception_v1", "inception_v2"]
LARGE = ["resnet50", "densenet121", "vgg19", "zfnet512"]


def with_logits_output(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` that also outputs the input of its last Softmax (if any)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    softmax = [n for n in model.graph.node if n.op_type == "Softmax"]
    if softmax:
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(softmax[-1].input[0]))
        model.graph.output[-1].type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    return model


def check_zoo_model(name: str) -> None:
    path = os.path.join(LIGHT, f"light_{name}.onnx")
    model = with_logits_output(onnx.load(path))
    graph = import_model(model)
    verify(graph)
    assert [v.name for v in graph.outputs] == [o.name for o in model.graph.output]
    (x_param,) = graph.params
    x = np.random.default_rng(0).random(x_param.type.shape, dtype=np.float32)
    ours = interpret(graph, {x_param.name: x})
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in model.graph.output]
    results = dict(zip(names, sess.run(names, {x_param.name: x})))
    softmax = [n for n in model.graph.node if n.op_type == "Softmax"]
    for out_name, expected in results.items():
        got = ours[out_name]
        assert got.shape == expected.shape
        scale = max(1.0, float(np.abs(expected).max()))
        if softmax and out_name == softmax[-1].output[0]:
            logits = results[softmax[-1].input[0]]
            if np.ptp(logits) <= 1e-4 * max(1.0, float(np.abs(logits).max())):
                # the synthetic weights give logits equal up to rounding (SqueezeNet's are all about 6.8e9):
                # which class wins depends on summation order, so only the distribution's shape is checked
                assert np.all((got >= 0) & (got <= 1)) and np.allclose(got.sum(axis=1), 1, atol=1e-4)
                continue
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * scale, err_msg=f"{name}:{out_name}")


@pytest.mark.parametrize("name", SMALL)
def test_light_model_matches_onnxruntime(name):
    check_zoo_model(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", LARGE)
def test_large_light_model_matches_onnxruntime(name):
    check_zoo_model(name)


def test_ir_v3_initializers_listed_as_inputs_are_constants():
    path = os.path.join(LIGHT, "light_squeezenet.onnx")
    model = onnx.load(path)
    initializers = {t.name for t in model.graph.initializer}
    listed = [i.name for i in model.graph.input if i.name in initializers]
    assert listed, "the model should list initializers as inputs (IR v3)"
    graph = import_model(path)
    assert [p.name for p in graph.params] == [i.name for i in model.graph.input if i.name not in initializers]
    for name in listed:
        assert graph.find(name).const_value is not None


def test_imported_zoo_graph_round_trips_through_text():
    from compiler import parse_ir, print_ir

    graph = import_model(os.path.join(LIGHT, "light_inception_v1.onnx"))
    resources: dict = {}
    text = print_ir(graph, resources=resources)
    assert print_ir(parse_ir(text, resources), resources={}) == text
