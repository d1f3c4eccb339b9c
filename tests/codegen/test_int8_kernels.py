"""The integer kernels (codegen/tvm/lower/quantization_gemm.py) compiled against the interpreter, and
QDQ models (passes/fuse_qdq.py) compiled to integer kernels that agree with onnxruntime.

The VNNI path needs constant int8 weights with zero weight zero points; the weights are
initializers here so the planner prepacks them."""

from __future__ import annotations

import os

import numpy as np
import pytest
from compiled_checks import check_against_interpreter, node_model
from onnx import TensorProto, numpy_helper

F, U8, I8, I32 = TensorProto.FLOAT, TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32
# the AVX2 layouts (``vpmaddwd``: 8 lanes x 2 int16) whatever the host; None: the host's own
AVX2 = "x86-64:features=+avx2+fma,vector_bits=256"


def _targets():
    """The host, and AVX2 where the host has more (an AVX2 host already runs the AVX2 kernels)."""
    from codegen.target import detect_host

    features = detect_host().features
    wider = "+avx512f" in features
    return [None, AVX2] if wider and "+avx2" in features else [None]


def _qlinear_conv_model(x_type, x_shape, w, bias, w_zero, **attrs):
    k = w.shape[0]
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(w_zero, "wz")]
    ins = [
        ("x", x_type, list(x_shape)),
        ("xs", F, []),
        ("xz", x_type, []),
        ("w", I8, list(w.shape)),
        ("ws", F, [k]),
        ("wz", I8, list(w_zero.shape)),
        ("ys", F, []),
        ("yz", x_type, []),
    ]
    if bias is not None:
        inits.append(numpy_helper.from_array(bias, "b"))
        ins.append(("b", I32, [k]))
    return node_model("QLinearConv", ins, [("y", x_type, None)], opset=10, initializers=inits, **attrs)


CASES = [
    # (x dtype, x shape, K, kernel, attrs): channel counts off the 4 x 16 blocks, strides, pads
    (np.uint8, (1, 3, 9, 10), 20, 3, dict(pads=[1, 1, 1, 1])),
    (np.uint8, (2, 8, 7, 7), 32, 1, dict(strides=[2, 2])),
    # a 7 x 7 1x1 conv (its input repacked a plane per task) with channels off the 4-channel steps
    (np.uint8, (1, 18, 7, 7), 32, 1, {}),
    (np.int8, (1, 6, 8, 8), 16, 3, dict(pads=[1, 0, 2, 1], dilations=[2, 1])),
    # 1x1 convs whose rows round up to whole vectors of 16 take the row kernel (rows_layout_fits):
    # a 14 x 14 plane (one band of 208 pixels), a strided 15-wide one with int8 input and batch 2,
    # a 56-wide one (four vectors, 6-channel tiles), a strided 28 -> 14 one, and two 15 x 15
    # planes (each a band of 240 pixels in tiles of 3 vectors)
    (np.uint8, (1, 10, 14, 14), 12, 1, {}),
    (np.uint8, (1, 12, 28, 28), 20, 1, dict(strides=[2, 2])),
    (np.uint8, (2, 8, 15, 15), 24, 1, {}),
    (np.int8, (2, 6, 31, 29), 20, 1, dict(strides=[2, 2])),
    (np.uint8, (1, 16, 4, 56), 36, 1, {}),
    # channel-lane tiles stored transposed (``dot_kernels.transpose_tile_store``): 16 pixels (one
    # block of channels), 14 pixels padded to 16, 8 pixels in two blocks, and a 1-pixel row (kept)
    (np.uint8, (1, 5, 5, 16), 16, 3, dict(pads=[1, 1, 1, 1])),
    (np.uint8, (1, 8, 3, 14), 16, 3, dict(pads=[1, 1, 1, 1])),
    (np.int8, (1, 12, 4, 8), 32, 3, dict(pads=[1, 1, 1, 1])),
    (np.uint8, (1, 20, 1, 1), 48, 1, {}),
]


@pytest.mark.parametrize("target", _targets())
@pytest.mark.parametrize("x_dtype,x_shape,k,kernel,attrs", CASES)
def test_vnni_qlinear_conv_matches_interpreter(x_dtype, x_shape, k, kernel, attrs, target):
    rng = np.random.default_rng(k + kernel)
    info = np.iinfo(x_dtype)
    x = rng.integers(info.min, info.max, x_shape, endpoint=True).astype(x_dtype)
    w = rng.integers(-127, 127, (k, x_shape[1], kernel, kernel), endpoint=True).astype(np.int8)
    bias = rng.integers(-2000, 2000, k).astype(np.int32)
    x_type = U8 if x_dtype == np.uint8 else I8
    m = _qlinear_conv_model(x_type, x_shape, w, bias, np.zeros(k, np.int8), **attrs)
    feeds = {
        "x": x,
        "xs": np.array(0.02, np.float32),
        "xz": np.array(info.min + 100, x_dtype),
        "ws": rng.uniform(0.001, 0.01, k).astype(np.float32),
        "ys": np.array(0.3, np.float32),
        "yz": np.array(info.min + 60, x_dtype),
    }
    # the kernel requantizes in float32 as onnxruntime does, the interpreter in float64: a tie may differ by one
    check_against_interpreter(m, feeds, rtol=0, atol=1, target=target)


# 1x1 convs on the row kernel with 64k (at least 128) input and 16k output channels take the AMX
# tiles: 56-wide rows (a 64-wide accumulator), int8 input at a stride of 2, 14-wide rows and batch 2
AMX_CONVS = [
    (np.uint8, (1, 128, 4, 56), 32, {}),
    (np.int8, (1, 128, 10, 28), 48, dict(strides=[2, 2])),
    (np.uint8, (2, 192, 3, 14), 16, {}),
]


@pytest.mark.parametrize("x_dtype,x_shape,k,attrs", AMX_CONVS)
def test_amx_qlinear_conv_matches_interpreter(x_dtype, x_shape, k, attrs, tmp_path):
    """On a CPU with AMX-INT8 the tiles' QLinearConv is the interpreter's within one output step (as
    the ``vpdpbusd`` kernel); elsewhere the library is still built and its run fails with the
    kernel's message."""
    import subprocess

    from codegen.target import detect_host
    from compiler.driver import compile_model
    from compiler.ir.interpreter import interpret_list
    from compiler.runtime import load
    from frontends.onnx import import_model

    features = [f for f in detect_host().features if not f.startswith("+amx")]
    amx = "x86-64:features=" + "".join(features) + "+amx-tile+amx-int8"
    rng = np.random.default_rng(k)
    info = np.iinfo(x_dtype)
    w = rng.integers(-127, 127, (k, x_shape[1], 1, 1), endpoint=True).astype(np.int8)
    bias = rng.integers(-2000, 2000, k).astype(np.int32)
    m = _qlinear_conv_model(U8 if x_dtype == np.uint8 else I8, x_shape, w, bias, np.zeros(k, np.int8), **attrs)
    feeds = {
        "x": rng.integers(info.min, info.max, x_shape, endpoint=True).astype(x_dtype),
        "xs": np.array(0.02, np.float32),
        "xz": np.array(info.min + 100, x_dtype),
        "ws": rng.uniform(0.001, 0.01, k).astype(np.float32),
        "ys": np.array(0.3, np.float32),
        "yz": np.array(info.min + 60, x_dtype),
    }
    lib = str(tmp_path / "m.so")
    compile_model(import_model(m), lib, amx, prefix="m")
    asm = subprocess.run(["objdump", "-d", lib], capture_output=True, text=True, check=True).stdout
    assert "tdpbsud" in asm and "ldtilecfg" in asm
    if "+amx-int8" in detect_host().features:
        got = list(load(lib, num_threads=2).run(feeds).values())[0].astype(np.int32)
        want = interpret_list(import_model(m), feeds)[0].astype(np.int32)
        assert np.abs(got - want).max() <= 1
    else:
        with pytest.raises(Exception, match="AMX tiles"):
            load(lib, num_threads=1).run(feeds)


def test_nonzero_weight_zero_point_takes_the_generic_kernel():
    rng = np.random.default_rng(3)
    w = rng.integers(-100, 100, (4, 4, 3, 3)).astype(np.int8)
    m = _qlinear_conv_model(U8, (1, 4, 6, 6), w, None, np.array([0, 3, -2, 1], np.int8), pads=[1, 1, 1, 1])
    feeds = {
        "x": rng.integers(0, 255, (1, 4, 6, 6)).astype(np.uint8),
        "xs": np.array(0.05, np.float32),
        "xz": np.array(128, np.uint8),
        "ws": np.full(4, 0.01, np.float32),
        "ys": np.array(0.2, np.float32),
        "yz": np.array(10, np.uint8),
    }
    check_against_interpreter(m, feeds, rtol=0, atol=0)


# A QDQ convnet written by onnxruntime's quantizer ---------------------------------------------------------


def _float_convnet():
    from onnx import helper

    rng = np.random.default_rng(0)

    def init(name, *shape, std=0.1):
        return numpy_helper.from_array(rng.normal(0, std, shape).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["c3"]),
        helper.make_node("Add", ["c3", "r2"], ["a3"]),
        helper.make_node("Relu", ["a3"], ["r3"]),
        helper.make_node("GlobalAveragePool", ["r3"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1),
    ]
    inits = [init("w1", 16, 3, 3, 3, std=0.3), init("b1", 16), init("w2", 32, 16, 3, 3), init("b2", 32)]
    inits += [init("w3", 32, 32, 1, 1), init("b3", 32), init("wf", 10, 32), init("bf", 10)]
    graph = helper.make_graph(
        nodes,
        "convnet",
        [helper.make_tensor_value_info("x", F, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", F, [1, 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.fixture(scope="module")
def ort_qdq_convnet(tmp_path_factory):
    """(path, onnxruntime's output scale) of the convnet quantized by ``quantize_static`` (QDQ, per channel)."""
    onnx = pytest.importorskip("onnx")
    quantization = pytest.importorskip("onnxruntime.quantization")
    folder = tmp_path_factory.mktemp("qdq")
    f32, qdq = str(folder / "f32.onnx"), str(folder / "qdq.onnx")
    onnx.save(_float_convnet(), f32)
    rng = np.random.default_rng(1)
    samples = iter([{"x": rng.normal(size=(1, 3, 16, 16)).astype(np.float32)} for _ in range(8)])

    class Reader(quantization.CalibrationDataReader):
        def get_next(self):
            return next(samples, None)

    quantization.quantize_static(
        f32,
        qdq,
        Reader(),
        quant_format=quantization.QuantFormat.QDQ,
        per_channel=True,
        activation_type=quantization.QuantType.QUInt8,
        weight_type=quantization.QuantType.QInt8,
    )
    model = onnx.load(qdq)
    scale = next(i for i in model.graph.initializer if i.name == "y_scale")
    return qdq, float(numpy_helper.to_array(scale))


def test_ort_qdq_convnet_compiles_to_integer_kernels_that_agree_with_onnxruntime(ort_qdq_convnet, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from compiler import compile_model
    from compiler.runtime import load

    path, y_scale = ort_qdq_convnet
    library = str(tmp_path / "qdq.so")
    compile_model(path, library)
    x = np.random.default_rng(2).normal(size=(1, 3, 16, 16)).astype(np.float32)
    want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    with load(library, profile=True) as model:
        got = model.run({"x": x})["y"]
        ops = [op for call in model.profile().calls for op in call.op_types]
    np.testing.assert_allclose(got, want, rtol=0, atol=1.01 * y_scale)  # one output step at most
    assert ops.count("QLinearConv") == 4  # three convolutions and the Gemm
    assert not {"Conv", "MatMul", "Gemm"} & set(ops), ops


@pytest.mark.parametrize(
    "instruction,kernel,layout",
    [
        ("vpdpbusd", 3, ("int8", 16, 4, 1)),  # (element, lanes, depth, slots of weight sums)
        ("vpdpbusd", 1, ("int8", 1, 4, 1)),
        ("vpmaddwd", 3, ("int8", 8, 2, 2)),  # bytes, sign-extended as the kernel loads them
        ("vpmaddwd", 1, ("int16", 1, 2, 1)),  # the row kernel broadcasts a channel's pair as one word
    ],
)
def test_packed_conv_weight_holds_the_weights_and_their_sums(instruction, kernel, layout):
    """The packed QLinearConv weight per instruction and kernel (channel-lane for 3x3, row kernel
    for a 1x1 conv whose row is whole vectors): the weights in their slots, zero past K and C, and
    each output channel's int32 sum in little-endian parts after the channels."""
    from codegen.target import ScheduleParams
    from codegen.tvm.lower.quantization_gemm import pack_vnni_conv_weight

    element, lanes, depth, slots = layout
    params = ScheduleParams.x86(16) if instruction == "vpdpbusd" else ScheduleParams.x86(8, 16)
    k, c = 20, 7
    w = np.random.default_rng(kernel).integers(-128, 127, (k, c, kernel, kernel), endpoint=True).astype(np.int8)
    types = [((1, c, 16, 16), np.dtype("uint8")), None, None, (w.shape, np.dtype("int8"))]
    packed = pack_vnni_conv_weight({"pads": [kernel // 2] * 4}, types, w, params)
    kb, cd = -(-k // lanes), -(-c // depth)
    assert packed.dtype == np.dtype(element) and packed.shape == (kb, cd + slots, kernel, kernel, lanes * depth)
    grid = packed.reshape(kb, cd + slots, kernel, kernel, lanes, depth)
    weights = grid[:, :cd].transpose(0, 4, 1, 5, 2, 3).reshape(kb * lanes, cd * depth, kernel, kernel)
    np.testing.assert_array_equal(weights[:k, :c], w)
    assert not weights[k:].any() and not weights[:, c:].any()
    parts = grid[:, cd:, 0, 0].transpose(0, 2, 1, 3).reshape(kb * lanes, -1)  # each lane's parts in order
    sums = np.ascontiguousarray(parts).view("<i4").reshape(-1)
    np.testing.assert_array_equal(sums[:k], w.reshape(k, -1).astype(np.int64).sum(axis=1))


@pytest.mark.parametrize("instruction", ["vpdpbusd", "vpmaddwd"])
@pytest.mark.parametrize(
    "x_shape,kernel,pads,kernel_block",
    [((1, 8, 6, 6), 3, [0, 0, 0, 0], "qconv_blk"), ((1, 8, 6, 16), 1, [0, 0, 0, 0], "qconv_rows")],
)
def test_vnni_kernel_reaches_the_object_file(x_shape, kernel, pads, kernel_block, instruction):
    """The packed conv's inner product is the target's instruction (``vpdpbusd`` with AVX-512 VNNI,
    ``vpmaddwd`` on AVX2): in the channel-lane kernel of a 3x3 conv, and in the row kernel of a 1x1
    conv whose row is a whole vector. Only the assembly is read, so any host checks both."""
    import tvm
    from tvm import s_tir, te

    from codegen.target import ScheduleParams
    from codegen.tvm.lower.quantization import _qlinear_conv
    from codegen.tvm.lower.quantization_gemm import pack_vnni_conv_weight, schedule_vnni_conv
    from codegen.tvm.registry import LowerContext

    w_shape = (16, 8, kernel, kernel)
    out_shape = (1, 16, x_shape[2] + pads[0] + pads[2] - kernel + 1, x_shape[3] + pads[1] + pads[3] - kernel + 1)
    types = [(x_shape, "uint8"), ((), "float32"), ((), "uint8"), (w_shape, "int8"), ((16,), "float32")]
    types += [((), "int8"), ((), "float32"), ((), "uint8")]
    types = [(shape, np.dtype(dtype)) for shape, dtype in types]
    attrs = {"pads": pads}
    params = ScheduleParams.x86(16) if instruction == "vpdpbusd" else ScheduleParams.x86(8, 16)
    packed = pack_vnni_conv_weight(attrs, types, np.ones(w_shape, np.int8), params)
    types[3] = (packed.shape, packed.dtype)
    ctx = LowerContext(
        "QLinearConv", attrs, types, [(out_shape, np.dtype("uint8"))], {5: np.int8(0)}, frozenset({3}), schedule=params
    )
    args = [None if i == 5 else te.placeholder(shape, str(dtype)) for i, (shape, dtype) in enumerate(types)]
    out = _qlinear_conv(ctx, *args)
    sch = s_tir.Schedule(tvm.IRModule({"main": te.create_prim_func([a for a in args if a is not None] + [out])}))
    assert kernel_block in [sch.get(b).name_hint for b in sch.get_child_blocks(sch.get_sblock("root"))]
    mattr = ["+avx512f", "+avx512bw", "+avx512vnni"] if instruction == "vpdpbusd" else ["+avx2", "+fma"]
    target = tvm.target.Target({"kind": "llvm", "mcpu": "x86-64", "mattr": mattr})
    with target:  # the schedule asks the target for the instruction's feature
        schedule_vnni_conv(sch, params)
    asm = tvm.tirx.build(sch.mod, target).inspect_source("asm")
    assert instruction in asm and ("vpdpbusd" not in asm or instruction == "vpdpbusd")


def _vnni_kernel(model):
    """(the built TVM module, the schedule used) of ``model``'s one kernel, built as a library's
    kernel is for an AVX-512 VNNI target."""
    from codegen.plan import build_plan
    from codegen.target import parse_target
    from codegen.tvm.kernel import build_kernel_module
    from codegen.tvm.registry import get_lowering
    from compiler.driver import prepare_for_codegen
    from frontends.onnx import import_model

    target = parse_target("x86-64:features=+avx2+fma+avx512f+avx512bw+avx512dq+avx512vl+avx512vnni")
    params = target.schedule_params()
    plan = build_plan(prepare_for_codegen(import_model(model), "O2"), get_lowering, schedule=params)
    (call,) = plan.calls
    return build_kernel_module(call.spec, "k", target.to_tvm(), params)


def test_row_kernel_writes_back_whole_vectors():
    """A 56-pixel row (ResNet's 56 x 56 planes) is written back as three 16-lane vectors and one of 8,
    not as one 56-lane vector, which LLVM legalised with element inserts and spills
    (``schedule_util.vectorize_whole_vectors``); built as a library's kernel is, for AVX-512 VNNI."""
    w = np.ones((16, 8, 1, 1), np.int8)
    model = _qlinear_conv_model(U8, (1, 8, 3, 56), w, None, np.zeros(16, np.int8))
    lib, used = _vnni_kernel(model)
    ll = lib.inspect_source("ll")
    assert used == "vnni_conv" and "vpdpbusd" in ll
    assert "<56 x" not in ll
    assert "<16 x float>" in ll and "<8 x float>" in ll


@pytest.mark.parametrize("strides", [[2, 2], [2, 1]])
def test_strided_row_kernel_repacks_rows_without_byte_inserts(strides):
    """A strided 1x1 conv's band of output rows (4 rows of 28 here) is repacked row by row
    (``dot_kernels.schedule_rows_repack``): as one flat run of the band's pixels, each lane's input
    row and column were computed apart and its bytes inserted one at a time (``vpinsrb``). The
    result still matches the interpreter."""
    rng = np.random.default_rng(3)
    x_shape = (1, 16, 8 * strides[0], 28 * strides[1])
    w = rng.integers(-127, 127, (32, 16, 1, 1), endpoint=True).astype(np.int8)
    model = _qlinear_conv_model(U8, x_shape, w, None, np.zeros(32, np.int8), strides=strides)
    lib, used = _vnni_kernel(model)
    asm = lib.inspect_source("asm")
    assert used == "vnni_conv" and "vpdpbusd" in asm
    assert "vpinsrb" not in asm
    feeds = {
        "x": rng.integers(0, 255, x_shape, endpoint=True).astype(np.uint8),
        "xs": np.array(0.02, np.float32),
        "xz": np.array(100, np.uint8),
        "ws": rng.uniform(0.001, 0.01, 32).astype(np.float32),
        "ys": np.array(0.3, np.float32),
        "yz": np.array(60, np.uint8),
    }
    check_against_interpreter(model, feeds, rtol=0, atol=1)


@pytest.mark.parametrize("x_shape", [(1, 8, 3, 56), (1, 8, 7, 7)])
def test_channel_lane_tile_is_stored_transposed(x_shape):
    """The 3x3 conv's register tile (16 channels per vector, 8 pixels of a 56-pixel row, or 7 of a
    7-pixel one) is stored to the accumulator transposed by shuffles, so the write-back reads each
    channel's pixels as whole vectors instead of gathering one lane of every pixel's vector
    (``vpinsrd``); rows shorter than a vector are written back a plane at a time, 49 pixels as
    3 whole vectors and one lane, not 7-lane rows. Built as a library's kernel is, for AVX-512 VNNI."""
    w = np.ones((32, 8, 3, 3), np.int8)
    model = _qlinear_conv_model(U8, x_shape, w, None, np.zeros(32, np.int8), pads=[1, 1, 1, 1])
    lib, used = _vnni_kernel(model)
    ll, asm = lib.inspect_source("ll"), lib.inspect_source("asm")
    assert used == "vnni_conv" and "vpdpbusd" in ll
    assert "shufflevector <16 x i32>" in ll
    assert "vpinsrd" not in asm and "vpgatherdd" not in asm
    assert "<7 x float>" not in ll and "<16 x float>" in ll  # a 7 x 7 plane: whole vectors, not 7-lane rows


@pytest.mark.parametrize("target", _targets())
@pytest.mark.parametrize(
    "a_shape,n,b_zero",
    # K=6: generic with 4-byte words, packed with 2-element ones; K=7: generic for both; zb=2: generic
    [((2, 5, 8), 20, 0), ((3, 64), 16, 0), ((4, 6), 3, 0), ((2, 7), 9, 0), ((3, 8), 5, 2)],
)
def test_matmul_integer_matches_interpreter(a_shape, n, b_zero, target):
    rng = np.random.default_rng(n + a_shape[-1])
    b = rng.integers(-128, 127, (a_shape[-1], n), endpoint=True).astype(np.int8)
    inits = [numpy_helper.from_array(b, "b"), numpy_helper.from_array(np.array(b_zero, np.int8), "zb")]
    ins = [("a", U8, list(a_shape)), ("b", I8, list(b.shape)), ("za", U8, []), ("zb", I8, [])]
    m = node_model("MatMulInteger", ins, [("y", I32, None)], opset=10, initializers=inits)
    feeds = {"a": rng.integers(0, 255, a_shape, endpoint=True).astype(np.uint8), "za": np.array(131, np.uint8)}
    check_against_interpreter(m, feeds, rtol=0, atol=0, target=target)


@pytest.mark.parametrize(
    "a_shape,n",
    # rows of 16k and K of 64k take the AMX tiles: 2 x 2 tiles a task, 1 x 1 where 3 row tiles and
    # 5 column tiles (N = 80) do not pair, a batch dim folded into the rows, padded columns (N = 40)
    [((32, 64), 32), ((1, 48, 128), 80), ((2, 16, 192), 48), ((32, 64), 40)],
)
def test_amx_matmul_integer_matches_interpreter(a_shape, n, tmp_path):
    """On a CPU with AMX-INT8 the tiles' int32 product, corrected for A's zero point, equals the
    interpreter's; elsewhere the library is still built (its object holds the tile instructions) and
    its run fails with the kernel's message (the OS refuses the tiles)."""
    import subprocess

    from codegen.target import detect_host
    from compiler.driver import compile_model
    from compiler.ir.interpreter import interpret_list
    from compiler.runtime import load
    from frontends.onnx import import_model

    features = [f for f in detect_host().features if not f.startswith("+amx")]
    amx = "x86-64:features=" + "".join(features) + "+amx-tile+amx-int8"
    rng = np.random.default_rng(n + a_shape[-1])
    b = rng.integers(-128, 127, (a_shape[-1], n), endpoint=True).astype(np.int8)
    inits = [numpy_helper.from_array(b, "b"), numpy_helper.from_array(np.array(0, np.int8), "zb")]
    ins = [("a", U8, list(a_shape)), ("b", I8, list(b.shape)), ("za", U8, []), ("zb", I8, [])]
    m = node_model("MatMulInteger", ins, [("y", I32, None)], opset=10, initializers=inits)
    feeds = {"a": rng.integers(0, 255, a_shape, endpoint=True).astype(np.uint8), "za": np.array(131, np.uint8)}
    lib = str(tmp_path / "m.so")
    compile_model(import_model(m), lib, amx, prefix="m")
    asm = subprocess.run(["objdump", "-d", lib], capture_output=True, text=True, check=True).stdout
    assert "tdpbusd" in asm and "ldtilecfg" in asm
    if "+amx-int8" in detect_host().features:
        got = list(load(lib, num_threads=2).run(feeds).values())[0]
        np.testing.assert_array_equal(got, interpret_list(import_model(m), feeds)[0])
    else:
        with pytest.raises(Exception, match="AMX tiles"):
            load(lib, num_threads=1).run(feeds)


def test_ort_dynamic_quantized_matmul_runs_on_matmul_integer(tmp_path):
    """``quantize_dynamic`` writes DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul: the weight
    is a constant symmetric int8, so MatMulInteger takes the VNNI kernel; outputs equal the
    interpreter's exact integer arithmetic and match onnxruntime's. Without VNNI (AVX2: a Zen 3),
    onnxruntime's u8 x s8 kernel sums pairs of products in saturating 16 bits (``vpmaddubsw``) and
    was off by up to 0.2 on 3 of these 768 outputs, so there it is compared loosely."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    quantization = pytest.importorskip("onnxruntime.quantization")
    from onnx import helper

    from compiler import compile_model
    from compiler.runtime import load

    rng = np.random.default_rng(5)
    w = numpy_helper.from_array(rng.normal(0, 0.1, (64, 48)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "linear",
        [helper.make_tensor_value_info("x", F, [2, 8, 64])],
        [helper.make_tensor_value_info("y", F, [2, 8, 48])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    f32, dyn, library = str(tmp_path / "f32.onnx"), str(tmp_path / "dyn.onnx"), str(tmp_path / "dyn.so")
    onnx.save(model, f32)
    quantization.quantize_dynamic(f32, dyn, weight_type=quantization.QuantType.QInt8)
    compile_model(dyn, library)
    x = rng.normal(size=(2, 8, 64)).astype(np.float32)
    want = ort.InferenceSession(dyn, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    with load(library, profile=True) as compiled:
        got = compiled.run({"x": x})["y"]
        ops = [op for call in compiled.profile().calls for op in call.op_types]
    from compiler.ir.interpreter import interpret_list
    from frontends.onnx import import_model

    (exact,) = interpret_list(import_model(dyn), {"x": x})
    np.testing.assert_allclose(got, exact, rtol=1e-5, atol=1e-5)
    vnni = "avx512_vnni" in open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else False
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 if vnni else 0.3)
    assert "MatMulInteger" in ops and "MatMul" not in ops, ops


def test_a_target_without_vnni_gets_no_vnni_instruction(tmp_path):
    """The schedule asks the target being built for, not the host: AVX-512 without VNNI still compiles
    the packed kernel (plain int32 arithmetic) and computes the same result. Both targets say
    ``vector_bits=512``: on an AVX2 host the detected 256 bits would pick no 16-lane int8 kernel."""
    import shutil
    import subprocess

    from compiler import compile_model
    from compiler.runtime import load

    if shutil.which("objdump") is None:
        pytest.skip("objdump is not installed")
    rng = np.random.default_rng(4)
    w = rng.integers(-127, 127, (16, 8, 3, 3), endpoint=True).astype(np.int8)
    m = _qlinear_conv_model(U8, (1, 8, 6, 6), w, None, np.zeros(16, np.int8), pads=[1, 1, 1, 1])
    feeds = {
        "x": rng.integers(0, 255, (1, 8, 6, 6)).astype(np.uint8),
        "xs": np.array(0.02, np.float32),
        "xz": np.array(100, np.uint8),
        "ws": np.full(16, 0.004, np.float32),
        "ys": np.array(0.3, np.float32),
        "yz": np.array(60, np.uint8),
    }
    libraries = {}
    for name, target in (
        ("vnni", "x86-64:features=+avx2+fma+avx512f+avx512bw+avx512dq+avx512vl+avx512vnni,vector_bits=512"),
        ("plain", "x86-64:features=+avx2+fma+avx512f+avx512bw+avx512dq+avx512vl,vector_bits=512"),
    ):
        libraries[name] = str(tmp_path / f"{name}.so")
        compile_model(m, libraries[name], target)
    disassembly = {
        k: subprocess.run(["objdump", "-d", v], capture_output=True, text=True).stdout for k, v in libraries.items()
    }
    assert "vpdpbusd" in disassembly["vnni"] and "vpdpbusd" not in disassembly["plain"]
    from codegen.target import detect_host

    if "+avx512vnni" in detect_host().features:  # both run here
        with load(libraries["vnni"]) as a, load(libraries["plain"]) as b:
            np.testing.assert_array_equal(a.run(feeds)["y"], b.run(feeds)["y"])


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_integer_max_pool_with_pads_matches_interpreter(dtype):
    """Integer MaxPool (QOperator models have it) with padding: the pad must never win a max."""
    rng = np.random.default_rng(6)
    x = rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max, (1, 3, 7, 7), endpoint=True).astype(dtype)
    x[0, 0] = np.iinfo(dtype).min + 1  # an all-low channel: a zero or NaN pad would show
    elem = U8 if dtype == np.uint8 else I8
    m = node_model(
        "MaxPool",
        [("x", elem, [1, 3, 7, 7])],
        [("y", elem, None)],
        kernel_shape=[3, 3],
        pads=[1, 1, 1, 1],
        strides=[2, 2],
    )
    check_against_interpreter(m, {"x": x}, rtol=0, atol=0)


@pytest.mark.parametrize("skip_zero", [117, 90])
def test_residual_epilogue_reads_the_conv_float_and_matches_interpreter(skip_zero):
    """A quantized residual block, ``Q(DQ(QLinearConv(x)) + DQ(skip))``, is one kernel whose
    DequantizeLinear reads the conv's requantized value as a whole float, rounded and clamped from
    the conv's scaled sum (``quantization_dynamic.narrowed``, ``centred``) rather than narrowing it
    to uint8 and widening it back:
    the kernel has no stage that narrows the conv's output. The scales saturate some conv
    outputs at both ends; the result is exact, with the DequantizeLinear's zero point the conv's
    (117) or another one (90)."""
    from compiled_checks import only_kernel
    from onnx import helper
    from tvm import te

    from codegen.tvm.kernel import spec_to_te

    rng = np.random.default_rng(5)
    w = rng.integers(-60, 60, (32, 48, 1, 1)).astype(np.int8)
    consts = {"xs": 0.05, "ws": 0.01, "ys": 0.04, "ss": 0.07, "os": 0.09}
    inits = [numpy_helper.from_array(np.array(v, np.float32), k) for k, v in consts.items()]
    inits += [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(np.zeros(32, np.int8), "wz"),
        numpy_helper.from_array(np.array(128, np.uint8), "xz"),
        numpy_helper.from_array(np.array(117, np.uint8), "yz"),
        numpy_helper.from_array(np.array(skip_zero, np.uint8), "dz"),
        numpy_helper.from_array(np.array(100, np.uint8), "sz"),
        numpy_helper.from_array(np.array(131, np.uint8), "oz"),
    ]
    nodes = [
        helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["c"]),
        helper.make_node("DequantizeLinear", ["c", "ys", "dz"], ["cf"]),
        helper.make_node("DequantizeLinear", ["skip", "ss", "sz"], ["sf"]),
        helper.make_node("Add", ["cf", "sf"], ["a"]),
        helper.make_node("QuantizeLinear", ["a", "os", "oz"], ["y"]),
    ]
    shape = [1, 48, 8, 16]
    graph = helper.make_graph(
        nodes,
        "residual",
        [helper.make_tensor_value_info("x", U8, shape), helper.make_tensor_value_info("skip", U8, [1, 32, 8, 16])],
        [helper.make_tensor_value_info("y", U8, [1, 32, 8, 16])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    spec, target = only_kernel(model)
    placeholders, outs = spec_to_te(spec, schedule=target.schedule_params())
    text = te.create_prim_func([*placeholders, *outs]).script()
    assert "qconv_scaled" in text and "qconv_out" not in text, text
    feeds = {
        "x": rng.integers(0, 256, shape).astype(np.uint8),
        "skip": rng.integers(0, 256, [1, 32, 8, 16]).astype(np.uint8),
    }
    check_against_interpreter(model, feeds, rtol=0, atol=0)


def test_row_kernel_bands_of_rows_waste_the_fewest_lanes():
    """The row kernel computes a band of output rows as one row (``dot_kernels.rows_band``) where
    that wastes fewer lanes than a row alone: 2 rows of 56 or 4 of 28 are 7 vectors of 16 (one
    row: 4 and 2 vectors, an eighth of them padding), a strided conv's 16 rows of 15 are 15; a
    14 x 14 plane is 13 vectors (one row: 16 lanes for 14). A padded band is a whole plane: 38
    rows of 14 (the plane past the 512-pixel bound) are one row at a time, not 19 rows (266 pixels
    in 17 vectors). AVX2's 8 lanes hold 56 as 7 vectors already."""
    from codegen.tvm.lower.dot_kernels import rows_band

    assert rows_band((56, 56), 64, 16, 24) == (2, 112, 1, 16)
    assert rows_band((28, 28), 128, 16, 24) == (4, 112, 1, 16)
    assert rows_band((16, 15), 20, 16, 24) == (16, 240, 1, 20)
    assert rows_band((14, 14), 256, 16, 24) == (14, 208, 1, 16)
    assert rows_band((38, 14), 24, 16, 24)[:2] == (1, 16)
    assert rows_band((56, 56), 64, 8, 12) == (1, 56, 1, 8)
    assert rows_band((28, 28), 128, 8, 12) == (2, 56, 1, 8)
