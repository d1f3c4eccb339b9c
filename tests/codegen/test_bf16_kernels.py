"""The bfloat16 dot-product kernels (codegen/tvm/lower/nn/conv_bf16.py, lower/matmul_bf16.py) compiled
after ``convert-bfloat16`` against the interpreter on the same converted graph, and the LLVM IR patch
that makes their stand-in calls ``vdpbf16ps`` (codegen/tvm/dot_instructions.py)."""

from __future__ import annotations

import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from codegen.target import detect_host, parse_target
from codegen.tvm.dot_instructions import BF16_INTRINSIC, BF16_STAND_IN, patch_llvm_ir, uses_stand_in
from compiler.driver import compile_model
from compiler.ir.interpreter import interpret_list
from compiler.pipeline import run_pipeline
from compiler.runtime import load
from frontends.onnx import import_model

HAS_BF16 = "+avx512bf16" in detect_host().features
# the channel-pair kernels are the x86 default except with AMX-BF16 (ScheduleParams.bf16_pairs): the
# tests build them for the host's features without AMX, and for them with AMX added, where a Conv
# takes the widened float32 kernels and a MatMul of 16k rows and 32k-deep the AMX tiles
PAIRS = "x86-64:features=" + "".join(f for f in detect_host().features if not f.startswith("+amx"))
AMX = PAIRS + "+amx-tile+amx-bf16"
HAS_AMX = "+amx-bf16" in detect_host().features
TARGETS = pytest.mark.parametrize("target", [PAIRS, AMX], ids=["pairs", "amx"])
F = TensorProto.FLOAT


def _model(nodes, x_shape, inits):
    graph = helper.make_graph(
        nodes,
        "bf16",
        [helper.make_tensor_value_info("x", F, list(x_shape))],
        [helper.make_tensor_value_info("y", F, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _compiled_matches_interpreter(
    model: onnx.ModelProto, x: np.ndarray, tmp_path, ulps: int = 0, target: str = PAIRS
) -> str:
    """Compile for ``target`` with ``O2,convert-bfloat16``; the library's output equals the
    interpreter's on the same converted graph (within ``ulps`` bfloat16 steps of the largest
    output); returns the library."""
    lib = str(tmp_path / "m.so")
    compile_model(import_model(model), lib, target, pipeline="O2,convert-bfloat16", prefix="m")
    graph = import_model(model)
    run_pipeline(graph, "O2,convert-bfloat16")
    want = interpret_list(graph, {"x": x})[0]
    for threads in (1, 2):
        got = list(load(lib, num_threads=threads).run({"x": x}).values())[0]
        assert got.shape == want.shape and got.dtype == np.float32
        scale = float(np.abs(want[np.isfinite(want)]).max())
        np.testing.assert_allclose(got, want, rtol=0, atol=ulps * 2.0**-8 * scale)  # NaN equals NaN
    return lib


def _uses_vdpbf16ps(lib: str) -> bool:
    out = subprocess.run(["objdump", "-d", lib], capture_output=True, text=True, check=True).stdout
    return "vdpbf16ps" in out


CONVS = [
    # (C, K, H, W, kernel, attrs): odd C (a channel pair half padding), K off the 16-channel blocks,
    # padding on every side (the guarded input reads), stride, dilation, a 1x1 conv
    (5, 20, 17, 19, 3, dict(pads=[1, 1, 1, 1])),
    (3, 32, 30, 30, 7, dict(pads=[3, 3, 3, 3], strides=[2, 2])),
    (16, 16, 9, 8, 3, dict(pads=[2, 0, 1, 2], dilations=[2, 1])),
    (24, 48, 7, 7, 1, {}),
    # 1x1 convs whose rows fill vectors of 16 take the row kernel (dot_kernels.rows_layout_fits): odd C,
    # K = 20 (a 5-channel tile), 14-wide rows; a strided one sampled at 15 x 15 (the plane one band of 240)
    (7, 20, 6, 14, 1, {}),
    (6, 16, 29, 30, 1, dict(strides=[2, 2])),
]


@TARGETS
@pytest.mark.parametrize("c,k,h,w,kernel,attrs", CONVS)
def test_bf16_conv_matches_interpreter(c, k, h, w, kernel, attrs, target, tmp_path):
    rng = np.random.default_rng(c + k + kernel)
    inits = {
        "w": (0.2 * rng.standard_normal((k, c, kernel, kernel))).astype(np.float32),
        "b": rng.standard_normal(k).astype(np.float32),
    }
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], **attrs), helper.make_node("Relu", ["c"], ["y"])]
    x = rng.standard_normal((1, c, h, w)).astype(np.float32)
    lib = _compiled_matches_interpreter(_model(nodes, x.shape, inits), x, tmp_path, target=target)
    assert _uses_vdpbf16ps(lib) == (HAS_BF16 and target == PAIRS)


def test_bf16_conv_with_residual_add(tmp_path):
    """The residual Add fused into the conv's write-back reads a bfloat16 operand (one rounding step
    apart at most: the interpreter rounds the sum of two rounded convs, as the library does)."""
    rng = np.random.default_rng(7)
    inits = {
        "w1": (0.1 * rng.standard_normal((32, 8, 3, 3))).astype(np.float32),
        "w2": (0.1 * rng.standard_normal((32, 8, 1, 1))).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["x", "w2"], ["b"]),
        helper.make_node("Add", ["a", "b"], ["s"]),
        helper.make_node("Relu", ["s"], ["y"]),
    ]
    x = rng.standard_normal((1, 8, 12, 12)).astype(np.float32)
    _compiled_matches_interpreter(_model(nodes, x.shape, inits), x, tmp_path, ulps=1)


MATMULS = [
    # (x shape, N): a batch dim kept, N off the 16-column blocks, rows off the 4-row tile (and off
    # AMX's 16-row tiles: widened float32 kernels with AMX)
    ((1, 10, 64), 40),
    ((7, 96), 48),
]
# rows of 16k and K of 32k take the AMX tiles: blocks of 2 x 2 tiles, and of 1 x 1 where 3 row tiles
# and 5 column tiles (N = 80) do not pair up
AMX_MATMULS = [((32, 64), 32), ((1, 48, 96), 80), ((2, 16, 32), 48), ((32, 64), 40)]  # N = 40: padded columns


@TARGETS
@pytest.mark.parametrize("x_shape,n", MATMULS)
def test_bf16_matmul_matches_interpreter(x_shape, n, target, tmp_path):
    rng = np.random.default_rng(n)
    k = x_shape[-1]
    inits = {"w": (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)}
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
    x = rng.standard_normal(x_shape).astype(np.float32)
    lib = _compiled_matches_interpreter(_model(nodes, x.shape, inits), x, tmp_path, target=target)
    assert _uses_vdpbf16ps(lib) == (HAS_BF16 and target == PAIRS)


def _amx_matches_or_is_refused(model, x, tmp_path) -> str:
    """On a CPU with AMX, the library built for AMX is the interpreter's within one bfloat16 step of
    the largest output (the tiles sum in their own order: a value near zero may round the other
    way); elsewhere it is built all the same and its run fails with the kernel's message, as the OS
    refuses the tiles. Returns the library, whose object holds the tile instructions either way."""
    if HAS_AMX:
        lib = _compiled_matches_interpreter(model, x, tmp_path, ulps=1, target=AMX)
    else:
        lib = str(tmp_path / "m.so")
        compile_model(import_model(model), lib, AMX, pipeline="O2,convert-bfloat16", prefix="m")
        with pytest.raises(Exception, match="AMX tiles"):
            load(lib, num_threads=1).run({"x": x})
    asm = subprocess.run(["objdump", "-d", lib], capture_output=True, text=True, check=True).stdout
    assert "tdpbf16ps" in asm and "ldtilecfg" in asm and "vdpbf16ps" not in asm
    return lib


# 1x1 convs with 32k input and 16k output channels take the tiles: 56-wide rows (a 64-wide
# accumulator whose last 8 columns no output reads), a stride of 2, 14-wide rows (one row a piece)
AMX_CONVS = [(64, 32, 4, 56, {}), (32, 48, 10, 28, dict(strides=[2, 2])), (96, 16, 5, 14, {})]


@pytest.mark.parametrize("c,k,h,w,attrs", AMX_CONVS)
def test_amx_bf16_conv_matches_interpreter(c, k, h, w, attrs, tmp_path):
    rng = np.random.default_rng(c + k)
    inits = {
        "w": (rng.standard_normal((k, c, 1, 1)) / np.sqrt(c)).astype(np.float32),
        "b": rng.standard_normal(k).astype(np.float32),
    }
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], **attrs), helper.make_node("Relu", ["c"], ["y"])]
    x = rng.standard_normal((1, c, h, w)).astype(np.float32)
    _amx_matches_or_is_refused(_model(nodes, x.shape, inits), x, tmp_path)


@pytest.mark.parametrize("x_shape,n", AMX_MATMULS)
def test_amx_bf16_matmul_matches_interpreter(x_shape, n, tmp_path):
    rng = np.random.default_rng(n)
    k = x_shape[-1]
    inits = {"w": (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)}
    model = _model([helper.make_node("MatMul", ["x", "w"], ["y"])], x_shape, inits)
    _amx_matches_or_is_refused(model, rng.standard_normal(x_shape).astype(np.float32), tmp_path)


# makes Linux's answer to "may this process use the AMX tiles?" a no (LD_PRELOAD'ed into a child)
REFUSE_AMX_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/syscall.h>
long syscall(long number, ...) {
  va_list ap;
  va_start(ap, number);
  long a[6];
  for (int i = 0; i < 6; ++i) a[i] = va_arg(ap, long);
  va_end(ap);
  if (number == SYS_arch_prctl && a[0] == 0x1023) { errno = EPERM; return -1; }
  long (*real)(long, ...) = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
  return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
"""

RUN_CHILD = """
import sys, numpy as np
from compiler.runtime import load
try:
    load(sys.argv[1], num_threads=2).run({"x": np.ones((32, 64), np.float32)})
except Exception as e:
    print("error:", e)
else:
    print("ran")
"""


def test_amx_refused_by_the_os_fails_the_run(tmp_path):
    """Where the OS refuses the tiles, the AMX kernel's run fails with its message (it asks before
    its first tile instruction), rather than dying of an illegal instruction."""
    import os
    import sys

    shim = tmp_path / "refuse_amx.so"
    source = tmp_path / "refuse_amx.c"
    source.write_text(REFUSE_AMX_C)
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", str(source), "-o", str(shim), "-ldl"], check=True)
    rng = np.random.default_rng(0)
    inits = {"w": rng.standard_normal((64, 32)).astype(np.float32)}
    model = _model([helper.make_node("MatMul", ["x", "w"], ["y"])], (32, 64), inits)
    lib = str(tmp_path / "m.so")
    compile_model(import_model(model), lib, AMX, pipeline="O2,convert-bfloat16", prefix="m")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, LD_PRELOAD=str(shim), PYTHONPATH=root)
    out = subprocess.run([sys.executable, "-c", RUN_CHILD, lib], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "error:" in out.stdout and "AMX tiles" in out.stdout, out.stdout


def test_bf16_matmul_gelu_epilogue(tmp_path):
    """Gelu on bfloat16 computes erf through the float32 polynomial (one rounding step apart at most)."""
    rng = np.random.default_rng(3)
    inits = {"w": (rng.standard_normal((32, 64)) / 6).astype(np.float32)}
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Gelu", ["m"], ["y"])]
    x = rng.standard_normal((1, 8, 32)).astype(np.float32)
    model = _model(nodes, x.shape, inits)
    model.opset_import[0].version = 20
    _compiled_matches_interpreter(model, x, tmp_path, ulps=1)


STAND_IN_IR = f"""
define void @k(ptr %p) {{
entry:
  %0 = load <16 x i32>, ptr %p
  %4 = load <32 x i16>, ptr %p
  %5 = load <32 x i16>, ptr %p
  %6 = tail call <16 x i32> @{BF16_STAND_IN}(<16 x i32> %0, <32 x i16> %4, <32 x i16> %5), !dbg !52
  %7 = call <16 x i32> @{BF16_STAND_IN}(<16 x i32> zeroinitializer, <32 x i16> %4, <32 x i16> %5)
  ret void
}}
declare <16 x i32> @{BF16_STAND_IN}(<16 x i32>, <32 x i16>, <32 x i16>) #4
"""


def test_patch_makes_every_stand_in_call_the_bf16_intrinsic():
    assert uses_stand_in(STAND_IN_IR)
    patched = patch_llvm_ir(STAND_IN_IR)
    assert not uses_stand_in(patched)
    calls = [line.strip() for line in patched.splitlines() if f"@{BF16_INTRINSIC}(" in line]
    assert len(calls) == 3  # two calls and the declaration
    assert "<16 x float> %ember.bf16.c1, <32 x bfloat> %ember.bf16.a1, <32 x bfloat> %ember.bf16.b1" in calls[0]
    assert "%ember.bf16.c2 = bitcast <16 x i32> zeroinitializer to <16 x float>" in patched
    assert "%6 = bitcast <16 x float> %ember.bf16.r1 to <16 x i32>" in patched
    assert calls[2].startswith(f"declare <16 x float> @{BF16_INTRINSIC}(<16 x float>, <32 x bfloat>, <32 x bfloat>)")


def test_patch_refuses_a_stand_in_call_it_does_not_recognise():
    odd = STAND_IN_IR.replace("<32 x i16> %4, <32 x i16> %5)", "<32 x i16> %4, <32 x i16> %5, i32 1)", 1)
    with pytest.raises(RuntimeError, match="does not recognise"):
        patch_llvm_ir(odd)


@TARGETS
def test_bf16_conv_keeps_nan_and_inf(target, tmp_path):
    """The write-back's bfloat16 rounding (integer operations, no isnan Select) keeps NaN as NaN and
    rounds past the largest bfloat16 to infinity, as the interpreter does."""
    rng = np.random.default_rng(11)
    inits = {"w": (0.1 * rng.standard_normal((16, 4, 1, 1))).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Relu", ["c"], ["y"])]
    x = rng.standard_normal((1, 4, 3, 5)).astype(np.float32)
    x[0, 0, 0, 0], x[0, 1, 1, 1], x[0, :, 2, 2] = np.nan, np.inf, 3.4e38
    lib = _compiled_matches_interpreter(_model(nodes, x.shape, inits), x, tmp_path, target=target)
    y = list(load(lib, num_threads=1).run({"x": x}).values())[0]
    assert np.isnan(y[0, :, 0, 0]).all() and np.isinf(y[0, :, 1, 1]).any()


def test_bf16_max_pool_and_max_compile_and_keep_nan(tmp_path):
    """A ResNet stem in bfloat16 (conv, Relu, MaxPool 3x3 stride 2) and an elementwise Max: the
    window maximum and the NaN-keeping Max test a NaN on its bits (``te_util.nan_bits``), which for
    bfloat16 reinterpreted TVM's float32 computation as int16 and failed LLVM's verifier (the
    bfloat16 ResNet-50 did not compile). They compile, match the interpreter and keep NaN."""
    rng = np.random.default_rng(12)
    inits = {"w": (0.1 * rng.standard_normal((16, 3, 3, 3))).astype(np.float32)}
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Max", ["p", "p"], ["y"]),
    ]
    x = rng.standard_normal((1, 3, 40, 40)).astype(np.float32)
    x[0, :, 9, 9] = np.nan
    lib = _compiled_matches_interpreter(_model(nodes, x.shape, inits), x, tmp_path)
    y = list(load(lib, num_threads=1).run({"x": x}).values())[0]
    assert np.isnan(y).any() and np.isfinite(y).any()


def test_amx_bf16_turns_the_pair_kernels_off():
    """With AMX-BF16 (whose Xeons issue vdpbf16ps at a quarter of the FMA's rate) bfloat16 Conv takes
    the float32 kernels and MatMul the AMX tiles; the host target says so when its CPU has it."""
    assert parse_target(PAIRS).schedule_params().bf16_pairs
    assert not parse_target(AMX).schedule_params().bf16_pairs and parse_target(AMX).schedule_params().bf16_amx
    assert not parse_target(PAIRS).schedule_params().bf16_amx
    host = parse_target("x86-64")
    assert host.schedule_params().bf16_pairs == ("+amx-bf16" not in host.features)


def test_cli_compiles_bf16_with_passes(tmp_path):
    """``ember compile --passes convert-bfloat16``: float32 I/O, bfloat16 inside, the interpreter's result."""
    from compiler.cli import main

    rng = np.random.default_rng(5)
    inits = {"w": (0.2 * rng.standard_normal((16, 6, 3, 3))).astype(np.float32)}
    model = _model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], (1, 6, 8, 8), inits)
    path, lib = tmp_path / "m.onnx", tmp_path / "m.so"
    onnx.save(model, path)
    assert main(["compile", str(path), "--passes", "convert-bfloat16", "-o", str(lib), "-q"]) == 0
    x = rng.standard_normal((1, 6, 8, 8)).astype(np.float32)
    graph = import_model(model)
    run_pipeline(graph, "O2,convert-bfloat16")
    want = interpret_list(graph, {"x": x})[0]
    got = list(load(str(lib)).run({"x": x}).values())[0]
    np.testing.assert_array_equal(got, want)
    assert not np.array_equal(want, interpret_list(import_model(model), {"x": x})[0])  # bf16 did round


def test_int32_matmul_by_a_constant_is_not_taken_for_bf16_words():
    """An int32 MatMul's constant weight is int32 in panels, as the bf16 K-pair words are: the lowering
    asks the op's types, not the packed dtype (reading it as bf16 words failed to compile)."""
    from compiled_checks import check_against_interpreter, node_model

    b = (np.arange(64 * 40, dtype=np.int32).reshape(64, 40) % 7 - 3).astype(np.int32)
    model = node_model(
        "MatMul",
        [("a", TensorProto.INT32, [5, 64]), ("b", TensorProto.INT32, [64, 40])],
        [("y", TensorProto.INT32, None)],
        initializers=[numpy_helper.from_array(b, "b")],
    )
    a = (np.arange(5 * 64, dtype=np.int32).reshape(5, 64) % 5 - 2).astype(np.int32)
    check_against_interpreter(model, {"a": a}, rtol=0, atol=0)
