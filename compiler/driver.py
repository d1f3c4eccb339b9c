"""The one compile driver: model -> graph pipeline -> ``codegen-prepare`` -> code generation.

    from compiler.driver import compile_model
    result = compile_model("model.onnx", "out/model.so")        # pipeline="O2" by default
    result = compile_model(graph, "model.so", pipeline="O0")      # no optimisation, no fusion

``ember compile``, ``ember bench``, ``frontends.onnx.backend.prepare(compile=True)`` and
``compiler.compile`` all call ``compile_model`` with the same default pipeline, so one model gives
byte-identical libraries through any of them.  ``prepare_for_codegen`` is its first half: the
graph pipeline (``O0``..``O3`` or any pipeline text) followed by the ``codegen-prepare`` pipeline
(``passes/pipelines.py``), the same steps ``ember opt --passes O2,codegen-prepare`` shows.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

from .diagnostics import EmberError
from .ir.core import Graph

DEFAULT_PIPELINE = "O2"
PREPARE_PIPELINE = "codegen-prepare"


def prepare_pipeline(target: Any = None) -> str:
    """The preparation pipeline for ``target``: ``codegen-prepare``, or for CUDA (whose driver runs
    no branches yet) ``codegen-prepare-no-branches``, which selects larger ``If`` branches."""
    if target is not None and str(getattr(target, "kind", target)).split(":")[0] == "cuda":
        return "codegen-prepare-no-branches"
    return PREPARE_PIPELINE


def prepare_for_codegen(graph: Graph, pipeline: str = DEFAULT_PIPELINE, log=None, target: Any = None) -> Graph:
    """Run ``pipeline`` and then ``codegen-prepare`` (``prepare_pipeline(target)``) on ``graph`` (in
    place; returned for chaining).

    Control flow that cannot be written out raises the ``CodegenError`` of ``check-codegen-ready``,
    naming the node and the reason.  ``log``: a stream for one summary line."""
    from .pipeline import run_pipeline

    start = time.time()
    prepare = prepare_pipeline(target)
    text = ",".join(p for p in (pipeline.strip(), prepare) if p)
    try:
        run_pipeline(graph, text)
    except EmberError as exc:
        if _is_codegen_error(exc.__cause__):  # a pass said why the graph cannot be compiled
            raise exc.__cause__ from None
        raise
    if log:
        print(
            f"  graph pipeline {pipeline or 'O0'},{prepare}: {len(graph)} nodes, {time.time() - start:.1f} s",
            file=log,
            flush=True,
        )
    return graph


def _is_codegen_error(exc: BaseException | None) -> bool:
    try:
        from codegen.errors import CodegenError
    except ImportError:
        return False
    return isinstance(exc, CodegenError)


def fuses(pipeline: str) -> bool:
    """Whether code generation fuses kernels after ``pipeline`` (``O0`` means no optimisation at all)."""
    return pipeline.strip() not in ("", "O0")


def opt_level(pipeline: str) -> int:
    """Codegen's ``opt_level`` for ``pipeline``: N for a named ``ON``, 0 for an empty one, else 2."""
    text = pipeline.strip()
    if text in ("O0", "O1", "O2", "O3"):
        return int(text[1])
    return 2 if fuses(text) else 0


def load_graph(model: Any, input_shapes: dict | None = None) -> Graph:
    """``model`` as a Graph: a Graph as it is, a path (.onnx, .prototxt, .ir) or an ONNX ModelProto imported."""
    if isinstance(model, Graph):
        return model
    kw = {"input_shapes": input_shapes} if input_shapes else {}
    if isinstance(model, (str, os.PathLike)):
        from .cli import load_model

        return load_model(os.fspath(model), **kw)
    from frontends.onnx import import_model  # an in-memory ONNX model

    return import_model(model, **kw)


def compile_model(
    model: Any,
    output: str,
    target: Any = "x86-64",
    *,
    pipeline: str = DEFAULT_PIPELINE,
    input_shapes: dict | None = None,
    prefix: str = "ember_model",
    weights: str = "embedded",
    jobs: int = 0,
    progress: Callable[[str], None] | None = None,
    keep_build_dir: bool = False,
    max_tensor_bytes: int | None = None,
    log=None,
    tuning_db: str | None = None,
):
    """Compile ``model`` (a Graph, a model path or an ONNX ModelProto) into the shared library
    ``output`` plus its C header; returns codegen's ``CompileResult``.

    The graph is verified (structure, types, every op's shape contract) before the pipelines and
    again after them, so a graph built in Python or parsed with ``verify=False`` that breaks a
    contract never becomes a library; a ``VerifyError`` is raised as an ``EmberError`` listing
    every problem.  Then ``prepare_for_codegen(graph, pipeline)`` (a Graph is changed in place),
    a size check (every tensor exact in 64 bits and at most ``max_tensor_bytes``, default
    ``codegen.sizes.DEFAULT_MAX_TENSOR_BYTES`` = 16 GiB; a CodegenError names the node), then
    ``codegen.compile_graph`` with kernel fusion unless ``pipeline`` is ``O0``.  ``target``,
    ``prefix``, ``weights``, ``jobs``, ``progress``, ``keep_build_dir`` and ``tuning_db`` (a
    MetaSchedule database that ``ember tune`` / ``compiler.tune`` wrote) are codegen's options."""
    from codegen import compile_graph
    from codegen.sizes import DEFAULT_MAX_TENSOR_BYTES, check_graph_sizes

    where = os.fspath(model) if isinstance(model, (str, os.PathLike)) else None
    limit = DEFAULT_MAX_TENSOR_BYTES if max_tensor_bytes is None else int(max_tensor_bytes)
    if limit <= 0:
        raise EmberError(f"max_tensor_bytes must be positive, not {max_tensor_bytes}")
    graph = load_graph(model, input_shapes)
    verify_for_compile(graph, "before the graph pipeline", where)
    graph = prepare_for_codegen(graph, pipeline, log, target)
    verify_for_compile(graph, f"after the {pipeline or 'O0'},{prepare_pipeline(target)} pipelines", where)
    check_graph_sizes(graph, limit)
    return compile_graph(
        graph,
        output,
        target,
        prefix=prefix,
        weights=weights,
        jobs=jobs,
        progress=progress,
        keep_build_dir=keep_build_dir,
        opt_level=opt_level(pipeline),
        max_tensor_bytes=limit,
        tuning_db=tuning_db,
    )


def verify_for_compile(graph: Graph, when: str, file: str | None = None) -> None:
    """``verify(graph)`` as an ``EmberError`` (naming ``file`` and the first broken node) that
    lists every problem: a graph that breaks an op's contract must never compile."""
    from .ir.verifier import VerifyError, verify

    try:
        verify(graph)
    except VerifyError as exc:
        raise EmberError(
            f"the graph cannot be compiled: it fails verification {when} ({len(exc.problems)} problem(s)): "
            + exc.problems[0],
            file=file,
            details=exc.problems[1:],
        ) from exc


def compile(model: Any, output: str, target: Any = "x86-64", **kw):  # noqa: A001  (compiler.compile)
    """``compile_model`` under its public name ``compiler.compile``."""
    return compile_model(model, output, target, **kw)


__all__ = [
    "DEFAULT_PIPELINE",
    "PREPARE_PIPELINE",
    "compile",
    "compile_model",
    "fuses",
    "load_graph",
    "opt_level",
    "prepare_for_codegen",
    "verify_for_compile",
]
