"""The C runtime's thread pool (``codegen/aot/ember_runtime.c``), driven as TVM kernels call it and
built with ThreadSanitizer where it works: each task of each launch runs exactly once at 1 to 40
threads (a launch has at most 64 tasks), a failing task fails its launch, with 2 threads each thread
runs its own half of the tasks in most launches (the cache affinity between consecutive kernels
that the pool exists to keep), and a launcher held up in its first task leaves the rest of its
share to the worker; and all of it again with workers that sleep as soon as a launch is done
(``EMBER_SPIN_US=0``), woken through the pool's condition variable."""

import os
import shutil
import subprocess

import pytest
from compiled_checks import sanitizer_works

HERE = os.path.dirname(__file__)
AOT = os.path.join(HERE, "..", "..", "codegen", "aot")


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_each_task_runs_once_and_threads_keep_their_share(tmp_path):
    flags = ["-fsanitize=thread"] if sanitizer_works(tmp_path, "thread") else []
    exe = tmp_path / "pool"
    sources = [os.path.join(HERE, "pool_driver.c"), os.path.join(AOT, "ember_runtime.c")]
    subprocess.run(
        ["gcc", "-O1", "-g", *flags, f"-I{AOT}", "-o", str(exe), *sources, "-lpthread"], check=True, capture_output=True
    )
    env = {**os.environ, "TSAN_OPTIONS": "halt_on_error=1"}
    env.pop("EMBER_SPIN_US", None)
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    word, share = proc.stdout.split()
    assert word == "ok"
    # a thread claims its own range first; only a thread held up by the OS loses tasks to the other
    assert float(share) >= 0.5, proc.stdout
    # workers that sleep as soon as a launch is done: every launch wakes them through the condition
    slept = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120, env={**env, "EMBER_SPIN_US": "0"})
    assert slept.returncode == 0, slept.stderr
    assert slept.stdout.split()[0] == "ok"
