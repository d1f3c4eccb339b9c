"""Model compression: post-training quantization with calibration, fp16/bf16 conversion, pruning and
low-rank factorisation (see ``docs/compression.md``).

The rewrites themselves are passes (``quantize``, ``convert-float16``, ``convert-bfloat16``,
``prune``, ``factorize`` in ``passes/``); this package holds what they share (scales and zero
points, calibration, the report) and the one entry point that needs data, ``quantize_model``::

    from compiler.compression import load_samples, quantize_model
    report = quantize_model(graph, load_samples("calib/"), method="entropy")
    print(report.text())
"""

from __future__ import annotations

import pathlib
from typing import Mapping, Sequence

import numpy as np

from ..diagnostics import EmberError
from ..ir.core import Graph
from ..passes import Pass
from .calibration import METHODS, calibrate, library_runner
from .report import CompressionReport, graph_flops, weight_bytes

__all__ = [
    "METHODS",
    "CompressionReport",
    "calibrate",
    "calibration_values",
    "graph_flops",
    "load_samples",
    "quantize_model",
    "run_compression",
    "weight_bytes",
]


def load_samples(directory: str | pathlib.Path) -> list[dict[str, np.ndarray]]:
    """Every ``.npz`` file of ``directory`` (sorted by name): one sample each, keyed by input name."""
    files = sorted(pathlib.Path(directory).glob("*.npz"))
    if not files:
        raise EmberError(f"no .npz calibration samples in {directory}")
    samples = []
    for f in files:
        with np.load(f) as data:
            samples.append({k: data[k] for k in data.files})
    return samples


def calibration_values(graph: Graph, exclude: Sequence[str] = ()) -> list[str]:
    """Names of the activations static quantization needs ranges for: the run-time float inputs
    and the results of the nodes the ``quantize`` pass would rewrite."""
    from passes.quantize import activation_operands, weight_operands, why_float

    names: list[str] = []
    for node in graph.nodes:
        if not weight_operands(node) or why_float(node, tuple(exclude)) is not None:
            continue
        names += [node.operands[i].name for i in activation_operands(node)]
        names.append(node.results[0].name)
    return list(dict.fromkeys(n for n in names if n))


def quantize_model(
    graph: Graph,
    samples: Sequence[Mapping[str, np.ndarray]] = (),
    *,
    method: str = "minmax",
    mode: str = "static",
    per_channel: bool = True,
    exclude: Sequence[str] = (),
    percentile: float = 99.999,
    progress: bool = True,
    library: str | bool | None = None,
) -> CompressionReport:
    """Quantize ``graph`` in place: calibrate on ``samples`` (static mode), then run the
    ``quantize`` pass; returns what changed.  ``library``: calibrate through a compiled library
    (True: a temporary one; a path: written there) instead of the interpreter."""
    from passes.quantize import LEFT_FLOAT_KEY, RANGES_KEY, QuantizePass

    report = CompressionReport.start(f"quantize (mode {mode}, {method} calibration)", graph)
    if mode == "static":
        if not samples:
            raise EmberError("static quantization needs calibration samples (or use --mode dynamic|weight-only)")
        values = calibration_values(graph, exclude)
        runner = None
        if library:
            runner = library_runner(graph, set(values), library if isinstance(library, str) else None)
        ranges = calibrate(
            graph, samples, values, method=method, percentile=percentile, progress=progress, runner=runner
        )
        graph.metadata[RANGES_KEY] = ranges
        report.notes.append(f"calibrated {len(ranges)} activations on {len(samples)} samples")
    quantize = QuantizePass(mode=mode, per_channel=per_channel, exclude=tuple(exclude))
    result = quantize(graph)
    report.notes.append(f"quantized {result.statistics.get('quantized', 0)} nodes")
    report.left_float = list(graph.metadata.get(LEFT_FLOAT_KEY, []))
    return report.finish(graph)


def run_compression(graph: Graph, pipeline: str) -> CompressionReport:
    """Run a pipeline of compression passes on ``graph`` in place and report what it did: weight
    bytes and FLOPs before and after, each pass's statistics, the nodes left in float and why."""
    from passes.convert_float import LEFT_KEY
    from passes.quantize import LEFT_FLOAT_KEY

    from ..ir.verifier import verify
    from ..pipeline import PassManager

    report = CompressionReport.start(pipeline, graph)
    for step in PassManager(pipeline).steps:
        if isinstance(step, Pass):
            stats = step(graph).statistics
            report.notes.append(f"{step.name}: " + (", ".join(f"{k} {v}" for k, v in stats.items()) or "done"))
        else:
            PassManager([step]).run(graph)
        verify(graph)
    for key in (LEFT_FLOAT_KEY, LEFT_KEY):
        report.left_float += list(graph.metadata.get(key, []))
    return report.finish(graph)
