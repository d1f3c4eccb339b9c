"""Pieces every frontend shares: name scopes, safe file access, error helpers.

- ``Scope`` maps a model's tensor names to IR values; nested graphs (ONNX
  ``If``/``Loop``/``Scan`` bodies) get a child scope, so a name resolves to the
  innermost definition and outer values are read directly (SSA capture).
- ``resolve_inside`` turns a file location written inside a model into a path,
  refusing any location that escapes the model's folder (path traversal).
"""

from __future__ import annotations

import os
from typing import Iterator

from compiler.diagnostics import EmberError
from compiler.ir.core import Value


class Scope:
    """Names visible at one nesting level; lookups fall back to the enclosing scope."""

    def __init__(self, parent: "Scope | None" = None):
        self.parent = parent
        self._names: dict[str, Value | None] = {}

    def define(self, name: str, value: Value | None) -> None:
        """Bind ``name`` here (shadowing any outer binding)."""
        self._names[name] = value

    def lookup(self, name: str) -> Value | None:
        """The value bound to ``name`` in this scope or an enclosing one; KeyError if none."""
        scope: Scope | None = self
        while scope is not None:
            if name in scope._names:
                return scope._names[name]
            scope = scope.parent
        raise KeyError(name)

    def __contains__(self, name: str) -> bool:
        try:
            self.lookup(name)
        except KeyError:
            return False
        return True

    def defines_locally(self, name: str) -> bool:
        """Whether ``name`` is bound at this level (ignoring enclosing scopes)."""
        return name in self._names

    def local_names(self) -> Iterator[str]:
        """Names bound at this level (not the enclosing ones)."""
        return iter(self._names)

    def child(self) -> "Scope":
        """A nested scope (for a subgraph) that sees this one."""
        return Scope(self)


def resolve_inside(base_dir: str, location: str, *, file: str | None = None, what: str = "external data") -> str:
    """The path of ``location`` relative to ``base_dir``; refuse anything outside ``base_dir``.

    Absolute paths, ``..`` components and symlinks that lead out of the folder
    are all refused with an ``EmberError`` naming the model file.
    """
    if not location:
        raise EmberError(f"{what} has an empty location", file=file)
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
