"""The C runtime's workspace allocator (``codegen/aot/ember_runtime.c``), built with
AddressSanitizer: aligned blocks, each thread's stack made as large as the most it held and then
serving every block of the same calls, frees popping it (out of order too), growth past it, release,
and no block leaked when threads exit holding a stack."""

import os
import shutil
import subprocess

import pytest
from compiled_checks import sanitizer_works

HERE = os.path.dirname(__file__)
AOT = os.path.join(HERE, "..", "..", "codegen", "aot")


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_workspace_stack_serves_repeated_calls_and_leaks_nothing(tmp_path):
    flags = ["-fsanitize=address", "-fno-omit-frame-pointer"] if sanitizer_works(tmp_path, "address") else []
    exe = tmp_path / "workspace"
    subprocess.run(
        [
            "gcc",
            "-O1",
            "-g",
            *flags,
            f"-I{AOT}",
            "-o",
            str(exe),
            os.path.join(HERE, "workspace_driver.c"),
            os.path.join(AOT, "ember_runtime.c"),
            "-lpthread",
        ],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=1"}
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
