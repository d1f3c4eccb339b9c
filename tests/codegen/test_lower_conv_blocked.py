"""The blocked-layout lowerings (``codegen/tvm/lower/nn/conv_blocked.py``): a small conv net compiled
with ``convert-layout`` gives the interpreter's results, and its convolutions run as blocked kernels."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import runtime
from compiler.driver import compile_model
from compiler.ir.builder import Builder
from compiler.ir.core import Graph
from compiler.ir.interpreter import interpret_list
from compiler.ir.types import DType, TensorType


def small_conv_net(weight_params: bool = False) -> Graph:
    """Conv(3x3, bias) -> Relu -> {depthwise 3x3 -> 1x1 stride 2, 3x3 SAME stride 2} -> Concat -> 1x1 ->
    residual Add -> per-channel Mul -> Relu."""
    rng = np.random.default_rng(0)
    graph = Graph("conv_net")
    b = Builder(graph)
    x = b.param("x", TensorType(DType.FLOAT32, (1, 16, 9, 9)))

    def weight(*shape):
        if weight_params:
            return b.param(f"w{len(graph.params)}", TensorType(DType.FLOAT32, shape))
        return b.constant(rng.standard_normal(shape).astype(np.float32))

    c1 = b.op("Conv", [x, weight(32, 16, 3, 3), b.constant(rng.standard_normal(32).astype(np.float32))])
    r1 = b.op("Relu", [c1])
    d1 = b.op("Conv", [r1, weight(32, 1, 3, 3)], {"group": 32, "pads": [1, 1, 1, 1]})
    c2 = b.op("Conv", [d1, weight(32, 32, 1, 1)], {"strides": [2, 2]})
    c3 = b.op("Conv", [r1, weight(32, 32, 3, 3)], {"strides": [2, 2], "auto_pad": "SAME_UPPER"})
    scale = b.constant(rng.uniform(0.5, 1.5, (32, 1, 1)).astype(np.float32))
    joined = b.op("Conv", [b.op("Concat", [c2, c3], {"axis": 1}), weight(32, 64, 1, 1)])
    graph.outputs = [b.op("Relu", [b.op("Mul", [b.op("Add", [joined, c3]), scale])])]
    return graph


@pytest.mark.parametrize("weight_params", [False, True], ids=["prepacked-weights", "run-time-weights"])
def test_blocked_conv_net_matches_the_interpreter(tmp_path, weight_params):
    rng = np.random.default_rng(1)
    feeds = {p.name: rng.standard_normal(p.type.shape).astype(np.float32) for p in small_conv_net(weight_params).params}
    (want,) = interpret_list(small_conv_net(weight_params), feeds)
    result = compile_model(small_conv_net(weight_params), str(tmp_path / "net.so"), pipeline="O2,convert-layout")
    assert result.stats["schedules"].get("conv-blocked") == 5
    (got,) = runtime.load(str(tmp_path / "net.so")).run(feeds).values()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3 * float(np.abs(want).max()))
