"""Padded reads of a graph input stay inside the input's buffer.

A kernel that pads its input (MaxPool's and QLinearConv's pads, Pad, Softmax's rows rounded up to
whole vectors) must not load the element before the buffer or past its end, even when the padded
value is then thrown away: TVM simplifies ``Select(inside, x[clamp(i)], pad)`` into an unclamped
load, and a Select evaluates both branches (``te_util.read_if`` says more). Each case puts the input
right after, or right before, a PROT_NONE page, so such a load faults; the run is in a subprocess,
so a fault fails the test instead of killing pytest, and the output must match the interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Run in the child: build the model's one kernel, place the input against a PROT_NONE page, call the
# kernel on it (the library's run copies inputs into its arena, so the kernel is called directly),
# compare with the interpreter.
CHILD = textwrap.dedent(
    """
    import ctypes, mmap, sys
    import numpy as np, onnx, tvm
    from codegen.plan import build_plan
    from codegen.target import parse_target
    from codegen.tvm.kernel import build_kernel_module
    from codegen.tvm.registry import get_lowering
    from compiler.driver import prepare_for_codegen
    from compiler.ir.interpreter import interpret_list
    from frontends.onnx import import_model

    model_path, where, dtype, shape = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    shape = tuple(int(d) for d in shape.split(","))
    x = (np.arange(np.prod(shape)) % 23 - 11).astype(dtype).reshape(shape)
    model = onnx.load(model_path)
    graph = prepare_for_codegen(import_model(model), "O2")
    target = parse_target("x86_64")
    plan = build_plan(graph, get_lowering, target_name=target.kind, schedule=target.schedule_params())
    (call,) = plan.calls
    lib = build_kernel_module(call.spec, "k", target.to_tvm(), target.schedule_params())[0]

    page, nbytes = mmap.PAGESIZE, x.nbytes
    span = -(-nbytes // page) * page
    mm = mmap.mmap(-1, span + page)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    base = ctypes.addressof(ctypes.c_char.from_buffer(mm))
    if where == "after_guard":  # [PROT_NONE][input ...]
        guard, offset = base, page
    else:  # [... input][PROT_NONE]
        guard, offset = base + span, span - nbytes
    placed = np.frombuffer(mm, x.dtype, x.size, offset=offset).reshape(shape)
    placed[...] = x
    assert libc.mprotect(guard, page, 0) == 0, ctypes.get_errno()

    def aligned(shape, dtype, value=None):  # a writable 64-byte-aligned array, as kernels take
        dtype = np.dtype(dtype)
        raw = np.empty(int(np.prod(shape)) * dtype.itemsize + 64, np.uint8)
        skip = -raw.ctypes.data % 64
        out = raw[skip : skip + raw.size - 64].view(dtype).reshape(shape)
        if value is not None:
            out[...] = value
        return out

    buffers = {b.id: b for b in plan.buffers}
    ins = [
        placed if buffers[i].kind == "input" else aligned(buffers[i].shape, buffers[i].dtype, buffers[i].const)
        for i in call.inputs
    ]
    outs = [aligned(buffers[i].shape, buffers[i].dtype) for i in call.outputs]
    lib["k"](*[tvm.runtime.from_dlpack(a) for a in ins + outs])
    want = np.asarray(interpret_list(import_model(model), {"x": x})[0])
    np.testing.assert_allclose(outs[0].astype(np.float64), want.astype(np.float64), rtol=1e-5, atol=1e-6)
    print("ok")
    """
)

F, U8 = TensorProto.FLOAT, TensorProto.UINT8


def _model(node, x_type, x_shape, y_shape, initializers=()):
    graph = helper.make_graph(
        [node],
        "guarded",
        [helper.make_tensor_value_info("x", x_type, list(x_shape))],
        [helper.make_tensor_value_info("y", x_type, list(y_shape))],
        initializer=list(initializers),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _maxpool():
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    return _model(node, F, (1, 16, 9, 9), (1, 16, 5, 5)), "float32", (1, 16, 9, 9)


def _maxpool_dilated():  # windows may miss the edge they overhang: the guarded reads
    node = helper.make_node(
        "MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[1, 1], dilations=[2, 2], pads=[2, 2, 2, 2]
    )
    return _model(node, F, (1, 16, 9, 9), (1, 16, 9, 9)), "float32", (1, 16, 9, 9)


def _pad():
    pads = numpy_helper.from_array(np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64), "pads")
    node = helper.make_node("Pad", ["x", "pads"], ["y"], mode="constant")
    return _model(node, F, (1, 16, 7, 9), (1, 16, 10, 12), [pads]), "float32", (1, 16, 7, 9)


def _softmax():
    node = helper.make_node("Softmax", ["x"], ["y"], axis=-1)
    return _model(node, F, (4, 4, 37), (4, 4, 37)), "float32", (4, 4, 37)


def _qlinearconv():
    w = np.arange(4 * 3 * 3 * 3).reshape(4, 3, 3, 3) % 7 - 3
    consts = [
        numpy_helper.from_array(np.array(0.05, np.float32), "xs"),
        numpy_helper.from_array(np.array(128, np.uint8), "xz"),
        numpy_helper.from_array(w.astype(np.int8), "w"),
        numpy_helper.from_array(np.array(0.02, np.float32), "ws"),
        numpy_helper.from_array(np.array(0, np.int8), "wz"),
        numpy_helper.from_array(np.array(0.1, np.float32), "ys"),
        numpy_helper.from_array(np.array(100, np.uint8), "yz"),
    ]
    node = helper.make_node(
        "QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]
    )
    return _model(node, U8, (1, 3, 8, 8), (1, 4, 8, 8), consts), "uint8", (1, 3, 8, 8)


def _pointwise_conv():  # 13 x 13 = 169 pixels: the last tile's pixels past the plane (``conv_xtail``)
    w = numpy_helper.from_array((np.arange(32 * 16) % 5 - 2).astype(np.float32).reshape(32, 16, 1, 1), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[1, 1])
    return _model(node, F, (1, 16, 13, 13), (1, 32, 13, 13), [w]), "float32", (1, 16, 13, 13)


CASES = {
    "maxpool": _maxpool,
    "pointwise_conv": _pointwise_conv,
    "maxpool_dilated": _maxpool_dilated,
    "pad": _pad,
    "softmax": _softmax,
    "qlinearconv": _qlinearconv,
}


@pytest.mark.parametrize("where", ["after_guard", "before_guard"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_padded_reads_stay_in_the_input(tmp_path, case, where):
    import onnx

    model, dtype, shape = CASES[case]()
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.environ.get("PYTHONPATH", ""), ROOT]))
    args = [str(path), where, dtype, ",".join(map(str, shape))]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, f"rc {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    assert done.stdout.strip().endswith("ok")
