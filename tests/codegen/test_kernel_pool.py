"""The kernel-build pool: safe in scripts without a main guard and in forked children.

Kernels compile in a pool of fork-server workers (``codegen/tvm/backend.py``). Two ways that could
go wrong are checked here: a worker importing the caller's script (which, without an
``if __name__ == "__main__":`` guard, would compile again in every worker), and a forked child of a
process that already started a fork server checking on a server that is not its own.
"""

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    from onnx import TensorProto as T, helper
    import compiler
    from compiler.runtime import load

    x = helper.make_tensor_value_info("x", T.FLOAT, [4, 8])
    y = helper.make_tensor_value_info("y", T.FLOAT, [4, 8])
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Softmax", ["a"], ["b"]),
             helper.make_node("Exp", ["b"], ["y"])]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 21)])
    out = sys.argv[1]
    print("compiling", flush=True)
    # O0: one kernel per node (fuse would make one group), so the pool has three to build
    result = compiler.compile(model, os.path.join(out, "m.so"), jobs=2, pipeline="O0")
    v = np.random.default_rng(0).random((4, 8), dtype=np.float32)
    a = np.maximum(v, 0)
    e = np.exp(a - a.max(axis=1, keepdims=True))
    want = np.exp(e / e.sum(axis=1, keepdims=True))
    got = load(os.path.join(out, "m.so")).run({"x": v})["y"]
    assert np.allclose(got, want, rtol=1e-5), (got, want)
    print("kernels", result.num_unique_kernels)
    """
)


def test_a_script_without_a_main_guard_compiles_once(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text(SCRIPT)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("compiling") == 1, done.stdout  # no worker ran the script again
    assert "kernels 3" in done.stdout


def test_a_crashing_worker_is_named_and_the_others_still_compile():
    """A worker process that dies (TVM segfaulting on one kernel) broke the whole pool, and the compile
    ended with a bare BrokenProcessPool. The tasks left run one process each: the others' results
    come back in order, and the error names the one that crashed."""
    from crash_worker import double_or_crash

    from codegen.errors import CodegenError
    from codegen.tvm.backend import map_in_workers

    got = []
    with pytest.raises(CodegenError) as err:
        for outcome in map_in_workers(double_or_crash, [1, "crash", 3], 2, lambda task: f"kernel-{task}"):
            got.append(outcome)
    assert got == [2, 6]
    assert "kernel-crash" in str(err.value) and "crashed" in str(err.value) and "kernel-1" not in str(err.value)
    assert list(map_in_workers(double_or_crash, [1, 2, 3], 2, str)) == [2, 4, 6]
