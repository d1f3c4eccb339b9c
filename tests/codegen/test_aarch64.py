"""aarch64 as a first-class target: presets, schedule parameters, NEON code, and whole models
cross-compiled with ``--target aarch64`` run under qemu-aarch64 and compared with the interpreter.

Each library is linked by aarch64-linux-gnu-gcc, driven by ``tests/codegen/c_driver.c`` in its
``--io`` mode (every input from a file, one run, every output to a file) under
``qemu-aarch64 -L /usr/aarch64-linux-gnu``, and each output is compared with Ember's interpreter on
the same graph. What runs (docs/aarch64.md has the measured times):

- the nine light zoo models (``benchmarks/light_zoo.py``) at their own input sizes;
- the three benchmark models (``benchmarks/model_zoo.py``) with their full topology at small input
  sizes (64x64 images; BERT-base's 12 layers x 768 wide at sequence 16): qemu runs code about 120x
  slower than the host, and the full sizes would take minutes each;
- ONNX node-suite cases, several hundred graphs merged into a few libraries (``merge_graphs``), so
  that they cost a few link steps and one qemu start each rather than one per case.

The toolchains come from ``scripts/install_toolchains.sh``. Without them these tests skip with the
reason locally and fail when ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np
import pytest

from codegen.target import AARCH64_PRESETS, ScheduleParams, parse_target

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SYSROOT = "/usr/aarch64-linux-gnu"
QEMU_THREADS = "2"


# ------------------------------------------------------------------ targets


def test_default_aarch64_is_generic_armv8_2_with_neon():
    target = parse_target("aarch64")
    assert (target.kind, target.mcpu, target.triple) == ("aarch64", "generic", "aarch64-linux-gnu")
    assert "+neon" in target.features and "+v8.2a" in target.features
    spec = target.to_tvm()
    assert spec["kind"] == "llvm" and spec["mtriple"] == "aarch64-linux-gnu" and spec["mcpu"] == "generic"
    assert spec["mattr"] == list(target.features)


@pytest.mark.parametrize(
    "mcpu, feature", [("cortex-a76", "+dotprod"), ("cortex-a78ae", "+dotprod"), ("neoverse-v1", "+sve")]
)
def test_board_presets_set_cpu_and_features(mcpu, feature):
    import tvm

    target = parse_target(f"aarch64:mcpu={mcpu}")
    assert target.mcpu == mcpu and feature in target.features and "+neon" in target.features
    assert target.vector_bits == 128 and target.vector_registers == 32  # LLVM's fixed-length vectors are NEON
    built = tvm.target.Target(target.to_tvm())  # TVM (and its LLVM) know the CPU and every feature
    assert str(built.attrs["mcpu"]) == mcpu and built.attrs["mtriple"] == "aarch64-linux-gnu"
    if feature == "+sve":
        assert AARCH64_PRESETS[mcpu].sve_bits == 256 and bool(built.attrs["feature.has_sve"])


def test_explicit_options_override_a_preset():
    target = parse_target("aarch64:mcpu=neoverse-v1,features=+neon,cores=3")
    assert target.features == ("+neon",) and target.num_cores == 3 and target.mcpu == "neoverse-v1"
    unknown = parse_target("aarch64:mcpu=cortex-x4")  # not a preset: generic features, that CPU
    assert unknown.mcpu == "cortex-x4" and unknown.features == AARCH64_PRESETS["generic"].features


def test_schedule_params_follow_registers_not_x86_tiles():
    neon = parse_target("aarch64").schedule_params()
    assert neon.lanes == 4
    conv_accumulators = (neon.conv_block // neon.lanes) * neon.conv_tile
    mm_accumulators = neon.mm_vectors * neon.mm_rows(neon.mm_vectors)
    # accumulators plus one vector per weight column and a broadcast input fit in 32 registers
    assert conv_accumulators + neon.conv_block // neon.lanes + 1 <= 32 < 2 * conv_accumulators
    assert mm_accumulators + neon.mm_vectors + 1 <= 32
    x86 = parse_target("x86-64:vector_bits=512").schedule_params()
    assert (x86.conv_block, x86.conv_tile, x86.mm_vectors, x86.mm_rows(2), x86.mm_rows(1)) == (16, 8, 2, 8, 12)
    assert ScheduleParams(16) == x86  # a bare lane count (older callers) means x86's tiles


# ------------------------------------------------------------------ toolchain and harness


def require_toolchain() -> None:
    """Skip (locally) or fail (CI=true) without the cross compiler, its libc and qemu."""
    missing = [tool for tool in ("aarch64-linux-gnu-gcc", "qemu-aarch64") if shutil.which(tool) is None]
    if not os.path.isdir(SYSROOT):
        missing.append(SYSROOT)
    if missing:
        why = f"needs {', '.join(missing)}: run scripts/install_toolchains.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)


@dataclass
class QemuRun:
    """Outputs of one library run under qemu, in the graph's output order, and what it cost."""

    outputs: list
    compile_s: float
    run_s: float


def run_on_aarch64(graph, feeds: dict, workdir: str, target: str = "aarch64", pipeline: str = "O2") -> QemuRun:
    """Compile ``graph`` for ``target``, link c_driver.c against it, run it once under qemu."""
    from compiler.driver import compile_model

    os.makedirs(workdir, exist_ok=True)
    inputs = [np.ascontiguousarray(feeds[p.name], dtype=p.type.dtype.np) for p in graph.params]
    out_types = [(v.type.dtype.np, tuple(v.type.shape)) for v in graph.outputs]
    library = os.path.join(workdir, "model.so")
    start = time.time()
    compile_model(graph, library, target, pipeline=pipeline)
    compile_s = time.time() - start
    driver = os.path.join(workdir, "c_driver")
    # -fno-tree-vectorize: aarch64-linux-gnu-gcc 12.2 crashes on this driver at -O2 otherwise
    subprocess.run(
        ["aarch64-linux-gnu-gcc", "-O1", "-fno-tree-vectorize", "-o", driver, os.path.join(HERE, "c_driver.c")]
        + [f"-I{workdir}", library, f"-Wl,-rpath,{workdir}", "-lpthread"],
        check=True,
    )
    for i, array in enumerate(inputs):
        array.tofile(os.path.join(workdir, f"in{i}.bin"))
    proc = subprocess.run(
        ["qemu-aarch64", "-L", SYSROOT, driver, "--io", os.path.join(workdir, "in"), os.path.join(workdir, "out")],
        capture_output=True,
        text=True,
        timeout=900,
        env=dict(os.environ, EMBER_NUM_THREADS=QEMU_THREADS),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_s = float(proc.stdout.split("run ")[1].split(" s")[0])
    outputs = [
        np.fromfile(os.path.join(workdir, f"out{i}.bin"), dtype=dtype).reshape(shape)
        for i, (dtype, shape) in enumerate(out_types)
    ]
    return QemuRun(outputs, compile_s, run_s)


def relative_diff(got: np.ndarray, expected: np.ndarray) -> float:
    """Largest difference over the largest magnitude (0 for equal arrays, NaNs where expected)."""
    got, expected = np.asarray(got), np.asarray(expected)
    if got.shape != expected.shape:
        return float("inf")
    if expected.size == 0:
        return 0.0
    if expected.dtype.kind not in "fc":
        return 0.0 if np.array_equal(got, expected) else float("inf")
    g, e = got.astype(np.float64), expected.astype(np.float64)
    if not np.array_equal(np.isnan(g), np.isnan(e)) or not np.array_equal(np.isinf(g), np.isinf(e)):
        return float("inf")
    finite = np.isfinite(e)
    if not finite.any():
        return 0.0 if np.array_equal(g[~finite], e[~finite]) else float("inf")
    return float(np.abs(g[finite] - e[finite]).max() / (np.abs(e[finite]).max() + 1e-12))


def interpreted(graph, feeds: dict) -> list:
    from compiler import interpret

    results = interpret(graph, feeds)
    return [np.asarray(results[v.name]) for v in graph.outputs]
