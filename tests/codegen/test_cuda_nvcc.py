"""codegen/cuda/nvcc.py without a GPU: ptxas's report, kernels compiled as shared translation units,
and the launch limits the compiler checks."""

from __future__ import annotations

import pytest
from test_cuda import _need_nvcc

from codegen import CodegenError
from codegen.cuda.kernel import CudaKernel, KernelLaunch
from codegen.cuda.nvcc import (
    KernelResources,
    compile_fatbin,
    compile_modules,
    group_kernels,
    launch_problems,
    parse_ptxas,
)


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


def _source_kernel(name: str, preamble: str, body: str = "x[threadIdx.x] *= 2.0f;"):
    source = f'{preamble}extern "C" __global__ void {name}_kernel(float* x) {{ {body} }}\n'
    return CudaKernel(name, source, [KernelLaunch(f"{name}_kernel", (("param", 0),), (1, 1, 1), (32, 1, 1))])


def test_kernels_with_one_preamble_are_compiled_as_one_module(tmp_path):
    """Kernels whose TVM preambles are the same share a translation unit (nvcc parses the headers
    once), cut into about ``jobs`` units; others get their own; ptxas's report goes to each kernel."""
    _need_nvcc()
    plain, half = "#include <cstdint>\n", "#include <cuda_fp16.h>\n"
    kernels = [_source_kernel("a", plain), _source_kernel("b", half), _source_kernel("c", plain)]
    assert group_kernels([k.source for k in kernels], 1) == [[0, 2], [1]]
    many = [_source_kernel(f"k{n}", plain) for n in range(8)]
    units = group_kernels([k.source for k in many], 4)
    assert len(units) == 4 and sorted(k for unit in units for k in unit) == list(range(8))
    modules, report = compile_modules(kernels, str(tmp_path), "sm_80", 1)
    assert [m.kernels for m in modules] == [[0, 2], [1]]
    assert {name: [r.function for r in rows] for name, rows in report.items()} == {
        "a": ["a_kernel"],
        "b": ["b_kernel"],
        "c": ["c_kernel"],
    }
    image = open(modules[0].path, "rb").read()
    assert b"a_kernel" in image and b"c_kernel" in image and b"b_kernel" not in image


def test_a_unit_nvcc_refuses_is_compiled_kernel_by_kernel(tmp_path):
    """Kernels that compile alone but not together (a helper each defines) become a module each; a
    kernel nvcc refuses is named by its own file."""
    _need_nvcc()
    kernels = [_source_kernel(n, "", "x[0] = twice(x[0]);") for n in ("p", "q")]
    for kernel in kernels:  # TVM's order: the declaration, then (here) a helper, then the definition
        declaration = f'extern "C" __global__ void {kernel.name}_kernel(float* x);\n'
        kernel.source = declaration + "__device__ float twice(float v) { return 2.0f * v; }\n" + kernel.source
    (tmp_path / "ok").mkdir()
    modules, report = compile_modules(kernels, str(tmp_path / "ok"), "sm_80", 1)
    assert [m.kernels for m in modules] == [[0], [1]] and set(report) == {"p", "q"}
    broken = [_source_kernel("good", ""), _source_kernel("bad", "", "x[threadIdx.x] = undefined_name;")]
    with pytest.raises(CodegenError, match="nvcc failed on bad.cu"):
        compile_modules(broken, str(tmp_path), "sm_80", 1)


def test_launch_problems_names_what_a_gpu_refuses():
    """A block of 1024 threads at 72 registers each needs 73,728 registers (64K per block); 50 KB of
    static shared memory is over the 48 KB a kernel may declare; 200 KB in all fits sm_90 (227 KB)
    but not sm_80 (163 KB)."""
    launch = KernelLaunch("k_kernel", (), (1, 1, 1), (1024, 1, 1), 150 * 1024)
    kernel = CudaKernel("k", "", [launch])
    report = {"k": [KernelResources("k_kernel", 72, 50 * 1024, 0, 0)]}
    sm80 = launch_problems([kernel], report, "sm_80")
    assert len(sm80) == 3 and "73728 per block" in sm80[2] and "sm_80" in sm80[1] and "static" in sm80[0]
    assert len(launch_problems([kernel], report, "sm_90")) == 2
    fits = {"k": [KernelResources("k_kernel", 64, 0, 0, 0)]}
    assert launch_problems([kernel], fits, "sm_80") == []  # 1024 x 64 = 65,536 exactly
    assert "no registers" in launch_problems([kernel], {"k": []}, "sm_90")[0]
