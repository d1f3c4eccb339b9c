"""The generated header from C: build tests/codegen/c_driver.c with gcc, run it, check outputs,
error codes, 8 threads with their own instances; and check the library's dependencies with ldd."""

from __future__ import annotations

import os
import shutil
import subprocess

import codegen_models as models
import numpy as np
import pytest

from codegen import compile_graph
from compiler import interpret
from frontends.onnx import import_model as load_onnx

HERE = os.path.dirname(os.path.abspath(__file__))
ALLOWED_LIBS = ("linux-vdso", "libc.so", "libm.so", "libpthread.so", "libgcc_s.so", "ld-linux", "libdl.so")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("capi")
    graph = load_onnx(models.convnet())
    lib = str(out / "model.so")
    compile_graph(graph, lib)
    return graph, out, lib


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_c_driver_runs_and_matches(built):
    graph, out, lib = built
    exe = str(out / "c_driver")
    subprocess.run(
        ["gcc", "-O1", "-o", exe, os.path.join(HERE, "c_driver.c"), f"-I{out}", lib, f"-Wl,-rpath,{out}", "-lpthread"],
        check=True,
    )
    x = np.random.default_rng(7).standard_normal((1, 3, 32, 32)).astype(np.float32)
    x.tofile(out / "in.bin")
    proc = subprocess.run([exe, str(out / "in.bin"), str(out / "out.bin")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = np.fromfile(out / "out.bin", dtype=np.float32).reshape(1, 10)
    np.testing.assert_allclose(got, interpret(graph, {"x": x})["probs"], rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(shutil.which("ldd") is None, reason="needs ldd")
def test_library_depends_only_on_libc(built):
    _, _, lib = built
    deps = subprocess.run(["ldd", lib], capture_output=True, text=True, check=True).stdout
    for line in deps.strip().splitlines():
        assert any(name in line for name in ALLOWED_LIBS), f"unexpected dependency: {line.strip()}"
    assert "tvm" not in deps and "python" not in deps


def test_only_prefixed_symbols_exported(built):
    _, _, lib = built
    if shutil.which("nm") is None:
        pytest.skip("needs nm")
    syms = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True).stdout.split("\n")
    names = [line.split()[-1] for line in syms if line.strip()]
    assert names and all(n.startswith("ember_model_") for n in names), names


@pytest.mark.skipif(
    shutil.which("aarch64-linux-gnu-gcc") is None or shutil.which("qemu-aarch64") is None,
    reason="needs gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user",
)
def test_aarch64_cross_compiled_library_runs_under_qemu(tmp_path):
    graph = load_onnx(models.convnet())
    lib = str(tmp_path / "model.so")
    compile_graph(graph, lib, target="aarch64")
    exe = str(tmp_path / "c_driver")
    # -fno-tree-vectorize: aarch64-linux-gnu-gcc 12.2 crashes on this driver at -O2 otherwise
    subprocess.run(
        [
            "aarch64-linux-gnu-gcc",
            "-O1",
            "-fno-tree-vectorize",
            "-o",
            exe,
            os.path.join(HERE, "c_driver.c"),
            f"-I{tmp_path}",
            lib,
            f"-Wl,-rpath,{tmp_path}",
            "-lpthread",
        ],
        check=True,
    )
    x = np.random.default_rng(7).standard_normal((1, 3, 32, 32)).astype(np.float32)
    x.tofile(tmp_path / "in.bin")
    proc = subprocess.run(
        ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu", exe, str(tmp_path / "in.bin"), str(tmp_path / "out.bin")],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, DRIVER_RUNS="3"),
    )
    assert proc.returncode == 0, proc.stderr
    got = np.fromfile(tmp_path / "out.bin", dtype=np.float32).reshape(1, 10)
    np.testing.assert_allclose(got, interpret(graph, {"x": x})["probs"], rtol=1e-4, atol=1e-5)
