"""Errors raised by Ember's code generators.

``CodegenError`` derives from the project-wide ``EmberError`` when the IR core provides one, so
callers can catch a single exception type for every user-facing compiler failure.
"""

from __future__ import annotations

try:  # the IR core defines the project-wide base class
    from compiler import EmberError as _Base  # type: ignore[attr-defined]
except Exception:  # pragma: no cover - only while the core is being written

    class _Base(Exception):  # type: ignore[no-redef]
        """Stand-in for compiler.EmberError."""


class CodegenError(_Base):
    """A graph cannot be compiled for the requested target (the message says why and what to do)."""


class UnsupportedOpsError(CodegenError):
    """Some ops have no lowering on the target; ``ops`` maps op name -> node names using it."""

    def __init__(self, ops: dict[str, list[str]], target: str):
        self.ops = ops
        listing = ", ".join(
            f"{op} ({len(nodes)} node{'s' if len(nodes) != 1 else ''}, e.g. '{nodes[0]}')"
            for op, nodes in sorted(ops.items())
        )
        super().__init__(
            f"cannot compile for target '{target}': no lowering for op(s) {listing}. "
            "Run the model with the interpreter instead (compiler.interpret / `ember run` on the "
            "model file), or rewrite these ops into supported ones."
        )
