"""ConvInteger on QLinearConv's packed integer kernel (codegen/tvm/lower/quantization.py): a group-1
2-D ConvInteger of a constant int8 weight with zero zero points (onnxruntime's ``quantize_dynamic``
with its default int8 weights) returns the kernel's int32 ``sum (x - zx) w`` and takes the Cast and
Mul after it into its epilogue. Before, it took the generic int32 reduction; the other ConvIntegers
become float32 Convs in ``integer-conv-as-float`` (tests/passes/test_integer_conv_as_float.py)."""

from __future__ import annotations

import numpy as np
import pytest
from compiled_checks import built_kernel, check_against_interpreter, node_model
from onnx import TensorProto, numpy_helper

U8, I8, I32 = TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32
AVX2 = "x86-64:features=+avx2+fma,vector_bits=256"
AVX512_VNNI = "x86-64:features=+avx2+fma+avx512f+avx512bw+avx512dq+avx512vl+avx512vnni"


def _model(x_type, x_shape, w, x_zero, w_zero=0, **attrs):
    inits = [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(np.array(x_zero, np.int8 if x_type == I8 else np.uint8), "zx"),
        numpy_helper.from_array(np.array(w_zero, np.int8), "zw"),
    ]
    ins = [("x", x_type, list(x_shape)), ("w", I8, list(w.shape)), ("zx", x_type, []), ("zw", I8, [])]
    return node_model("ConvInteger", ins, [("y", I32, None)], opset=10, initializers=inits, **attrs)


CASES = [
    # (x type, x shape, K, kernel, attrs): channel-lane and row kernels, int8 x, strides and pads
    (U8, (1, 5, 9, 10), 20, 3, dict(pads=[1, 1, 1, 1])),
    (I8, (2, 8, 7, 7), 16, 1, dict(strides=[2, 2])),
    (U8, (1, 12, 14, 14), 12, 1, {}),
    (I8, (1, 6, 8, 8), 16, 3, dict(pads=[1, 0, 2, 1], dilations=[2, 1])),
]


def _targets():
    from codegen.target import detect_host

    features = detect_host().features
    return [None, AVX2] if "+avx512f" in features and "+avx2" in features else [None]


@pytest.mark.parametrize("target", _targets())
@pytest.mark.parametrize("x_type,x_shape,k,kernel,attrs", CASES)
def test_conv_integer_matches_interpreter_exactly(x_type, x_shape, k, kernel, attrs, target):
    rng = np.random.default_rng(k * kernel + x_shape[1])
    w = rng.integers(-127, 127, (k, x_shape[1], kernel, kernel), endpoint=True).astype(np.int8)
    info = np.iinfo(np.int8 if x_type == I8 else np.uint8)
    model = _model(x_type, x_shape, w, int(info.min) + 77, kernel_shape=[kernel, kernel], **attrs)
    feeds = {"x": rng.integers(info.min, info.max, x_shape, endpoint=True).astype(info.dtype)}
    check_against_interpreter(model, feeds, rtol=0, atol=0, target=target)


def test_int8_weight_reaches_vpdpbusd():
    """Only the object code is read, so any x86 host checks it."""
    w = np.ones((32, 16, 3, 3), np.int8)
    model = _model(U8, (1, 16, 8, 8), w, 128, kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    lib, used = built_kernel(model, AVX512_VNNI)
    assert used == "vnni_conv" and "vpdpbusd" in lib.inspect_source("asm")


def test_ort_dynamic_quantized_conv_runs_on_conv_integer_and_agrees(tmp_path):
    """``quantize_dynamic`` of Conv + Relu: DynamicQuantizeLinear -> ConvInteger -> Cast -> Mul -> Relu,
    the rescaling fused into the integer kernel; outputs equal onnxruntime's up to float rounding."""
    import onnx
    import onnxruntime as ort
    from onnx import helper
    from onnxruntime.quantization import quantize_dynamic

    from compiler import compile_model
    from compiler.runtime import load

    rng = np.random.default_rng(2)
    w = numpy_helper.from_array(rng.normal(0, 0.1, (24, 16, 3, 3)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"]),
    ]
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 12, 12])
    y_info = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 24, 12, 12])
    model = helper.make_model(
        helper.make_graph(nodes, "conv", [x_info], [y_info], [w]), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    f32, dyn, library = str(tmp_path / "f32.onnx"), str(tmp_path / "dyn.onnx"), str(tmp_path / "dyn.so")
    onnx.save(model, f32)
    quantize_dynamic(f32, dyn)
    compile_model(dyn, library)
    x = rng.normal(size=(1, 16, 12, 12)).astype(np.float32)
    want = ort.InferenceSession(dyn, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    with load(library, profile=True) as compiled:
        got = compiled.run({"x": x})["y"]
        kernels = ["+".join(call.op_types) for call in compiled.profile().calls]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert any(kernel.startswith("ConvInteger+Cast+Mul") for kernel in kernels), kernels
