"""Offline CUDA compilation: CUDA C -> a fatbin holding the cubin for one arch and its PTX.

``nvcc -fatbin -gencode arch=compute_XX,code=[sm_XX,compute_XX]`` puts the machine code (run as is
on that architecture) and the PTX (JIT-compiled by the driver on newer GPUs) in one image that
``cuModuleLoadData`` accepts. ``-Xptxas -v`` makes ptxas report each kernel's registers, shared
memory and spills, which ``parse_ptxas`` reads (docs/cuda.md's resource table comes from it).

``compile_modules`` compiles a model's kernels as a few translation units, not one each. TVM writes
every kernel's source as a preamble (headers, half-precision helpers, macros) and then the kernel;
kernels with the same preamble are compiled together, so nvcc preprocesses and parses the headers
once per unit. That fixed cost was about 0.28 s of nvcc's 0.37 s per kernel here (``nvcc -time``
over Inception-v1's kernels: the host preprocessor and cicc on the headers).
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field

from ..errors import CodegenError

SUPPORTED_ARCHS = ("sm_80", "sm_86", "sm_89", "sm_90")

# what one thread block may use on each architecture (CUDA C Programming Guide, "Technical
# Specifications per Compute Capability"): shared memory with the opt-in the host driver makes for
# dynamic shared memory above 48 KB, and 32-bit registers
MAX_SHARED_PER_BLOCK = {"sm_80": 163 * 1024, "sm_86": 99 * 1024, "sm_89": 99 * 1024, "sm_90": 227 * 1024}
MAX_STATIC_SHARED = 48 * 1024
MAX_REGISTERS_PER_BLOCK = 64 * 1024
MAX_THREADS_PER_BLOCK = 1024


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


@dataclass
class CudaModule:
    """One translation unit of kernels compiled into one fatbin (one ``cuModuleLoadData``)."""

    path: str
    kernels: list = field(default_factory=list)  # indices into the kernel list


_KERNEL_START = re.compile(r'^extern "C" __global__', re.MULTILINE)


def split_preamble(source: str) -> tuple[str, str]:
    """(preamble, kernels) of TVM's CUDA source: what precedes the first ``extern "C" __global__``."""
    match = _KERNEL_START.search(source)
    if match is None:
        raise CodegenError('CUDA source without an extern "C" __global__ kernel')
    return source[: match.start()], source[match.start() :]


def group_kernels(sources: list[str], jobs: int) -> list[list[int]]:
    """Indices of ``sources`` in translation units: those with the same preamble together, a group cut
    into pieces of about equal source size so that ``jobs`` compilers stay busy (at least one unit per
    group, about ``jobs`` units per group's share of all the source)."""
    groups: dict[str, list[int]] = {}
    for k, source in enumerate(sources):
        groups.setdefault(split_preamble(source)[0], []).append(k)
    total = sum(len(s) for s in sources) or 1
    units: list[list[int]] = []
    for members in groups.values():
        size = sum(len(sources[k]) for k in members)
        pieces = max(1, min(len(members), round(max(jobs, 1) * size / total)))
        bins: list[list[int]] = [[] for _ in range(pieces)]
        loads = [0] * pieces
        for k in sorted(members, key=lambda k: -len(sources[k])):  # largest first, to the lightest bin
            at = loads.index(min(loads))
            bins[at].append(k)
            loads[at] += len(sources[k])
        units += [sorted(b) for b in bins]
    return units


def compile_modules(kernels: list, build_dir: str, arch: str, jobs: int) -> tuple[list[CudaModule], dict]:
    """Each kernel (``.name``, ``.source``, ``.launches``) compiled into a fatbin of ``build_dir``, in
    the translation units ``group_kernels`` chooses, ``jobs`` nvcc at once; returns the modules and
    ptxas's report per kernel name. A unit nvcc refuses is compiled again kernel by kernel, so that
    an error names its kernel's source."""
    find_nvcc()
    jobs = jobs or os.cpu_count() or 1
    units = group_kernels([k.source for k in kernels], jobs)

    def one(m, members) -> list:
        path = os.path.join(build_dir, f"module_{m}.fatbin")
        src = os.path.join(build_dir, f"module_{m}.cu")
        with open(src, "w") as f:
            f.write(split_preamble(kernels[members[0]].source)[0])
            for k in members:
                f.write(f"\n// ---- {kernels[k].name}\n{split_preamble(kernels[k].source)[1]}")
        try:
            return [(CudaModule(path, members), compile_fatbin(src, path, arch))]
        except CodegenError:
            if len(members) == 1:
                raise
        alone = []  # kernel by kernel: an error names the kernel's own file
        for k in members:
            one_src, one_path = (os.path.join(build_dir, f"{kernels[k].name}.{ext}") for ext in ("cu", "fatbin"))
            with open(one_src, "w") as f:
                f.write(kernels[k].source)
            alone.append((CudaModule(one_path, [k]), compile_fatbin(one_src, one_path, arch)))
        return alone

    with cf.ThreadPoolExecutor(jobs) as pool:
        done = [item for items in pool.map(lambda unit: one(*unit), enumerate(units)) for item in items]
    report: dict = {kernel.name: [] for kernel in kernels}
    for module, rows in done:
        owner = {launch.function: kernels[k].name for k in module.kernels for launch in kernels[k].launches}
        for row in rows:
            name = owner.get(row.function)
            if name is None:
                raise CodegenError(f"ptxas reported a function {row.function} that no kernel launches")
            report[name].append(row)
    return [module for module, _ in done], report


def launch_problems(kernels: list, report: dict, arch: str) -> list[str]:
    """What in each launch of ``kernels`` (``.name``, ``.launches``) a GPU of ``arch`` would refuse,
    given ptxas's ``report`` per kernel name: threads per block, static and total shared memory,
    registers per block (each warp's registers allocated in multiples of 256). The driver refuses such
    a launch only at run time ("too many resources requested"), so the compiler checks it first."""
    problems = []
    for kernel in kernels:
        rows = {row.function: row for row in report.get(kernel.name, [])}
        for launch in kernel.launches:
            row = rows.get(launch.function)
            where = f"kernel {kernel.name} ({launch.function})"
            if row is None:
                problems.append(f"{where}: ptxas reported no registers for it")
                continue
            threads = launch.block[0] * launch.block[1] * launch.block[2]
            shared = row.shared_bytes + launch.shared
            warps = -(-threads // 32)
            registers = warps * (-(-row.registers * 32 // 256) * 256)
            if threads > MAX_THREADS_PER_BLOCK:
                problems.append(f"{where}: {threads} threads per block (at most {MAX_THREADS_PER_BLOCK})")
            if row.shared_bytes > MAX_STATIC_SHARED:
                problems.append(
                    f"{where}: {row.shared_bytes} bytes of static shared memory (at most {MAX_STATIC_SHARED})"
                )
            if shared > MAX_SHARED_PER_BLOCK[arch]:
                problems.append(
                    f"{where}: {shared} bytes of shared memory (at most {MAX_SHARED_PER_BLOCK[arch]} on {arch})"
                )
            if registers > MAX_REGISTERS_PER_BLOCK:
                problems.append(
                    f"{where}: {row.registers} registers x {threads} threads = {registers} per block "
                    f"(at most {MAX_REGISTERS_PER_BLOCK})"
                )
    return problems
