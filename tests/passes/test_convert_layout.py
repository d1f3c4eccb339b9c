"""``convert-layout``: random conv/elementwise nets keep their results (interpreter before == after).

The nets mix blockable convolutions (channels multiples of the block, depthwise ones), ones that are not
(channels 12, grouped), per-channel and scalar constants, residual Adds, channel Concats and layout-sensitive ops
(MaxPool, GlobalAveragePool) that send values back to NCHW.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import parse_ir, print_ir
from compiler.ir.builder import Builder
from compiler.ir.core import Graph
from compiler.ir.types import DType, TensorType
from compiler.ops.ember_layout import from_blocked, to_blocked
from compiler.testing import assert_pass_is_idempotent, assert_pass_preserves_semantics
from passes.convert_layout import ConvertLayoutPass

LANES = 8
KINDS = ("conv", "conv", "depthwise", "unary", "const", "residual", "concat", "pool", "odd-conv")


@st.composite
def conv_nets(draw) -> Graph:
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    graph = Graph("random_conv_net")
    b = Builder(graph)
    size = draw(st.sampled_from((5, 6, 8)))
    v = b.param("x", TensorType(DType.FLOAT32, (1, draw(st.sampled_from((8, 16))), size, size)))
    seen = [v]
    for _ in range(draw(st.integers(1, 6))):
        n, c, h, w = v.type.shape
        kind = draw(st.sampled_from(KINDS))
        if kind in ("conv", "odd-conv"):
            k = 12 if kind == "odd-conv" else draw(st.sampled_from((8, 16)))
            r = draw(st.sampled_from((1, 3)))
            stride = draw(st.sampled_from((1, 2))) if h >= 4 else 1
            attrs = {"strides": [stride, stride]}
            if r == 3 and draw(st.booleans()):
                attrs["auto_pad"] = "SAME_UPPER"
            elif r == 3:
                attrs["pads"] = [1, 1, 1, 1]
            # weights scaled by 1/sqrt(fan-in) keep values near 1, so the reference kernels' different
            # summation orders (auto_pad vs explicit pads take different paths) stay within tolerance
            wt = b.constant((rng.standard_normal((k, c, r, r)) / np.sqrt(c * r * r)).astype(np.float32))
            operands = [v, wt]
            if draw(st.booleans()):
                operands.append(b.constant(rng.standard_normal(k).astype(np.float32)))
            v = b.op("Conv", operands, attrs)
        elif kind == "depthwise":
            wt = b.constant((rng.standard_normal((c, 1, 3, 3)) / 3).astype(np.float32))
            v = b.op("Conv", [v, wt], {"group": c, "pads": [1, 1, 1, 1]})
        elif kind == "unary":
            v = b.op(draw(st.sampled_from(("Relu", "Sigmoid", "Neg"))), [v])
        elif kind == "const":
            shape = draw(st.sampled_from(((c, 1, 1), (1, c, 1, 1), (), (1,), (w,))))
            const = b.constant(rng.uniform(-2, 2, shape).astype(np.float32))
            v = b.op(draw(st.sampled_from(("Add", "Mul"))), [v, const] if draw(st.booleans()) else [const, v])
        elif kind == "residual":
            partners = [s for s in seen if s.type.shape == v.type.shape and s is not v]
            if partners:
                v = b.op("Add", [v, draw(st.sampled_from(partners))])
        elif kind == "concat":
            partners = [s for s in seen if s.type.shape[2:] == (h, w)]
            v = b.op("Concat", [v, draw(st.sampled_from(partners))], {"axis": 1})
        elif kind == "pool" and h >= 2:
            v = b.op("MaxPool", [v], {"kernel_shape": [2, 2], "strides": [2, 2]})
        seen.append(v)
    outputs = [v] + ([b.op("GlobalAveragePool", [seen[-2]])] if len(seen) > 2 and draw(st.booleans()) else [])
    graph.outputs = outputs
    return graph


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(conv_nets())
def test_convert_layout_preserves_semantics_and_is_idempotent(graph):
    after = assert_pass_preserves_semantics(ConvertLayoutPass(lanes=LANES), graph)
    assert_pass_is_idempotent(ConvertLayoutPass(lanes=LANES), after, "convert-layout")
    transforms = [n for n in after.nodes if n.op == "ember.LayoutTransform"]
    convs = [n for n in after.nodes if n.op == "ember.ConvBlocked"]
    # every blocked conv has its transforms, but a chain never goes back and forth
    assert len(transforms) <= 2 * len(convs) + len(graph.outputs)
    for t in transforms:
        producer = t.operands[0].producer
        assert producer is None or producer.op != "ember.LayoutTransform"


def test_blocking_round_trips_and_puts_channels_last():
    x = np.arange(2 * 32 * 3 * 2, dtype=np.float32).reshape(2, 32, 3, 2)
    blocked = to_blocked(x, 16)
    assert blocked.shape == (2, 2, 3, 2, 16)
    assert blocked[1, 1, 2, 0, 5] == x[1, 16 + 5, 2, 0]
    np.testing.assert_array_equal(from_blocked(blocked), x)


def test_the_blocked_ir_round_trips_through_text():
    graph = parse_ir("""
graph @net(%x: f32[1,16,4,4], %w: f32[16,16,3,3], %g: f32[16,1,3,3]) {
  %c = Conv(%x, %w) {pads = [1, 1, 1, 1]} : f32[1,16,4,4]
  %d = Conv(%c, %g) {group = 16, pads = [1, 1, 1, 1]} : f32[1,16,4,4]
  return %d
}
""")
    ConvertLayoutPass().run(graph)
    text = print_ir(graph)
    assert 'ember.ConvBlocked(%0, %w) {layout = "NCHW16c"' in text and "f32[1,1,4,4,16]" in text
    assert print_ir(parse_ir(text)) == text


def test_blocked_nodes_keep_the_names_of_the_nodes_they_replace():
    """Profiles label kernels by node name (``benchmarks/profile_vs_ort.py`` matches them to
    onnxruntime's nodes by it): the ``ember.ConvBlocked`` that replaces a named Conv, and the blocked
    Relu that the transform back sinks past, carry their names."""
    graph = parse_ir("""
graph @net(%x: f32[1,16,4,4], %w: f32[16,16,3,3]) {
  %c = Conv(%x, %w) {pads = [1, 1, 1, 1]} : f32[1,16,4,4]
  %r = Relu(%c) : f32[1,16,4,4]
  return %r
}
""")
    names = {"Conv": "/layer1/conv1/Conv", "Relu": "/layer1/relu/Relu"}
    for n in graph.nodes:
        n.name = names.get(n.op, n.name)
    ConvertLayoutPass().run(graph)
    blocked = {n.op: n.name for n in graph.nodes if n.op in ("ember.ConvBlocked", "Relu")}
    assert blocked == {"ember.ConvBlocked": "/layer1/conv1/Conv", "Relu": "/layer1/relu/Relu"}
    assert [n.op for n in graph.nodes][-1] == "ember.LayoutTransform"  # back to NCHW, after the Relu
