"""Caffe graphs exported to ONNX and run by onnxruntime: a second, independent runtime for
the ONNX-semantics ops each Caffe layer became (and a check that they are valid ONNX)."""

from __future__ import annotations

import numpy as np
import pytest
from caffe_harness import randn, save
from test_caffe_networks import lenet

from compiler import interpret
from frontends.caffe import import_model
from frontends.caffe.writer import NetSpec
from frontends.onnx.exporter import export_model, ort_session


def mixed_net(argmax: bool = True) -> NetSpec:
    """Layers whose ONNX form is least obvious: Caffe pooling rounding, LRN within channel, Crop,
    Normalize, Scale/Bias broadcasting, Power/Exp/Log, Threshold, ArgMax, grouped Deconvolution."""
    net = NetSpec("mixed", inputs={"data": (1, 4, 9, 11)})
    net.layer(
        "pool", "Pooling", ["data"], ["pool"], pooling_param={"pool": "AVE", "kernel_size": 3, "stride": 2, "pad": 1}
    )
    net.layer("maxp", "Pooling", ["data"], ["maxp"], pooling_param={"pool": "MAX", "kernel_size": 2, "stride": 3})
    net.layer("lrn", "LRN", ["pool"], ["lrn"], lrn_param={"local_size": 3, "norm_region": "WITHIN_CHANNEL"})
    net.layer(
        "deconv",
        "Deconvolution",
        ["lrn"],
        ["deconv"],
        blobs=[randn(4, 2, 3, 3), randn(4)],
        convolution_param={"num_output": 4, "kernel_size": [3], "stride": [2], "group": 2},
    )
    net.layer("crop", "Crop", ["deconv", "data"], ["crop"], crop_param={"axis": 2, "offset": [1]})
    net.layer(
        "norm",
        "Normalize",
        ["crop"],
        ["norm"],
        blobs=[randn(4)],
        norm_param={"across_spatial": False, "channel_shared": False},
    )
    net.layer("scale", "Scale", ["norm"], ["norm"], blobs=[randn(4), randn(4)], scale_param={"bias_term": True})
    net.layer("bias", "Bias", ["norm"], ["norm"], blobs=[randn(4)])
    net.layer("abs", "AbsVal", ["norm"], ["absn"])
    net.layer("power", "Power", ["absn"], ["power"], power_param={"power": 0.5, "scale": 2.0, "shift": 1.0})
    net.layer("log", "Log", ["power"], ["log"], log_param={"base": 2.0})
    net.layer("exp", "Exp", ["log"], ["exp"], exp_param={"base": 3.0, "scale": 0.5})
    net.layer("thr", "Threshold", ["exp"], ["thr"], threshold_param={"threshold": 1.5})
    if argmax:
        net.layer("argmax", "ArgMax", ["exp"], ["argmax"], argmax_param={"top_k": 2, "out_max_val": True})
    return net


@pytest.mark.parametrize("make", [lenet, mixed_net], ids=["lenet", "mixed"])
def test_exported_graph_runs_the_same_in_onnxruntime(make):
    net = make()
    proto, model = save(net)
    graph = import_model(proto, model)
    x = randn(*net.inputs["data"])
    ours = interpret(graph, {"data": x})
    session = ort_session(export_model(graph, check=True))
    theirs = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"data": x})))
    assert set(theirs) == set(ours)
    for name, value in ours.items():
        np.testing.assert_allclose(theirs[name], value, rtol=1e-4, atol=1e-5, err_msg=name)
