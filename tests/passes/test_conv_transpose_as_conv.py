"""``conv-transpose-as-conv``: random ConvTransposes whose kernel is their stride keep their results
as a 1x1 Conv and a DepthToSpace (the interpreter before and after), others are left alone, and
the compiled library of the rewritten head matches the interpreter."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from codegen.plan import build_plan
from codegen.tvm.registry import get_lowering
from compiler.driver import prepare_for_codegen
from compiler.ir.builder import Builder
from compiler.ir.core import Graph
from compiler.ir.types import DType, TensorType
from compiler.testing import assert_pass_is_idempotent, assert_pass_preserves_semantics
from frontends.onnx import import_model
from frontends.onnx.backend import EmberBackend
from passes.conv_transpose_as_conv import ConvTransposeAsConvPass

F32 = DType.FLOAT32


@st.composite
def conv_transposes(draw) -> tuple[Graph, bool]:
    """A ConvTranspose (then Relu) of random sizes; whether its kernel is its stride, unpadded."""
    n, c, k = draw(st.integers(1, 2)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    h, w, s = draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(2, 3))
    kernel = draw(st.sampled_from((s, s, s + 1)))  # mostly the stride; else overlapping taps
    rng = np.random.default_rng(n * 10000 + c * 1000 + k * 100 + h * 10 + w + s)
    graph = Graph("conv_transpose")
    b = Builder(graph)
    x = b.param("x", TensorType(F32, (n, c, h, w)))
    operands = [x, b.constant(rng.standard_normal((c, k, kernel, kernel)).astype(np.float32))]
    if draw(st.booleans()):
        operands.append(b.constant(rng.standard_normal(k).astype(np.float32)))
    attrs = {"strides": [s, s], "kernel_shape": [kernel, kernel]}
    y = b.op("ConvTranspose", operands, attrs)
    graph.outputs = [b.op("Relu", [y]) if draw(st.booleans()) else y]
    return graph, kernel == s


@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(conv_transposes())
def test_rewrite_preserves_semantics_and_is_idempotent(case):
    graph, convertible = case
    after = assert_pass_preserves_semantics(ConvTransposeAsConvPass(), graph)
    assert_pass_is_idempotent(ConvTransposeAsConvPass(), after, "conv-transpose-as-conv")
    ops = [n.op for n in after.nodes if n.op != "Constant"]
    assert ("ConvTranspose" not in ops) == convertible
    if convertible:
        assert ops[:2] == ["Conv", "DepthToSpace"]


def test_padded_grouped_or_runtime_weight_is_left_alone():
    for attrs, weight_const in (({"pads": [1, 1, 1, 1]}, True), ({"group": 2}, True), ({}, False)):
        graph = Graph("left_alone")
        b = Builder(graph)
        x = b.param("x", TensorType(F32, (1, 2, 4, 4)))
        w_shape = (2, 1 if attrs.get("group") else 3, 2, 2)
        w = b.constant(np.ones(w_shape, np.float32)) if weight_const else b.param("w", TensorType(F32, w_shape))
        out_hw = 6 if attrs.get("pads") else 8
        out_k = 2 if attrs.get("group") else 3
        y = b.op("ConvTranspose", [x, w], {"strides": [2, 2], **attrs})
        y.type = TensorType(F32, (1, out_k, out_hw, out_hw))
        graph.outputs = [y]
        assert not ConvTransposeAsConvPass().run(graph).modified, attrs


def test_compiled_upsampling_head_matches_the_interpreter():
    """A DBNet-style head, 24 -> 1 channel 2x2 stride-2 with Sigmoid, through the compile driver
    (codegen-prepare runs the pass): a pointwise Conv and a DepthToSpace + Sigmoid kernel."""
    rng = np.random.default_rng(11)
    w = (rng.standard_normal((24, 1, 2, 2)) * 0.3).astype(np.float32)
    nodes = [
        helper.make_node("ConvTranspose", ["x", "w", "b"], ["t"], strides=[2, 2], kernel_shape=[2, 2]),
        helper.make_node("Sigmoid", ["t"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "head",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 24, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 64, 64])],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.float32([0.2]), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.standard_normal((1, 24, 32, 32)).astype(np.float32)
    got = EmberBackend.prepare(model, compile=True).run({"x": x})[0]
    np.testing.assert_allclose(got, EmberBackend.prepare(model).run({"x": x})[0], rtol=1e-5, atol=1e-6)
    plan = build_plan(prepare_for_codegen(import_model(model), "O2"), get_lowering)
    assert [[op.op for op in call.spec.ops] for call in plan.calls] == [["Conv"], ["DepthToSpace", "Sigmoid"]]
