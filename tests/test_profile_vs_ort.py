"""benchmarks/profile_vs_ort.py: onnxruntime's profile events matched to Ember's kernels."""

from __future__ import annotations

import os
import sys

import numpy as np
from onnx import helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import profile_vs_ort  # noqa: E402


def test_event_names_map_to_graph_nodes():
    producers = {"/features/conv.2/Clip_output_0": "/features/conv.2/Clip", "y": "/relu/Relu"}

    def name(event):
        return profile_vs_ort.graph_node_name(event, producers)

    assert name("/features/conv/Conv_kernel_time") == "/features/conv/Conv"  # not in producers: kept
    assert name("/features/conv.2/Clip_output_0_nchwc_kernel_time") == "/features/conv.2/Clip"
    assert name("y_nchwc_kernel_time") == "/relu/Relu"  # a fused Conv+Relu named after its output y
    assert name("/relu/Relu_kernel_time") == "/relu/Relu"
    assert name("ReorderInput_token_12_kernel_time") == "ReorderInput_token_12"


def test_a_conv_relu_model_is_matched_node_for_node(tmp_path, capsys):
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((16, 8, 3, 3)).astype(np.float32), "w")
    conv = helper.make_node("Conv", ["x", "w"], ["c"], name="/conv/Conv", pads=[1, 1, 1, 1])
    relu = helper.make_node("Relu", ["c"], ["y"], name="/relu/Relu")
    graph = helper.make_graph(
        [conv, relu],
        "g",
        [helper.make_tensor_value_info("x", 1, [1, 8, 16, 16])],
        [helper.make_tensor_value_info("y", 1, [1, 16, 16, 16])],
        initializer=[w],
    )
    path = tmp_path / "conv_relu.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    assert profile_vs_ort.main([str(path), "--runs", "5"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "Ember's kernels" in lines[0] and "onnxruntime's nodes" in lines[0]
    (row,) = [line for line in lines if "[/conv/Conv]" in line]
    ember_ms, ort_ms = (float(v) for v in row.split()[:2])
    assert ember_ms > 0 and ort_ms > 0  # onnxruntime's fused Conv+Relu node was found for the kernel
    assert "Conv+Relu" in row
