"""``Scope``: ONNX value names visible at one nesting level, falling back to the enclosing level.

Importers and the function-body inliner (``compiler/onnx_functions.py``) bind names to values
with it while they walk a graph and its subgraphs.
"""

from __future__ import annotations

from typing import Iterator

from .core import Value


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
