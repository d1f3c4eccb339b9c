"""Register tiles of the depthwise conv schedule chosen by the shape of the work: kernels over 3 x 3
taps run a kernel column at a time over several output rows (``schedule_pixel_conv._column_outer``),
rows of one vector are written back a plane at a time; and grouped convs of one channel block per
group. Each is checked against the interpreter (NaN and infinity included) and, for the depthwise
tiles, by the structure of its scheduled TIR."""

from __future__ import annotations

import re

import numpy as np
import pytest
from compiled_checks import check_against_interpreter, conv_clip_model, scheduled_kernel
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT


def _conv_model(x_shape, w, bias, **attrs):
    return conv_clip_model(x_shape, w, bias, False, **attrs)


def _scheduled_text(model, params) -> tuple[str, str]:
    """(the scheduled TIR of ``model``'s one kernel, the schedule family used)."""
    scheduled, used, _ = scheduled_kernel(model, params)
    return str(scheduled), used


def _with_specials(x: np.ndarray) -> np.ndarray:
    flat = x.reshape(-1)
    flat[::97] = np.nan
    flat[5::131] = np.inf
    flat[9::173] = -np.inf
    return x


def test_depthwise_rows_by_registers():
    """AVX-512 (32 registers) takes several output rows for 5 x 5 and 7 x 7 kernels where the
    accumulators, a kernel column's input vectors and a weight fit; AVX2 (16) keeps its rule."""
    from codegen.target import ScheduleParams
    from codegen.tvm.schedule_pixel_conv import _column_outer, depthwise_rows

    avx512, avx2 = ScheduleParams.x86(16), ScheduleParams.x86(8, 16)
    assert _column_outer([7, 7], avx512) and _column_outer([5, 5], avx512)
    assert not _column_outer([3, 3], avx512) and not _column_outer([7, 7], avx2)
    assert depthwise_rows(56, 2, [7, 7], avx512) == 4  # 8 accumulators + 10 x 2 input vectors + 1
    assert depthwise_rows(7, 1, [7, 7], avx512) == 7
    assert depthwise_rows(14, 1, [7, 7], avx512) == 7
    assert depthwise_rows(28, 2, [5, 5], avx512) == 4
    assert depthwise_rows(7, 1, [7, 7], avx2) == 1
    assert depthwise_rows(14, 2, [5, 5], avx2) == 1


@pytest.mark.parametrize(
    "width,kernel,stride,dilation",
    [
        (56, 7, 1, 1),
        (14, 7, 1, 1),
        (7, 7, 1, 1),
        (28, 5, 1, 1),
        (14, 5, 2, 1),
        (40, 5, 2, 1),
        (80, 5, 2, 1),
        (13, 5, 1, 2),
    ],
)
def test_wide_depthwise_kernels_match_the_interpreter(width, kernel, stride, dilation):
    """5 x 5 and 7 x 7 depthwise convs, a kernel column at a time over several rows, equal the
    interpreter on planes of whole vectors, one vector, half a vector and ragged widths, at stride
    1 and 2, and dilated; NaN and infinity propagate to the outputs that read them."""
    rng = np.random.default_rng(width * kernel + stride)
    channels = 24
    w = rng.standard_normal((channels, 1, kernel, kernel)).astype(np.float32)
    pad = dilation * (kernel // 2)
    model = _conv_model(
        (1, channels, width, width),
        w,
        rng.standard_normal(channels).astype(np.float32),
        group=channels,
        pads=[pad] * 4,
        strides=[stride] * 2,
        dilations=[dilation] * 2,
    )
    x = _with_specials(rng.standard_normal((1, channels, width, width)).astype(np.float32))
    check_against_interpreter(model, {"x": x}, rtol=1e-5, atol=1e-5)


def test_wide_depthwise_kernel_runs_columns_outside_rows():
    """The scheduled 7 x 7 conv's update loops run the kernel column (``rs``) outside the kernel row
    (``rr``), over 4 unrolled output rows of 2 vectors each (56 wide: 64 computed, 32 a tile)."""
    from codegen.target import ScheduleParams

    rng = np.random.default_rng(3)
    w = rng.standard_normal((16, 1, 7, 7)).astype(np.float32)
    model = _conv_model((1, 16, 56, 56), w, np.zeros(16, np.float32), group=16, pads=[3] * 4)
    text, used = _scheduled_text(model, ScheduleParams.x86(16))
    assert used == "conv"
    update = text.split('sblock("dw_conv_update")')[0]
    loops = re.findall(r"for (\w+)[^\n]*in T\.(unroll|vectorized|serial|parallel)\((\d+)", update)
    names = [name for name, _, _ in loops]
    rs, rr = names.index("rs"), names.index("rr")
    assert rs < rr, loops
    inner = [(kind, int(extent)) for _, kind, extent in loops[rr + 1 :]]
    assert inner == [("unroll", 4), ("unroll", 2), ("vectorized", 16)], loops


@pytest.mark.parametrize("channels,width,stride", [(64, 28, 2), (64, 14, 1), (144, 14, 2), (48, 13, 1)])
def test_grouped_conv_with_one_block_per_group(channels, width, stride):
    """A 3 x 3 conv of 16-channel groups (RegNet's), one channel block per group, equals the
    interpreter on the conv schedule, NaN and infinity included."""
    from codegen.target import ScheduleParams

    rng = np.random.default_rng(channels + width)
    groups = channels // 16
    w = rng.standard_normal((channels, 16, 3, 3)).astype(np.float32) * 0.2
    model = _conv_model(
        (1, channels, width, width),
        w,
        rng.standard_normal(channels).astype(np.float32),
        group=groups,
        pads=[1] * 4,
        strides=[stride] * 2,
    )
    x = _with_specials(rng.standard_normal((1, channels, width, width)).astype(np.float32))
    check_against_interpreter(model, {"x": x}, rtol=1e-4, atol=1e-4)
    _, used = _scheduled_text(model, ScheduleParams.x86(16))
    assert used == "conv"


@pytest.mark.parametrize("width,kernel,stride", [(14, 5, 1), (13, 3, 1), (28, 5, 2), (28, 3, 1)])
def test_depthwise_plane_write_back_with_silu(width, kernel, stride):
    """A depthwise conv whose computed rows are one vector (9 to 16 columns) writes back and applies
    its fused SiLU once over each channel plane, after the row tiles; wider rows keep the write-back
    after each row tile. Both equal the interpreter, NaN and infinity included."""
    from codegen.target import ScheduleParams

    rng = np.random.default_rng(width + kernel)
    channels = 32
    w = rng.standard_normal((channels, 1, kernel, kernel)).astype(np.float32) * 0.3
    graph = helper.make_graph(
        [
            helper.make_node(
                "Conv", ["x", "w", "b"], ["c"], group=channels, pads=[kernel // 2] * 4, strides=[stride] * 2
            ),
            helper.make_node("Sigmoid", ["c"], ["s"]),
            helper.make_node("Mul", ["c", "s"], ["y"]),
        ],
        "conv_silu",
        [helper.make_tensor_value_info("x", F, [1, channels, width, width])],
        [helper.make_tensor_value_info("y", F, None)],
        initializer=[
            numpy_helper.from_array(w, "w"),
            numpy_helper.from_array(rng.standard_normal(channels).astype(np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = _with_specials(rng.standard_normal((1, channels, width, width)).astype(np.float32))
    check_against_interpreter(model, {"x": x}, rtol=1e-5, atol=1e-5)
    text, used = _scheduled_text(model, ScheduleParams.x86(16))
    assert used == "conv"
    # the write-back after the taps: over the whole plane's rows, or over one row tile's
    out_size = (width - 1) // stride + 1
    rows = int(re.search(r"for ax0 in range\((\d+)\)", text.split('sblock("dw_conv_update")')[-1]).group(1))
    assert (rows == out_size) == (out_size <= 16), (rows, out_size)
