"""Every benchmark model (at benchmark size) and every light-zoo model compiles for ``cuda:sm_80`` and
``cuda:sm_90`` on a machine without a GPU: nvcc and ptxas accept every kernel, ptxas reports the
registers of every function a launch names, and no launch asks for more threads, shared memory or
registers than the architecture gives a thread block (``nvcc.launch_problems``, which the compiler
also runs). docs/cuda.md's resource table comes from the same compiles
(``scripts/cuda_resource_table.py``).

With the kernels' preambles compiled once per unit (``nvcc.compile_modules``) and the two
architectures compiled side by side, the 24 compiles take about 2.5 minutes on a 2-core machine
(3.7 one architecture after the other).
"""

from __future__ import annotations

import os
import sys

import pytest
from test_cuda import _need_nvcc

from compiler.driver import compile_model
from frontends.onnx import import_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from light_zoo import LIGHT_MODELS  # noqa: E402

BENCHMARK_MODELS = ["resnet50", "mobilenet_v2", "bert_base"]
ARCHS = ("sm_80", "sm_90")


def _model(name: str):
    import model_zoo
    from light_zoo import load_light

    if name in BENCHMARK_MODELS:
        return model_zoo.MODELS[name]()
    return load_light(name.removeprefix("light_"), logits=False)


def _compile(task) -> dict:
    """Worker: ``name`` compiled for ``arch`` into ``out`` (one process per arch, see the test)."""
    name, arch, out = task
    result = compile_model(import_model(_model(name)), out, f"cuda:{arch}", jobs=1)
    return dict(result.stats, library=result.library, unique=result.num_unique_kernels)


@pytest.mark.parametrize("name", BENCHMARK_MODELS + [f"light_{stem}" for stem in LIGHT_MODELS])
def test_model_compiles_for_sm80_and_sm90(name, tmp_path):
    """The two architectures compile side by side, a process each: about half of a compile is
    single-threaded (the graph pipeline, the plan, writing and linking the weights)."""
    from codegen.tvm.backend import map_in_workers

    _need_nvcc()
    tasks = [(name, arch, str(tmp_path / arch / "m.so")) for arch in ARCHS]
    for (_, arch, out), stats in zip(tasks, map_in_workers(_compile, tasks, len(tasks))):
        assert os.path.exists(out) and stats["library"] == out and stats["cuda_arch"] == arch
        resources, launches = stats["cuda_resources"], stats["cuda_launches"]
        assert set(resources) == set(launches) and len(launches) == stats["unique"]
        for kernel, rows in resources.items():
            reported = {row["function"] for row in rows}
            assert reported >= {launch["function"] for launch in launches[kernel]}, kernel
            assert all(0 < row["registers"] <= 255 for row in rows), kernel
        assert stats["cuda_modules"] < stats["unique"]
