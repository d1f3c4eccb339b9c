"""onnx's bundled ``light_*`` zoo models: compile with Ember, run the library, compare.

Shared by ``benchmarks/check_light_zoo.py`` (the report script) and
``tests/codegen/test_light_zoo_compiled.py`` (CI). The models' weights come from ConstantOfShape
nodes, so their final Softmax is nearly uniform: ``with_logits_output`` also exposes the logits
that feed it, which makes the comparison meaningful.
"""

from __future__ import annotations

import glob
import os
import time
from dataclasses import dataclass, field

import numpy as np
import onnx

from compiler.testing.onnx_feeds import random_feeds

LIGHT_DIR = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
FP32_TOLERANCE = 1e-4  # largest difference allowed, relative to the largest magnitude of the reference


# the nine models onnx bundles (backend/test/data/light); tests check the wheel still ships exactly these
LIGHT_MODELS = [
    "bvlc_alexnet",
    "densenet121",
    "inception_v1",
    "inception_v2",
    "resnet50",
    "shufflenet",
    "squeezenet",
    "vgg19",
    "zfnet512",
]


def light_names() -> list[str]:
    """Stems of the bundled models (``resnet50`` for ``light_resnet50.onnx``), sorted."""
    return sorted(
        os.path.basename(p)[len("light_") : -len(".onnx")] for p in glob.glob(os.path.join(LIGHT_DIR, "light_*.onnx"))
    )


def load_light(name: str, logits: bool = True) -> onnx.ModelProto:
    """The model ``light_<name>.onnx``; with ``logits``, its last Softmax's input is an extra output."""
    model = onnx.load(os.path.join(LIGHT_DIR, f"light_{name}.onnx"))
    return with_logits_output(model) if logits else model


def with_logits_output(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` that also outputs the input of its last Softmax (if any)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    softmax = [n for n in model.graph.node if n.op_type == "Softmax"]
    if softmax:
        model.graph.output.append(
            onnx.helper.make_tensor_value_info(softmax[-1].input[0], onnx.TensorProto.FLOAT, None)
        )
    return model


def onnxruntime_outputs(model: onnx.ModelProto, feeds) -> dict[str, np.ndarray]:
    """Every graph output of ``model`` computed by onnxruntime's CPU provider."""
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


def relative_diff(got: np.ndarray, expected: np.ndarray) -> float:
    """Largest absolute difference relative to the largest magnitude of ``expected`` (inf on shape mismatch)."""
    got, expected = np.asarray(got), np.asarray(expected)
    if got.shape != expected.shape:
        return float("inf")
    if expected.size == 0:
        return 0.0
    return float(np.abs(got.astype(np.float64) - expected).max() / (np.abs(expected).max() + 1e-12))


def compile_onnx(model: onnx.ModelProto, library: str, prefix: str, opt: str = "O2") -> float:
    """Import ``model`` and compile it as ``ember compile --opt <opt>`` does; returns the seconds taken."""
    from compiler.driver import compile_model
    from frontends.onnx import import_model

    start = time.time()
    compile_model(import_model(model), library, pipeline=opt, prefix=prefix)
    return time.time() - start


@dataclass
class ZooCheck:
    """Result of one model: its relative differences to each reference, by output name."""

    name: str
    vs_onnxruntime: dict[str, float] = field(default_factory=dict)
    vs_interpreter: dict[str, float] = field(default_factory=dict)
    # outputs on which onnxruntime and the interpreter disagree with each other (relative difference):
    # ill-conditioned under the synthetic weights (SqueezeNet's Softmax over 1,000 logits that are
    # equal up to rounding), so only the comparison with onnxruntime counts for them
    references_disagree: dict[str, float] = field(default_factory=dict)
    compile_s: float = 0.0
    latency_ms: float = 0.0
    error: str = ""

    @property
    def worst(self) -> float:
        trusted = [d for out, d in self.vs_interpreter.items() if out not in self.references_disagree]
        return max([*self.vs_onnxruntime.values(), *trusted], default=float("inf"))

    @property
    def ok(self) -> bool:
        return not self.error and self.worst <= FP32_TOLERANCE

    def line(self) -> str:
        if self.error:
            return f"{self.name:12s} FAILED: {self.error[:300]}"
        return (
            f"{self.name:12s} {'ok  ' if self.ok else 'DIFF'} max rel diff {self.worst:.1e}  "
            f"compile {self.compile_s:5.1f} s  latency {self.latency_ms:7.1f} ms"
        )


def check_light(name: str, outdir: str, opt: str = "O2", interpreter: bool = False, runs: int = 0) -> ZooCheck:
    """Compile ``light_<name>`` into ``outdir``, run it through ``compiler.runtime.load`` and compare
    every output (logits included) with onnxruntime and, with ``interpreter``, with Ember's
    interpreter. ``runs`` > 0 also times that many library runs."""
    from compiler import interpret
    from compiler.runtime import load
    from frontends.onnx import import_model

    model = load_light(name)
    feeds = random_feeds(model)
    result = ZooCheck(name)
    library = os.path.join(outdir, f"{name}.so")
    try:
        result.compile_s = compile_onnx(model, library, name, opt)
    except Exception as exc:
        result.error = f"does not compile: {type(exc).__name__}: {exc}"
        return result
    lib_model = load(library)
    got = lib_model.run(feeds)
    if runs:
        start = time.perf_counter()
        for _ in range(runs):
            lib_model.run(feeds)
        result.latency_ms = (time.perf_counter() - start) / runs * 1e3
    reference = onnxruntime_outputs(model, feeds)
    for out, expected in reference.items():
        result.vs_onnxruntime[out] = relative_diff(got[out], expected)
    if interpreter:
        for out, expected in interpret(import_model(model), feeds).items():
            result.vs_interpreter[out] = relative_diff(got[out], expected)
            between = relative_diff(expected, reference[out])
            if between > FP32_TOLERANCE:
                result.references_disagree[out] = between
    return result
