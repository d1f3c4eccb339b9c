"""Depthwise convs on aarch64 under qemu, against the interpreter: the NEON register tiles of
``schedule_pixel_conv.depthwise_tile`` (4 rows x 2 vectors, 7 x 1, rows padded to whole 4-lane
vectors) over strides, kernels of 3 x 3 to 7 x 7, dilation, a channel multiplier, odd widths, and
8-bit QLinearConv on the same kernel. Every case is one node; they are merged into one library
(one link, one qemu start)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from test_aarch64 import interpreted, merge_graphs, relative_diff, require_toolchain, run_on_aarch64
from test_int8_depthwise import CASES as INT8_CASES
from test_int8_depthwise import _depthwise_model, _feeds

# (channels, multiplier, height, width, kernel, attrs); the tile each takes on NEON in the comment
FLOAT_CASES = [
    (8, 1, 56, 56, 3, dict(pads=[1, 1, 1, 1])),  # 4 x 2
    (8, 1, 28, 28, 3, dict(pads=[1, 1, 1, 1], strides=[2, 2])),  # 14 wide: 7 x 1
    (8, 1, 14, 14, 3, dict(pads=[1, 1, 1, 1])),  # a row of 16 as computed: 7 x 1
    (8, 1, 7, 7, 3, dict(pads=[1, 1, 1, 1])),  # 8 as computed, 7 rows of 1 vector
    (8, 1, 13, 13, 3, dict(pads=[1, 1, 1, 1])),  # odd: 16 as computed, 13 rows (1 row tiles)
    (8, 1, 28, 28, 5, dict(pads=[2, 2, 2, 2])),  # 7 x 1
    (8, 1, 14, 14, 5, dict(pads=[2, 2, 2, 2], strides=[2, 2])),
    (4, 1, 56, 56, 7, dict(pads=[3, 3, 3, 3])),  # 4 x 2, 7 kernel rows a column
    (4, 1, 30, 30, 3, dict(pads=[2, 2, 2, 2], dilations=[2, 2])),
    (4, 2, 20, 20, 3, dict(pads=[1, 1, 1, 1])),  # 2 outputs per channel
]


def _float_depthwise(channels, multiplier, height, width, kernel, attrs, rng):
    """A depthwise Conv (with a bias) and ReLU, and its input."""
    weight = rng.standard_normal((channels * multiplier, 1, kernel, kernel)).astype(np.float32)
    bias = rng.standard_normal(channels * multiplier).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w", "b"], ["c"], group=channels, **attrs),
            helper.make_node("Relu", ["c"], ["y"]),
        ],
        "depthwise",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, height, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model, {"x": rng.standard_normal((1, channels, height, width)).astype(np.float32)}


def test_depthwise_convs_match_the_interpreter_under_qemu(tmp_path):
    require_toolchain()
    from frontends.onnx import import_model

    rng = np.random.default_rng(0)
    cases = [_float_depthwise(*case, rng) for case in FLOAT_CASES]
    for x_dtype, x_shape, multiplier, kernel, attrs in INT8_CASES:
        k = x_shape[1] * multiplier
        w = rng.integers(-128, 127, (k, 1, kernel, kernel), endpoint=True).astype(np.int8)
        bias = rng.integers(-2000, 2000, k).astype(np.int32)
        model = _depthwise_model("QLinearConv", x_dtype, x_shape, w, np.zeros(k, np.int8), bias, **attrs)
        cases.append((model, _feeds("QLinearConv", x_dtype, x_shape, k, rng)))
    expected = [interpreted(import_model(model), feeds)[0] for model, feeds in cases]
    feeds = {f"c{i}_{name}": value for i, (_, case_feeds) in enumerate(cases) for name, value in case_feeds.items()}
    run = run_on_aarch64(merge_graphs([import_model(model) for model, _ in cases]), feeds, str(tmp_path))
    labels = [f"float {c}" for c in FLOAT_CASES] + [f"QLinearConv {c}" for c in INT8_CASES]
    diffs = {label: relative_diff(got, want) for label, got, want in zip(labels, run.outputs, expected)}
    # float: 1e-4 of the output's largest magnitude; 8-bit outputs exactly (relative_diff: 0 or inf)
    failed = {label: diff for label, diff in diffs.items() if not diff <= 1e-4}
    assert not failed, f"{len(failed)} of {len(cases)} depthwise convs differ: {failed}"
