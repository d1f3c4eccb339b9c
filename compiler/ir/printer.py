"""The textual IR printer (generic form; the grammar is in docs/ir.md).

``print_ir(graph)`` gives text that ``parse_ir`` reads back to a graph which
prints identically.  Constants with more than ``inline_limit`` elements print
as a resource reference (name, dtype, shape, hash); pass a dict as
``resources`` to receive their data (``save_ir`` writes it to a ``.npz``) and
hand the same dict to ``parse_ir``.  A ``Constant``'s resource is named after
the printed name of its value, so unnamed values (printed ``%0``, ``%1``, ...)
and clashing names (printed ``%a_1``) keep their resource names through
print -> parse -> print.  ``print_ir(graph, embed_resources=True)`` instead
appends their data to the text, in a trailing section that ``parse_ir`` reads, so
the text alone round-trips (little-endian bytes as hex; strings as JSON)::

    resources {
      "w": "0x0000803f00000040...",
    }
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

import numpy as np

from .core import Graph, Node, Value
from .types import DType, OptionalType, SequenceType, TensorType, Type

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_.$-]*$")
VALUE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.$-]*$")
DEFAULT_INLINE_LIMIT = 16


def quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def format_dim(d) -> str:
    if d is None:
        return "?"
    if isinstance(d, int):
        return str(d)
    return d if IDENT.match(d) else quote(d)


def format_type(t: Type | None) -> str:
    if t is None:
        return "?"
    if isinstance(t, TensorType):
        if t.shape is None:
            return f"{t.dtype.value}[*]"
        return f"{t.dtype.value}[{','.join(format_dim(d) for d in t.shape)}]"
    if isinstance(t, SequenceType):
        return f"seq<{format_type(t.elem)}>"
    if isinstance(t, OptionalType):
        return f"opt<{format_type(t.elem)}>"
    raise TypeError(f"cannot print type {t!r}")


def format_float(x: float) -> str:
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(x)


def format_scalar(x, dtype: DType) -> str:
    if dtype == DType.BOOL:
        return "true" if bool(x) else "false"
    if dtype == DType.STRING:
        return quote(x.decode() if isinstance(x, bytes) else str(x))
    if dtype.is_float:
        if dtype != DType.FLOAT64 and math.isfinite(float(x)):
            # the shortest text that reads back to the same float32 (exact for narrower floats too)
            return format_float(float(str(np.float32(x))))
        return format_float(float(x))
    if dtype in (DType.COMPLEX64, DType.COMPLEX128):
        return f"({format_float(x.real)}, {format_float(x.imag)})"
    return str(int(x))


def tensor_hash(array: np.ndarray) -> str:
    data = array.tobytes() if array.dtype != object else "\0".join(map(str, array.flat)).encode()
    return hashlib.sha256(data).hexdigest()[:16]


class Printer:
    """Prints graphs; keeps value names unique across nested graphs."""

    def __init__(self, resources: dict[str, np.ndarray] | None = None, inline_limit: int = DEFAULT_INLINE_LIMIT):
        self.resources = resources
        self.inline_limit = inline_limit
        self._names: dict[int, str] = {}
        self._taken: set[str] = set()
        self._counter = 0
        self._resource_names: dict[int, str] = {}
        # names already given to large constants (the caller's dict, or a private one)
        self._named_data = resources if resources is not None else {}

    # names ---------------------------------------------------------------
    def name_of(self, v: Value) -> str:
        key = id(v)
        if key not in self._names:
            base = v.name
            if not base:
                while str(self._counter) in self._taken:
                    self._counter += 1
                base = str(self._counter)
            name, k = base, 1
            while name in self._taken:
                name = f"{base}_{k}"
                k += 1
            self._taken.add(name)
            self._names[key] = name
        name = self._names[key]
        return "%" + (name if VALUE_NAME.match(name) else quote(name))

    def printed_name(self, v: Value) -> str:
        """The name ``v`` prints under (unique in the printed text), without ``%`` and quotes."""
        self.name_of(v)
        return self._names[id(v)]

    def ref(self, v: Value | None) -> str:
        return "none" if v is None else self.name_of(v)

    # attributes ------------------------------------------------------------
    def attr(self, value: Any, indent: str) -> str:
        if isinstance(value, bool):
            return str(int(value))
        if isinstance(value, (int, np.integer)):
            return str(int(value))
        if isinstance(value, (float, np.floating)):
            return format_float(value)
        if isinstance(value, str):
            return quote(value)
        if isinstance(value, np.ndarray):
            return self.tensor(value)
        if isinstance(value, Graph):
            return self.graph(value, indent)
        if isinstance(value, Type):
            return "!" + format_type(value)
        if isinstance(value, (list, tuple)):
            return "[" + ", ".join(self.attr(v, indent) for v in value) + "]"
        raise TypeError(f"cannot print attribute value of type {type(value).__name__}")

    def tensor(self, array: np.ndarray, hint: str = "") -> str:
        t = TensorType.of(array)
        if array.size <= self.inline_limit:
            body = ", ".join(format_scalar(x, t.dtype) for x in array.reshape(-1))
            return f"dense<{format_type(t)} [{body}]>"
        key = id(array)
        if key not in self._resource_names:
            base = hint or "tensor"
            name, k = base, 1
            while name in self._named_data and self._named_data[name] is not array:
                name = f"{base}_{k}"
                k += 1
            self._resource_names[key] = name
            self._named_data[name] = array
        return f"resource<{format_type(t)} {quote(self._resource_names[key])} #{tensor_hash(array)}>"

    # nodes and graphs -------------------------------------------------------
    def node(self, node: Node, indent: str) -> str:
        results = ", ".join(self.name_of(r) for r in node.results)
        lhs = f"{results} = " if node.results else ""
        operands = ", ".join(self.ref(v) for v in node.operands)
        text = f"{indent}{lhs}{node.op if IDENT.match(node.op) else quote(node.op)}({operands})"
        if node.attrs:
            # a constant's resource is named after the printed name of its value: unique in the text and
            # the same when the parsed graph prints again (an unnamed value prints as %0 and parses as "0")
            hint = self.printed_name(node.results[0]) if node.op == "Constant" and node.results else ""
            parts = []
            for key, value in node.attrs.items():
                shown = self.tensor(value, hint) if isinstance(value, np.ndarray) else self.attr(value, indent)
                parts.append(f"{key if IDENT.match(key) else quote(key)} = {shown}")
            text += " {" + ", ".join(parts) + "}"
        text += " : " + ", ".join(format_type(r.type) for r in node.results) if node.results else " :"
        if node.name:
            text += f" loc({quote(node.name)})"
        return text

    def graph(self, graph: Graph, indent: str = "") -> str:
        params = ", ".join(f"{self.name_of(p)}: {format_type(p.type)}" for p in graph.params)
        name = graph.name if IDENT.match(graph.name) else quote(graph.name)
        lines = [f"graph @{name}({params}) {{"]
        inner = indent + "  "
        for node in graph.nodes:
            lines.append(self.node(node, inner))
        lines.append(f"{inner}return {', '.join(self.name_of(v) for v in graph.outputs)}".rstrip())
        lines.append(f"{indent}}}")
        return "\n".join(lines)


def print_ir(
    graph: Graph,
    *,
    resources: dict[str, np.ndarray] | None = None,
    inline_limit: int = DEFAULT_INLINE_LIMIT,
    embed_resources: bool = False,
) -> str:
    """The generic textual form of ``graph`` (ends with a newline).

    ``embed_resources``: append the data of large constants in a ``resources { ... }`` section,
    so that ``parse_ir`` needs nothing but the text.
    """
    if embed_resources and resources is None:
        resources = {}
    text = Printer(resources, inline_limit).graph(graph) + "\n"
    if embed_resources and resources:
        text += format_resources(resources)
    return text


def format_resources(resources: dict[str, np.ndarray]) -> str:
    """The trailing ``resources { "name": "0x..." }`` section of ``print_ir(..., embed_resources=True)``."""
    lines = ["resources {"]
    for name, array in resources.items():
        if array.dtype == object:
            data = json.dumps([str(x) for x in array.reshape(-1)], ensure_ascii=False)
        else:
            data = quote("0x" + np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes().hex())
        lines.append(f"  {quote(name)}: {data},")
    lines.append("}")
    return "\n".join(lines) + "\n"


def save_ir(graph: Graph, path: str) -> None:
    """Write ``path`` (text) and, when large constants exist, ``path + '.npz'`` (their data)."""
    resources: dict[str, np.ndarray] = {}
    text = print_ir(graph, resources=resources)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    if resources:
        np.savez(path + ".npz", **resources)
