"""The backend protocol and the registry of backends by target kind.

A backend turns a graph into a model library for one target. The TVM backend (x86-64 and, through
cross-compilation, aarch64) is the first; an llvmlite backend and a CUDA backend register the same
way::

    @register_backend("x86-64")
    class TvmCpuBackend: ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

from .errors import CodegenError
from .target import Target


@dataclass
class CompileOptions:
    """Knobs shared by all backends."""

    prefix: str = "ember_model"
    weights: str = "embedded"  # or "external": weights in <library>.weights beside the .so
    opt_level: int = 3
    jobs: int = 0  # parallel kernel compiles; 0 = one per core
    verbose: bool = False
    progress: Callable[[str], None] | None = None
    keep_build_dir: bool = False
    max_tensor_bytes: int | None = None  # None: codegen.sizes.DEFAULT_MAX_TENSOR_BYTES (16 GiB)
    tuning_db: str | None = None  # a MetaSchedule database (``ember tune``) whose schedules CPU kernels take


@dataclass
class CompileResult:
    """What a backend produced and the facts worth reporting about it."""

    library: str
    header: str
    weights_file: str | None = None
    arena_bytes: int = 0
    weight_bytes: int = 0
    num_kernels: int = 0
    num_unique_kernels: int = 0
    seconds: float = 0.0
    stats: dict = field(default_factory=dict)


class Backend(Protocol):
    """Compiles a graph for one target into a library plus header."""

    name: str

    def supported_ops(self) -> set[str]:
        """Op names this backend can lower (used for early, complete error reports)."""

    def compile(self, graph, output_path: str, target: Target, options: CompileOptions) -> CompileResult:
        """Build ``output_path`` (a shared library) and ``model.h`` beside it."""


_BACKENDS: dict[str, Callable[[], Backend]] = {}


def register_backend(kind: str):
    """Class decorator: make ``cls()`` the backend for targets of ``kind``."""

    def wrap(cls):
        _BACKENDS[kind] = cls
        return cls

    return wrap


def get_backend(kind: str) -> Backend:
    """The backend instance for a target kind, or a CodegenError listing the known ones."""
    if kind not in _BACKENDS:
        from . import tvm as _tvm_backend  # noqa: F401  (registers itself on import)
    if kind == "cuda" and kind not in _BACKENDS:
        from .cuda import backend as _cuda_backend  # noqa: F401  (registers itself on import)
    if kind not in _BACKENDS:
        known = ", ".join(sorted(_BACKENDS)) or "none"
        raise CodegenError(f"no backend for target '{kind}' yet (available: {known})")
    return _BACKENDS[kind]()
