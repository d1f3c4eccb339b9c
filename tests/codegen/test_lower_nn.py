"""Neural-network lowerings (codegen/tvm/lower/nn/) compiled: MaxPool indices, training-mode
BatchNormalization, LpNormalization, MaxUnpool, Col2Im, DeformConv and half-precision Conv.

Each model is one node with declared output shapes, as exported models with static shapes have;
parameters are model inputs where the op allows it. The compiled library must give the
interpreter's answer for every value consistent with those shapes, and fail the run with a message
naming the op, never a wrong result, for a value that is not."""

from __future__ import annotations

import re

import numpy as np
import pytest
from compiled_checks import check_against_interpreter, conv_clip_model, node_model, only_kernel, scheduled_kernel
from onnx import TensorProto, helper, numpy_helper

from compiler.runtime import RuntimeLoadError
from frontends.onnx.backend import EmberBackend

F, I64, H = TensorProto.FLOAT, TensorProto.INT64, TensorProto.FLOAT16


# MaxPool indices, BatchNormalization training, LpNormalization, SpaceToDepth ---------------------------


@pytest.mark.parametrize(
    "storage_order,attrs",
    [
        (0, dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
        (1, dict(kernel_shape=[2, 3], strides=[1, 2], ceil_mode=1)),
        (0, dict(kernel_shape=[2, 2], dilations=[2, 1])),
    ],
)
def test_max_pool_indices(storage_order, attrs):
    x = np.random.default_rng(3).integers(0, 4, (2, 3, 7, 6)).astype(np.float32)  # ties: first in scan order
    rep = EmberBackend.prepare(
        node_model(
            "MaxPool",
            [("x", F, [2, 3, 7, 6])],
            [("y", F, None), ("i", I64, None)],
            opset=12,
            storage_order=storage_order,
            **attrs,
        ),
        compile=True,
    )
    ref = EmberBackend.prepare(
        node_model(
            "MaxPool",
            [("x", F, [2, 3, 7, 6])],
            [("y", F, None), ("i", I64, None)],
            opset=12,
            storage_order=storage_order,
            **attrs,
        )
    )
    got, want = rep.run({"x": x}), ref.run({"x": x})
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_batch_norm_training_mode_outputs():
    rng = np.random.default_rng(4)
    c = [("x", F, [2, 3, 4, 5])] + [(n, F, [3]) for n in ("s", "b", "m", "v")]
    m = node_model(
        "BatchNormalization",
        c,
        [("y", F, [2, 3, 4, 5]), ("rm", F, [3]), ("rv", F, [3])],
        opset=15,
        training_mode=1,
        momentum=0.8,
        epsilon=1e-3,
    )
    feeds = {
        "x": rng.standard_normal((2, 3, 4, 5)).astype(np.float32),
        **{n: rng.random(3).astype(np.float32) + 0.5 for n in ("s", "b", "m", "v")},
    }
    check_against_interpreter(m, feeds)


def test_lp_normalization_zero_slice_gives_zeros():
    x = np.array([[[1, 2, 0], [3, 4, 0]], [[0, 5, 0], [6, 7, 0]]], np.float32)
    for p in (1, 2):
        check_against_interpreter(
            node_model("LpNormalization", [("x", F, [2, 2, 3])], [("y", F, [2, 2, 3])], opset=22, axis=0, p=p), {"x": x}
        )


def test_max_unpool_with_output_shape_and_bad_index():
    x = np.array([[[[5, 6], [7, 8]]]], np.float32)
    idx = np.array([[[[5, 7], [13, 15]]]], np.int64)
    m = node_model(
        "MaxUnpool",
        [("x", F, [1, 1, 2, 2]), ("i", I64, [1, 1, 2, 2]), ("s", I64, [4])],
        [("y", F, [1, 1, 5, 5])],
        opset=11,
        kernel_shape=[2, 2],
        strides=[2, 2],
    )
    rep = check_against_interpreter(m, {"x": x, "i": idx, "s": np.array([1, 1, 5, 5], np.int64)})
    with pytest.raises(RuntimeLoadError, match="outside the unpooled"):
        rep.run({"x": x, "i": idx + 3, "s": np.array([1, 1, 5, 5], np.int64)})
    with pytest.raises(RuntimeLoadError, match="output_shape"):
        rep.run({"x": x, "i": idx, "s": np.array([1, 1, 6, 5], np.int64)})


@pytest.mark.parametrize(
    "block,attrs",
    [([1, 5], {}), ([5, 1], {}), ([2, 2], dict(strides=[2, 1], pads=[1, 0, 1, 1])), ([2, 3], dict(dilations=[2, 1]))],
)
def test_col2im_run_time_block_shape(block, attrs):
    image, channels = [5, 6], 2
    nd = 2
    st, dl = attrs.get("strides", [1] * nd), attrs.get("dilations", [1] * nd)
    pd = attrs.get("pads", [0] * 2 * nd)
    counts = [(image[d] + pd[d] + pd[nd + d] - dl[d] * (block[d] - 1) - 1) // st[d] + 1 for d in range(nd)]
    cols = [1, channels * int(np.prod(block)), int(np.prod(counts))]
    m = node_model(
        "Col2Im",
        [("c", F, cols), ("img", I64, [2]), ("blk", I64, [2])],
        [("y", F, [1, channels, *image])],
        opset=18,
        **attrs,
    )
    feeds = {
        "c": np.random.default_rng(7).standard_normal(cols).astype(np.float32),
        "img": np.array(image, np.int64),
        "blk": np.array(block, np.int64),
    }
    rep = check_against_interpreter(m, feeds)
    with pytest.raises(RuntimeLoadError, match="image_shape"):
        rep.run({**feeds, "img": np.array([6, 5], np.int64)})


# DeformConv ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "with_mask_bias,attrs",
    [(False, dict(pads=[1, 1, 1, 1])), (True, dict(group=2, offset_group=2, strides=[2, 1], dilations=[1, 2]))],
)
def test_deform_conv(with_mask_bias, attrs):
    rng = np.random.default_rng(12)
    group, og = attrs.get("group", 1), attrs.get("offset_group", 1)
    x = rng.standard_normal((1, 4, 6, 7)).astype(np.float32)
    w = rng.standard_normal((4, 4 // group, 2, 2)).astype(np.float32)
    st, dl, pd = attrs.get("strides", [1, 1]), attrs.get("dilations", [1, 1]), attrs.get("pads", [0] * 4)
    oh = (6 + pd[0] + pd[2] - dl[0] - 1) // st[0] + 1
    ow = (7 + pd[1] + pd[3] - dl[1] - 1) // st[1] + 1
    offset = (rng.standard_normal((1, og * 8, oh, ow)) * 1.5).astype(np.float32)
    ins = [("x", F, list(x.shape)), ("w", F, list(w.shape)), ("off", F, list(offset.shape))]
    feeds = {"x": x, "w": w, "off": offset}
    if with_mask_bias:
        ins += [("b", F, [4]), ("mask", F, [1, og * 4, oh, ow])]
        feeds.update(
            b=rng.standard_normal(4).astype(np.float32), mask=rng.random((1, og * 4, oh, ow)).astype(np.float32)
        )
    m = node_model("DeformConv", ins, [("y", F, [1, 4, oh, ow])], opset=19, **attrs)
    check_against_interpreter(m, feeds, rtol=1e-4, atol=1e-4)


# Half-precision MatMul and Softmax round like the reference ----------------------------------------------

BF16 = TensorProto.BFLOAT16


@pytest.mark.parametrize("elem", [H, BF16])
@pytest.mark.parametrize(
    "shape,w_shape,attrs",
    [
        ((1, 32, 6, 6), (16, 32, 3, 3), dict(pads=[1, 1, 1, 1])),  # packed 2-D conv
        ((1, 16, 6, 6), (16, 1, 3, 3), dict(group=16)),  # depthwise
        ((2, 24, 9), (8, 24, 4), dict(strides=[2])),  # 1-D (topi)
    ],
)
def test_half_conv_accumulates_in_float32(elem, shape, w_shape, attrs):
    """fp16/bf16 Conv rounds once: within one unit in the last place of the float32 result rounded
    (a half accumulator over 288 products drifts by several, as the CausalConvWithState fp16 case showed)."""
    import ml_dtypes

    dtype = np.float16 if elem == H else ml_dtypes.bfloat16
    ulp = 2.0**-10 if elem == H else 2.0**-7
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal(shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)

    def conv_model(el):
        ins = [("x", el, list(shape)), ("w", el, list(w_shape)), ("b", el, [w_shape[0]])]
        return node_model("Conv", ins, [("y", el, None)], **attrs)

    got = EmberBackend.prepare(conv_model(elem), compile=True).run({"x": x, "w": w, "b": b})[0]
    wide = EmberBackend.prepare(conv_model(F)).run(
        {"x": x.astype(np.float32), "w": w.astype(np.float32), "b": b.astype(np.float32)}
    )[0]
    want = wide.astype(dtype).astype(np.float64)
    assert got.dtype == dtype and got.shape == want.shape
    assert np.all(np.abs(got.astype(np.float64) - want) <= ulp * np.abs(want) + 1e-30)


@pytest.mark.parametrize("elem", [H, BF16])
def test_half_global_average_pool_sums_in_float32(elem):
    """A 7 x 7 plane of values near 3,000 (ResNet-50's last block, with convert-float16) sums past
    fp16's 65,504: the mean is the float32 mean rounded once, not inf (which made ResNet-50 NaN)."""
    import ml_dtypes

    dtype = np.float16 if elem == H else ml_dtypes.bfloat16
    ulp = 2.0**-10 if elem == H else 2.0**-7
    x = (3000 + 60 * np.random.default_rng(6).standard_normal((1, 8, 7, 7))).astype(dtype)
    model = node_model("GlobalAveragePool", [("x", elem, [1, 8, 7, 7])], [("y", elem, [1, 8, 1, 1])])
    got = EmberBackend.prepare(model, compile=True).run({"x": x})[0]
    want = x.astype(np.float64).mean(axis=(2, 3), keepdims=True)
    assert got.dtype == dtype and np.all(np.isfinite(got.astype(np.float64)))
    assert np.all(np.abs(got.astype(np.float64) - want) <= ulp * np.abs(want))


# ConvTranspose: the stride-decomposed 2-D path (constant or run-time weights) and the gather form ---------


CONV_TRANSPOSE_CASES = [
    ((1, 8, 5, 6), (8, 8, 2, 2), dict(strides=[2, 2])),  # kernel == stride: one GEMM; phases in 2 blocks
    ((1, 8, 5, 6), (8, 3, 3, 3), dict(strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])),
    ((2, 6, 4, 5), (6, 5, 4, 4), dict(strides=[2, 2], pads=[1, 1, 1, 1])),  # 2x upsampling, 2 taps a phase
    ((1, 4, 12, 10), (4, 8, 4, 4), dict(strides=[2, 2], pads=[1, 1, 1, 1])),  # grid rows straddle output rows
    ((1, 4, 5, 5), (4, 2, 3, 3), dict(strides=[3, 2], dilations=[2, 1], pads=[2, 0, 1, 3])),
    ((1, 4, 4, 4), (4, 20, 3, 3), dict(strides=[1, 1], pads=[1, 1, 1, 1])),  # stride 1, channels over a block
    ((1, 4, 3, 5), (4, 2, 3, 3), dict(strides=[2, 2], output_shape=[8, 11])),  # pads derived from the shape
    ((1, 4, 3, 5), (4, 2, 3, 2), dict(strides=[2, 2], auto_pad="SAME_LOWER")),
    ((2, 4, 7), (4, 3, 4), dict(strides=[2], pads=[1, 2])),  # 1-D: the gather form
    ((1, 2, 3, 4, 3), (2, 2, 2, 3, 2), dict(strides=[2, 1, 2])),  # 3-D: the gather form
]


@pytest.mark.parametrize("constant_weight", [True, False])
@pytest.mark.parametrize("shape,w_shape,attrs", CONV_TRANSPOSE_CASES)
def test_conv_transpose(constant_weight, shape, w_shape, attrs):
    """Every ConvTranspose case equals the interpreter, whether the weight is prepacked at compile time
    (an initializer) or packed by the kernel (a model input)."""
    from onnx import numpy_helper

    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(w_shape[1] * attrs.get("group", 1)).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")] if constant_weight else []
    ins = [("x", F, list(shape))]
    if not constant_weight:
        ins += [("w", F, list(w_shape)), ("b", F, [len(b)])]
    model = node_model("ConvTranspose", ins, [("y", F, None)], initializers=inits, **attrs)
    model.graph.node[0].input[:] = ["x", "w", "b"]
    feeds = {"x": x} if constant_weight else {"x": x, "w": w, "b": b}
    check_against_interpreter(model, feeds, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("constant_weight", [True, False])
def test_grouped_conv_transpose(constant_weight):
    """Groups (the gather form) compiled equal the interpreter (whose kernel runs one group at a time)."""
    from onnx import numpy_helper

    rng = np.random.default_rng(8)
    groups, attrs = 2, dict(strides=[2, 2], pads=[1, 0, 0, 1], output_padding=[1, 0])
    x = rng.standard_normal((1, 8, 5, 5)).astype(np.float32)
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)

    def model(x_shape, w_value, group):
        inits = [numpy_helper.from_array(w_value, "w")] if constant_weight else []
        ins = [("x", F, list(x_shape))] + ([] if constant_weight else [("w", F, list(w_value.shape))])
        m = node_model("ConvTranspose", ins, [("y", F, None)], initializers=inits, group=group, **attrs)
        m.graph.node[0].input[:] = ["x", "w"]
        return m

    def feeds(x_value, w_value):
        return {"x": x_value} if constant_weight else {"x": x_value, "w": w_value}

    got = EmberBackend.prepare(model(x.shape, w, groups), compile=True).run(feeds(x, w))[0]
    want = EmberBackend.prepare(model(x.shape, w, groups)).run(feeds(x, w))[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_half_conv_transpose_accumulates_in_float32():
    """fp16 ConvTranspose (stride-decomposed path): within one fp16 unit in the last place of the
    float32 result."""
    from onnx import numpy_helper

    rng = np.random.default_rng(9)
    x = rng.standard_normal((1, 8, 6, 6)).astype(np.float16)
    w = rng.standard_normal((8, 4, 4, 4)).astype(np.float16)

    def model(elem, weight):
        m = node_model(
            "ConvTranspose",
            [("x", elem, [1, 8, 6, 6])],
            [("y", elem, None)],
            initializers=[numpy_helper.from_array(weight, "w")],
            strides=[2, 2],
            pads=[1, 1, 1, 1],
        )
        m.graph.node[0].input[:] = ["x", "w"]
        return m

    got = EmberBackend.prepare(model(H, w), compile=True).run({"x": x})[0]
    want = EmberBackend.prepare(model(F, w.astype(np.float32))).run({"x": x.astype(np.float32)})[0]
    assert got.dtype == np.float16 and got.shape == want.shape
    assert np.all(np.abs(got.astype(np.float64) - want) <= 2.0**-10 * np.abs(want) + 1e-3)


# Depthwise and grouped Conv, pools -------------------------------------------------------------------


def test_avx2_conv_channel_chunks():
    """On AVX2 a 1x1 conv whose block of weights is over twice ``conv_chunk_bytes`` (8 KiB) runs its
    channel loop in chunks of 8 KiB of weights: 128 channels of one 16-channel block. Others keep one
    loop: a 3x3 conv, 256 channels (16 KiB), AVX-512 (no chunks, unmeasured there)."""
    from codegen.target import ScheduleParams
    from codegen.tvm.schedule import conv_channel_chunk

    avx2 = ScheduleParams.x86(8, 16)
    assert conv_channel_chunk(avx2, 2048, 1, 16) == 128
    assert conv_channel_chunk(avx2, 520, 1, 16) == 104  # the largest divisor of at most 128
    assert conv_channel_chunk(avx2, 256, 1, 16) == 0
    assert conv_channel_chunk(avx2, 2048, 9, 16) == 0
    assert conv_channel_chunk(avx2, 1001, 1, 16) == 0  # no chunk of whole 8-channel groups
    assert conv_channel_chunk(ScheduleParams.x86(16, 32), 2048, 1, 32) == 0


@pytest.mark.parametrize("width,stride,rows_innermost", [(24, 1, True), (28, 1, False), (20, 1, False), (48, 2, True)])
def test_avx2_full_tiles_of_3x3_convs_run_kernel_rows_innermost(width, stride, rows_innermost):
    """On AVX2 a 3x3 conv whose rows take full 6-pixel tiles runs its reduction as (channel, kernel
    column, kernel row); 4- and 5-pixel tiles (28 and 20 wide) keep (channel, kernel row, kernel
    column). Either way the result matches the interpreter, the Clip epilogue included."""
    from codegen.target import parse_target

    rng = np.random.default_rng(11)
    w = (rng.standard_normal((16, 24, 3, 3)) * 0.1).astype(np.float32)
    x_shape = (1, 24, 10, width * stride)
    model = conv_clip_model(
        x_shape, w, rng.standard_normal(16).astype(np.float32), True, pads=[1, 1, 1, 1], strides=[stride, stride]
    )
    params = parse_target("x86-64:vector_bits=256").schedule_params()
    scheduled, used, _ = scheduled_kernel(model, params)
    assert used == "conv"
    text = str(scheduled)
    # the kernel-row loop runs over the rows inside the input (``_skip_padded_kernel_rows``)
    rows_last = re.search(r"for rc, rs in T\.grid\(24, 3\):\s+for rr in range\(T\.max\(0,", text)
    rows_first = re.search(r"for rc in range\(24\):\s+for rr in range\(T\.max\(0,.*\n\s+for rs in range\(3\)", text)
    assert bool(rows_last) == rows_innermost and bool(rows_first) == (not rows_innermost), text
    x = rng.standard_normal(x_shape).astype(np.float32)
    check_against_interpreter(model, {"x": x}, rtol=1e-4, atol=1e-4, target="x86-64:vector_bits=256")


@pytest.mark.parametrize(
    "hw,kernel,attrs",
    [
        ((6, 40), 3, dict(pads=[1, 1, 1, 1])),  # the CRNN's 6-row planes
        ((9, 20), 3, dict(pads=[1, 1, 1, 1], strides=[2, 2])),
        ((7, 16), 5, dict(pads=[2, 1, 0, 2])),  # two rows of padding above, none below
        ((5, 16), 3, dict(pads=[1, 1, 1, 1], group=2)),
    ],
)
def test_packed_conv_skips_the_kernel_rows_in_the_padding(hw, kernel, attrs):
    """The packed conv's kernel-row loop runs, for each output row, only over the rows inside the
    input (``_skip_padded_kernel_rows``): its bounds are expressions of the task's output row. The
    result matches the interpreter, NaN in the border rows included (the rows skipped are the
    padding's, not the input's)."""
    from codegen.target import ScheduleParams

    rng = np.random.default_rng(31)
    group = attrs.get("group", 1)
    w = (rng.standard_normal((32, 16 // group, kernel, kernel)) * 0.2).astype(np.float32)
    model = conv_clip_model((1, 16, *hw), w, rng.standard_normal(32).astype(np.float32), True, **attrs)
    scheduled, used, _ = scheduled_kernel(model, ScheduleParams.x86(16))
    assert used == "conv"
    assert re.search(r"for rr in range\(T\.max\(0, \d+ - ", str(scheduled)), scheduled
    x = rng.standard_normal((1, 16, *hw)).astype(np.float32)
    x[0, 2, 0, 3] = x[0, 5, -1, 0] = np.nan
    check_against_interpreter(model, {"x": x}, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("hw,stride", [((7, 7), 1), ((14, 14), 2), ((12, 12), 1), ((13, 11), 2)])
def test_avx2_chunked_and_strided_flat_pointwise_conv_matches(hw, stride):
    """A 1x1 conv of 512 input channels on AVX2 takes channel chunks (``conv_channel_chunk``);
    a strided one is tiled over its flat output plane from a copy of the pixels it reads
    (ResNet's downsampling convs). The chunks keep the sum's order: the result matches the
    interpreter, the Clip epilogue included."""

    from codegen.target import parse_target

    rng = np.random.default_rng(7)
    channels = 512
    w = (rng.standard_normal((40, channels, 1, 1)) * 0.05).astype(np.float32)
    model = conv_clip_model(
        (1, channels, *hw), w, rng.standard_normal(40).astype(np.float32), True, strides=[stride, stride]
    )
    target = parse_target("x86-64:vector_bits=256")
    params = target.schedule_params()
    scheduled, _, outputs = scheduled_kernel(model, params)
    text = str(scheduled)
    assert "for rc_0, xx_0, rc_1, rr, rs in T.grid(4, " in text  # 4 chunks of 128 channels, outside the tiles
    flat_copy = 'T.sblock("conv_flat")' in text  # the strided pixels copied, then tiled as one row
    assert flat_copy == (stride != 1 and ((hw[1] - 1) // stride + 1) % params.conv_tile != 0)
    x = rng.standard_normal((1, channels, *hw)).astype(np.float32)
    check_against_interpreter(model, {"x": x}, rtol=1e-4, atol=1e-4, target="x86-64:vector_bits=256")


@pytest.mark.parametrize(
    "channels,mult,hw,kernel,attrs,clip",
    [
        (8, 1, (9, 13), 3, dict(pads=[1, 1, 1, 1]), True),  # stride 1, width not a vector multiple
        (8, 1, (11, 20), 3, dict(pads=[1, 1, 1, 1], strides=[2, 2]), True),  # stride 2: column phases
        (4, 1, (12, 17), 5, dict(pads=[2, 1, 0, 2], strides=[1, 3]), False),  # uneven pads, stride 3
        (4, 1, (10, 10), 3, dict(pads=[2, 2, 2, 2], dilations=[2, 2]), True),  # dilation
        (3, 2, (7, 7), 3, dict(strides=[2, 1]), False),  # multiplier 2, no padding
        (5, 1, (5, 40), 3, dict(pads=[1, 1, 1, 1]), True),  # a row wider than one register tile
    ],
)
def test_depthwise_conv(channels, mult, hw, kernel, attrs, clip):
    rng = np.random.default_rng(5)
    w = rng.standard_normal((channels * mult, 1, kernel, kernel)).astype(np.float32)
    bias = rng.standard_normal(channels * mult).astype(np.float32)
    model = conv_clip_model((1, channels, *hw), w, bias, clip, group=channels, **attrs)
    x = rng.standard_normal((1, channels, *hw)).astype(np.float32) * 2
    check_against_interpreter(model, {"x": x}, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("group,out_channels", [(2, 6), (4, 8)])
def test_grouped_conv(group, out_channels):
    rng = np.random.default_rng(6)
    w = rng.standard_normal((out_channels, 8 // group, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(out_channels).astype(np.float32)
    model = conv_clip_model((1, 8, 9, 10), w, bias, True, group=group, pads=[1, 1, 1, 1], strides=[2, 1])
    x = rng.standard_normal((1, 8, 9, 10)).astype(np.float32)
    check_against_interpreter(model, {"x": x}, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize(
    "attrs",
    [
        dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),  # SqueezeNet's pools
        dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        dict(kernel_shape=[2, 3], strides=[1, 2], pads=[0, 1, 1, 0], ceil_mode=1),
        dict(kernel_shape=[5, 5], strides=[1, 1], pads=[2, 2, 2, 2]),  # YOLOv8's SPPF
        dict(kernel_shape=[3, 4], strides=[2, 3], pads=[1, 2, 0, 3]),  # right padding past the input
    ],
)
def test_pools(op, attrs):
    x = np.random.default_rng(7).standard_normal((1, 3, 13, 12)).astype(np.float32)
    if not attrs.get("ceil_mode"):  # the interpreter's ceil-mode pools drop a NaN (the kernels keep it)
        x[0, 1, 4, 5] = np.nan  # a window holding a NaN pools to NaN
        x[0, 2, 6, 0] = x[0, 2, 3, 11] = np.nan  # at the left and right edges, next to the padding
    model = node_model(op, [("x", F, [1, 3, 13, 12])], [("y", F, None)], opset=19, **attrs)
    check_against_interpreter(model, {"x": x})


@pytest.mark.parametrize(
    "attrs",
    [
        dict(kernel_shape=[2, 2], strides=[2, 2]),  # DenseNet's transitions: one count everywhere
        dict(kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], count_include_pad=1),
        dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 1, 2], ceil_mode=1, count_include_pad=1),
        dict(kernel_shape=[3, 2], strides=[2, 1], pads=[1, 1, 0, 0], ceil_mode=1),
    ],
)
def test_average_pool_takes_the_pool_schedule(attrs):
    """A 2-D float32 AveragePool is summed by rows then columns as MaxPool is (the ``pool``
    schedule, not topi's one output at a time), each window scaled by its own count: the edge
    windows' with or without the padding, a ceil-mode window's overhang never counted."""
    from codegen.tvm.kernel import build_kernel_module

    model = node_model("AveragePool", [("x", F, [2, 3, 13, 12])], [("y", F, None)], opset=19, **attrs)
    spec, target = only_kernel(model)
    assert build_kernel_module(spec, "k", target.to_tvm(), target.schedule_params())[1] == "pool"
    x = np.random.default_rng(12).standard_normal((2, 3, 13, 12)).astype(np.float32)
    check_against_interpreter(model, {"x": x})


def _scheduled(model, schedule):
    """The TVM schedule of ``model``'s one kernel after ``schedule`` (a family of schedule.py)."""
    import tvm
    from tvm import s_tir, te

    from codegen.plan import build_plan
    from codegen.target import detect_host
    from codegen.tvm.kernel import spec_to_te
    from codegen.tvm.registry import get_lowering
    from compiler.driver import prepare_for_codegen
    from frontends.onnx import import_model

    params = detect_host().schedule_params()
    (call,) = build_plan(prepare_for_codegen(import_model(model), "O2"), get_lowering, schedule=params).calls
    placeholders, outs = spec_to_te(call.spec, [], params)
    sch = s_tir.Schedule(tvm.IRModule({"main": te.create_prim_func(placeholders + outs)}))
    schedule(sch, params)
    return sch


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
@pytest.mark.parametrize("kernel, stride, pads, ceil_mode", [(3, 2, 1, 0), (3, 2, 0, 1), (5, 1, 2, 0)])
def test_max_pool_passes_are_vector_loops(dtype, kernel, stride, pads, ceil_mode):
    """A 2-D MaxPool's window maxima are expressions (no reduction loop): the row pass over the input's
    columns and the column pass's inside part (its columns whose windows miss the padding) are
    vectors of TVM's, the column pass's strided reads wide loads and shuffles, with no gather and
    no masked store (``vmaskmovps``, microcoded on a Zen 3: 64 x 111 x 111 took 0.97 ms against
    0.27 when each partial maximum went back to the row buffer). NaNs win their windows, at the
    edges next to the padding too."""
    import tvm

    from codegen.tvm.schedule import schedule_pool
    from codegen.tvm.schedule_util import reductions_under

    elem = F if dtype == np.float32 else TensorProto.UINT8
    attrs = dict(kernel_shape=[kernel] * 2, strides=[stride] * 2, pads=[pads] * 4, ceil_mode=ceil_mode)
    model = node_model("MaxPool", [("x", elem, [1, 4, 19, 37])], [("y", elem, None)], **attrs)
    sch = _scheduled(model, schedule_pool)
    script = sch.mod.script()
    assert not reductions_under(sch, sch.get_sblock("root")), script
    assert script.count("T.vectorized") >= 2, script  # the row pass's pieces, the column pass's inside
    target = tvm.target.Target({"kind": "llvm", "mcpu": "znver3"})
    asm = tvm.tirx.build(sch.mod, target).inspect_source("asm")
    assert "vmaskmov" not in asm and "vgather" not in asm
    rng = np.random.default_rng(13)
    if dtype == np.float32:
        x = rng.standard_normal((1, 4, 19, 37)).astype(np.float32)
        x[0, 1, 4, 7] = x[0, 2, 18, 36] = x[0, 3, 0, 0] = np.nan
    else:
        x = rng.integers(0, 255, (1, 4, 19, 37), endpoint=True).astype(np.uint8)
    check_against_interpreter(model, {"x": x})


@pytest.mark.parametrize(
    "width, attrs",
    [
        (13, dict(kernel_shape=[2, 2], strides=[2, 2])),
        (16, dict(kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])),
        (65, dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),  # a row of a 64-lane piece and one
        (130, dict(kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])),  # inside part of 128 = 2 pieces
        (224, dict(kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])),  # 222 inside: 3 pieces and 30
        (2100, dict(kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])),  # 33 pieces
        (4500, dict(kernel_shape=[2, 2], strides=[1, 1])),  # past VECTOR_PIECES_MAX: one split loop, then 19
        (4500, dict(kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])),  # ... after a head: LLVM's
        (41, dict(kernel_shape=[3, 3], strides=[1, 1], dilations=[2, 2], pads=[2, 2, 2, 2])),
        (40, dict(kernel_shape=[3, 2], strides=[2, 3], pads=[0, 1, 2, 2], ceil_mode=1)),
        (30, dict(kernel_shape=[17, 17], strides=[1, 1], pads=[8, 8, 8, 8])),  # past MAX_POOL_UNROLLED
    ],
)
def test_max_pool_row_widths_match_the_interpreter(width, attrs):
    """Every column of rows cut into vector pieces (``schedule.vectorize_in_pieces``), at the piece
    boundaries and the partial last piece, matches the interpreter, with NaNs in random places
    (a TVM 0.27 ``loop_partition`` of a part that does not start at 0 lost its last column)."""
    rng = np.random.default_rng(width)
    x = rng.standard_normal((1, 3, 9, width)).astype(np.float32)
    x.reshape(-1)[rng.choice(x.size, 4, replace=False)] = np.nan
    model = node_model("MaxPool", [("x", F, [1, 3, 9, width])], [("y", F, None)], **attrs)
    check_against_interpreter(model, {"x": x})


@pytest.mark.parametrize("pads", [[1, 1, 1, 1], [0, 1, 2, 0]])
def test_strided_depthwise_splits_rows_in_parts(pads):
    """A stride-2 depthwise conv's column phase split of its padded input (``conv_pad``, a pass of
    its own for a small input of odd width) is cut where every phase reads inside the input
    (``DW_INNER_COLUMNS_KEY``), that part with no bounds test; the result matches the interpreter,
    NaN at the edges included."""
    from codegen.tvm.schedule import schedule_conv

    rng = np.random.default_rng(12)
    w = rng.standard_normal((16, 1, 3, 3)).astype(np.float32)
    model = conv_clip_model((1, 16, 22, 21), w, np.zeros(16, np.float32), True, group=16, pads=pads, strides=[2, 2])
    sch = _scheduled(model, schedule_conv)
    script = sch.mod.script()
    assert "conv_rowpad" not in script and re.search(r"conv_pad_\w+_common", script), script
    x = rng.standard_normal((1, 16, 22, 21)).astype(np.float32)
    x[0, 3, 5, 0] = x[0, 4, 2, 20] = np.nan
    check_against_interpreter(model, {"x": x}, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "channels,mult,hw,kernel,pads",
    [
        (16, 1, (14, 14), 3, [1, 1, 1, 1]),  # MobileNetV2's 14 -> 7
        (16, 1, (28, 28), 5, [2, 2, 2, 2]),  # the last output's taps reach the right padding
        (8, 1, (15, 16), 3, [0, 0, 1, 1]),  # SAME_UPPER's padding, an odd height
        (4, 2, (12, 10), 5, [2, 1, 1, 2]),  # uneven pads, a multiplier of 2
        (8, 1, (4, 6), 3, [1, 1, 1, 1]),  # planes of 3 x 3 outputs
    ],
)
def test_stride_2_depthwise_splits_even_planes_into_column_halves(channels, mult, hw, kernel, pads):
    """A stride-2 depthwise conv over an even-width plane small enough
    (``DW_DEINTERLEAVE_BYTES``) splits each channel's plane into its even and odd columns in the
    channel's own task (``dw_deinterleave``, one parallel loop, no ``conv_pad``), as vector
    shuffles; the taps at the padding read zeros through a lane select. The result matches the
    interpreter, with NaN in the corners (which the padded lanes must not pick up)."""
    from codegen.plan import build_plan
    from codegen.target import parse_target
    from codegen.tvm.kernel import build_kernel_module
    from codegen.tvm.registry import get_lowering
    from compiler.driver import prepare_for_codegen
    from frontends.onnx import import_model

    rng = np.random.default_rng(15)
    w = rng.standard_normal((channels * mult, 1, kernel, kernel)).astype(np.float32)
    bias = rng.standard_normal(channels * mult).astype(np.float32)
    model = conv_clip_model((1, channels, *hw), w, bias, True, group=channels, pads=pads, strides=[2, 2])
    target = "x86-64:mcpu=skylake-avx512"
    tgt = parse_target(target)
    scheduled, used, _ = scheduled_kernel(model, tgt.schedule_params())
    script = scheduled.script()
    assert used == "conv" and "dw_deinterleave" in script and "conv_pad" not in script
    assert script.count("T.parallel") == 1
    (call,) = build_plan(
        prepare_for_codegen(import_model(model), "O2"), get_lowering, schedule=tgt.schedule_params()
    ).calls
    lib, _ = build_kernel_module(call.spec, "dw", tgt.to_tvm(), tgt.schedule_params())
    assert re.search(r"vperm(?:[ti]2)?ps", lib.inspect_source("asm")), "the column split is not vector shuffles"
    x = rng.standard_normal((1, channels, *hw)).astype(np.float32)
    x[0, 0, 0, 0] = x[0, 0, -1, -1] = x[0, -1, 0, -1] = x[0, -1, -1, 0] = np.nan
    check_against_interpreter(model, {"x": x}, rtol=1e-5, atol=1e-5, target=target)
    check_against_interpreter(model, {"x": x}, rtol=1e-5, atol=1e-5, target="x86-64:vector_bits=256")


def test_max_pool_dilated():
    x = np.random.default_rng(8).standard_normal((1, 2, 11, 11)).astype(np.float32)
    attrs = dict(kernel_shape=[3, 3], strides=[2, 2], dilations=[2, 2], ceil_mode=1)
    check_against_interpreter(node_model("MaxPool", [("x", F, [1, 2, 11, 11])], [("y", F, None)], **attrs), {"x": x})


@pytest.mark.parametrize("target", ["x86_64", "aarch64"])
@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_uses_its_schedule(target, stride):
    """A depthwise Conv + Clip group is scheduled by the conv family (not the generic fallback), and
    its tap loop is a whole-vector ``dw_conv`` row tile."""
    from codegen.plan import build_plan
    from codegen.target import parse_target
    from codegen.tvm.kernel import build_kernel_module
    from codegen.tvm.registry import get_lowering
    from compiler.driver import prepare_for_codegen
    from frontends.onnx import import_model

    rng = np.random.default_rng(9)
    w = rng.standard_normal((16, 1, 3, 3)).astype(np.float32)
    model = conv_clip_model(
        (1, 16, 28, 28), w, np.zeros(16, np.float32), True, group=16, pads=[1] * 4, strides=[stride] * 2
    )
    tgt = parse_target(target)
    plan = build_plan(
        prepare_for_codegen(import_model(model), "O2"),
        get_lowering,
        target_name=tgt.kind,
        schedule=tgt.schedule_params(),
    )
    assert len(plan.calls) == 1, "the Clip is fused into the depthwise kernel"
    _, used = build_kernel_module(plan.calls[0].spec, "dw", tgt.to_tvm(), tgt.schedule_params())
    assert used == "conv"


@pytest.mark.parametrize("kernel,stride", [(5, 1), (3, 2)])
def test_depthwise_rows_under_a_vector_are_half_vectors(kernel, stride):
    """A depthwise conv whose output rows are at most 8 wide (7 x 7: computed 8 wide) takes vectors
    of 8 on AVX-512, not one 16-lane vector under a predicate, which LLVM had built from scalar FMAs
    and shuffles (``schedule_depthwise``): the tap products are ymm FMAs, none scalar."""
    import re

    from codegen.plan import build_plan
    from codegen.target import parse_target
    from codegen.tvm.kernel import build_kernel_module
    from codegen.tvm.registry import get_lowering
    from compiler.driver import prepare_for_codegen
    from frontends.onnx import import_model

    rng = np.random.default_rng(11)
    w = rng.standard_normal((32, 1, kernel, kernel)).astype(np.float32)
    hw = 7 * stride
    pads = [kernel // 2] * 4
    model = conv_clip_model(
        (1, 32, hw, hw), w, rng.standard_normal(32).astype(np.float32), True, group=32, pads=pads, strides=[stride] * 2
    )
    tgt = parse_target("x86-64:mcpu=skylake-avx512")
    plan = build_plan(
        prepare_for_codegen(import_model(model), "O2"),
        get_lowering,
        target_name=tgt.kind,
        schedule=tgt.schedule_params(),
    )
    lib, used = build_kernel_module(plan.calls[0].spec, "dw", tgt.to_tvm(), tgt.schedule_params())
    asm = lib.inspect_source("asm")
    assert used == "conv"
    assert not re.search(r"vfmadd\d+ss", asm), "scalar FMAs in the tap loop"
    assert re.search(r"vfmadd\d+ps[^\n]*ymm", asm)
    x = rng.standard_normal((1, 32, hw, hw)).astype(np.float32)
    check_against_interpreter(model, {"x": x}, rtol=1e-5, atol=1e-5, target="x86-64:mcpu=skylake-avx512")


def test_depthwise_silu_epilogue_stays_vector():
    """x * sigmoid(x) after a depthwise Conv: the epilogue's sigmoid is vector code (a NaN test or an
    exp that TVM cannot vectorise would turn the whole write-back loop scalar)."""
    import re

    from codegen.plan import build_plan
    from codegen.target import parse_target
    from codegen.tvm.kernel import build_kernel_module
    from codegen.tvm.registry import get_lowering
    from compiler.driver import prepare_for_codegen
    from frontends.onnx import import_model

    rng = np.random.default_rng(10)
    inits = [numpy_helper.from_array(rng.standard_normal((16, 1, 3, 3)).astype(np.float32), "w")]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], group=16, pads=[1] * 4),
        helper.make_node("Sigmoid", ["c"], ["s"]),
        helper.make_node("Mul", ["c", "s"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "silu",
        [helper.make_tensor_value_info("x", F, [1, 16, 16, 16])],
        [helper.make_tensor_value_info("y", F, None)],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    tgt = parse_target("x86_64")
    prepared = prepare_for_codegen(import_model(model), "O2")
    plan = build_plan(prepared, get_lowering, target_name=tgt.kind, schedule=tgt.schedule_params())
    assert len(plan.calls) == 1
    lib, used = build_kernel_module(plan.calls[0].spec, "silu", tgt.to_tvm(), tgt.schedule_params())
    assert used == "conv"
    assert re.search(r"fdiv[^\n]*<\d+ x float>", lib.inspect_source("ll")), "the sigmoid's division is scalar"
    x = rng.standard_normal((1, 16, 16, 16)).astype(np.float32)
    check_against_interpreter(model, {"x": x})


def test_conv_transpose_takes_its_epilogue_into_one_kernel():
    """ConvTranspose is a fusion anchor: a per-channel scale, shift and Relu after it (a BatchNormalization
    folded by simplify) run in its write-back, in one kernel."""
    from onnx import helper, numpy_helper

    from codegen.plan import build_plan
    from codegen.tvm.registry import get_lowering
    from compiler.driver import prepare_for_codegen
    from frontends.onnx import import_model

    rng = np.random.default_rng(7)
    for group, kernel in ((1, 4), (1, 3)):
        w = rng.standard_normal((4, 6 // group, kernel, kernel)).astype(np.float32)
        scale = rng.standard_normal((1, 6, 1, 1)).astype(np.float32)
        shift = rng.standard_normal((1, 6, 1, 1)).astype(np.float32)
        nodes = [
            helper.make_node("ConvTranspose", ["x", "w"], ["t"], strides=[2, 2], pads=[1, 1, 1, 1], group=group),
            helper.make_node("Mul", ["t", "scale"], ["s"]),
            helper.make_node("Add", ["s", "shift"], ["a"]),
            helper.make_node("Relu", ["a"], ["y"]),
        ]
        out = (1, 6, 2 * 5 - 2 + kernel - 2, 2 * 5 - 2 + kernel - 2)
        graph = helper.make_graph(
            nodes,
            "convt_epilogue",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 5, 5])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out))],
            initializer=[numpy_helper.from_array(a, n) for a, n in ((w, "w"), (scale, "scale"), (shift, "shift"))],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        check_against_interpreter(model, [rng.standard_normal((1, 4, 5, 5)).astype(np.float32)])
        plan = build_plan(prepare_for_codegen(import_model(model), "O2"), get_lowering)
        assert len(plan.calls) == 1, [call.spec for call in plan.calls]


@pytest.mark.parametrize("width,kernel,stride", [(13, 1, 1), (13, 3, 1), (11, 3, 2), (7, 3, 1), (55, 3, 1), (20, 3, 2)])
def test_conv_with_a_width_of_no_good_divisor_keeps_its_register_tile(width, kernel, stride):
    """Widths such as 13 (SqueezeNet's classifier) have no divisor near the 8-pixel tile: the schedule
    takes a full tile and a guarded tail instead of 1-pixel tiles; results equal the interpreter."""
    from onnx import helper, numpy_helper

    from codegen.plan import build_plan
    from codegen.target import detect_host
    from codegen.tvm.kernel import build_kernel_module
    from codegen.tvm.registry import get_lowering
    from compiler.driver import prepare_for_codegen
    from frontends.onnx import import_model

    rng = np.random.default_rng(11)
    w = (rng.standard_normal((32, 16, kernel, kernel)) * 0.1).astype(np.float32)
    out = (width + 2 * (kernel // 2) - kernel) // stride + 1
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[kernel // 2] * 4, strides=[stride] * 2)
    graph = helper.make_graph(
        [node],
        "odd_width",
        [helper.make_tensor_value_info("x", F, [1, 16, width, width])],
        [helper.make_tensor_value_info("y", F, [1, 32, out, out])],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    check_against_interpreter(model, [rng.standard_normal((1, 16, width, width)).astype(np.float32)])
    target = detect_host()
    (call,) = build_plan(prepare_for_codegen(import_model(model), "O2"), get_lowering).calls
    _, used = build_kernel_module(call.spec, "k", target.to_tvm(), target.schedule_params())
    assert used == "conv", f"fell back to the {used} schedule"


def test_conv_tile_leaves_registers_for_the_inputs_its_taps_share():
    """A kernel row's unrolled taps keep their shared input broadcasts live next to the
    accumulators: on AVX-512 (32 registers, 2 blocks of 16 channels) a 3x3 conv's tile is at most 9
    pixels (18 + 11 + 2 registers), 7 at stride 2, and a 1x1 conv keeps the full 12; a target whose
    channel loop is innermost (aarch64) keeps its tile."""
    from codegen.target import ScheduleParams, Target
    from codegen.tvm.schedule import conv_tile_fitting_registers

    avx512 = ScheduleParams.x86(16)
    assert conv_tile_fitting_registers(avx512, 2, 3, 1) == 9
    assert conv_tile_fitting_registers(avx512, 2, 3, 2) == 7
    assert conv_tile_fitting_registers(avx512, 2, 7, 2) == 6
    assert conv_tile_fitting_registers(avx512, 2, 1, 1) == avx512.conv_tile == 12
    neon = Target(kind="aarch64", vector_bits=128).schedule_params()
    assert conv_tile_fitting_registers(neon, 1, 3, 1) == neon.conv_tile
    # AVX2 (16 registers) reloads the broadcasts: its 6-pixel tile of 2 vectors stays for a 3x3 conv,
    # where keeping the broadcasts would leave 2 pixels at 14 wide (1.84x onnxruntime, 1.06x with 6)
    avx2 = ScheduleParams.x86(8, 16)
    assert conv_tile_fitting_registers(avx2, 1, 3, 1) == conv_tile_fitting_registers(avx2, 1, 3, 2) == 6
    assert 2 * 6 + 1 + 2 <= avx2.registers


@pytest.mark.parametrize("bits", [256, 512])
@pytest.mark.parametrize("hw", [(7, 7), (14, 14), (6, 6)])
def test_pointwise_conv_on_a_small_plane_tiles_it_as_one_row(bits, hw):
    """On AVX2 a 1x1 conv of many channels whose rows are not whole pixel tiles (7 or 14 wide against
    its 6-pixel tile) is tiled over its flattened plane, rounded up to whole tiles, where that wastes
    at most 1/8; 6 x 6 rows are whole tiles. AVX-512 (``flat_planes`` off, unmeasured there) keeps
    its rows. The compiled library matches the interpreter either way."""

    from codegen.target import parse_target
    from codegen.tvm.schedule import CONV_FLAT_KEY

    rng = np.random.default_rng(5)
    channels = 200  # over POINTWISE_MAX_INPUT_CHANNELS: the channel-vector conv, not the pixel product
    w = (rng.standard_normal((40, channels, 1, 1)) * 0.1).astype(np.float32)
    model = conv_clip_model((1, channels, *hw), w, rng.standard_normal(40).astype(np.float32), True)
    target = parse_target(f"x86-64:vector_bits={bits}")
    params = target.schedule_params()
    scheduled, _, outputs = scheduled_kernel(model, params)
    pixels = hw[0] * hw[1]
    padded = -(-pixels // params.conv_tile) * params.conv_tile
    flat = bits == 256 and hw[1] % params.conv_tile != 0 and 8 * padded <= 9 * pixels
    assert (CONV_FLAT_KEY in str(scheduled)) == flat
    if flat:
        assert f"(1, 3, 1, {padded}, 16)" in str(scheduled)  # whole tiles over the plane
    x = rng.standard_normal((1, channels, *hw)).astype(np.float32)
    check_against_interpreter(model, {"x": x}, rtol=1e-4, atol=1e-4, target=f"x86-64:vector_bits={bits}")


@pytest.mark.parametrize(
    "target,channels,block",
    [
        ("vector_bits=256", 24, 8),
        ("vector_bits=256", 72, 8),
        ("vector_bits=256", 40, 16),
        ("vector_bits=256", 32, 16),
        ("vector_bits=512,mcpu=skylake-avx512", 24, 16),
        ("vector_bits=512,mcpu=znver4", 24, 8),
        ("vector_bits=512,mcpu=znver4", 48, 16),
        ("vector_bits=512,mcpu=znver4", 40, 16),
    ],
)
def test_conv_block_is_one_vector_for_three_vector_channel_counts(target, channels, block):
    """AVX2's 16-channel block is 2 vectors: 24 or 72 output channels (a multiple of 3 vectors, not of
    the block) take 8-channel blocks, 3 to a register tile, instead of being padded to 32 or 80;
    40 keeps 16 (no 3 blocks divide it). AVX-512's block is one vector already, and 24 channels
    take 2 of them, except on a Zen 4 (``ScheduleParams.conv_half_vectors``), whose 256-bit FMA
    pipes run a half vector at no loss: there 24 channels take 3 blocks of 8 and a 3 x 6-pixel
    tile (3 x 5 on a 10-wide row). The library matches the interpreter."""
    from codegen.target import parse_target
    from codegen.tvm.lower.nn.conv import _pack_conv_weight

    rng = np.random.default_rng(9)
    w = (rng.standard_normal((channels, 16, 3, 3)) * 0.2).astype(np.float32)
    params = parse_target(f"x86-64:{target}").schedule_params()
    packed = _pack_conv_weight({}, [((1, 16, 10, 10), np.float32), (w.shape, np.float32)], w, params)
    assert packed.shape == (-(-channels // block), 16, 3, 3, block)
    model = conv_clip_model((1, 16, 10, 10), w, rng.standard_normal(channels).astype(np.float32), True, pads=[1] * 4)
    if block < params.lanes:
        scheduled, used, _ = scheduled_kernel(model, params)
        assert used == "conv" and "ko_1 in T.unroll(3)" in str(scheduled) and "xx_1 in T.unroll(5)" in str(scheduled)
    x = rng.standard_normal((1, 16, 10, 10)).astype(np.float32)
    check_against_interpreter(model, {"x": x}, rtol=1e-4, atol=1e-4, target=f"x86-64:{target}")


def test_pointwise_conv_of_half_vector_blocks_stays_a_pixel_vector_product():
    """On a Zen 4 a 1x1 conv's 24 output channels are packed in half-vector blocks too; it is
    still computed as a product of pixel vectors (``conv_pw``), which reads each weight alone."""
    from codegen.target import parse_target

    rng = np.random.default_rng(10)
    w = (rng.standard_normal((24, 40, 1, 1)) * 0.2).astype(np.float32)
    model = conv_clip_model((1, 40, 16, 16), w, rng.standard_normal(24).astype(np.float32), True)
    params = parse_target("x86-64:vector_bits=512,mcpu=znver4").schedule_params()
    scheduled, used, _ = scheduled_kernel(model, params)
    assert used == "conv" and "conv_pw" in str(scheduled)
    x = rng.standard_normal((1, 40, 16, 16)).astype(np.float32)
    check_against_interpreter(model, {"x": x}, rtol=1e-4, atol=1e-4, target="x86-64:vector_bits=512,mcpu=znver4")


@pytest.mark.parametrize(
    "channels,out_channels,kernel,width,blocks",
    [
        (200, 1000, 1, 13, 3),
        (200, 48, 1, 14, 3),
        (32, 144, 3, 14, 3),
        (32, 80, 3, 10, 1),
        (200, 96, 1, 13, 2),
        (200, 784, 1, 7, 2),  # 49 blocks, packed as 50 (``packed_blocks``)
        (32, 112, 3, 7, 1),  # 7 blocks stay 7
    ],
)
def test_avx512_odd_channel_blocks_take_three_to_a_tile(channels, out_channels, kernel, width, blocks):
    """On AVX-512 a conv whose 16-channel blocks do not pair up (1000 channels: 63 blocks) takes 3 of
    them to a register tile where 3 divide their count (SqueezeNet's classifier: 3 x 7 accumulators
    rather than 1 x 12), as many pixels as the registers allow; from 9 blocks up another odd count is
    padded by a zero block to pair up (RegNetY's 784 channels: 50 blocks); 80 and 112 channels (5
    and 7 blocks) keep one, an even count two. The library matches the interpreter."""
    from codegen.target import parse_target
    from codegen.tvm.lower.nn.conv import packed_blocks

    params = parse_target("x86-64:vector_bits=512").schedule_params()
    assert [packed_blocks(16 * n, 16, params) for n in (5, 7, 9, 13, 49, 63, 50)] == [5, 7, 9, 14, 50, 63, 50]
    assert packed_blocks(784, 16, params, group=49) == 49 and packed_blocks(784, 16, None) == 49

    rng = np.random.default_rng(13)
    w = (rng.standard_normal((out_channels, channels, kernel, kernel)) * 0.1).astype(np.float32)
    pads = [kernel // 2] * 4
    model = conv_clip_model(
        (1, channels, width, width), w, rng.standard_normal(out_channels).astype(np.float32), True, pads=pads
    )
    target = "x86-64:vector_bits=512"
    scheduled, used, _ = scheduled_kernel(model, parse_target(target).schedule_params())
    assert used == "conv"
    assert f"ko_1 in T.unroll({blocks})" in str(scheduled)
    x = rng.standard_normal((1, channels, width, width)).astype(np.float32)
    check_against_interpreter(model, {"x": x}, rtol=1e-4, atol=1e-4, target=target)


@pytest.mark.parametrize("bits", [256, 512])
@pytest.mark.parametrize("hw,stride,pads", [(56, 2, 0), (14, 2, 0), (13, 2, 0), (12, 3, 0), (14, 2, 1)])
def test_strided_1x1_conv_reads_its_pixels_densely(bits, hw, stride, pads):
    """A strided, unpadded 1x1 conv (ResNet's downsampling) first copies the pixels it reads into a
    dense plane (``conv_subsample``) and convolves that at stride 1, so its tiles' broadcasts read
    whole lines; a padded one (its border pixels are zeros) reads in place. Where AVX2 tiles a small
    plane as one flat row the flat row reads the strided pixels itself. The library matches the
    interpreter."""
    from codegen.target import parse_target

    rng = np.random.default_rng(17)
    channels = 200  # the channel-vector conv (over POINTWISE_MAX_INPUT_CHANNELS)
    w = (rng.standard_normal((48, channels, 1, 1)) * 0.1).astype(np.float32)
    bias = rng.standard_normal(48).astype(np.float32)
    model = conv_clip_model((1, channels, hw, hw), w, bias, True, strides=[stride] * 2, pads=[pads] * 4)
    target = f"x86-64:vector_bits={bits}"
    scheduled, used, _ = scheduled_kernel(model, parse_target(target).schedule_params())
    assert used == "conv"
    flat = "ember.conv_flat" in str(scheduled)
    assert ("conv_subsample" in str(scheduled)) == (not pads and not flat)
    assert not (flat and bits == 512)  # only AVX2 tiles small planes as flat rows (``flat_planes``)
    x = rng.standard_normal((1, channels, hw, hw)).astype(np.float32)
    check_against_interpreter(model, {"x": x}, rtol=1e-4, atol=1e-4, target=target)


# Pointwise (1x1) Conv as a product with pixel vectors ------------------------------------------------


@pytest.mark.parametrize(
    "channels,out_channels,hw,clip,weight_input",
    [
        (16, 48, (8, 8), True, False),  # 64 pixels: whole vectors, write-back in the tile's task
        (24, 24, (14, 14), False, False),  # 196 pixels: the last tile's 4 read from a zero-padded copy
        (8, 40, (9, 15), True, True),  # run-time weight (unpacked), 135 pixels
        (12, 20, (4, 12), False, True),  # 48 pixels: three vectors
        (16, 32, (2, 3, 16), True, False),  # two images
    ],
)
def test_pointwise_conv(channels, out_channels, hw, clip, weight_input):
    rng = np.random.default_rng(12)
    w = rng.standard_normal((out_channels, channels, 1, 1)).astype(np.float32)
    bias = rng.standard_normal(out_channels).astype(np.float32)
    batch, hw = (hw[0], hw[1:]) if len(hw) == 3 else (1, hw)
    x = rng.standard_normal((batch, channels, *hw)).astype(np.float32)
    if weight_input:
        model = node_model(
            "Conv",
            [("x", F, [batch, channels, *hw]), ("w", F, list(w.shape)), ("b", F, [out_channels])],
            [("y", F, None)],
        )
        check_against_interpreter(model, {"x": x, "w": w, "b": bias}, rtol=1e-4, atol=1e-4)
    else:
        model = conv_clip_model((batch, channels, *hw), w, bias, clip)
        check_against_interpreter(model, {"x": x}, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("hw", [(8, 8), (14, 14)])
def test_pointwise_conv_takes_the_pixel_vector_tile(hw):
    """With a one-vector conv block (AVX-512's 16 lanes), a 1x1 Conv + Clip is the ``conv_pw`` product
    scheduled by the conv family; its tile has at most 24 accumulators and leaves 4 row blocks."""

    from codegen.target import ScheduleParams
    from codegen.tvm.schedule_pixel_conv import pointwise_tile

    rng = np.random.default_rng(13)
    w = rng.standard_normal((48, 16, 1, 1)).astype(np.float32)
    model = conv_clip_model((1, 16, *hw), w, np.zeros(48, np.float32), True)
    params = ScheduleParams(16)
    scheduled, used, outputs = scheduled_kernel(model, params)
    assert used == "conv"
    assert '"conv_pw_update"' in str(scheduled)
    rows, vectors = pointwise_tile(48, hw[0] * hw[1], params)
    assert rows * vectors <= 24 and 48 // rows >= 4 and 48 % rows == 0
    assert pointwise_tile(3, 64, params) is None  # no row block of 4 or more channels
    assert pointwise_tile(48, 49, params) is None  # 7 x 7: rounding up to 64 pixels wastes too much
    avx2 = ScheduleParams.x86(8, 16)
    rows, vectors = pointwise_tile(48, hw[0] * hw[1], avx2)  # AVX2: 12 of 16 registers
    assert rows * vectors <= 12 and 48 % rows == 0


@pytest.mark.parametrize("out_channels,hw", [(64, (56, 56)), (256, (14, 14)), (40, (28, 28))])
def test_avx2_pointwise_tile_rows_need_not_divide_the_channels(out_channels, hw):
    """On AVX2 (``pointwise_padded_rows``) 64, 256 or 40 output channels on 56 x 56 or 28 x 28
    planes (whole vectors, but not whole 3-vector tiles) take 6 x 2 tiles (12 accumulators) over
    channels rounded up to 66, 258 or 42, not 4 x 2 or 5 x 2; where 4 x 3 fits (a 14 x 14 plane
    padded to 27 vectors) it keeps it; 20 channels take 5 x 2 (10) over 6 x 2 (24 channels: over
    1/16 wasted). The rounded-up rows read the last channel's weights and are dropped: the chunked
    product of a 56 x 56 plane, the padded one of a 14 x 14 plane and a plain one all match the
    interpreter."""
    from codegen.target import ScheduleParams
    from codegen.tvm.schedule_pixel_conv import pointwise_channels, pointwise_tile

    avx2 = ScheduleParams.x86(8, 16)
    assert pointwise_tile(64, 56 * 56, avx2) == (6, 2) and pointwise_channels(64, 6) == 66
    assert pointwise_tile(256, 28 * 28, avx2) == (6, 2)
    assert pointwise_tile(256, 14 * 14, avx2) == (4, 3)
    assert pointwise_tile(40, 28 * 28, avx2) == (6, 2)
    assert pointwise_tile(20, 28 * 28, avx2) == (5, 2)
    assert pointwise_tile(48, 256, avx2) == (6, 2)  # dividing rows as before
    assert pointwise_tile(128, 56 * 56, ScheduleParams.x86(16)) == (4, 4)  # AVX-512 keeps dividing rows
    rng = np.random.default_rng(9)
    w = (rng.standard_normal((out_channels, 48, 1, 1)) * 0.2).astype(np.float32)
    model = conv_clip_model((1, 48, *hw), w, rng.standard_normal(out_channels).astype(np.float32), True)
    x = rng.standard_normal((1, 48, *hw)).astype(np.float32)
    check_against_interpreter(model, {"x": x}, rtol=1e-4, atol=1e-4, target="x86-64:vector_bits=256")


def test_avx2_pointwise_tile_pads_a_14_by_14_plane_to_whole_6_by_2_tiles():
    """On AVX2 a 14 x 14 plane (25 vectors) takes the 6-row x 2-vector tile over 208 zero-padded
    pixels rather than 12 x 1 over 200 (``ScheduleParams.pointwise_vectors``), and the padded
    write-back computes what the interpreter does."""
    from codegen.target import ScheduleParams, parse_target
    from codegen.tvm.schedule_pixel_conv import pointwise_pixels, pointwise_tile

    avx2 = ScheduleParams.x86(8, 16)
    assert pointwise_tile(576, 196, avx2) == (6, 2)
    assert pointwise_pixels(196, 2, avx2) == 208
    assert pointwise_tile(576, 196, ScheduleParams.x86(16)) == (24, 1)  # AVX-512: 13 vectors, 208 pixels
    assert pointwise_tile(128, 56 * 56, ScheduleParams.x86(16)) == (4, 4)  # AVX-512 pads to whole vectors only
    assert pointwise_tile(24, 49, avx2) is None  # 7 x 7: 64 pixels for 49 on any tile
    rng = np.random.default_rng(5)
    w = rng.standard_normal((48, 32, 1, 1)).astype(np.float32)
    model = conv_clip_model((1, 32, 14, 14), w, rng.standard_normal(48).astype(np.float32), True)
    assert parse_target("x86-64:vector_bits=256").schedule_params().pointwise_vectors == (2, 3, 1)
    x = rng.standard_normal((1, 32, 14, 14)).astype(np.float32)
    check_against_interpreter(model, {"x": x}, rtol=1e-4, atol=1e-4, target="x86-64:vector_bits=256")


def test_pointwise_conv_of_many_input_channels_keeps_the_channel_vector_tile():
    """Over ``POINTWISE_MAX_INPUT_CHANNELS`` inputs, or with an input over ``POINTWISE_STREAM_BYTES``
    that no chunk of whole image rows splits into whole tiles (57 x 57), a 1x1 conv stays the packed
    ``conv_blk`` conv."""
    from codegen.plan import build_plan
    from codegen.target import ScheduleParams
    from codegen.tvm.kernel import spec_to_te
    from codegen.tvm.lower.nn.conv import POINTWISE_MAX_INPUT_CHANNELS
    from codegen.tvm.registry import get_lowering
    from compiler.driver import prepare_for_codegen
    from frontends.onnx import import_model

    params = ScheduleParams(16)
    for channels, block in ((POINTWISE_MAX_INPUT_CHANNELS, "conv_pw"), (POINTWISE_MAX_INPUT_CHANNELS + 16, "conv_blk")):
        w = np.ones((32, channels, 1, 1), np.float32)
        model = conv_clip_model((1, channels, 8, 8), w, np.zeros(32, np.float32), False)
        (call,) = build_plan(prepare_for_codegen(import_model(model), "O2"), get_lowering, schedule=params).calls
        _, outputs = spec_to_te(call.spec, [], params)
        assert outputs[0].op.input_tensors[0].op.name == block
    # 160 x 57 x 57 inputs (2 MB): each of 32 row blocks would read them again
    for hw, block in ((57, "conv_blk"), (56, "conv_pw")):
        w = np.ones((128, 160, 1, 1), np.float32)
        model = conv_clip_model((1, 160, hw, hw), w, np.zeros(128, np.float32), False)
        (call,) = build_plan(prepare_for_codegen(import_model(model), "O2"), get_lowering, schedule=params).calls
        _, outputs = spec_to_te(call.spec, [], params)
        assert outputs[0].op.input_tensors[0].op.name == block


@pytest.mark.parametrize("hw,block", [(56, "conv_pw"), (28, "conv_blk")])
def test_avx512_pointwise_conv_of_many_channels_on_a_wide_plane_is_a_pixel_product(hw, block):
    """On AVX-512 a 1x1 conv of 256 input channels (over ``POINTWISE_MAX_INPUT_CHANNELS``) over a
    plane of at least ``pointwise_wide_plane_pixels`` (56 x 56: ResNet-50's layer 1 and the first
    conv of layer 2) is the pixel-vector product, over chunks of rows; at 28 x 28 it stays the packed
    conv. The library matches the interpreter."""
    from codegen.target import ScheduleParams

    params = ScheduleParams.x86(16)
    assert params.pointwise_wide_plane_pixels == 56 * 56
    assert ScheduleParams.x86(8, 16).pointwise_wide_plane_pixels == 0  # AVX2: unmeasured, off
    rng = np.random.default_rng(23)
    w = (rng.standard_normal((64, 256, 1, 1)) * 0.1).astype(np.float32)
    model = conv_clip_model((1, 256, hw, hw), w, rng.standard_normal(64).astype(np.float32), True)
    _, used, outputs = scheduled_kernel(model, params)
    assert used == "conv"
    producers = {t.op.name for t in outputs[0].op.input_tensors} | {
        u.op.name for t in outputs[0].op.input_tensors for u in t.op.input_tensors
    }
    assert block in producers, producers
    x = rng.standard_normal((1, 256, hw, hw)).astype(np.float32)
    check_against_interpreter(model, {"x": x}, rtol=1e-4, atol=1e-4, target="x86-64:vector_bits=512")


@pytest.mark.parametrize("clip", [False, True])
def test_pointwise_conv_of_a_large_input_runs_over_chunks_of_rows(clip):
    """An input past ``POINTWISE_STREAM_BYTES`` (24 x 112 x 112, 1.2 MB) is read once, a chunk of 4
    image rows per task (``_schedule_pointwise_tiles``), rather than once per block of output
    channels; bias and the Clip epilogue are applied as each tile is written back."""

    from codegen.target import ScheduleParams
    from codegen.tvm.schedule_pixel_conv import pointwise_chunk_rows

    rng = np.random.default_rng(5)
    w = (rng.standard_normal((32, 24, 1, 1)) * 0.3).astype(np.float32)
    model = conv_clip_model((1, 24, 112, 112), w, rng.standard_normal(32).astype(np.float32), clip)
    params = ScheduleParams(16)
    scheduled, used, outputs = scheduled_kernel(model, params)
    assert used == "conv"
    assert pointwise_chunk_rows(112, 112, 4, 16) == 4 and "T.parallel(28)" in str(scheduled)
    assert pointwise_chunk_rows(57, 57, 4, 16) is None and pointwise_chunk_rows(8, 8, 4, 16) is None
    x = rng.standard_normal((1, 24, 112, 112)).astype(np.float32)
    check_against_interpreter(model, {"x": x}, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("channels, chunked", [(16, False), (64, True)])
def test_pointwise_conv_chunks_an_input_past_a_quarter_of_l2(channels, chunked):
    """At 56 x 56, 16 input channels (200 KB) stay in cache for every block of output channels;
    64 (800 KB, ResNet-50's 64 -> 256) are read a chunk of 8 rows per task, once."""

    from codegen.target import ScheduleParams
    from codegen.tvm.schedule_pixel_conv import POINTWISE_STREAM_BYTES

    assert (4 * channels * 56 * 56 > POINTWISE_STREAM_BYTES) == chunked
    rng = np.random.default_rng(13)
    w = (rng.standard_normal((32, channels, 1, 1)) * 0.3).astype(np.float32)
    model = conv_clip_model((1, channels, 56, 56), w, rng.standard_normal(32).astype(np.float32), True)
    params = ScheduleParams(16)
    scheduled, used, outputs = scheduled_kernel(model, params)
    assert used == "conv" and outputs[0].op.input_tensors[0].op.input_tensors[0].op.name == "conv_pw"
    assert ("T.parallel(7)" in str(scheduled)) == chunked, scheduled
    x = rng.standard_normal((1, channels, 56, 56)).astype(np.float32)
    check_against_interpreter(model, {"x": x}, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("channels,hw,residual", [(24, 112, False), (16, 56, True), (32, 28, True)])
def test_pointwise_conv_writes_each_tile_back_from_its_registers(channels, hw, residual):
    """An unpadded 1x1 pixel-product conv writes each register tile back, through its epilogue, right
    after the tile's reduction (``_schedule_pointwise_tiles``): no buffer of a task's products, no
    write-back pass of its own, one parallel loop, whether the tasks are chunks of rows (112 x 112)
    or blocks of channels. A fused residual Add, read at the tile's flat pixels (tiles of 64 cross
    the 56- and 28-wide rows), matches the interpreter."""
    from codegen.target import ScheduleParams

    rng = np.random.default_rng(29)
    k = 32
    w = (rng.standard_normal((k, channels, 1, 1)) * 0.3).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(rng.standard_normal(k).astype(np.float32), "b")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c" if residual else "y"])]
    inputs = [helper.make_tensor_value_info("x", F, [1, channels, hw, hw])]
    if residual:
        nodes.append(helper.make_node("Add", ["c", "r"], ["y"]))
        inputs.append(helper.make_tensor_value_info("r", F, [1, k, hw, hw]))
    graph = helper.make_graph(nodes, "pw", inputs, [helper.make_tensor_value_info("y", F, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    scheduled, used, outputs = scheduled_kernel(model, ScheduleParams(16))
    script = scheduled.script()
    assert used == "conv" and 'scope="local"' in script
    assert 'T.sblock("conv_pw_local")' not in script, "a copy of the accumulators to a task buffer"
    assert script.count("T.parallel") == 1, script
    feeds = {"x": rng.standard_normal((1, channels, hw, hw)).astype(np.float32)}
    if residual:
        feeds["r"] = rng.standard_normal((1, k, hw, hw)).astype(np.float32)
    check_against_interpreter(model, feeds, rtol=1e-4, atol=1e-4)


def test_pointwise_conv_keeps_the_channel_vector_tile_on_neon():
    """aarch64's conv block is four NEON vectors: a 1x1 Conv there stays the packed ``conv_blk`` conv."""
    from codegen.plan import build_plan
    from codegen.target import parse_target
    from codegen.tvm.kernel import spec_to_te
    from codegen.tvm.registry import get_lowering
    from compiler.driver import prepare_for_codegen
    from frontends.onnx import import_model

    w = np.ones((48, 16, 1, 1), np.float32)
    params = parse_target("aarch64").schedule_params()
    model = conv_clip_model((1, 16, 8, 8), w, np.zeros(48, np.float32), False)
    (call,) = build_plan(prepare_for_codegen(import_model(model), "O2"), get_lowering, schedule=params).calls
    _, outputs = spec_to_te(call.spec, [], params)
    assert "conv_blk" in str(outputs[0].op.input_tensors[0].op.name)


@pytest.mark.parametrize("row_pad_bytes", [0, 1 << 30])
@pytest.mark.parametrize(
    "width,kernel,stride",
    [(21, 3, 2), (17, 5, 2), (23, 3, 3), (160, 3, 2), (161, 5, 2), (161, 5, 4), (20, 3, 1), (161, 5, 1)],
)
def test_strided_depthwise_pads_by_rows_or_in_a_pass(monkeypatch, row_pad_bytes, width, kernel, stride):
    """A depthwise conv pads (and, with a stride, phase-splits) its input either for a group of
    output-row tiles at a time where the taps read it (a large input: ``DW_ROW_PAD_BYTES`` set to 0
    here; outside the column tiles where a row takes several, 160 and 161 wide; with a stride only
    where kernel rows / stride is at most 1.5, so not 5 x 5 at stride 2) or in a pass of its own;
    both give the interpreter's result, with a fused Clip. The pass of its own is a parallel loop of
    its own."""
    from codegen.tvm import schedule_pixel_conv

    monkeypatch.setattr(schedule_pixel_conv, "DW_ROW_PAD_BYTES", row_pad_bytes)
    rng = np.random.default_rng(14)
    w = rng.standard_normal((16, 1, kernel, kernel)).astype(np.float32)
    pad = kernel // 2
    model = conv_clip_model(
        (1, 16, width, width),
        w,
        rng.standard_normal(16).astype(np.float32),
        True,
        group=16,
        pads=[pad] * 4,
        strides=[stride] * 2,
    )
    x = rng.standard_normal((1, 16, width, width)).astype(np.float32) * 2
    check_against_interpreter(model, {"x": x}, rtol=1e-5, atol=1e-5)
    from codegen.plan import build_plan
    from codegen.target import detect_host
    from codegen.tvm.kernel import build_kernel_module
    from codegen.tvm.registry import get_lowering
    from compiler.driver import prepare_for_codegen
    from frontends.onnx import import_model

    target = detect_host()
    (call,) = build_plan(prepare_for_codegen(import_model(model), "O2"), get_lowering).calls
    _, used = build_kernel_module(call.spec, "k", target.to_tvm(), target.schedule_params())
    assert used == "conv", f"fell back to the {used} schedule"  # either padding, not TVM's default
    scheduled, _, _ = scheduled_kernel(model, target.schedule_params())
    by_rows = row_pad_bytes == 0 and (stride == 1 or 2 * kernel <= 3 * stride)
    assert str(scheduled).count("T.parallel") == (1 if by_rows else 2)


@pytest.mark.parametrize("row_pad_bytes", [0, 1 << 30])
@pytest.mark.parametrize("width,kernel,stride,images", [(20, 3, 2, 1), (13, 5, 1, 2), (18, 3, 1, 1)])
def test_packed_conv_pads_rows_in_each_task_or_in_a_pass(monkeypatch, row_pad_bytes, width, kernel, stride, images):
    """The packed conv pads its input either in each task, the rows its output row reads (a large
    input: ``CONV_ROW_PAD_BYTES`` set to 0 here), or in a pass of its own; both give the
    interpreter's result, with a fused Clip, two images and a guarded column tail (13 wide)."""
    from codegen.tvm import schedule

    monkeypatch.setattr(schedule, "CONV_ROW_PAD_BYTES", row_pad_bytes)
    rng = np.random.default_rng(15)
    w = (rng.standard_normal((48, 8, kernel, kernel)) * 0.2).astype(np.float32)
    model = conv_clip_model(
        (images, 8, width, width),
        w,
        rng.standard_normal(48).astype(np.float32),
        True,
        pads=[kernel // 2] * 4,
        strides=[stride] * 2,
    )
    x = rng.standard_normal((images, 8, width, width)).astype(np.float32) * 2
    check_against_interpreter(model, {"x": x}, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("stride", [1, 2])
def test_packed_conv_pads_rows_in_each_task_past_a_smaller_copy_with_a_stride(monkeypatch, stride):
    """A padded input between ``CONV_STRIDED_ROW_PAD_BYTES`` and ``CONV_ROW_PAD_BYTES`` is padded a
    task's rows at a time (inside the conv's parallel loop) for a strided conv, whose output rows
    share fewer input rows, and in a pass of its own before it at stride 1; both match the
    interpreter (a grouped conv, as RegNet's)."""
    from codegen.target import detect_host
    from codegen.tvm import schedule

    monkeypatch.setattr(schedule, "CONV_STRIDED_ROW_PAD_BYTES", 8 << 10)
    monkeypatch.setattr(schedule, "CONV_ROW_PAD_BYTES", 64 << 10)
    rng = np.random.default_rng(16)
    w = (rng.standard_normal((32, 16, 3, 3)) * 0.2).astype(np.float32)
    bias = rng.standard_normal(32).astype(np.float32)  # 32 x 22 x 22 padded: 61,952 bytes, between the bounds
    model = conv_clip_model((1, 32, 20, 20), w, bias, True, group=2, pads=[1] * 4, strides=[stride] * 2)
    scheduled, used, _ = scheduled_kernel(model, detect_host().schedule_params())
    text = str(scheduled)
    assert used == "conv"
    in_task = text.index('T.sblock("conv_pad') > text.index("T.parallel")  # under the conv's task loop
    assert in_task == (stride > 1)
    x = rng.standard_normal((1, 32, 20, 20)).astype(np.float32)
    check_against_interpreter(model, {"x": x}, rtol=1e-5, atol=1e-5)


def _te_stage_names(spec, target) -> set[str]:
    """The names of every TE stage a kernel's lowering makes (which conv compute it chose)."""
    from codegen.tvm.kernel import spec_to_te

    _, outputs = spec_to_te(spec, [], target.schedule_params())
    stages, stack = set(), [outputs[0]]
    while stack:
        tensor = stack.pop()
        stages.add(tensor.op.name)
        stack.extend(getattr(tensor.op, "input_tensors", []))
    return stages


@pytest.mark.parametrize(
    "channels,out_channels,hw,kernel,attrs,images",
    [
        (3, 64, (23, 23), 3, dict(strides=[2, 2]), 1),  # SqueezeNet's stem: stride 2, no padding
        (3, 24, (30, 34), 7, dict(strides=[2, 2], pads=[3, 3, 3, 3]), 2),  # ResNet's 7x7, two images
        (1, 10, (9, 40), 5, dict(pads=[2, 1, 0, 2]), 1),  # one channel, uneven pads, 10 outputs
        (4, 16, (12, 17), 3, dict(strides=[1, 3], dilations=[2, 1], pads=[1, 1, 1, 1]), 1),
        (3, 16, (14, 14), 3, dict(strides=[2, 2], pads=[1, 1, 1, 1]), 1),  # 7 x 7 out: rows 8 wide, vectors of 8
        # rows of whole tiles, each written back from its accumulators: 64 wide (tiles of 2
        # vectors) with a stride of 2 and 48 wide (tiles of 1 vector)
        (3, 32, (6, 128), 3, dict(strides=[2, 2], pads=[1, 1, 1, 1]), 1),
        (3, 16, (5, 48), 3, dict(pads=[1, 1, 1, 1]), 2),
    ],
)
@pytest.mark.parametrize("weight_input", [False, True])
def test_few_channel_conv_takes_the_row_schedule(channels, out_channels, hw, kernel, attrs, images, weight_input):
    """A group-1 conv of at most 4 input channels (an RGB stem) is computed as rows of pixel
    vectors over its channels and taps (``dw_conv`` with a channel reduction): the interpreter's
    result with a fused Clip, for a prepacked or a run-time weight."""
    from codegen.plan import build_plan
    from codegen.target import detect_host
    from codegen.tvm.kernel import build_kernel_module
    from codegen.tvm.registry import get_lowering
    from compiler.driver import prepare_for_codegen
    from frontends.onnx import import_model

    rng = np.random.default_rng(16)
    w = (rng.standard_normal((out_channels, channels, kernel, kernel)) * 0.3).astype(np.float32)
    bias = rng.standard_normal(out_channels).astype(np.float32)
    x = rng.standard_normal((images, channels, *hw)).astype(np.float32)
    if weight_input:
        nodes = [
            helper.make_node("Conv", ["x", "w", "b"], ["c"], **attrs),
            helper.make_node("Relu", ["c"], ["y"]),
        ]
        graph = helper.make_graph(
            nodes,
            "conv",
            [
                helper.make_tensor_value_info("x", F, list(x.shape)),
                helper.make_tensor_value_info("w", F, list(w.shape)),
            ],
            [helper.make_tensor_value_info("y", F, None)],
            initializer=[numpy_helper.from_array(bias, "b")],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        feeds = {"x": x, "w": w}
    else:
        model = conv_clip_model(x.shape, w, bias, True, **attrs)
        feeds = {"x": x}
    check_against_interpreter(model, feeds, rtol=1e-5, atol=1e-5)
    target = detect_host()
    (call,) = build_plan(prepare_for_codegen(import_model(model), "O2"), get_lowering).calls
    _, used = build_kernel_module(call.spec, "k", target.to_tvm(), target.schedule_params())
    assert used == "conv", f"fell back to the {used} schedule"
    stages = _te_stage_names(call.spec, target)
    assert "dw_conv" in stages and "conv_blk" not in stages, stages


@pytest.mark.parametrize("width", [64, 48, 40, 111])
def test_few_channel_conv_writes_whole_tiles_back_from_registers(width):
    """A few-channel conv keeps no row buffer: its accumulators are local (registers) and each tile
    goes through the epilogue right after its reduction, also where the row is computed wider than
    it is (40 and 111 as 48 and 112, the last tile written back in part)."""
    import tvm
    from tvm import te

    from codegen.plan import build_plan
    from codegen.target import detect_host
    from codegen.tvm.kernel import anchor_kind, spec_to_te
    from codegen.tvm.registry import get_lowering
    from codegen.tvm.schedule import apply_schedule
    from compiler.driver import prepare_for_codegen
    from frontends.onnx import import_model

    w = np.ones((16, 3, 3, 3), np.float32)
    model = conv_clip_model((1, 3, 4, width), w, np.zeros(16, np.float32), True, pads=[1, 1, 1, 1])
    params = detect_host().schedule_params()
    (call,) = build_plan(prepare_for_codegen(import_model(model), "O2"), get_lowering, schedule=params).calls
    placeholders, outputs = spec_to_te(call.spec, [], params)
    mod = tvm.IRModule({"main": te.create_prim_func(placeholders + outputs)})
    scheduled, used = apply_schedule(mod, anchor_kind(call.spec), params)
    script = scheduled.script()
    assert used == "conv"
    assert re.search(r"\bdw_conv = T\.sblock_alloc_buffer", script) is None, script  # only local accumulators
    assert "dw_conv_local" in script and 'scope="local"' in script


def test_patch_embedding_conv_keeps_the_packed_conv():
    """A 3-channel conv with many taps (ViT's 16 x 16 stride-16 patch embedding, here 8 x 8) stays
    on the packed conv: the row schedule unrolls channels x taps, which took a minute to compile."""
    from codegen.plan import build_plan
    from codegen.target import detect_host
    from codegen.tvm.registry import get_lowering
    from compiler.driver import prepare_for_codegen
    from frontends.onnx import import_model

    rng = np.random.default_rng(17)
    w = (rng.standard_normal((32, 3, 8, 8)) * 0.1).astype(np.float32)
    model = conv_clip_model((1, 3, 32, 32), w, rng.standard_normal(32).astype(np.float32), False, strides=[8, 8])
    check_against_interpreter(model, {"x": rng.standard_normal((1, 3, 32, 32)).astype(np.float32)})
    target = detect_host()
    (call,) = build_plan(prepare_for_codegen(import_model(model), "O2"), get_lowering).calls
    stages = _te_stage_names(call.spec, target)
    assert "conv_blk" in stages and "dw_conv" not in stages, stages


@pytest.mark.parametrize("shape", [(1, 24, 14, 14), (2, 16, 8, 8), (1, 40, 7, 7), (1, 8, 40), (1, 4, 3, 5)])
def test_global_average_pool(shape):
    """GlobalAveragePool summed a vector at a time: planes of whole vectors (8 x 8), with a partial
    vector (14 x 14, 7 x 7), 1-D, two images, and a plane under two vectors (the plain sum)."""
    rng = np.random.default_rng(15)
    model = node_model("GlobalAveragePool", [("x", F, list(shape))], [("y", F, None)])
    x = rng.standard_normal(shape).astype(np.float32) + 3
    check_against_interpreter(model, {"x": x}, rtol=1e-5, atol=1e-5)


def test_global_average_pool_takes_its_vector_schedule():
    from codegen.plan import build_plan
    from codegen.target import ScheduleParams
    from codegen.tvm.kernel import build_kernel_module
    from codegen.tvm.registry import get_lowering
    from compiler.driver import prepare_for_codegen
    from frontends.onnx import import_model

    model = node_model("GlobalAveragePool", [("x", F, [1, 32, 14, 14])], [("y", F, None)])
    params = ScheduleParams(16)
    (call,) = build_plan(prepare_for_codegen(import_model(model), "O2"), get_lowering, schedule=params).calls
    _, used = build_kernel_module(call.spec, "gap", {"kind": "llvm"}, params)
    assert used == "global_pool"


@pytest.mark.parametrize("row_pad_bytes", [0, 1 << 30])
@pytest.mark.parametrize("width,stride,kernel", [(14, 1, 3), (28, 2, 3), (40, 2, 3), (14, 1, 5), (7, 1, 5), (14, 2, 5)])
def test_avx2_depthwise_tiles_several_output_rows(monkeypatch, row_pad_bytes, width, stride, kernel):
    """On AVX2 (and AVX-512) a 3 x 3 depthwise conv's register tile spans several output rows where one row is
    few vectors (``depthwise_rows``: 14 wide, 2 vectors -> 2 of 14 rows; 40 wide at stride 2, 3
    vectors -> 2 rows); a 5 x 5 only where a row is one vector (7 wide: 7 rows). Both paddings (a
    pass, or rows where the taps read them) give the interpreter's result through the fused Clip,
    on the conv schedule, whose tile is unrolled whole vectors of 8 lanes (a 32-lane vector op made
    LLVM keep the taps' weight splats on the stack)."""
    from codegen.plan import build_plan
    from codegen.target import ScheduleParams, parse_target
    from codegen.tvm import schedule_pixel_conv
    from codegen.tvm.kernel import build_kernel_module
    from codegen.tvm.registry import get_lowering
    from codegen.tvm.schedule_pixel_conv import depthwise_rows
    from compiler.driver import prepare_for_codegen
    from frontends.onnx import import_model

    avx2 = ScheduleParams.x86(8, 16)
    assert depthwise_rows(14, 2, [3, 3], avx2) == 2
    assert depthwise_rows(112, 2, [3, 3], avx2) == 4
    assert depthwise_rows(14, 2, [5, 5], avx2) == 1
    assert depthwise_rows(7, 1, [5, 5], avx2) == 7  # a 7-wide row is one vector
    assert depthwise_rows(7, 1, [7, 7], avx2) == 1
    avx512 = ScheduleParams.x86(16)
    assert depthwise_rows(14, 1, [3, 3], avx512) == 7  # one vector a row: 7 rows of 14
    assert depthwise_rows(56, 4, [3, 3], avx512) == 2  # 4 vectors a row (64 columns for 56)
    assert depthwise_rows(7, 1, [5, 5], avx512) == 7
    assert depthwise_rows(14, 1, [5, 5], avx512) == 7
    monkeypatch.setattr(schedule_pixel_conv, "DW_ROW_PAD_BYTES", row_pad_bytes)
    rng = np.random.default_rng(21)
    w = rng.standard_normal((24, 1, kernel, kernel)).astype(np.float32)
    attrs = dict(group=24, pads=[kernel // 2] * 4, strides=[stride] * 2)
    model = conv_clip_model((1, 24, width, width), w, rng.standard_normal(24).astype(np.float32), True, **attrs)
    x = rng.standard_normal((1, 24, width, width)).astype(np.float32) * 2
    check_against_interpreter(model, {"x": x}, rtol=1e-5, atol=1e-5, target="x86-64:vector_bits=256")
    target = parse_target("x86-64:vector_bits=256")
    (call,) = build_plan(prepare_for_codegen(import_model(model), "O2"), get_lowering).calls
    _, used = build_kernel_module(call.spec, "k", target.to_tvm(), target.schedule_params())
    assert used == "conv", f"fell back to the {used} schedule"
    scheduled, _, _ = scheduled_kernel(model, target.schedule_params())
    update = str(scheduled).split('sblock("dw_conv_update")')[0].rsplit("for rr", 1)[-1]
    assert re.findall(r"T\.vectorized\((\d+)\)", update) == ["8"], update
