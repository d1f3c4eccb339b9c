"""The CUDA backend on a machine without a GPU: code generation, nvcc/ptxas, the library's link
dependencies and the no-driver error. Numerics need a GPU (``@pytest.mark.gpu``, skipped without one).

nvcc is part of the toolchain (scripts/install_toolchains.sh installs it): on CI (``CI`` set) a
missing nvcc fails these tests instead of skipping them.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from codegen import CodegenError, parse_target
from codegen.cuda.nvcc import compile_fatbin, find_nvcc, parse_ptxas
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


def test_parse_ptxas_reads_registers_shared_memory_and_spills(tmp_path):
    _need_nvcc()
    src = tmp_path / "k.cu"
    src.write_text(
        'extern "C" __global__ void scale(float* x) {\n'
        "  __shared__ float tile[64];\n"
        "  tile[threadIdx.x] = x[threadIdx.x];\n"
        "  __syncthreads();\n"
        "  x[threadIdx.x] = 2.0f * tile[63 - threadIdx.x];\n"
        "}\n"
    )
    rows = compile_fatbin(str(src), str(tmp_path / "k.fatbin"), "sm_80")
    assert [r.function for r in rows] == ["scale"]
    assert rows[0].shared_bytes == 256 and rows[0].registers > 0
    assert parse_ptxas("ptxas info    : 0 bytes gmem\n") == []


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
