"""``EmberError``: the one error type users see, with file/node/op context."""

from __future__ import annotations


class EmberError(Exception):
    """A user-facing error: bad input, unsupported op, failed compile.

    The CLI prints ``str(error)`` on one line (plus any listed details) and
    exits non-zero, never a traceback.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        node: str | None = None,
        op: str | None = None,
        details: list[str] | None = None,
    ):
        self.message = message
        self.file = file
        self.node = node
        self.op = op
        self.details = list(details or [])
        super().__init__(self.render())

    def render(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.node is not None:
            where.append(f"node '{self.node}'")
        if self.op:
            where.append(f"op {self.op}")
        head = f"{': '.join(where)}: {self.message}" if where else self.message
        if self.details:
            head += "\n" + "\n".join(f"  {d}" for d in self.details)
        return head
