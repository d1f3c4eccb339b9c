"""Malformed models give one clean EmberError naming the node, the op and the shapes, at import.

Never a NumPy traceback at run time, and never a library that computes garbage:
the importers check every node against its op's shape contract (and onnx's
inference), and ``ember run`` / ``ember compile`` report the same error.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from malformed_models import CASES, two_bad_convs

from compiler import EmberError
from frontends.caffe import import_model as import_caffe
from frontends.caffe.writer import NetSpec
from frontends.onnx import import_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _import_error(model) -> EmberError:
    with pytest.raises(EmberError) as info:
        import_model(model)
    return info.value


@pytest.mark.parametrize("make", CASES, ids=[make.__name__ for make in CASES])
def test_import_names_node_op_and_shapes(make):
    case = make()
    error = _import_error(case.model)
    assert type(error).__module__.split(".")[0] in ("compiler", "frontends")
    message = str(error)
    assert error.node == case.node and error.op == case.op, message
    assert f"node '{case.node}'" in message and f"op {case.op}" in message, message
    for text in case.shows:
        assert text in message, f"{text!r} missing from: {message}"
    assert "numpy" not in message.lower() and "Traceback" not in message


def test_every_broken_node_is_listed_at_once():
    message = str(_import_error(two_bad_convs()))
    assert "2 node(s) break their op's shape contract" in message, message
    assert "node 'first' (Conv)" in message and "[4, 5, 3, 3]" in message, message
    assert "node 'second' (Conv)" in message and "[2, 7, 1, 1]" in message, message
    assert "'fine'" not in message


def test_a_file_is_named(tmp_path):
    case = CASES[0]()
    path = tmp_path / "bad_conv.onnx"
    onnx.save(case.model, str(path))
    error = _import_error(str(path))
    assert error.file == str(path) and str(path) in str(error)


def _run_cli(*args, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("EMBER_TRACEBACK", None)
    return subprocess.run(
        [sys.executable, "-m", "compiler.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(cwd),
        timeout=600,
    )


@pytest.mark.parametrize("command", ["run", "compile"])
def test_cli_reports_the_contract_error(tmp_path, command):
    """``ember run`` and ``ember compile`` on the issue's Conv stop at import with the same message."""
    model = tmp_path / "bad_conv.onnx"
    onnx.save(CASES[0]().model, str(model))
    np.save(tmp_path / "x.npy", np.ones((1, 3, 8, 8), np.float32))
    args = (
        ["run", str(model), "--input", f"x={tmp_path / 'x.npy'}", "-o", str(tmp_path)]
        if command == "run"
        else ["compile", str(model), "-o", str(tmp_path / "bad.so"), "-q"]
    )
    result = _run_cli(*args, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "ember: error:" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert "node 'conv1'" in result.stderr and "op Conv" in result.stderr, result.stderr
    assert "[4, 5, 3, 3]" in result.stderr and "[1, 3, 8, 8]" in result.stderr, result.stderr
    assert not (tmp_path / "bad.so").exists() and not (tmp_path / "y.npy").exists()


def test_cli_run_on_a_text_ir_file_names_the_contract(tmp_path):
    path = tmp_path / "bad.ir"
    path.write_text(
        "graph @main(%x: f32[1,3,8,8], %w: f32[4,5,3,3]) {\n  %y = Conv(%x, %w) : f32[1,4,6,6]\n  return %y\n}\n"
    )
    for name, shape in (("x", (1, 3, 8, 8)), ("w", (4, 5, 3, 3))):
        np.save(tmp_path / f"{name}.npy", np.ones(shape, np.float32))
    result = _run_cli(
        "run",
        str(path),
        "--input",
        f"x={tmp_path / 'x.npy'}",
        "--input",
        f"w={tmp_path / 'w.npy'}",
        "-o",
        str(tmp_path),
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr
    assert "node 'y' (Conv)" in result.stderr and "[4, 5, 3, 3]" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "reshape" not in result.stderr, result.stderr


def test_caffe_weights_with_the_wrong_channel_count(tmp_path):
    """A caffemodel whose convolution weights have 5 input channels for a 3-channel input."""
    net = NetSpec("bad", inputs={"data": (1, 3, 8, 8)})
    net.layer(
        "conv1",
        "Convolution",
        ["data"],
        ["conv1"],
        blobs=[np.ones((4, 5, 3, 3), np.float32)],
        convolution_param={"num_output": 4, "kernel_size": [3], "bias_term": False},
    )
    proto, weights = str(tmp_path / "bad.prototxt"), str(tmp_path / "bad.caffemodel")
    net.save(proto, weights)
    with pytest.raises(EmberError) as info:
        import_caffe(proto, weights)
    error = info.value
    assert error.node == "conv1" and error.op == "Convolution", str(error)
    assert "[4, 5, 3, 3]" in str(error) and "[4, 3, 3, 3]" in str(error), str(error)


def test_caffe_group_that_does_not_divide_the_channels(tmp_path):
    net = NetSpec("bad", inputs={"data": (1, 3, 8, 8)})
    net.layer(
        "conv1",
        "Convolution",
        ["data"],
        ["conv1"],
        blobs=[np.ones((4, 1, 3, 3), np.float32)],
        convolution_param={"num_output": 4, "kernel_size": [3], "group": 2, "bias_term": False},
    )
    proto, weights = str(tmp_path / "bad.prototxt"), str(tmp_path / "bad.caffemodel")
    net.save(proto, weights)
    with pytest.raises(EmberError) as info:
        import_caffe(proto, weights)
    error = info.value
    assert error.node == "conv1" and error.op == "Convolution" and "group 2" in str(error), str(error)


def test_caffe_layers_are_checked_against_their_ops_contracts(tmp_path, monkeypatch):
    """A converter that builds a Conv breaking its contract (here a stand-in that skips the weight check)
    is caught at import, naming the layer, its type and the Ember op, with every broken layer listed."""
    from frontends.caffe import context

    def careless_convolution(ctx):
        return [ctx.op("Conv", [ctx.inputs[0], ctx.const(np.ones((4, 5, 3, 3), np.float32))])]

    monkeypatch.setitem(context.CONVERTERS, "Convolution", careless_convolution)
    net = NetSpec("careless", inputs={"data": (1, 3, 8, 8)})
    net.layer("conv1", "Convolution", ["data"], ["conv1"], convolution_param={"num_output": 4, "kernel_size": [3]})
    proto = str(tmp_path / "careless.prototxt")
    net.save(proto, str(tmp_path / "careless.caffemodel"))
    with pytest.raises(EmberError) as info:
        import_caffe(proto)
    error = info.value
    assert error.node == "conv1" and error.op == "Convolution", str(error)
    assert "Conv: W [4, 5, 3, 3]" in str(error) and "X [1, 3, 8, 8]" in str(error), str(error)

    net.layer("relu", "ReLU", ["conv1"], ["relu"])
    net.layer("conv2", "Convolution", ["relu"], ["conv2"], convolution_param={"num_output": 4, "kernel_size": [3]})
    net.save(proto, str(tmp_path / "careless.caffemodel"))
    with pytest.raises(EmberError) as info:
        import_caffe(proto)
    message = str(info.value)
    assert "2 layer(s) break a shape contract" in message, message
    assert "layer 'conv1' (Convolution)" in message and "layer 'conv2' (Convolution)" in message, message
    assert "'relu'" not in message
