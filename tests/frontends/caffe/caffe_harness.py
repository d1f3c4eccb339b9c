"""Shared test harness: write a net with Ember's writer, run it in Ember and in OpenCV, compare.

``check_against_opencv(net, inputs)`` saves ``net`` (a ``NetSpec``) to a temp
folder, imports it with ``frontends.caffe.import_model``, verifies the graph,
runs Ember's interpreter and ``cv2.dnn.readNetFromCaffe`` on the same inputs
and asserts the named output agrees within fp32 tolerance.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import numpy as np

from compiler import interpret, verify
from frontends.caffe import import_model
from frontends.caffe.writer import NetSpec

RNG_SEED = 1234


def rng():
    return np.random.default_rng(RNG_SEED)


# where ``save`` writes: pytest's per-test ``tmp_path`` (set by conftest.py); outside pytest a
# temp folder that is removed when the process exits
TEMP_ROOT: str | None = None


def save(net: NetSpec, **kw) -> tuple[str, str]:
    """Write ``net`` as net.prototxt + net.caffemodel in a fresh folder; returns both paths."""
    folder = tempfile.mkdtemp(prefix="ember_caffe_", dir=TEMP_ROOT)
    if TEMP_ROOT is None:
        atexit.register(shutil.rmtree, folder, True)
    proto, model = os.path.join(folder, "net.prototxt"), os.path.join(folder, "net.caffemodel")
    net.save(proto, model, **kw)
    return proto, model


def run_ember(proto: str, model: str | None, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    graph = import_model(proto, model)
    verify(graph)
    return interpret(graph, inputs)


def run_opencv(
    proto: str, model: str, inputs: dict[str, np.ndarray], output: str, fallback: str | None = None
) -> np.ndarray:
    """OpenCV's value of layer ``output`` (OpenCV renames some layers after their top: ``fallback``)."""
    import cv2

    cv = cv2.dnn.readNetFromCaffe(proto, model)
    cv.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    for name, value in inputs.items():
        cv.setInput(value, name)
    names = set(cv.getLayerNames())
    return cv.forward(output if output in names or not fallback or fallback not in names else fallback)


def check_against_opencv(
    net: NetSpec,
    inputs: dict[str, np.ndarray],
    output: str | None = None,
    *,
    cv_output: str | None = None,
    rtol: float = 1e-4,
    atol: float = 1e-4,
    **save_kw,
):
    """Ember vs OpenCV on ``output`` (a top name; default: the last layer's first top).

    ``cv_output`` is the OpenCV layer name to read (default: the layer producing ``output``).
    """
    output = output or net.layers[-1].top[0]
    if cv_output is None:
        cv_output = [layer.name for layer in net.layers if output in layer.top][-1]
    proto, model = save(net, **save_kw)
    ours = run_ember(proto, model, inputs)[output]
    theirs = run_opencv(proto, model, inputs, cv_output, output)
    assert ours.shape == theirs.shape or ours.size == theirs.size, (ours.shape, theirs.shape)
    np.testing.assert_allclose(ours.reshape(theirs.shape), theirs, rtol=rtol, atol=atol)
    return ours


def single_layer(type_: str, shape, *, blobs=(), bottoms=1, tops=1, **params) -> NetSpec:
    """A net with inputs ``data``(, ``data2``...) feeding one layer of ``type_``."""
    names = ["data"] + [f"data{i}" for i in range(2, bottoms + 1)]
    shapes = shape if isinstance(shape, dict) else {n: shape for n in names}
    net = NetSpec(type_.lower(), inputs=shapes)
    top = ["out"] if tops == 1 else [f"out{i}" for i in range(tops)]
    net.layer("layer", type_, list(shapes), top, blobs=blobs, **params)
    return net


def randn(*shape, low=None):
    """A float32 normal sample; ``low`` shifts it positive (for Log/Power)."""
    x = rng().standard_normal(shape).astype(np.float32)
    return np.abs(x) + low if low is not None else x
