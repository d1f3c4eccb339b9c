"""The hot loop of aarch64 depthwise conv kernels, as docs/aarch64.md reports it.

Builds one depthwise conv (with its ReLU) per shape for an aarch64 target, as a library's kernels are
built, and prints for the innermost loop with the most vector ``fmla`` (``test_aarch64.hot_loop``) the
register tile the schedule chose, its ``fmla`` count, its vector loads and its stack accesses, split
into those among the FMAs (spills) and those after the last one (the tile's write-back through its
row buffer). Needs the cross binutils of ``scripts/install_toolchains.sh``, no qemu::

    PYTHONPATH=$PWD python3 scripts/aarch64_depthwise_loops.py --target aarch64:mcpu=cortex-a76
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "codegen"))

# (channels, plane, kernel, stride): depthwise shapes of MobileNetV2, MobileNetV3 and EfficientNet-B0,
# and a ConvNeXt-like 7x7
SHAPES = [
    (32, 112, 3, 1),
    (96, 112, 3, 2),
    (144, 56, 3, 1),
    (192, 28, 3, 1),
    (576, 14, 3, 1),
    (960, 7, 3, 1),
    (240, 28, 5, 1),
    (672, 14, 5, 2),
    (1152, 7, 5, 1),
    (96, 56, 7, 1),
]


def depthwise_object(channels: int, plane: int, kernel: int, stride: int, target: str, path: str):
    """Builds the depthwise conv's kernel object at ``path``; returns its (rows, columns) tile."""
    from onnx import TensorProto, helper, numpy_helper
    from test_aarch64 import kernel_object

    from codegen.target import parse_target
    from codegen.tvm.lower.nn.conv import _depthwise_width
    from codegen.tvm.schedule_pixel_conv import depthwise_tile

    weight = np.random.default_rng(0).standard_normal((channels, 1, kernel, kernel)).astype(np.float32)
    pad = kernel // 2
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], pads=[pad] * 4, group=channels, strides=[stride] * 2),
            helper.make_node("Relu", ["c"], ["y"]),
        ],
        "depthwise",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, plane, plane])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    kernel_object(model, target, path)
    params = parse_target(target).schedule_params()
    out = (plane + 2 * pad - kernel) // stride + 1
    columns, rows = depthwise_tile(_depthwise_width(out, params.lanes), out, [kernel, kernel], params)
    return rows, columns // params.lanes


def main() -> None:
    from test_aarch64 import hot_loop

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", default="aarch64:mcpu=cortex-a76")
    args = ap.parse_args()
    print(f"target {args.target}")
    print("| depthwise conv | tile (rows x vectors) | fmla | vector loads | stack among the fmla | stack after |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="ember-dw-") as tmp:
        for channels, plane, kernel, stride in SHAPES:
            path = os.path.join(tmp, "dw.o")
            rows, vectors = depthwise_object(channels, plane, kernel, stride, args.target, path)
            body = hot_loop(path)
            fmla = [i for i, (m, o) in enumerate(body) if m == "fmla" and ".4s" in o]
            loads = sum(m in ("ldr", "ldp", "ldur", "ld1", "ld1r") and o.startswith("q") for m, o in body)
            stack = [i for i, (_, o) in enumerate(body) if "[sp" in o]
            among = sum(fmla[0] < i < fmla[-1] for i in stack)
            name = f"{channels} x {plane}x{plane}, {kernel}x{kernel}" + (f" stride {stride}" if stride > 1 else "")
            print(f"| {name} | {rows} x {vectors} | {len(fmla)} | {loads} | {among} | {len(stack) - among} |")


if __name__ == "__main__":
    main()
