"""Pieces every frontend shares: name scopes, safe file access, error helpers.

- ``Scope`` maps a model's tensor names to IR values; nested graphs (ONNX
  ``If``/``Loop``/``Scan`` bodies) get a child scope, so a name resolves to the
  innermost definition and outer values are read directly (SSA capture).
- ``resolve_inside`` turns a file location written inside a model into a path,
  refusing any location that escapes the model's folder (path traversal).
- ``max_tensor_bytes`` / ``checked_numel``: the size limit on any one tensor (argument, else
  ``$EMBER_MAX_TENSOR_BYTES``, else 16 GiB), checked before anything is allocated.
"""

from __future__ import annotations

import os

from compiler.diagnostics import EmberError
from compiler.ir.scope import Scope  # noqa: F401  (re-exported: the frontends' name scope)

GIB = 1 << 30
DEFAULT_MAX_TENSOR_BYTES = 16 * GIB
MAX_TENSOR_BYTES_ENV = "EMBER_MAX_TENSOR_BYTES"


def resolve_inside(base_dir: str, location: str, *, file: str | None = None, what: str = "external data") -> str:
    """The path of ``location`` relative to ``base_dir``; refuse anything outside ``base_dir``.

    Absolute paths, ``..`` components and symlinks that lead out of the folder
    are all refused with an ``EmberError`` naming the model file.
    """
    if not location:
        raise EmberError(f"{what} has an empty location", file=file)
    if "\0" in location:
        raise EmberError(f"{what} location {location!r} contains a NUL character", file=file)
    if os.path.isabs(location) or location.startswith(("/", "\\")) or ":" in location.split("/")[0]:
        raise EmberError(
            f"{what} location '{location}' is an absolute path; refusing to read outside the model's folder", file=file
        )
    root = os.path.realpath(base_dir)
    path = os.path.realpath(os.path.join(root, location))
    if os.path.commonpath([root, path]) != root:
        raise EmberError(
            f"{what} location '{location}' points outside the model's folder (path traversal); refusing to read it",
            file=file,
        )
    return path


def max_tensor_bytes(limit: int | None = None) -> int:
    """The byte limit on one tensor: ``limit``, else ``$EMBER_MAX_TENSOR_BYTES``, else 16 GiB."""
    if limit is not None:
        value = limit
    else:
        text = os.environ.get(MAX_TENSOR_BYTES_ENV, "").strip()
        if not text:
            return DEFAULT_MAX_TENSOR_BYTES
        try:
            value = int(text)
        except ValueError:
            raise EmberError(f"${MAX_TENSOR_BYTES_ENV} must be a byte count, not '{text}'") from None
    if value <= 0:
        raise EmberError(f"the tensor size limit must be positive, not {value}")
    return int(value)


def checked_numel(dims, what: str, file: str | None, itemsize: int, limit: int) -> int:
    """Element count of ``dims``; EmberError for a negative dim or a size over ``limit`` bytes."""
    dims = [int(d) for d in dims]
    if any(d < 0 for d in dims):
        raise EmberError(f"{what} has a negative dim: {dims}", file=file)
    count = 1
    for d in dims:
        count *= d  # Python ints: no overflow
    if count * itemsize > limit:
        raise EmberError(
            f"{what} of shape {dims} needs {_bytes(count * itemsize)}, over the limit of {_bytes(limit)} "
            f"(raise it with ${MAX_TENSOR_BYTES_ENV} or max_tensor_bytes)",
            file=file,
        )
    return count


def _bytes(n: int) -> str:
    for unit, size in (("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", GIB), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"
