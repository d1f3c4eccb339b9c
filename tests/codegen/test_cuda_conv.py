"""Grouped (not depthwise) convolutions on the GPU: one product per group, which the matmul rule tiles
through shared memory, instead of topi's grouped conv on DLight's general reduction rule (ShuffleNet's
grouped 1x1 convs kept 952 partial sums per thread in local memory, and spilled)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import tvm
from onnx import TensorProto, helper, numpy_helper

from codegen import parse_target
from codegen.cuda.kernel import build_cuda_kernel
from codegen.plan import build_plan
from codegen.tvm.kernel import spec_to_te
from codegen.tvm.registry import get_lowering
from compiler import interpret
from compiler.driver import load_graph, prepare_for_codegen


@pytest.mark.parametrize(
    "channels, outputs, group, kernel, size, stride",
    [(272, 272, 4, 1, 14, 1), (24, 48, 4, 3, 9, 2), (24, 36, 3, 3, 11, 1)],  # ShuffleNet's 1x1; 3x3s
)
def test_grouped_conv_is_a_batched_gemm_on_the_gpu(channels, outputs, group, kernel, size, stride):
    """The kernel is DLight's matmul (A and B reindexed into shared-memory tiles) with a few
    accumulators per thread (no local array of 64 or more values: topi's form kept 952 for the
    first case, and gave the others a 256-thread reduction per output), and its definition, built
    for the CPU, matches the interpreter."""
    rng = np.random.default_rng(0)
    weight = (rng.standard_normal((outputs, channels // group, kernel, kernel)) * 0.2).astype(np.float32)
    bias = rng.standard_normal(outputs).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], group=group, pads=[kernel // 2] * 4, strides=[stride] * 2),
        helper.make_node("Relu", ["c"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "grouped",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    (call,) = build_plan(prepare_for_codegen(load_graph(model), "O2", None), get_lowering, target_name="cuda").calls
    kernel_c = build_cuda_kernel(call.spec, "g", parse_target("cuda:sm_90").to_tvm())
    assert re.search(r"__shared__[^;]*_reindex", kernel_c.source)
    assert all(int(n) < 64 for n in re.findall(r"local_ptr\[(\d+)\]", kernel_c.source))
    placeholders, outputs_te = spec_to_te(call.spec, [])
    assert [tuple(int(d) for d in t.shape) for t in placeholders[1:]] == [weight.shape, bias.shape]
    x = rng.standard_normal((1, channels, size, size)).astype(np.float32)
    want = interpret(load_graph(model), {"x": x})["y"]
    got = tvm.runtime.tensor(np.zeros(want.shape, np.float32))
    func = tvm.tirx.build(tvm.IRModule({"main": tvm.te.create_prim_func(placeholders + outputs_te)}), "llvm")
    func(*[tvm.runtime.tensor(a) for a in (x, weight, bias)], got)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)
