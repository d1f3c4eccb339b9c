"""``prune``: magnitude sparsity; channel pruning keeps the graph valid, ties residual branches, drops
FLOPs (>= 20% on ResNet-50 at 25%), and is exact when the pruned channels carry zero weights."""

from __future__ import annotations

import zlib

import numpy as np
from compression_models import as_graph, mlp, residual_cnn, samples

from compiler.compression import graph_flops, weight_bytes
from compiler.ir.interpreter import interpret
from compiler.ir.verifier import verify
from compiler.testing import assert_pass_preserves_semantics
from passes.prune import PrunePass


def _weights(graph, name):
    node = next(n for n in graph.nodes if n.name == name)
    return np.asarray(node.operands[1].const_value)


def test_magnitude_zeroes_the_smallest_half_of_each_weight():
    graph = as_graph(mlp())
    before = _weights(graph, "fc1").copy()
    result = PrunePass(sparsity=0.5)(graph)
    after = _weights(graph, "fc1")
    assert result.statistics == {"weights": 16 * 32 + 32 * 4, "zeroed": (16 * 32 + 32 * 4) // 2}
    assert (after == 0).sum() == before.size // 2
    kept = after != 0
    assert np.abs(before[kept]).min() >= np.abs(before[~kept]).max()  # the smallest went
    np.testing.assert_array_equal(after[kept], before[kept])
    packed = [len(zlib.compress(a.astype(np.float32).tobytes())) for a in (before, after)]
    assert packed[1] < 0.7 * packed[0]  # the weights file compresses accordingly


def test_channel_pruning_the_residual_cnn():
    graph = as_graph(residual_cnn())
    flops, size = graph_flops(graph), weight_bytes(graph)
    result = PrunePass(method="channel", ratio=0.25)(graph)
    verify(graph)
    # stem and block2 are tied by the residual Add: one group; block1, left, right, head: one each
    assert result.statistics == {"groups": 5, "channels-removed": 4 * 2 + 4}
    channels = {n.name: _weights(graph, n.name).shape[0] for n in graph.nodes if n.op == "Conv"}
    assert channels == {"stem": 6, "block1": 6, "block2": 6, "left": 6, "right": 6, "head": 12}
    assert _weights(graph, "head").shape[1] == 12  # reads the Concat of left and right (6 + 6)
    assert _weights(graph, "fc").shape == (5, 12)  # Gemm after GlobalAveragePool and Flatten
    bn = next(n for n in graph.nodes if n.name == "block1_bn")
    assert [np.shape(v.const_value) for v in bn.operands[1:]] == [(6,)] * 4
    assert graph_flops(graph) < 0.7 * flops and weight_bytes(graph) < 0.7 * size
    probs = interpret(graph, samples(1, (1, 3, 8, 8))[0])["probs"]
    assert probs.shape == (1, 5) and abs(probs.sum() - 1) < 1e-5


def _zero_channels(model, name, channels):
    """Zero output channels of initializer ``name`` (axis 0 for a Conv kernel, 1 for a MatMul weight)."""
    from onnx import numpy_helper

    for i, init in enumerate(model.graph.initializer):
        if init.name == name:
            array = numpy_helper.to_array(init).copy()
            index = [slice(None)] * array.ndim
            index[0 if array.ndim == 4 else array.ndim - 1] = channels
            array[tuple(index)] = 0
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(array, name))
    return model


def test_channel_pruning_is_exact_when_the_pruned_channels_are_zero():
    model = _zero_channels(mlp(), "w1", list(range(8)))
    model = _zero_channels(model, "b1", list(range(8)))
    graph = as_graph(model)
    after = assert_pass_preserves_semantics(PrunePass(method="channel", ratio=0.25), graph)
    assert _weights(after, "fc1").shape == (16, 24) and _weights(after, "fc2").shape == (24, 4)


def test_groups_reaching_an_output_keep_their_channels():
    graph = as_graph(mlp())
    # fc2's channels are the graph's output: only fc1's hidden units can go
    result = PrunePass(method="channel", ratio=0.5)(graph)
    assert result.statistics == {"groups": 1, "channels-removed": 16}
    assert [v.type.shape for v in graph.outputs] == [(2, 4)]


# ResNet-50 at 32x32 is built, pruned, verified and run once: a few seconds
def test_resnet50_loses_at_least_a_fifth_of_its_flops_at_25_percent():
    from benchmarks.model_zoo import resnet50

    graph = as_graph(resnet50(32))
    flops = graph_flops(graph)
    result = PrunePass(method="channel", ratio=0.25)(graph)
    verify(graph)
    assert result.statistics["groups"] > 30
    assert graph_flops(graph) <= 0.8 * flops
    (logits,) = interpret(graph, {"input": samples(1, (1, 3, 32, 32))[0]["x"]}).values()
    assert logits.shape == (1, 1000) and np.isfinite(logits).all()


def test_run_compression_reports_bytes_flops_and_statistics():
    from compiler.compression import run_compression

    graph = as_graph(residual_cnn())
    report = run_compression(graph, "prune{method=channel,ratio=0.25},convert-float16")
    assert report.flops_after < 0.7 * report.flops_before
    assert report.weight_bytes_after < 0.4 * report.weight_bytes_before  # 25% fewer channels, then 2 bytes each
    assert report.notes[0] == "prune: groups 5, channels-removed 12"
    assert ("node 'softmax' (Softmax)", "precision-sensitive op") in report.left_float
    assert "FLOPs:" in report.text()
