"""The textual IR parser: reads what ``printer.print_ir`` writes (grammar in docs/ir.md).

``parse_ir(text)`` verifies what it reads unless ``verify=False``: an unknown op
is refused where it is written, and after the graph is built the verifier
(``compiler.ir.verifier.verify``) checks it, result types against what
inference gives included.  Each finding becomes a ``ParseError`` line that
starts with ``file:line:col:`` of the node it is about.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from .core import Graph, Node, Value
from .types import DType, OptionalType, SequenceType, TensorType, Type


class ParseError(Exception):
    """Bad IR text, or IR that does not verify; each line of the message starts with ``file:line:col:``."""


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|//[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<value>%(?:[A-Za-z0-9_][A-Za-z0-9_.$-]*|"(?:[^"\\]|\\.)*"))
  | (?P<symbol>@(?:[A-Za-z_][A-Za-z0-9_.$-]*|"(?:[^"\\]|\\.)*"))
  | (?P<number>-?(?:inf|nan)\b|-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)
  | (?P<hash>\#[0-9a-f]+)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.$-]*)
  | (?P<arrow>->)
  | (?P<punct>[(){}\[\]<>,=:!*?])
""",
    re.VERBOSE,
)


@dataclass
class Token:
    kind: str
    text: str
    line: int
    col: int


def tokenize(text: str, filename: str = "<string>") -> list[Token]:
    tokens, pos, line, line_start = [], 0, 1, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ParseError(f"{filename}:{line}:{pos - line_start + 1}: unexpected character {text[pos]!r}")
        kind = m.lastgroup
        if kind in ("string", "value", "symbol") and '"' in m.group():
            try:
                json.loads(m.group()[m.group().index('"') :])
            except ValueError:
                raise ParseError(f"{filename}:{line}:{pos - line_start + 1}: bad string literal") from None
        if kind != "ws":
            tokens.append(Token(kind, m.group(), line, pos - line_start + 1))
        newlines = m.group().count("\n")
        if newlines:
            line += newlines
            line_start = m.start() + m.group().rfind("\n") + 1
        pos = m.end()
    tokens.append(Token("eof", "", line, pos - line_start + 1))
    return tokens


def _unquote_name(text: str) -> str:
    body = text[1:]
    return json.loads(body) if body.startswith('"') else body


class Parser:
    """A recursive-descent parser over the token list; ``check_ops`` refuses unknown ops as it reads."""

    def __init__(self, text: str, resources: dict[str, np.ndarray] | None, filename: str, check_ops: bool = False):
        self.tokens = tokenize(text, filename)
        self.pos = 0
        self.resources = resources
        self.filename = filename
        self.check_ops = check_ops
        self.scopes: list[dict[str, Value]] = []
        self.node_tokens: dict[int, Token] = {}  # id(node) -> its op token, to place verifier findings

    # token helpers ----------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def error(self, msg: str, tok: Token | None = None) -> ParseError:
        tok = tok or self.tok
        return ParseError(f"{self.filename}:{tok.line}:{tok.col}: {msg}")

    def next(self) -> Token:
        tok = self.tok
        self.pos += 1
        return tok

    def accept(self, text: str) -> bool:
        if self.tok.text == text and self.tok.kind in ("punct", "arrow", "ident"):
            self.pos += 1
            return True
        return False

    def expect(self, text: str) -> Token:
        if not self.accept(text):
            raise self.error(f"expected '{text}', found '{self.tok.text or 'end of input'}'")
        return self.tokens[self.pos - 1]

    def expect_kind(self, kind: str, what: str) -> Token:
        if self.tok.kind != kind:
            raise self.error(f"expected {what}, found '{self.tok.text or 'end of input'}'")
        return self.next()

    # values -----------------------------------------------------------------
    def lookup(self, tok: Token) -> Value:
        name = _unquote_name(tok.text)
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        raise self.error(f"use of undefined value %{name}", tok)

    def define(self, tok: Token, value: Value) -> None:
        name = _unquote_name(tok.text)
        if any(name in scope for scope in self.scopes):
            raise self.error(f"value %{name} is defined twice", tok)
        value.name = name
        self.scopes[-1][name] = value

    # types ------------------------------------------------------------------
    def parse_type(self) -> Type | None:
        if self.accept("?"):
            return None
        tok = self.expect_kind("ident", "a type")
        if tok.text in ("seq", "opt"):
            self.expect("<")
            elem = self.parse_type()
            self.expect(">")
            return SequenceType(elem) if tok.text == "seq" else OptionalType(elem)
        try:
            dtype = DType.parse(tok.text)
        except ValueError as exc:
            raise self.error(str(exc), tok) from None
        self.expect("[")
        if self.accept("*"):
            self.expect("]")
            return TensorType(dtype, None)
        dims: list = []
        while not self.accept("]"):
            if dims:
                self.expect(",")
            t = self.next()
            if t.kind == "number" and t.text in ("inf", "nan"):
                dims.append(t.text)  # a symbol that the tokenizer read as a number
            elif t.kind == "number" and t.text.isdigit():
                dims.append(int(t.text))
            elif t.text == "?":
                dims.append(None)
            elif t.kind == "ident":
                dims.append(t.text)
            elif t.kind == "string":
                dims.append(json.loads(t.text))
            else:
                raise self.error(f"bad dim '{t.text}'", t)
        return TensorType(dtype, tuple(dims))

    # attributes -------------------------------------------------------------
    def parse_scalar(self, dtype: DType):
        tok = self.next()
        if tok.kind == "string":
            return json.loads(tok.text)
        if tok.text in ("true", "false"):
            return tok.text == "true"
        if tok.text == "(":
            re_ = self.parse_scalar(DType.FLOAT64)
            self.expect(",")
            im = self.parse_scalar(DType.FLOAT64)
            self.expect(")")
            return complex(re_, im)
        if tok.kind != "number":
            raise self.error(f"expected a number, found '{tok.text}'", tok)
        if dtype.is_float or dtype in (DType.COMPLEX64, DType.COMPLEX128):
            return float(tok.text)
        if not re.fullmatch(r"-?\d+", tok.text):
            raise self.error(f"expected an integer for {dtype.value}, found '{tok.text}'", tok)
        return int(tok.text)

    def parse_tensor(self, kind: str) -> np.ndarray:
        start = self.tokens[self.pos - 1]  # the 'dense' / 'resource' keyword
        self.expect("<")
        t = self.parse_type()
        if not isinstance(t, TensorType) or not t.is_static:
            raise self.error("a tensor attribute needs a static tensor type")
        if kind == "dense":
            self.expect("[")
            items = []
            while not self.accept("]"):
                if items:
                    self.expect(",")
                items.append(self.parse_scalar(t.dtype))
            self.expect(">")
            if len(items) != t.numel:
                raise self.error(f"dense<{t}> needs {t.numel} elements, has {len(items)}", start)
            if t.dtype == DType.STRING:
                return np.array(items, dtype=object).reshape(t.shape)
            return np.array(items, dtype=np.float64 if t.dtype.is_float else None).astype(t.dtype.np).reshape(t.shape)
        name_tok = self.expect_kind("string", "a resource name")
        name = json.loads(name_tok.text)
        self.expect_kind("hash", "a resource hash")
        self.expect(">")
        if self.resources is None or name not in self.resources:
            raise self.error(f'no data for resource "{name}" (load the .npz written beside the IR)', name_tok)
        array = self.resources[name]
        if isinstance(array, (bytes, list)):  # embedded in the text: decoded with the type written here
            array = _decode_resource(array, t, name, lambda msg: self.error(msg, name_tok))
        elif (
            array.dtype.kind == "V"
            and t.dtype != DType.STRING
            and array.dtype.itemsize == np.dtype(t.dtype.np).itemsize
        ):
            array = array.view(t.dtype.np)  # .npz keeps ml_dtypes (bfloat16, float8, int4) as raw bytes
        if TensorType.of(array) != t:
            raise self.error(f'resource "{name}" holds {TensorType.of(array)}, the text says {t}', name_tok)
        return array

    def parse_attr_value(self) -> Any:
        tok = self.tok
        if tok.kind == "number":
            self.next()
            return float(tok.text) if re.search(r"[.eEn]", tok.text) else int(tok.text)
        if tok.kind == "string":
            self.next()
            return json.loads(tok.text)
        if tok.text == "[":
            self.next()
            items = []
            while not self.accept("]"):
                if items:
                    self.expect(",")
                items.append(self.parse_attr_value())
            return items
        if tok.text in ("dense", "resource"):
            self.next()
            return self.parse_tensor(tok.text)
        if tok.text == "graph":
            return self.parse_graph()
        if tok.text == "!":
            self.next()
            return self.parse_type()
        raise self.error(f"expected an attribute value, found '{tok.text}'")

    # nodes and graphs ---------------------------------------------------------
    def parse_node(self, graph: Graph) -> None:
        result_toks = []
        if self.tok.kind == "value":
            result_toks.append(self.next())
            while self.accept(","):
                result_toks.append(self.expect_kind("value", "a result name"))
            self.expect("=")
        op_tok = self.next()
        if op_tok.kind not in ("ident", "string"):
            raise self.error(f"expected an op name, found '{op_tok.text}'", op_tok)
        op = json.loads(op_tok.text) if op_tok.kind == "string" else op_tok.text
        if self.check_ops:
            from ..ops import get_op

            if get_op(op) is None:
                raise self.error(
                    f"unknown op '{op}' (no op of that name is registered; "
                    "parse_ir(..., verify=False) reads it unchecked)",
                    op_tok,
                )
        self.expect("(")
        operands: list[Value | None] = []
        while not self.accept(")"):
            if operands:
                self.expect(",")
            if self.accept("none"):
                operands.append(None)
            else:
                operands.append(self.lookup(self.expect_kind("value", "an operand")))
        attrs: dict[str, Any] = {}
        if self.accept("{"):
            while not self.accept("}"):
                if attrs:
                    self.expect(",")
                key_tok = self.next()
                key = json.loads(key_tok.text) if key_tok.kind == "string" else key_tok.text
                self.expect("=")
                attrs[key] = self.parse_attr_value()
        self.expect(":")
        types = []
        if result_toks:
            types.append(self.parse_type())
            while self.accept(","):
                types.append(self.parse_type())
        if len(types) != len(result_toks):
            raise self.error(f"{op} has {len(result_toks)} results but {len(types)} types", op_tok)
        name = ""
        if self.accept("loc"):
            self.expect("(")
            name = json.loads(self.expect_kind("string", "a location string").text)
            self.expect(")")
        node = Node(op, operands, types, attrs, name=name)
        self.node_tokens[id(node)] = op_tok
        graph.append(node)
        for tok, value in zip(result_toks, node.results):
            self.define(tok, value)

    def parse_graph(self) -> Graph:
        self.expect("graph")
        name = _unquote_name(self.expect_kind("symbol", "a graph name like @main").text)
        graph = Graph(name)
        self.scopes.append({})
        self.expect("(")
        while not self.accept(")"):
            if graph.params:
                self.expect(",")
            tok = self.expect_kind("value", "a parameter name")
            self.expect(":")
            self.define(tok, graph.add_param(self.parse_type()))
        self.expect("{")
        while self.tok.text != "return":
            if self.tok.kind == "eof":
                raise self.error("missing 'return' before the end of the graph")
            self.parse_node(graph)
        self.next()
        outputs = []
        while self.tok.kind == "value":
            outputs.append(self.lookup(self.next()))
            if not self.accept(","):
                break
        self.expect("}")
        graph.outputs = outputs
        self.scopes.pop()
        for node in graph.nodes:
            for sub in node.subgraphs:
                sub.parent = node
        return graph

    def verify(self, graph: Graph) -> None:
        """Run the verifier on ``graph``; raise a ``ParseError`` placing each finding at its node's line."""
        from .verifier import VerifyError, verify

        try:
            verify(graph)
        except VerifyError as exc:
            raise ParseError("\n".join(self.locate(problem, graph) for problem in exc.problems)) from None

    def locate(self, problem: str, graph: Graph) -> str:
        """``file:line:col: problem`` for the node the verifier's finding starts with (its ``describe()``)."""
        best: Token | None = None
        best_len = 0
        for node in graph.walk():
            label = node.describe()
            tok = self.node_tokens.get(id(node))
            if tok is not None and problem.startswith(label) and len(label) > best_len:
                best, best_len = tok, len(label)
        where = f"{self.filename}:{best.line}:{best.col}" if best is not None else self.filename
        return f"{where}: {problem}"


def parse_ir(
    text: str, resources: dict[str, np.ndarray] | None = None, *, filename: str = "<string>", verify: bool = True
) -> Graph:
    """Parse one graph from its textual form and verify it.

    ``resources``: the data of large constants (what ``print_ir(..., resources=d)`` collected).
    ``verify=False`` skips the checks (unknown ops, the verifier's findings such as a
    result type that contradicts inference), to read IR that is invalid on purpose.
    """
    text, embedded = _split_resources(text, filename)
    if embedded:
        resources = {**(resources or {}), **embedded}
    parser = Parser(text, resources, filename, check_ops=verify)
    graph = parser.parse_graph()
    if parser.tok.kind != "eof":
        raise parser.error(f"unexpected '{parser.tok.text}' after the graph")
    if verify:
        parser.verify(graph)
    return graph


_RESOURCES = re.compile(r"^resources \{[ \t]*\n(?P<body>.*?)^\}[ \t]*\n?\s*\Z", re.M | re.S)


def _split_resources(text: str, filename: str) -> tuple[str, dict[str, Any]]:
    """The graph text and the entries of a trailing ``resources { ... }`` section (raw, decoded on use)."""
    m = _RESOURCES.search(text)
    if m is None:
        return text, {}
    line = text.count("\n", 0, m.start()) + 1
    try:
        entries = json.loads("{" + m.group("body").strip().rstrip(",") + "}")
    except ValueError as exc:
        raise ParseError(f"{filename}:{line}:1: bad resources section: {exc}") from None
    out: dict[str, Any] = {}
    for name, data in entries.items():
        if isinstance(data, str) and data.startswith("0x"):
            try:
                out[name] = bytes.fromhex(data[2:])
            except ValueError:
                raise ParseError(f'{filename}:{line}:1: resource "{name}" is not hex data') from None
        elif isinstance(data, list):
            out[name] = data
        else:
            raise ParseError(f'{filename}:{line}:1: resource "{name}" must be "0x..." or a list of strings')
    return text[: m.start()], out


def _decode_resource(data: bytes | list, t: TensorType, name: str, error) -> np.ndarray:
    if isinstance(data, list):
        if t.dtype != DType.STRING or len(data) != t.numel:
            raise error(f'resource "{name}" holds {len(data)} strings, the text says {t}')
        return np.array(data, dtype=object).reshape(t.shape)
    dtype = np.dtype(t.dtype.np).newbyteorder("<")
    if t.dtype == DType.STRING or len(data) != t.numel * dtype.itemsize:
        raise error(f'resource "{name}" holds {len(data)} bytes, the text says {t}')
    return np.frombuffer(data, dtype=dtype).astype(t.dtype.np).reshape(t.shape)


def load_ir(path: str, *, verify: bool = True) -> Graph:
    """Read a ``.ir`` file (and the ``.npz`` of large constants beside it, if any); see ``parse_ir``."""
    resources = None
    if os.path.exists(path + ".npz"):
        with np.load(path + ".npz", allow_pickle=False) as data:
            resources = {k: data[k] for k in data.files}
    with open(path, encoding="utf-8") as f:
        return parse_ir(f.read(), resources, filename=path, verify=verify)
