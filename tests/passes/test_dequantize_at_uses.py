"""``dequantize-at-uses``: random graphs of a DequantizeLinear with several readers keep the
interpreter's results exactly, every reader that fuses a producer gets its own copy, the pass is
idempotent, and a compiled squeeze-and-excitation block writes its activation as 8-bit values only
(its float32 dequantization is computed inside each reader's kernel)."""

from __future__ import annotations

import numpy as np
from compiled_graph import compiled_outputs_and_kernels
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.ir.builder import Builder
from compiler.ir.core import Graph
from compiler.ir.interpreter import interpret_list
from compiler.ir.types import DType, TensorType
from compiler.testing import assert_pass_is_idempotent, assert_pass_preserves_semantics
from passes.dequantize_at_uses import DequantizeAtUsesPass

U8, I8 = np.dtype(np.uint8), np.dtype(np.int8)
# readers: (op, whether it fuses a producer: elementwise, injective, reduction; a Conv does not)
READERS = [("Relu", True), ("Sigmoid", True), ("Transpose", True), ("ReduceMax", True), ("Conv", False)]


@st.composite
def dequantized(draw) -> tuple[Graph, dict, list[bool]]:
    """``DequantizeLinear(x)`` of a random 8-bit type read by 1 to 4 random readers, each an output."""
    dtype = draw(st.sampled_from((U8, I8)))
    info = np.iinfo(dtype)
    graph = Graph("dq")
    b = Builder(graph)
    x = b.param("x", TensorType(DType.from_np(dtype), (1, 2, 3, 3)))
    zero = b.constant(np.array(draw(st.integers(info.min, info.max)), dtype))
    d = b.op("DequantizeLinear", [x, b.constant(np.float32(draw(st.floats(0.01, 0.5)))), zero])
    readers = draw(st.lists(st.sampled_from(READERS), min_size=1, max_size=4))
    outputs = []
    for op, _ in readers:
        if op == "Conv":
            outputs.append(b.op("Conv", [d, b.constant(np.ones((2, 2, 1, 1), np.float32))]))
        elif op == "Transpose":
            outputs.append(b.op("Transpose", [d], {"perm": [0, 2, 3, 1]}))
        elif op == "ReduceMax":
            outputs.append(b.op("ReduceMax", [d], {"keepdims": 0}))
        else:
            outputs.append(b.op(op, [d]))
    graph.outputs = outputs
    feeds = {"x": np.random.default_rng(0).integers(info.min, info.max, (1, 2, 3, 3), endpoint=True).astype(dtype)}
    return graph, feeds, [fuses for _, fuses in readers]


SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(dequantized())
def test_copies_keep_the_results_exactly(case):
    graph, feeds, fuses = case
    after = assert_pass_preserves_semantics(DequantizeAtUsesPass(), graph, feeds)
    assert_pass_is_idempotent(DequantizeAtUsesPass(), after, "dequantize-at-uses")
    copies = [n for n in after.nodes if n.op == "DequantizeLinear"]
    split = len(fuses) > 1 and all(fuses)
    assert len(copies) == (len(fuses) if split else 1)
    if split:
        assert all(len(c.results[0].uses) == 1 for c in copies)


def test_a_float_input_is_left_alone():
    graph = Graph("f")
    b = Builder(graph)
    x = b.param("x", TensorType(DType.INT32, (4,)))
    d = b.op("DequantizeLinear", [x, b.constant(np.float32(0.5))])
    graph.outputs = [b.op("Relu", [d]), b.op("Neg", [d])]
    assert not DequantizeAtUsesPass().run(graph).modified


def test_compiled_squeeze_excitation_writes_its_activation_as_8_bit(tmp_path):
    """A depthwise QLinearConv whose output a pool and a gating Mul both dequantize: the conv's
    kernel writes uint8 (before, the dequantization joined it and it wrote float32), and the
    library equals the interpreter."""
    rng = np.random.default_rng(4)
    graph = Graph("se")
    b = Builder(graph)
    x = b.param("x", TensorType(DType.UINT8, (1, 8, 6, 6)))
    s, z = b.constant(np.float32(0.05)), b.constant(np.array(100, U8))
    weight = b.constant(rng.integers(-100, 100, (8, 1, 3, 3), endpoint=True).astype(np.int8))
    ws, wz = b.constant(np.full(8, 0.01, np.float32)), b.constant(np.zeros(8, np.int8))
    conv = b.op("QLinearConv", [x, s, z, weight, ws, wz, s, z], {"group": 8, "pads": [1] * 4})
    d = b.op("DequantizeLinear", [conv, s, z])
    gate = b.op("Sigmoid", [b.op("GlobalAveragePool", [d])])
    graph.outputs = [b.op("QuantizeLinear", [b.op("Mul", [d, gate]), s, z])]
    feeds = {"x": rng.integers(0, 255, (1, 8, 6, 6), endpoint=True).astype(np.uint8)}
    (want,) = interpret_list(graph, feeds)
    (got,), kernels = compiled_outputs_and_kernels(graph, feeds, tmp_path)
    np.testing.assert_array_equal(got, want)
    (conv_kernel,) = [ops for ops in kernels if "QLinearConv" in ops]
    assert conv_kernel == ("QLinearConv",), kernels  # no DequantizeLinear: it writes the uint8 values
    assert sum(ops.count("DequantizeLinear") for ops in kernels) == 2, kernels


def test_cuda_preparation_leaves_dequantizations_and_depthwise_convs_to_its_own_kernels():
    """CUDA's reductions take no fused producers (``fuse{prologues=0}``), so a copy per reader would
    be a kernel of its own; and it has no depthwise integer kernel, so those convs go float32."""
    from compiler.pipeline import FixedPoint, parse_pipeline

    def steps(pipeline) -> list:
        return [s for step in pipeline for s in (steps(step.steps) if isinstance(step, FixedPoint) else [step])]

    cpu, cuda = steps(parse_pipeline("codegen-prepare")), steps(parse_pipeline("codegen-prepare-no-branches"))
    assert "dequantize-at-uses" in [s.name for s in cpu] and "dequantize-at-uses" not in [s.name for s in cuda]
    (cpu_convs,) = [s for s in cpu if s.name == "integer-conv-as-float"]
    (cuda_convs,) = [s for s in cuda if s.name == "integer-conv-as-float"]
    assert cpu_convs.cpu_depthwise and not cuda_convs.cpu_depthwise
