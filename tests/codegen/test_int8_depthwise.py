"""Depthwise QLinearConv and ConvInteger on the depthwise kernel (codegen/tvm/lower/quantization_depthwise.py):
compiled against the interpreter over strides, kernels, padding, dilation, channel multipliers and
8-bit input types; the kernel planned is the depthwise one (its weight packed as float32 and its
schedule not the generic fallback); and a weight zero point, which the kernel does not take, goes
to the generic reduction, still matching."""

from __future__ import annotations

import numpy as np
import pytest
from compiled_checks import check_against_interpreter, node_model, only_kernel
from onnx import TensorProto, numpy_helper

F, U8, I8, I32 = TensorProto.FLOAT, TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32
AVX2 = "x86-64:features=+avx2+fma,vector_bits=256"


def _depthwise_model(op, x_dtype, x_shape, w, w_zero, bias, **attrs):
    """A one-node depthwise ``op`` (group = input channels) with its weight and zero points as
    initializers and its scales as inputs."""
    k, channels = w.shape[0], x_shape[1]
    x_type = U8 if x_dtype == np.uint8 else I8
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(w_zero, "wz")]
    if op == "ConvInteger":
        inits.append(numpy_helper.from_array(np.array(np.iinfo(x_dtype).min + 90, x_dtype), "xz"))
        ins = [("x", x_type, list(x_shape)), ("w", I8, list(w.shape)), ("xz", x_type, []), ("wz", I8, [])]
        return node_model(op, ins, [("y", I32, None)], opset=10, initializers=inits, group=channels, **attrs)
    ins = [("x", x_type, list(x_shape)), ("xs", F, []), ("xz", x_type, []), ("w", I8, list(w.shape))]
    ins += [("ws", F, [k]), ("wz", I8, list(w_zero.shape)), ("ys", F, []), ("yz", x_type, [])]
    if bias is not None:
        inits.append(numpy_helper.from_array(bias, "b"))
        ins.append(("b", I32, [k]))
    return node_model(op, ins, [("y", x_type, None)], opset=10, initializers=inits, group=channels, **attrs)


def _feeds(op, x_dtype, x_shape, k, rng):
    info = np.iinfo(x_dtype)
    feeds = {"x": rng.integers(info.min, info.max, x_shape, endpoint=True).astype(x_dtype)}
    if op == "QLinearConv":
        feeds.update(
            xs=np.array(0.02, np.float32),
            xz=np.array(info.min + 100, x_dtype),
            ws=rng.uniform(0.001, 0.01, k).astype(np.float32),
            ys=np.array(0.05, np.float32),
            yz=np.array(info.min + 120, x_dtype),
        )
    return feeds


CASES = [
    # (x dtype, x shape, channel multiplier, kernel, attrs)
    (np.uint8, (1, 16, 28, 28), 1, 3, dict(pads=[1, 1, 1, 1])),  # stride 1: the padding pass cut at its edges
    (np.uint8, (1, 8, 56, 56), 1, 3, dict(pads=[1, 1, 1, 1], strides=[2, 2])),  # even columns and odd ones
    (np.int8, (1, 8, 15, 15), 1, 3, dict(pads=[1, 1, 1, 1], strides=[2, 2])),  # odd width: phase split
    (np.uint8, (2, 24, 14, 14), 1, 5, dict(pads=[2, 2, 2, 2])),  # batch 2, 5 x 5
    (np.int8, (1, 4, 9, 11), 2, 3, dict(pads=[0, 1, 2, 1], dilations=[2, 1])),  # 2 outputs per channel
    (np.uint8, (1, 32, 7, 7), 1, 7, dict(pads=[3, 3, 3, 3])),  # 7 x 7 at 7 x 7 (kernel columns outermost)
    (np.uint8, (1, 12, 10, 40), 1, 3, {}),  # no padding
]


@pytest.mark.parametrize("target", [None, AVX2])
@pytest.mark.parametrize("x_dtype,x_shape,mult,kernel,attrs", CASES)
@pytest.mark.parametrize("op", ["QLinearConv", "ConvInteger"])
def test_depthwise_integer_conv_matches_interpreter(op, x_dtype, x_shape, mult, kernel, attrs, target):
    rng = np.random.default_rng(x_shape[1] * kernel + mult)
    k = x_shape[1] * mult
    w = rng.integers(-128, 127, (k, 1, kernel, kernel), endpoint=True).astype(np.int8)
    bias = rng.integers(-3000, 3000, k).astype(np.int32) if kernel != 7 else None
    model = _depthwise_model(
        op, x_dtype, x_shape, w, np.zeros(k if op == "QLinearConv" else (), np.int8), bias, **attrs
    )
    feeds = _feeds(op, x_dtype, x_shape, k, rng)
    if target is None:  # the host: the depthwise kernel, its weight packed for it, its schedule applied
        from codegen.tvm.kernel import build_kernel_module

        spec, host = only_kernel(model)
        assert np.dtype(spec.ops[0].in_types[3 if op == "QLinearConv" else 1][1]) == np.float32
        assert build_kernel_module(spec, "k", host.to_tvm(), host.schedule_params())[1] == "vnni_conv"
    # QLinearConv requantizes in float32 as onnxruntime does, the interpreter in float64: a tie may differ by one
    check_against_interpreter(model, feeds, rtol=0, atol=1 if op == "QLinearConv" else 0, target=target)


@pytest.mark.parametrize("op", ["QLinearConv", "ConvInteger"])
def test_the_depthwise_kernel_is_the_one_planned_and_scheduled(op):
    """The weight reaches the kernel as float32 (``pack_depthwise_weight``) and the kernel takes the
    depthwise schedule, not the generic fallback a failed schedule leaves."""
    from codegen.tvm.kernel import build_kernel_module

    rng = np.random.default_rng(0)
    w = rng.integers(-128, 127, (16, 1, 3, 3), endpoint=True).astype(np.int8)
    zero = np.zeros(16 if op == "QLinearConv" else (), np.int8)
    model = _depthwise_model(op, np.uint8, (1, 16, 20, 20), w, zero, None, pads=[1, 1, 1, 1])
    spec, target = only_kernel(model)
    weight = 3 if op == "QLinearConv" else 1
    conv = next(o for o in spec.ops if o.op == op)
    assert weight in conv.packed and np.dtype(conv.in_types[weight][1]) == np.float32
    _, used = build_kernel_module(spec, "k", target.to_tvm(), target.schedule_params())
    assert used == "vnni_conv"


def test_a_weight_zero_point_takes_the_generic_reduction_and_matches():
    """A nonzero weight zero point the depthwise kernel does not take: with run-time scales
    (``integer-conv-as-float`` then leaves the conv alone) the packed float32 weight is read back
    as int8 by the generic reduction."""
    rng = np.random.default_rng(3)
    w = rng.integers(-100, 100, (8, 1, 3, 3), endpoint=True).astype(np.int8)
    zero = rng.integers(-5, 5, 8, endpoint=True).astype(np.int8)
    model = _depthwise_model("QLinearConv", np.uint8, (1, 8, 9, 9), w, zero, None, pads=[1, 1, 1, 1])
    check_against_interpreter(model, _feeds("QLinearConv", np.uint8, (1, 8, 9, 9), 8, rng), rtol=0, atol=1)


@pytest.mark.parametrize("strides", [[1, 1], [2, 2]])
def test_depthwise_qlinear_conv_matches_the_interpreter_under_qemu(strides, tmp_path):
    """The same kernel built for aarch64 (NEON: 4-lane vectors), run under qemu."""
    from test_aarch64 import interpreted, require_toolchain, run_on_aarch64

    from frontends.onnx import import_model

    require_toolchain()
    rng = np.random.default_rng(5)
    x_shape = (1, 12, 14, 18)
    w = rng.integers(-128, 127, (12, 1, 3, 3), endpoint=True).astype(np.int8)
    bias = rng.integers(-3000, 3000, 12).astype(np.int32)
    model = _depthwise_model(
        "QLinearConv", np.uint8, x_shape, w, np.zeros(12, np.int8), bias, pads=[1, 1, 1, 1], strides=strides
    )
    feeds = _feeds("QLinearConv", np.uint8, x_shape, 12, rng)
    (want,) = interpreted(import_model(model), feeds)
    (got,) = run_on_aarch64(import_model(model), feeds, str(tmp_path)).outputs
    assert got.shape == want.shape and np.abs(got.astype(np.int32) - want.astype(np.int32)).max() <= 1


def test_a_stride_1_padding_pass_of_integers_is_cut_at_its_edges():
    """The padding pass that converts the 8-bit input is cut where the padding starts and ends
    (``schedule_pixel_conv._reads_integers``): left whole, LLVM built each converted row from
    scalars (an int8 192 x 28 x 28 conv took 2.7x the time)."""
    import tvm
    from tvm import te

    from codegen.tvm.kernel import spec_to_te
    from codegen.tvm.schedule import apply_schedule

    rng = np.random.default_rng(1)
    w = rng.integers(-128, 127, (16, 1, 3, 3), endpoint=True).astype(np.int8)
    model = _depthwise_model(
        "QLinearConv", np.uint8, (1, 16, 28, 28), w, np.zeros(16, np.int8), None, pads=[1, 1, 1, 1]
    )
    spec, target = only_kernel(model)
    params = target.schedule_params()
    placeholders, outputs = spec_to_te(spec, [], params)
    mod = tvm.tirx.transform.ConvertSSA()(tvm.IRModule({"main": te.create_prim_func(placeholders + outputs)}))
    with tvm.target.Target(target.to_tvm()):
        scheduled, used = apply_schedule(mod, "vnni_conv", params)
    script = scheduled.script()
    assert used == "vnni_conv" and "dw_conv_update" in script
    assert "conv_pad_q0_partition" in script and "conv_pad_q2_partition" in script
