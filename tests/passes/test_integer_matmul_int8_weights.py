"""``integer-matmul-int8-weights``: random MatMulIntegers of per-column weight zero points keep their
int32 results exactly (the interpreter before and after), QLinearMatMuls theirs within the
interpreter's rounding; what the packed kernel takes itself is left alone; and a QDQ Linear layer
of asymmetric per-column uint8 weights compiles to the packed integer kernel and agrees with
onnxruntime."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.ir.builder import Builder
from compiler.ir.core import Graph
from compiler.ir.interpreter import interpret_list
from compiler.ir.types import DType, TensorType
from compiler.testing import assert_pass_is_idempotent, assert_pass_preserves_semantics
from passes.integer_matmul_int8_weights import IntegerMatMulInt8WeightsPass

U8, I8 = np.dtype(np.uint8), np.dtype(np.int8)


@st.composite
def integer_matmuls(draw, op: str) -> tuple[Graph, dict]:
    """A MatMulInteger or QLinearMatMul of random 8-bit types and batch dims against a constant
    [K, N] weight, its zero point per column (varied) or per tensor."""
    a_type, b_type = draw(st.sampled_from((U8, I8))), draw(st.sampled_from((U8, I8)))
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    m, k, n = draw(st.integers(1, 5)), draw(st.integers(1, 9)), draw(st.integers(2, 6))
    per_column = draw(st.booleans())
    rng = np.random.default_rng(m * 7919 + k * 104729 + n * 31 + len(lead))
    info_a, info_b = np.iinfo(a_type), np.iinfo(b_type)
    graph = Graph(op.lower())
    b = Builder(graph)
    a = b.param("a", TensorType(DType.from_np(a_type), (*lead, m, k)))
    weight = b.constant(rng.integers(info_b.min, info_b.max, (k, n), endpoint=True).astype(b_type))
    a_zero = b.constant(np.array(rng.integers(info_a.min, info_a.max), a_type))
    b_zero = b.constant(rng.integers(info_b.min, info_b.max, n if per_column else (), endpoint=True).astype(b_type))
    if op == "MatMulInteger":
        y = b.op("MatMulInteger", [a, weight, a_zero, b_zero])
    else:
        sb = rng.uniform(0.5, 2, n if draw(st.booleans()) else ()).astype(np.float32) * 0.01
        scales = [b.constant(np.float32(0.02)), b.constant(sb), b.constant(np.float32(0.03 * np.sqrt(k)))]
        zy = b.constant(np.array(rng.integers(info_a.min, info_a.max), a_type))
        y = b.op("QLinearMatMul", [a, scales[0], a_zero, weight, scales[1], b_zero, scales[2], zy])
    graph.outputs = [y]
    feeds = {"a": rng.integers(info_a.min, info_a.max, (*lead, m, k), endpoint=True).astype(a_type)}
    return graph, feeds


def _per_column(graph: Graph, op: str) -> bool:
    node = next(node for node in graph.nodes if node.op == op)
    return np.asarray(node.operands[3 if op == "MatMulInteger" else 5].const_value).size > 1


def _integer_matmuls(graph: Graph) -> list[tuple[str, np.dtype, int]]:
    found = []
    for node in graph.nodes:
        if node.op in ("MatMulInteger", "QLinearMatMul"):
            weight = node.operands[1 if node.op == "MatMulInteger" else 3]
            found.append((node.op, np.asarray(weight.const_value).dtype, len(node.operands)))
    return found


SETTINGS = settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(integer_matmuls("MatMulInteger"))
def test_matmul_integer_keeps_its_int32_results_exactly(case):
    graph, feeds = case
    per_column = _per_column(graph, "MatMulInteger")
    after = assert_pass_preserves_semantics(IntegerMatMulInt8WeightsPass(), graph, feeds)
    assert_pass_is_idempotent(IntegerMatMulInt8WeightsPass(), after, "integer-matmul-int8-weights")
    if per_column:  # (random zero points of 2+ columns are not all 0 after the shift here)
        assert _integer_matmuls(after) == [("MatMulInteger", I8, 3)]
    else:
        assert _integer_matmuls(after) == _integer_matmuls(graph)


@SETTINGS
@given(integer_matmuls("QLinearMatMul"))
def test_qlinear_matmul_keeps_its_results_up_to_the_interpreters_rounding(case):
    graph, feeds = case
    per_column = _per_column(graph, "QLinearMatMul")
    (before,) = interpret_list(graph, feeds)
    IntegerMatMulInt8WeightsPass().run(graph)
    (after,) = interpret_list(graph, feeds)
    assert after.dtype == before.dtype and after.shape == before.shape
    assert np.abs(after.astype(np.int32) - before).max() <= 1
    assert [op for op, _, _ in _integer_matmuls(graph)] == (["MatMulInteger"] if per_column else ["QLinearMatMul"])


def _matmul_integer(weight: np.ndarray, zero) -> Graph:
    graph = Graph("mm")
    b = Builder(graph)
    a = b.param("a", TensorType(DType.UINT8, (2, weight.shape[0])))
    operands = [a, b.constant(weight), b.constant(np.array(3, U8))]
    if zero is not None:
        operands.append(b.constant(np.asarray(zero, weight.dtype)))
    graph.outputs = [b.op("MatMulInteger", operands)]
    return graph


def test_what_the_packed_kernel_takes_is_left_alone():
    """A per-tensor zero point, and per-column int8 zeros, are the kernel's own; a uint8 weight
    without a zero point (0, so -128 once shifted) is not."""
    u8, i8 = np.full((4, 3), 200, U8), np.full((4, 3), -5, I8)
    assert not IntegerMatMulInt8WeightsPass().run(_matmul_integer(u8, 131)).modified
    assert not IntegerMatMulInt8WeightsPass().run(_matmul_integer(i8, [0, 0, 0])).modified
    assert not IntegerMatMulInt8WeightsPass().run(_matmul_integer(i8, None)).modified
    assert IntegerMatMulInt8WeightsPass().run(_matmul_integer(u8, None)).modified
    assert IntegerMatMulInt8WeightsPass().run(_matmul_integer(u8, [128, 128, 129])).modified


def _asymmetric_qdq_linear(path: str, rng) -> float:
    """``y = DQ(Q(DQ(Q(x)) @ DQ(w)))`` with uint8 weights quantized asymmetrically per column (a zero
    point of its own for each of 64 columns, as tools other than onnxruntime's quantizer write; its
    uint8 weights are symmetric, 128 everywhere); returns the output's scale."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = rng.normal(0.02, 0.05, (96, 64)).astype(np.float32)
    low, high = np.minimum(weight.min(axis=0), 0), np.maximum(weight.max(axis=0), 0)
    w_scale = ((high - low) / 255).astype(np.float32)
    w_zero = np.clip(np.rint(-low / w_scale), 0, 255).astype(U8)
    params = {"w": np.clip(np.rint(weight / w_scale) + w_zero, 0, 255).astype(U8), "sw": w_scale, "zw": w_zero}
    params.update({"sx": np.float32(0.03), "zx": np.array(131, U8), "sy": np.float32(0.05), "zy": np.array(120, U8)})
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"]),
        helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wd"], axis=1),
        helper.make_node("MatMul", ["xd", "wd"], ["m"]),
        helper.make_node("QuantizeLinear", ["m", "sy", "zy"], ["mq"]),
        helper.make_node("DequantizeLinear", ["mq", "sy", "zy"], ["y"]),
    ]
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32, 96])
    y_info = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 64])
    inits = [numpy_helper.from_array(np.asarray(v), name) for name, v in params.items()]
    model = helper.make_model(helper.make_graph(nodes, "linear", [x_info], [y_info], inits))
    model.opset_import[0].version, model.ir_version = 17, 8
    onnx.save(model, path)
    return float(params["sy"])


def test_asymmetric_uint8_qdq_linear_runs_the_packed_kernel(tmp_path):
    """``fuse-qdq`` makes the QDQ MatMul a QLinearMatMul of uint8 weights with a zero point per
    column, which this pass gives the packed kernel; the outputs are within one output step of
    onnxruntime's."""
    import onnxruntime as ort

    from compiler import compile_model
    from compiler.runtime import load

    rng = np.random.default_rng(4)
    path, library = str(tmp_path / "qdq.onnx"), str(tmp_path / "qdq.so")
    scale = _asymmetric_qdq_linear(path, rng)
    compile_model(path, library)
    x = rng.normal(size=(1, 32, 96)).astype(np.float32)
    want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    with load(library, profile=True) as compiled:
        got = compiled.run({"x": x})["y"]
        ops = [op for call in compiled.profile().calls for op in call.op_types]
    np.testing.assert_allclose(got, want, rtol=0, atol=1.001 * scale)
    assert np.ptp(want) > 20 * scale  # not one saturated value
    assert "MatMulInteger" in ops and "MatMul" not in ops and "QLinearMatMul" not in ops, ops
