"""Offline CUDA compilation: CUDA C -> a fatbin holding the cubin for one arch and its PTX.

``nvcc -fatbin -gencode arch=compute_XX,code=[sm_XX,compute_XX]`` puts the machine code (run as is
on that architecture) and the PTX (JIT-compiled by the driver on newer GPUs) in one image that
``cuModuleLoadData`` accepts. ``-Xptxas -v`` makes ptxas report each kernel's registers, shared
memory and spills, which ``parse_ptxas`` reads (docs/cuda.md's resource table comes from it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from ..errors import CodegenError

SUPPORTED_ARCHS = ("sm_80", "sm_86", "sm_89", "sm_90")


@dataclass(frozen=True)
class KernelResources:
    """What ptxas reported for one kernel function."""

    function: str
    registers: int
    shared_bytes: int
    spill_stores: int
    spill_loads: int


def find_nvcc() -> str:
    """nvcc from $EMBER_NVCC, PATH, /usr/local/cuda/bin or where scripts/install_cuda_toolchain.sh
    puts it; a CodegenError saying how to get it."""
    home = os.environ.get("EMBER_CUDA_HOME", "/opt/ember-cuda")
    for candidate in (
        os.environ.get("EMBER_NVCC"),
        shutil.which("nvcc"),
        "/usr/local/cuda/bin/nvcc",
        os.path.join(home, "nvidia", "cu13", "bin", "nvcc"),
    ):
        if candidate and os.path.exists(candidate):
            return candidate
    raise CodegenError(
        "nvcc not found: compiling for --target cuda needs the CUDA toolkit's nvcc and ptxas "
        "(run scripts/install_toolchains.sh, or set EMBER_NVCC)"
    )


def compile_fatbin(source_path: str, fatbin_path: str, arch: str) -> list[KernelResources]:
    """Compile ``source_path`` into ``fatbin_path`` (cubin for ``arch`` + its PTX); returns ptxas's report."""
    if arch not in SUPPORTED_ARCHS:
        raise CodegenError(f"unsupported CUDA arch '{arch}' (supported: {', '.join(SUPPORTED_ARCHS)})")
    number = arch.split("_")[1]
    cmd = [
        find_nvcc(),
        "-fatbin",
        f"-gencode=arch=compute_{number},code=[sm_{number},compute_{number}]",
        "-O3",
        "-std=c++17",
        "-Xptxas",
        "-v",
        "-o",
        fatbin_path,
        source_path,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise CodegenError(f"nvcc failed on {os.path.basename(source_path)}:\n{proc.stderr[-3000:]}")
    return parse_ptxas(proc.stderr)


_FUNCTION = re.compile(r"Compiling entry function '([^']+)' for '(sm_\d+)'")
_REGS = re.compile(r"Used (\d+) registers")
_SMEM = re.compile(r"(\d+) bytes smem")
_SPILL = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")


def parse_ptxas(report: str) -> list[KernelResources]:
    """Per-kernel registers, static shared memory and spills from ``ptxas -v`` output."""
    found: list[KernelResources] = []
    current, spills = None, (0, 0)
    for line in report.splitlines():
        match = _FUNCTION.search(line)
        if match:
            current, spills = match.group(1), (0, 0)
            continue
        spill = _SPILL.search(line)
        if spill and current:
            spills = (int(spill.group(1)), int(spill.group(2)))
        regs = _REGS.search(line)
        if regs and current:
            smem = _SMEM.search(line)
            found.append(KernelResources(current, int(regs.group(1)), int(smem.group(1)) if smem else 0, *spills))
            current = None
    return found
