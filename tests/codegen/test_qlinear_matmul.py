"""QLinearMatMul on MatMulInteger's packed kernel (codegen/tvm/lower/quantization.py): a constant int8
weight with zero zero points (per tensor or per column) takes ``vpdpbusd`` (``vpmaddwd`` on AVX2) with
the requantization in the epilogue; int8 activations are shifted into uint8 first. A run-time ``b``
takes the float matmul's register tile, in float32 up to K = 256 and in int32 beyond; K off the
instruction's depth keeps the generic reduction, and a per-column weight zero point reaches the
packed kernel through ``integer-matmul-int8-weights``.
Before, every QLinearMatMul took the generic one: 42 ms for a 128 x 768 x 768 product that
onnxruntime runs in 0.62 ms, so a static-quantized transformer ran many times slower than float.
The last tests cover uint8 weights and weight zero points (MatMulInteger and QLinearMatMul), which
the packed kernel takes as ``b - 128`` less ``zb * sum_k (a - za)``."""

from __future__ import annotations

import numpy as np
import pytest
from compiled_checks import built_kernel, check_against_interpreter, node_model
from onnx import TensorProto, numpy_helper

F, U8, I8 = TensorProto.FLOAT, TensorProto.UINT8, TensorProto.INT8
AVX2 = "x86-64:features=+avx2+fma,vector_bits=256"
AVX512_VNNI = "x86-64:features=+avx2+fma+avx512f+avx512bw+avx512dq+avx512vl+avx512vnni"


def _targets():
    from codegen.target import detect_host

    features = detect_host().features
    return [None, AVX2] if "+avx512f" in features and "+avx2" in features else [None]


def _model(a_type, a_shape, b, b_scale, b_zero, constant_b=True):
    """QLinearMatMul(a, sa, za, b, sb, zb, sy, zy), everything but ``a`` an initializer (``b`` too
    where ``constant_b``); the output scale is chosen so that results spread over the 8-bit range."""
    k, n = b.shape
    a_zero = np.array(3 if a_type == I8 else 131, np.int8 if a_type == I8 else np.uint8)
    params = {
        "sa": np.array(0.02, np.float32),
        "za": a_zero,
        "sb": b_scale,
        "zb": b_zero,
        "sy": np.array(0.02 * float(np.max(b_scale)) * 12 * np.sqrt(k), np.float32),
        "zy": a_zero,
    }
    inits = [numpy_helper.from_array(v, name) for name, v in params.items()]
    if constant_b:
        inits.append(numpy_helper.from_array(b, "b"))
    ins = [
        ("a", a_type, list(a_shape)),
        ("sa", F, []),
        ("za", a_type, []),
        ("b", I8, [k, n]),
        ("sb", F, list(b_scale.shape)),
        ("zb", I8, list(b_zero.shape)),
        ("sy", F, []),
        ("zy", a_type, []),
    ]
    return node_model("QLinearMatMul", ins, [("y", a_type, None)], opset=10, initializers=inits)


CASES = [
    # (a dtype, a shape, N, per-column scale, b zero point): packed unless K % 4 != 0
    (np.uint8, (3, 64), 48, True, 0),
    (np.int8, (2, 5, 32), 20, True, 0),  # a batch dim, N off the 16-column blocks, int8 a
    (np.int8, (17, 12), 16, False, 0),
    (np.uint8, (4, 6), 9, False, 0),  # K = 6: generic on vpdpbusd (words of 4), packed on vpmaddwd
    (np.uint8, (3, 8), 5, False, 2),  # a weight zero point: less zb * sum_k (a - za)
]


@pytest.mark.parametrize("target", _targets())
@pytest.mark.parametrize("a_dtype,a_shape,n,per_column,b_zero", CASES)
def test_qlinear_matmul_matches_interpreter(a_dtype, a_shape, n, per_column, b_zero, target):
    rng = np.random.default_rng(n + a_shape[-1])
    k = a_shape[-1]
    b = rng.integers(-127, 127, (k, n), endpoint=True).astype(np.int8)
    scale = (rng.uniform(0.5, 2.0, n) if per_column else np.array(1.3)).astype(np.float32) * 0.01
    zero = np.full(scale.shape, b_zero, np.int8)
    a_type = I8 if a_dtype == np.int8 else U8
    info = np.iinfo(a_dtype)
    feeds = {"a": rng.integers(info.min, info.max, a_shape, endpoint=True).astype(a_dtype)}
    check_against_interpreter(_model(a_type, a_shape, b, scale, zero), feeds, rtol=0, atol=0, target=target)


def _run_time_model(a_type, a_shape, b_shape):
    """QLinearMatMul of two run-time 8-bit operands (an attention product), both zero points off 0."""
    np_type = np.int8 if a_type == I8 else np.uint8
    base = 0 if a_type == I8 else 128
    params = {"sa": 0.03, "za": base + 3, "sb": 0.02, "zb": base - 5, "sy": 0.5, "zy": base + 1}
    inits = [
        numpy_helper.from_array(np.array(v, np.float32 if name.startswith("s") else np_type), name)
        for name, v in params.items()
    ]
    ins = [
        ("a", a_type, list(a_shape)),
        ("sa", F, []),
        ("za", a_type, []),
        ("b", a_type, list(b_shape)),
        ("sb", F, []),
        ("zb", a_type, []),
        ("sy", F, []),
        ("zy", a_type, []),
    ]
    return node_model("QLinearMatMul", ins, [("y", a_type, None)], opset=10, initializers=inits)


@pytest.mark.parametrize(
    "a_type,a_shape,b_shape",
    # K <= 256: the float product of the centred integers (a batch of heads, N off the 16-column
    # panels); K = 300: the same tile in int32
    [(U8, (5, 16), (16, 24)), (I8, (1, 3, 20, 64), (1, 3, 64, 40)), (U8, (4, 300), (300, 8))],
)
def test_run_time_b_matches_onnxruntime_exactly(a_type, a_shape, b_shape, tmp_path):
    """The interpreter (onnx.reference) scales in another order and is one step off in places, where
    onnxruntime and both of Ember's kernels agree bit for bit."""
    import onnxruntime as ort

    from compiler import compile_model
    from compiler.ir.interpreter import interpret_list
    from compiler.runtime import load
    from frontends.onnx import import_model

    model = _run_time_model(a_type, a_shape, b_shape)
    rng = np.random.default_rng(sum(a_shape))
    info = np.iinfo(np.int8 if a_type == I8 else np.uint8)
    feeds = {
        name: rng.integers(info.min, info.max, shape, endpoint=True).astype(info.dtype)
        for name, shape in (("a", a_shape), ("b", b_shape))
    }
    library = str(tmp_path / "m.so")
    compile_model(import_model(model), library)
    with load(library) as compiled:
        got = compiled.run(feeds)["y"]
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    np.testing.assert_array_equal(got, want)
    (reference,) = interpret_list(import_model(model), feeds)
    assert np.abs(got.astype(np.int32) - reference).max() <= 1


def _run_time_matmul_integer(a_shape, b_shape, a_zero_shape=()):
    """MatMulInteger of two run-time uint8 operands and their run-time zero points (``a``'s per
    tensor or per row)."""
    ins = [("a", U8, list(a_shape)), ("b", U8, list(b_shape)), ("za", U8, list(a_zero_shape)), ("zb", U8, [])]
    return node_model("MatMulInteger", ins, [("y", TensorProto.INT32, None)], opset=10)


@pytest.mark.parametrize(
    "a_shape,b_shape,a_zero_shape",
    # float32 (K <= 256), a zero point per row of a; int32 (K = 260), b broadcast over a batch
    [((6, 40), (40, 20), (6,)), ((2, 3, 5, 260), (3, 260, 16), ())],
)
def test_run_time_matmul_integer_matches_interpreter(a_shape, b_shape, a_zero_shape):
    rng = np.random.default_rng(a_shape[-1])
    feeds = {
        "a": rng.integers(0, 255, a_shape, endpoint=True).astype(np.uint8),
        "b": rng.integers(0, 255, b_shape, endpoint=True).astype(np.uint8),
        "za": rng.integers(0, 255, a_zero_shape, endpoint=True).astype(np.uint8),
        "zb": np.array(250, np.uint8),
    }
    check_against_interpreter(_run_time_matmul_integer(a_shape, b_shape, a_zero_shape), feeds, rtol=0, atol=0)


@pytest.mark.parametrize("a_type", [U8, I8])
def test_constant_weight_reaches_vpdpbusd(a_type):
    """Only the object code is read, so any x86 host checks it."""
    b = np.ones((64, 48), np.int8)
    model = _model(a_type, (8, 64), b, np.full(48, 0.01, np.float32), np.zeros(48, np.int8))
    lib, used = built_kernel(model, AVX512_VNNI)
    assert used == "vnni_matmul"
    assert "vpdpbusd" in lib.inspect_source("asm")


def test_run_time_b_takes_the_float_matmul_tile():
    lib, used = built_kernel(_run_time_model(U8, (32, 64), (64, 48)), AVX512_VNNI)
    asm = lib.inspect_source("asm")
    assert used == "vnni_matmul"
    assert "vfmadd231ps" in asm and "zmm" in asm and "vpdpbusd" not in asm


@pytest.mark.parametrize(
    "model",
    [_run_time_model(U8, (32, 300), (300, 48)), _run_time_matmul_integer((32, 300), (300, 48))],
    ids=["QLinearMatMul", "MatMulInteger"],
)
def test_run_time_b_deeper_than_exact_float_takes_the_int32_tile(model):
    """Past K = 256 a float32 sum may round, so the same tile accumulates in int32 (``vpmulld``);
    before, these took the generic reduction, 12x slower on 12 heads of 384 x 384 x 64."""
    lib, used = built_kernel(model, AVX512_VNNI)
    asm = lib.inspect_source("asm")
    assert used == "vnni_matmul"
    assert "vpmulld" in asm and "vfmadd231ps" not in asm


def test_weight_zero_point_per_tensor_takes_the_packed_kernel():
    """(Per-column ones of nonzeros reach it through ``integer-matmul-int8-weights``:
    ``tests/passes/test_integer_matmul_int8_weights.py``.)"""
    b = np.ones((64, 48), np.int8)
    per_tensor = _model(U8, (8, 64), b, np.array(0.01, np.float32), np.array(1, np.int8))
    assert "vpdpbusd" in built_kernel(per_tensor, AVX512_VNNI)[0].inspect_source("asm")


@pytest.mark.parametrize("activation", ["QUInt8", "QInt8"])
def test_ort_static_qdq_linear_fuses_into_qlinear_matmul_and_agrees(activation, tmp_path):
    """``quantize_static`` (QDQ, per-channel int8 weights) of MatMul + Add: fuse-qdq makes the MatMul a
    QLinearMatMul whose DequantizeLinear -> Add -> QuantizeLinear epilogue fuses into its kernel;
    the outputs are within one output step of onnxruntime's and no float MatMul is left. (That it
    is the packed kernel is ``test_constant_weight_reaches_vpdpbusd``'s check.)"""
    import onnx
    import onnxruntime as ort
    from onnx import helper
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from compiler import compile_model
    from compiler.runtime import load

    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(rng.normal(0, 0.05, (96, 64)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.normal(0, 0.5, 64).astype(np.float32), "bias")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "bias"], ["y"])],
        "linear",
        [helper.make_tensor_value_info("x", F, [1, 32, 96])],
        [helper.make_tensor_value_info("y", F, [1, 32, 64])],
        [w, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    samples = [{"x": rng.normal(size=(1, 32, 96)).astype(np.float32)} for _ in range(4)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.samples = iter(samples)

        def get_next(self):
            return next(self.samples, None)

    f32, qdq, library = str(tmp_path / "f32.onnx"), str(tmp_path / "qdq.onnx"), str(tmp_path / "qdq.so")
    onnx.save(model, f32)
    quantize_static(
        f32,
        qdq,
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=getattr(QuantType, activation),
        weight_type=QuantType.QInt8,
        per_channel=True,
    )
    compile_model(qdq, library)
    x = samples[0]["x"]
    want = ort.InferenceSession(qdq, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    with load(library, profile=True) as compiled:
        got = compiled.run({"x": x})["y"]
        ops = [op for call in compiled.profile().calls for op in call.op_types]
    quantized = onnx.load(qdq).graph
    (last,) = [node for node in quantized.node if node.output[0] == "y"]  # the output's DequantizeLinear
    (scale,) = [numpy_helper.to_array(t) for t in quantized.initializer if t.name == last.input[1]]
    np.testing.assert_allclose(got, want, rtol=0, atol=1.001 * float(scale))
    assert "QLinearMatMul" in ops and "MatMul" not in ops, ops


# uint8 weights and weight zero points (older onnxruntime quantizers' defaults) -------------------


@pytest.mark.parametrize("target", _targets())
@pytest.mark.parametrize(
    "b_type,b_zero,a_shape,n",
    # a uint8 weight is packed as b - 128 with its zero point; a nonzero zero point subtracts
    # zb * sum_k (a - za); a per-column one of nonzeros is integer-matmul-int8-weights' rewrite
    [
        (np.uint8, 131, (3, 64), 48),
        (np.uint8, 128, (2, 5, 32), 20),
        (np.int8, -3, (4, 16), 16),
        (np.uint8, None, (3, 8), 5),
    ],
)
def test_matmul_integer_weight_zero_points_match_interpreter(b_type, b_zero, a_shape, n, target):
    rng = np.random.default_rng(n + a_shape[-1])
    k = a_shape[-1]
    info = np.iinfo(b_type)
    b = rng.integers(info.min, info.max, (k, n), endpoint=True).astype(b_type)
    zero = rng.integers(100, 150, n).astype(b_type) if b_zero is None else np.array(b_zero, b_type)
    b_elem = U8 if b_type == np.uint8 else I8
    inits = [numpy_helper.from_array(b, "b"), numpy_helper.from_array(zero, "zb")]
    ins = [("a", U8, list(a_shape)), ("b", b_elem, [k, n]), ("za", U8, []), ("zb", b_elem, list(zero.shape))]
    model = node_model("MatMulInteger", ins, [("y", TensorProto.INT32, None)], opset=10, initializers=inits)
    feeds = {"a": rng.integers(0, 255, a_shape, endpoint=True).astype(np.uint8), "za": np.array(120, np.uint8)}
    check_against_interpreter(model, feeds, rtol=0, atol=0, target=target)


def test_uint8_weight_takes_the_packed_kernel():
    """Only the object code is read, so any x86 host checks it."""
    b = np.full((64, 48), 200, np.uint8)
    inits = [numpy_helper.from_array(b, "b"), numpy_helper.from_array(np.array(120, np.uint8), "zb")]
    ins = [("a", U8, [8, 64]), ("b", U8, [64, 48]), ("za", U8, []), ("zb", U8, [])]
    model = node_model("MatMulInteger", ins, [("y", TensorProto.INT32, None)], opset=10, initializers=inits)
    lib, used = built_kernel(model, AVX512_VNNI)
    assert used == "vnni_matmul" and "vpdpbusd" in lib.inspect_source("asm")


def test_uint8_weight_qlinear_matmul_matches_interpreter():
    rng = np.random.default_rng(11)
    b = rng.integers(0, 255, (32, 24), endpoint=True).astype(np.uint8)
    params = {"sa": np.float32(0.02), "za": np.uint8(131), "sb": np.float32(0.01), "zb": np.uint8(127)}
    params.update({"sy": np.float32(0.6), "zy": np.uint8(128), "b": b})
    inits = [numpy_helper.from_array(np.asarray(v), name) for name, v in params.items()]
    ins = [("a", U8, [6, 32]), ("sa", F, []), ("za", U8, []), ("b", U8, [32, 24])]
    ins += [("sb", F, []), ("zb", U8, []), ("sy", F, []), ("zy", U8, [])]
    model = node_model("QLinearMatMul", ins, [("y", U8, None)], opset=10, initializers=inits)
    feeds = {"a": rng.integers(0, 255, (6, 32), endpoint=True).astype(np.uint8)}
    check_against_interpreter(model, feeds, rtol=0, atol=1)
