"""Ember code generation: compile a graph into a dependency-free shared library with a C API.

    from codegen import compile_graph
    result = compile_graph(graph, "model.so")          # also writes model.h beside it
    print(result.arena_bytes, result.num_unique_kernels)

Then ``compiler.runtime.load("model.so")`` runs it from Python, or include ``model.h`` from C.

``compile_graph`` is code generation alone: the graph must be ready for it.  To compile a model,
use the one compile driver, ``compiler.compile`` (``compiler.driver.compile_model``): it runs the
graph pipeline (``O2`` by default) and ``codegen-prepare`` first, as ``ember compile`` and
``prepare(compile=True)`` do.
"""

from __future__ import annotations

from .backend import Backend, CompileOptions, CompileResult, get_backend, register_backend
from .errors import CodegenError, UnsupportedOpsError
from .target import Target, detect_host, parse_target

__all__ = [
    "compile_graph",
    "Backend",
    "CompileOptions",
    "CompileResult",
    "CodegenError",
    "UnsupportedOpsError",
    "Target",
    "detect_host",
    "parse_target",
    "get_backend",
    "register_backend",
]


def compile_graph(
    graph,
    output_path: str,
    target="x86-64",
    *,
    prefix: str = "ember_model",
    weights: str = "embedded",
    jobs: int = 0,
    progress=None,
    keep_build_dir: bool = False,
    opt_level: int = 3,
    max_tensor_bytes: int | None = None,
    tuning_db: str | None = None,
) -> CompileResult:
    """Compile ``graph`` into the shared library ``output_path`` plus its C header.

    ``target``: ``"x86-64"`` (host CPU features, overridable as ``"x86-64:mcpu=...,features=+avx2"``)
    or a ``Target``. ``prefix`` names the C symbols (``<prefix>_create`` ...) and the header
    (``model.h`` for the default prefix, else ``<prefix>.h``). ``weights="external"`` writes them
    to ``<output stem>.weights`` instead of embedding them. Raises ``CodegenError`` (an EmberError)
    naming every op that cannot be lowered, and one naming the node of any tensor above
    ``max_tensor_bytes`` (default 16 GiB) or whose size does not fit 64 bits. ``tuning_db``: a
    directory ``ember tune`` wrote, whose schedules the CPU kernels it holds take instead of Ember's.
    """
    import re

    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", prefix or ""):
        raise CodegenError(f"prefix '{prefix}' is not a valid C identifier")
    if weights not in ("embedded", "external"):
        raise CodegenError(f"weights must be 'embedded' or 'external', not '{weights}'")
    tgt = parse_target(target)
    backend = get_backend(tgt.kind)
    options = CompileOptions(
        prefix=prefix,
        weights=weights,
        opt_level=opt_level,
        jobs=jobs,
        progress=progress,
        keep_build_dir=keep_build_dir,
        max_tensor_bytes=max_tensor_bytes,
        tuning_db=tuning_db,
    )
    if tuning_db is not None and tgt.kind == "cuda":
        raise CodegenError("a tuning database applies to CPU targets (x86-64, aarch64), not to CUDA")
    return backend.compile(graph, output_path, tgt, options)
