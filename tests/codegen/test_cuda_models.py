"""Every benchmark model (at benchmark size) and every light-zoo model compiles for ``cuda:sm_80`` and
``cuda:sm_90`` on a machine without a GPU: nvcc and ptxas accept every kernel, ptxas reports the
registers of every function a launch names, and no launch asks for more threads, shared memory or
registers than the architecture gives a thread block (``nvcc.launch_problems``, which the compiler
also runs). docs/cuda.md's resource table comes from the same compiles
(``scripts/cuda_resource_table.py``).

With the kernels' preambles compiled once per unit (``nvcc.compile_modules``) the 24 compiles take
about 3 minutes on CI's 2 cores.
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


@pytest.mark.parametrize("name", BENCHMARK_MODELS + [f"light_{stem}" for stem in LIGHT_MODELS])
def test_model_compiles_for_sm80_and_sm90(name, tmp_path):
    _need_nvcc()
    model = _model(name)
    for arch in ARCHS:
        out = tmp_path / arch / "m.so"
        result = compile_model(import_model(model), str(out), f"cuda:{arch}")
        assert out.exists() and result.stats["cuda_arch"] == arch
        resources, launches = result.stats["cuda_resources"], result.stats["cuda_launches"]
        assert set(resources) == set(launches) and len(launches) == result.num_unique_kernels
        for kernel, rows in resources.items():
            reported = {row["function"] for row in rows}
            assert reported >= {launch["function"] for launch in launches[kernel]}, kernel
            assert all(0 < row["registers"] <= 255 for row in rows), kernel
        assert result.stats["cuda_modules"] < result.num_unique_kernels
