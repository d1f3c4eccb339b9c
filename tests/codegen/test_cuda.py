"""The CUDA backend on a machine without a GPU: code generation, nvcc/ptxas, the library's link
dependencies and the no-driver error. Numerics need a GPU (``@pytest.mark.gpu``, skipped without one).

nvcc is part of the toolchain (scripts/install_toolchains.sh installs it): on CI (``CI`` set) a
missing nvcc fails these tests instead of skipping them.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from codegen import CodegenError, parse_target
from codegen.cuda.nvcc import compile_fatbin, find_nvcc
from compiler.driver import compile_model
from compiler.runtime import RuntimeLoadError, load


def _need_nvcc() -> None:
    try:
        find_nvcc()
    except CodegenError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc} (CI must install it: scripts/install_toolchains.sh)")
        pytest.skip(str(exc))


def _driver_present() -> bool:
    try:
        ctypes.CDLL("libcuda.so.1")
        return True
    except OSError:
        return False


def small_net() -> onnx.ModelProto:
    """Conv+Relu (conv schedule), GlobalAveragePool (reduction), Gemm (matmul), Softmax."""
    rng = np.random.default_rng(1)

    def init(name, *shape):
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fc", "fb"], ["y0"], transB=1),
        helper.make_node("Softmax", ["y0"], ["y"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "small_net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        [init("w", 8, 3, 3, 3), init("b", 8), init("fc", 5, 8), init("fb", 5)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model


@pytest.fixture(scope="module", params=["sm_80", "sm_90"])
def built(request, tmp_path_factory):
    _need_nvcc()
    out = tmp_path_factory.mktemp(f"cuda_{request.param}") / "net.so"
    result = compile_model(small_net(), str(out), f"cuda:{request.param}")
    return request.param, result


def test_compiles_and_ptxas_reports_every_kernel(built):
    arch, result = built
    assert os.path.exists(result.library) and os.path.exists(result.header)
    assert result.stats["cuda_arch"] == arch
    resources = result.stats["cuda_resources"]
    assert len(resources) == result.num_unique_kernels >= 3
    for name, rows in resources.items():
        assert rows, f"ptxas reported nothing for {name}"
        for row in rows:
            assert row["function"].startswith(name) and 0 < row["registers"] <= 255
            assert row["spill_stores"] == 0
    header = open(result.header).read()
    for fn in ("_run_device(", "_create_cuda(", "_set_stream(", "_gpu_time_ms(", "_run("):
        assert f"ember_model{fn}" in header


def test_library_embeds_cubin_and_ptx(built):
    arch, result = built
    data = open(result.library, "rb").read()
    assert b"\x50\xed\x55\xba" in data  # fatbin magic (0xBA55ED50, little-endian)
    assert data.count(b"\x7fELF") >= 2  # the library itself, then the cubin(s)


def test_ldd_lists_no_cuda_library(built):
    _, result = built
    ldd = subprocess.run(["ldd", result.library], capture_output=True, text=True, check=True).stdout
    assert "libc.so" in ldd
    for line in ldd.splitlines():
        assert "cuda" not in line.lower() and "nvrtc" not in line.lower(), line
    undefined = subprocess.run(
        ["nm", "-D", "--undefined-only", result.library], capture_output=True, text=True, check=True
    ).stdout
    assert not [s for s in undefined.split() if s.startswith("cu")], undefined


def test_create_without_driver_returns_the_no_device_error(built):
    if _driver_present():
        pytest.skip("a CUDA driver is present: the no-driver path cannot be seen here")
    _, result = built
    with pytest.raises(RuntimeLoadError) as info:
        load(result.library)
    text = str(info.value)
    assert "(code 8)" in text and "CUDA driver not found: libcuda.so.1" in text


def test_target_spelling_and_arch_checks(tmp_path):
    assert parse_target("cuda:sm_90").cuda_arch == "sm_90"
    assert parse_target("cuda:arch=sm_86").cuda_arch == "sm_86"
    assert parse_target("cuda").cuda_arch == "sm_80"
    with pytest.raises(CodegenError, match="unsupported CUDA arch"):
        compile_fatbin(str(tmp_path / "k.cu"), str(tmp_path / "k.fatbin"), "sm_70")


def test_cuda_library_needs_no_cpu_compiler_for_cuda(built):
    """The host driver is plain C: the generated library exports only the model's prefix."""
    _, result = built
    exported = subprocess.run(
        ["nm", "-D", "--defined-only", result.library], capture_output=True, text=True, check=True
    ).stdout.split()
    names = [s for s in exported if s.startswith("ember_model_")]
    assert "ember_model_run_device" in names and "ember_model_create" in names
    assert not [s for s in exported if s.startswith(("ember_pool", "ember_set_error", "__tvm"))]


@pytest.mark.gpu
def test_matches_interpreter_on_gpu(tmp_path):
    if not _driver_present() or shutil.which("nvidia-smi") is None:
        pytest.skip("needs an NVIDIA GPU and driver")
    _need_nvcc()
    from frontends.onnx.backend import EmberBackend

    model = small_net()
    out = tmp_path / "net.so"
    compile_model(model, str(out), "cuda:sm_80")
    lib = load(str(out))
    x = np.random.default_rng(2).standard_normal((1, 3, 8, 8)).astype(np.float32)
    got = lib.run({"x": x})["y"]
    want = EmberBackend.prepare(model).run({"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert lib.gpu_time_ms() > 0


_DRIVE_SCRIPT = r"""
import json, sys
import numpy as np
from compiler.runtime import load
lib = load(sys.argv[1])
x = np.arange(lib.inputs[0].nbytes // 4, dtype=np.float32).reshape(lib.inputs[0].shape)
try:
    y = lib.run({"x": x})["y"]
    try:
        lib.run_device([x], [np.empty_like(y)])
        host_refused = ""
    except Exception as exc:
        host_refused = str(exc)
    y2 = np.full_like(y, -1.0)
    lib.run_device([x.ctypes.data], [y2.ctypes.data])  # the stand-in driver's device memory is host memory
    print(json.dumps({"ok": True, "y": y.tolist(), "y2": y2.tolist(), "ms": lib.gpu_time_ms(),
                      "info": lib.info(), "host_refused": host_refused}))
except Exception as exc:
    print(json.dumps({"ok": False, "error": str(exc)}))
"""


@pytest.fixture(scope="module")
def fake_driver(tmp_path_factory):
    """A directory holding a stand-in libcuda.so.1 (tests/codegen/fake_libcuda.c)."""
    where = tmp_path_factory.mktemp("fake_cuda")
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_libcuda.c")
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O1", "-o", str(where / "libcuda.so.1"), src], check=True, capture_output=True
    )
    return where


def _drive(library: str, driver_dir, log, **env) -> tuple[dict, list[list[str]]]:
    environ = dict(os.environ, LD_LIBRARY_PATH=str(driver_dir), FAKE_CUDA_LOG=str(log), **env)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    environ["PYTHONPATH"] = root + os.pathsep + environ.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", _DRIVE_SCRIPT, library], env=environ, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), [line.split() for line in open(log).read().splitlines()]


def test_host_driver_runs_against_a_stand_in_driver(built, fake_driver, tmp_path):
    """create / run / run_device / destroy through the driver API: modules load, every kernel is
    found by name in its fatbin, launches stay within device limits with every pointer inside a
    device allocation, inputs go in and outputs come back at the arena offsets, run_device copies
    device to device (and refuses host arrays given through DLPack), the CUDA-event time is reported."""
    _, result = built
    answer, log = _drive(result.library, fake_driver, tmp_path / "log")
    assert answer["ok"], answer
    kinds = [line[0] for line in log]
    modules = [line for line in log if line[0] == "module"]
    assert len(modules) == result.stats["cuda_modules"] and all(m[1] == "ok" for m in modules)
    assert len(modules) < result.num_unique_kernels  # kernels share modules (nvcc.compile_modules)
    functions = [line for line in log if line[0] == "function"]
    assert functions and all(f[2] == "1" for f in functions)
    allocs = {int(line[1]): int(line[2]) for line in log if line[0] == "alloc"}
    assert allocs[0] == answer["info"]["arena_bytes"] and allocs[1] == answer["info"]["weight_bytes"]
    weights_copy, input_copy = [line for line in log if line[0] == "htod"]
    assert weights_copy[1:] == ["1", "0", str(allocs[1])]
    assert input_copy[1] == "0" and int(input_copy[3]) == 3 * 8 * 8 * 4
    launches = [line for line in log if line[0] == "launch"]
    assert len(launches) >= result.num_kernels
    assert {line[1] for line in launches} == {f[1] for f in functions}
    for line in launches:
        grid, block = [int(v) for v in line[2:5]], [int(v) for v in line[5:8]]
        assert min(grid + block) >= 1 and block[0] * block[1] * block[2] <= 1024, line
        inside, total = line[9].split("/")
        assert inside == total and int(total) >= 2, line  # every argument is a device pointer of ours
    dtod = [line for line in log if line[0] == "dtod"]
    assert [d[1:3] for d in dtod] == [["0", "-1"], ["-1", "0"]]  # run_device: caller -> arena -> caller
    assert answer["y2"] == answer["y"]
    assert "CUDA device" in answer["host_refused"]  # a numpy array's DLPack device is the CPU
    (output_copy,) = [line for line in log if line[0] == "dtoh"]
    assert output_copy[1] == "0" and int(output_copy[3]) == 5 * 4
    assert kinds.index("htod") < kinds.index("launch") < kinds.index("dtoh")
    assert answer["ms"] == 0.5 and len(answer["y"][0]) == 5


def test_host_driver_reports_a_failed_launch(built, fake_driver, tmp_path):
    """Kernel by kernel (EMBER_CUDA_GRAPHS=0), a failed launch names its kernel; through the graph, the
    error says how to get that name."""
    _, result = built
    answer, log = _drive(
        result.library, fake_driver, tmp_path / "log", FAKE_CUDA_FAIL_LAUNCH="2", EMBER_CUDA_GRAPHS="0"
    )
    assert not answer["ok"]
    second = [line for line in log if line[0] == "launch"][1][1]
    assert "(code 9)" in answer["error"] and second in answer["error"] and "fake launch failure" in answer["error"]
    answer, _ = _drive(result.library, fake_driver, tmp_path / "log_graph", FAKE_CUDA_FAIL_LAUNCH="2")
    assert not answer["ok"] and "(code 9)" in answer["error"]
    assert "cuGraphLaunch" in answer["error"] and "EMBER_CUDA_GRAPHS=0" in answer["error"]


def test_host_driver_captures_the_kernels_as_one_graph(built, fake_driver, tmp_path):
    """create captures every launch once (on its own stream) and each run replays them with one graph
    launch, in the same order with the same arguments; EMBER_CUDA_GRAPHS=0, or a driver that refuses
    stream capture, launches kernel by kernel and gives the same outputs."""
    _, result = built
    answer, log = _drive(result.library, fake_driver, tmp_path / "log")
    assert answer["ok"], answer
    kinds = [line[0] for line in log]
    records = [line[1:] for line in log if line[0] == "record"]
    htods = [i for i, kind in enumerate(kinds) if kind == "htod"]  # the weights, then each run's input
    assert kinds.count("capture") == 2 and htods[0] < kinds.index("capture") < kinds.index("record") < htods[1]
    assert len(records) >= result.num_kernels
    graphs = [line for line in log if line[0] == "graph"]
    assert len(graphs) == 2 and all(int(g[1]) == len(records) for g in graphs)  # run, then run_device
    launches = [line[1:] for line in log if line[0] == "launch"]
    assert launches == records * 2
    for env in ({"EMBER_CUDA_GRAPHS": "0"}, {"FAKE_CUDA_NO_GRAPHS": "1"}):
        plain, plain_log = _drive(result.library, fake_driver, tmp_path / f"log_{len(env)}_{list(env)[0]}", **env)
        assert plain["ok"] and plain["y"] == answer["y"] and plain["y2"] == answer["y2"]
        assert not [line for line in plain_log if line[0] in ("graph", "record")]
        assert [line[1:] for line in plain_log if line[0] == "launch"] == records * 2


def test_launch_table_of_a_multi_kernel_spec_shares_scratch():
    """Matmul -> row sums -> max: three kernels whose intermediates live in global scratch, in order."""
    import tvm
    from tvm import te

    from codegen.cuda.kernel import _generate
    from codegen.cuda.schedule import gpu_schedule

    a = te.placeholder((64, 128), "float32", name="A")
    b = te.placeholder((128, 256), "float32", name="B")
    k, r, r2 = te.reduce_axis((0, 128), "k"), te.reduce_axis((0, 256), "r"), te.reduce_axis((0, 64), "r2")
    c = te.compute((64, 256), lambda i, j: te.sum(a[i, k] * b[k, j], axis=k), name="C")
    d = te.compute((64,), lambda i: te.sum(c[i, r], axis=r), name="D")
    e = te.compute((1,), lambda i: te.max(d[r2], axis=r2), name="E")
    func = te.create_prim_func([a, b, e]).with_attr("global_symbol", "mm")
    target = tvm.target.Target(parse_target("cuda").to_tvm())
    kernel = _generate(gpu_schedule(tvm.IRModule({"main": func}), target), target, "mm", 3)
    assert [launch.args for launch in kernel.launches] == [
        (("param", 0), ("param", 1), ("scratch", 0)),
        (("scratch", 0), ("scratch", 64 * 256 * 4)),
        (("scratch", 64 * 256 * 4), ("param", 2)),
    ]
    assert kernel.scratch_bytes == 64 * 256 * 4 + 256  # D's 256 bytes, rounded to 256
    assert [launch.function for launch in kernel.launches] == ["mm_kernel", "mm_kernel_1", "mm_kernel_2"]
    for launch in kernel.launches:
        assert launch.block[0] * launch.block[1] * launch.block[2] <= 1024 and min(launch.grid) >= 1
        assert f"void __launch_bounds__({launch.block[0] * launch.block[1] * launch.block[2]}) {launch.function}(" in (
            kernel.source
        )


def test_launch_arguments_name_the_kernel_inputs_they_bind():
    """Each ("param", k) argument of a launch, k < number of inputs, lands on the kernel parameter
    TVM named after input placeholder ``in<k>``; the others are outputs (named by their compute)."""
    import re

    from codegen.cuda.kernel import build_cuda_kernel
    from codegen.plan import build_plan
    from codegen.tvm.registry import get_lowering
    from compiler.driver import load_graph, prepare_for_codegen

    graph = prepare_for_codegen(load_graph(small_net()), "O2", None)
    plan = build_plan(graph, get_lowering, target_name="cuda")
    target = parse_target("cuda:sm_90").to_tvm()
    specs = list(dict.fromkeys(call.spec for call in plan.calls))
    assert len(specs) >= 3
    for n, spec in enumerate(specs):
        kernel = build_cuda_kernel(spec, f"t{n}", target)
        for launch in kernel.launches:
            signature = re.search(rf"void (?:__launch_bounds__\(\d+\) )?{launch.function}\(([^)]*)\)", kernel.source)
            names = [p.split()[-1] for p in signature.group(1).split(",")]
            assert len(names) == len(launch.args)
            for (kind, value), name in zip(launch.args, names):
                assert kind == "param"
                assert name.startswith(f"in{value}_") == (value < len(spec.inputs)), (spec.label, launch, names)


def test_cpu_only_kernel_forms_stay_off_the_gpu():
    """The CPU lowerings' multi-stage forms (depthwise rows with column phases, pointwise pixel-vector
    products, row-wise Softmax, vector GlobalAveragePool, injective producers fused into a reduction)
    are not built for CUDA: DLight refused the
    stride-2 depthwise one ("reduction block vars are not used to index the output buffers"), which
    made MobileNetV2 fail for sm_80/sm_90 (its 96 x 112 x 112 stride-2 layer, as here). Every kernel
    of a net with each of them generates."""
    from codegen.cuda.kernel import build_cuda_kernel
    from codegen.plan import build_plan
    from codegen.tvm.registry import get_lowering
    from compiler.driver import load_graph, prepare_for_codegen

    rng = np.random.default_rng(2)

    def init(name, *shape):
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "dw"], ["d0"], group=96, pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Clip", ["d0", "lo", "hi"], ["d"]),  # MobileNetV2's ReLU6 epilogue
        helper.make_node("Conv", ["d", "pw"], ["p"]),
        helper.make_node("Concat", ["p", "p"], ["cc"], axis=1),  # DenseNet: Concat + Relu before a pool
        helper.make_node("Relu", ["cc"], ["rr"]),
        helper.make_node("GlobalAveragePool", ["rr"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Softmax", ["f"], ["y"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "mobile",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 96, 112, 112])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])],
        [
            init("dw", 96, 1, 3, 3),
            init("pw", 32, 96, 1, 1),
            numpy_helper.from_array(np.array(0, np.float32), "lo"),
            numpy_helper.from_array(np.array(6, np.float32), "hi"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    prepared = prepare_for_codegen(load_graph(model), "O2", None, target="cuda:sm_80")
    plan = build_plan(prepared, get_lowering, target_name="cuda")
    target = parse_target("cuda:sm_80").to_tvm()
    specs = list(dict.fromkeys(call.spec for call in plan.calls))
    assert {op.op for spec in specs for op in spec.ops} >= {"Conv", "GlobalAveragePool", "Softmax"}
    for n, spec in enumerate(specs):
        kernel = build_cuda_kernel(spec, f"m{n}", target)
        assert kernel.launches and "__global__" in kernel.source


def test_matmul_tile_fills_the_gpu_and_divides_the_columns():
    """The thread-block tile of a matmul is sized to the output: BERT's 128 x 768 projections and
    ResNet-50's 3x3 convolutions on 14 x 14 and 7 x 7 maps at batch 1 get a block on every
    multiprocessor (DLight's fixed 32 x 64 gave 48, 28 and 16 on 132), a large convolution keeps a
    large tile, a tile divides the columns and pads the rows by at most MAX_ROW_PADDING."""
    from codegen.cuda.schedule import MATMUL_TILES, MAX_ROW_PADDING, SM_COUNT, matmul_tile

    sms = SM_COUNT["sm_90"]
    assert matmul_tile(1, 50176, 256, sms) == MATMUL_TILES[0]  # VGG's first-stage 3x3 conv as a GEMM
    cases = [(1, 128, 768), (1, 128, 3072), (1, 3136, 64), (12, 128, 128), (1, 784, 512), (1, 12544, 32)]
    for batch, m, n in cases + [(1, 196, 256), (1, 49, 512), (1, 49, 2048)]:
        tile = matmul_tile(batch, m, n, sms)
        tm, tn = tile[0] * tile[2], tile[1] * tile[3]
        assert n % tn == 0 and -(-m // tm) * tm <= MAX_ROW_PADDING * m, (batch, m, n)
        assert batch * -(-m // tm) * (n // tn) >= sms - 4, (batch, m, n)  # 49 rows x 512: 4 x 32 = 128
    # BERT's projection: the largest tile with a block per multiprocessor (16 x 32: 192 blocks)
    assert matmul_tile(1, 128, 768, sms) == (8, 16, 2, 2)
    assert matmul_tile(1, 1, 1000, sms) is None  # no tile divides 1,000 columns: DLight's own


def test_matmul_launch_uses_the_sized_tile():
    """A 128 x 768 fp32 matmul launches (768 / 32) x (128 / 16) blocks of 8 x 16 threads for sm_90."""
    import tvm
    from tvm import te

    from codegen.cuda.kernel import _generate
    from codegen.cuda.schedule import gpu_schedule

    a = te.placeholder((128, 256), "float32", name="A")
    b = te.placeholder((256, 768), "float32", name="B")
    k = te.reduce_axis((0, 256), "k")
    c = te.compute((128, 768), lambda i, j: te.sum(a[i, k] * b[k, j], axis=k), name="C")
    func = te.create_prim_func([a, b, c]).with_attr("global_symbol", "mm")
    target = tvm.target.Target(parse_target("cuda:sm_90").to_tvm())
    (launch,) = _generate(gpu_schedule(tvm.IRModule({"main": func}), target), target, "mm", 3).launches
    assert launch.block == (8, 16, 1)
    assert launch.grid[0] * launch.grid[1] * launch.grid[2] == (768 // 32) * (128 // 16)


def test_fp16_matmul_builds_in_a_subprocess():
    """DLight's tensor-core rule once segfaulted TVM 0.27 on this fp16 matmul (it made every fp16 BERT
    compile for CUDA die); Ember's tensor-core rule schedules it now (tests/codegen/
    test_cuda_tensor_core.py). Built in a subprocess, so that a crash in TVM's tensorization fails
    this test instead of killing the test run."""
    code = """
import tvm
from tvm import te
from codegen import parse_target
from codegen.cuda.kernel import _generate
from codegen.cuda.schedule import gpu_schedule
a = te.placeholder((128, 768), "float16", name="A")
b = te.placeholder((768, 768), "float16", name="B")
k = te.reduce_axis((0, 768), "k")
c = te.compute((128, 768), lambda i, j: te.sum(a[i, k] * b[k, j], axis=k), name="C")
func = te.create_prim_func([a, b, c]).with_attr("global_symbol", "mm")
target = tvm.target.Target(parse_target("cuda:sm_90").to_tvm())
kernel = _generate(gpu_schedule(tvm.IRModule({"main": func}), target), target, "mm", 3)
print("half" in kernel.source, len(kernel.launches))
"""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["True", "1"]


def test_classifier_gemm_at_batch_one_spreads_over_the_gpu():
    """A 1 x 2048 x 1000 Gemm with bias (ResNet-50's classifier): 32 outputs per thread block, K split
    over 32 threads of each (DLight's reduction rule had put all 1,000 outputs in one block)."""
    import tvm
    from tvm import te

    from codegen.cuda.kernel import _generate
    from codegen.cuda.schedule import gpu_schedule

    a = te.placeholder((1, 2048), "float32", name="A")
    b = te.placeholder((1000, 2048), "float32", name="B")
    bias = te.placeholder((1000,), "float32", name="C")
    k = te.reduce_axis((0, 2048), "k")
    mm = te.compute((1, 1000), lambda i, j: te.sum(a[i, k] * b[j, k], axis=k), name="mm")
    out = te.compute((1, 1000), lambda i, j: mm[i, j] + bias[j], name="out")
    func = te.create_prim_func([a, b, bias, out]).with_attr("global_symbol", "gemm")
    target = tvm.target.Target(parse_target("cuda:sm_90").to_tvm())
    launches = _generate(gpu_schedule(tvm.IRModule({"main": func}), target), target, "gemm", 4).launches
    assert launches[0].grid == (32, 1, 1) and launches[0].block == (32, 32, 1)
    assert all(launch.grid[0] > 1 for launch in launches)


def test_depthwise_conv_is_one_thread_per_output():
    """A depthwise 3x3 convolution with its Clip (MobileNetV2's 32 x 112 x 112 layer): one kernel, one
    thread per output in blocks of 256 (DLight's reduction rule launched a 256-thread block per
    output: 401,408 blocks), whose loops compute the kernel's definition; a regular convolution
    stays a tiled GEMM."""
    from codegen.cuda.kernel import build_cuda_kernel
    from codegen.plan import build_plan
    from codegen.tvm.registry import get_lowering
    from compiler.driver import load_graph, prepare_for_codegen

    rng = np.random.default_rng(4)
    inits = [
        numpy_helper.from_array((rng.standard_normal((32, 1, 3, 3)) * 0.3).astype(np.float32), "dw"),
        numpy_helper.from_array((rng.standard_normal((16, 32, 1, 1)) * 0.3).astype(np.float32), "pw"),
        numpy_helper.from_array(np.array(0, np.float32), "lo"),
        numpy_helper.from_array(np.array(6, np.float32), "hi"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "dw"], ["d"], group=32, kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Clip", ["d", "lo", "hi"], ["c"]),
        helper.make_node("Conv", ["c", "pw"], ["y"], kernel_shape=[1, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "dw",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32, 112, 112])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 112, 112])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    graph_ir = prepare_for_codegen(load_graph(model), "O2,fuse{prologues=0}", None)
    plan = build_plan(graph_ir, get_lowering, target_name="cuda")
    target = parse_target("cuda:sm_90").to_tvm()
    specs = list(dict.fromkeys(call.spec for call in plan.calls))
    by_label = {spec.label: build_cuda_kernel(spec, f"t{n}", target) for n, spec in enumerate(specs)}
    (depthwise,) = by_label["conv_clip"].launches
    assert depthwise.block == (256, 1, 1) and depthwise.grid == (32 * 112 * 112 // 256, 1, 1)
    # the schedule's loops without thread bindings (the Clip computed at each output) against the
    # kernel's definition, both built for the CPU
    import tvm

    from codegen.cuda.schedule import schedule_per_output
    from codegen.tvm.kernel import spec_to_te

    placeholders, outputs = spec_to_te(next(s for s in specs if s.label == "conv_clip"), [])
    func = tvm.te.create_prim_func(placeholders + outputs)
    args = [rng.standard_normal([int(d) for d in t.shape]).astype(np.float32) for t in placeholders + outputs]
    results = []
    for mod in (tvm.IRModule({"main": func}), schedule_per_output(func, emulate=True).mod):
        tensors = [tvm.runtime.tensor(a) for a in args]
        tvm.tirx.build(mod, "llvm")(*tensors)
        results.append(tensors[-1].numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-6, atol=1e-6)
    assert 0 < results[0].max() <= 6  # the Clip is applied
    (pointwise,) = by_label["conv"].launches
    assert pointwise.block[0] * pointwise.block[1] > 1 and pointwise.grid[0] < 32 * 112 * 112 // 256


@pytest.mark.parametrize("attrs", [dict(strides=[2, 2], pads=[1, 1, 1, 1]), dict(strides=[2, 2], ceil_mode=1)])
def test_max_pool_is_one_reduction_per_output_on_the_gpu(attrs):
    """A 2-D MaxPool for CUDA is one reduction over each 3x3 window, a thread per output that keeps
    its maximum in a register and stores it once: the CPU's two vectorised passes, inlined into one
    kernel by the GPU schedule, read each input value 169 times per output (3 s of TVM passes per
    kernel). The GPU form and its schedule's loops, built for the CPU, match the interpreter with
    NaNs in the windows, at the padding too."""
    import tvm
    from tvm import s_tir

    from codegen.cuda.kernel import build_cuda_kernel
    from codegen.cuda.schedule import schedule_per_output
    from codegen.plan import build_plan
    from codegen.tvm.kernel import spec_to_te
    from codegen.tvm.registry import get_lowering
    from compiler import interpret
    from compiler.driver import load_graph, prepare_for_codegen

    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], **attrs)
    graph = helper.make_graph(
        [node],
        "pool",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64, 55, 55])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    (call,) = build_plan(prepare_for_codegen(load_graph(model), "O2", None), get_lowering, target_name="cuda").calls
    placeholders, outputs = spec_to_te(call.spec, [])
    func = tvm.te.create_prim_func(placeholders + outputs)
    sch = s_tir.Schedule(func)
    (block,) = sch.get_child_blocks(sch.get_sblock("root"))  # no ``pool_rows`` pass
    assert [iv.iter_type for iv in sch.get(block).iter_vars].count(tvm.tirx.IterVar.CommReduce) == 2
    kernel = build_cuda_kernel(call.spec, "pool", parse_target("cuda:sm_90").to_tvm())
    (launch,) = kernel.launches
    count = int(np.prod(outputs[0].shape))
    assert launch.block == (256, 1, 1) and launch.grid == (-(-count // 256), 1, 1)
    assert kernel.source.count("max_pool_ptr[") == 1  # the output's one access: its store

    x = np.random.default_rng(6).standard_normal((1, 64, 55, 55)).astype(np.float32)
    x[0, 0, 0, 0] = x[0, 3, 27, 31] = x[0, 5, 54, 54] = np.nan
    want = interpret(load_graph(model), {"x": x})["y"]
    assert np.isnan(want).sum() >= 3
    # the definition, and the schedule's loops and register accumulator without thread bindings
    for mod in (tvm.IRModule({"main": func}), schedule_per_output(func, emulate=True).mod):
        got = tvm.runtime.tensor(np.zeros(want.shape, np.float32))
        tvm.tirx.build(mod, "llvm")(tvm.runtime.tensor(x), got)
        np.testing.assert_array_equal(got.numpy(), want)
