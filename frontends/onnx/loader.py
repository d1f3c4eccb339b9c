"""Reading an ONNX model safely: the protobuf, its opsets, its tensors, its node order.

Everything here turns bad input into an ``EmberError`` that names the file:
a truncated or non-ONNX file, an opset outside 7..newest, external data that
points outside the model's folder, a node graph with a cycle.  External
tensors are memory-mapped (zero-copy, and it is how models over 2 GB load:
the protobuf is read with ``load_external_data=False``).
"""

from __future__ import annotations

import heapq
import os
from typing import Iterable, Iterator

import numpy as np
import onnx
from onnx import defs

from compiler import onnx_bridge as bridge
from compiler.diagnostics import EmberError
from compiler.ir.types import DType, OptionalType, SequenceType, TensorType, Type
from compiler.onnx_functions import DEFAULT_DOMAINS, normalise_domain  # noqa: F401  (re-exported)

from ..common import resolve_inside

sparse_to_array = bridge.sparse_to_array

MIN_OPSET = 7
MAX_LISTED_NAMES = 50


def load_model_proto(source, base_dir: str | None = None) -> tuple[onnx.ModelProto, str, str]:
    """(model, file label for diagnostics, folder that external data is relative to)."""
    if isinstance(source, onnx.ModelProto):
        model, file = source, "<in-memory model>"
        base_dir = base_dir or os.getcwd()
    elif isinstance(source, (bytes, bytearray, memoryview)):
        model, file = _parse(bytes(source), "<in-memory bytes>"), "<in-memory bytes>"
        base_dir = base_dir or os.getcwd()
    else:
        file = os.fspath(source)
        if not os.path.isfile(file):
            raise EmberError("no such model file", file=file)
        with open(file, "rb") as f:
            model = _parse(f.read(), file)
        base_dir = base_dir or os.path.dirname(os.path.abspath(file))
    if not model.HasField("graph") or not model.opset_import:
        raise EmberError("not an ONNX model (no graph or no opset_import; is the file truncated?)", file=file)
    check_text(model, file)
    return model, file, base_dir


def _parse(data: bytes, file: str) -> onnx.ModelProto:
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise EmberError(f"not a valid ONNX model (truncated or not ONNX): {exc}", file=file) from None
    return model


def model_opsets(model: onnx.ModelProto, file: str) -> dict[str, int]:
    """Domain -> opset version; a default-domain opset newer than onnx knows is refused.

    Opsets older than ``MIN_OPSET`` are checked per op by the importer (``old_opset_changes``).
    """
    opsets = {normalise_domain(o.domain): int(o.version) for o in model.opset_import}
    newest = defs.onnx_opset_version()
    version = opsets.get("")
    if version is not None and version > newest:
        raise EmberError(f"opset {version} is newer than the installed onnx knows ({newest})", file=file)
    return opsets


def old_opset_changes(op_types: Iterable[str], opset: int) -> list[str]:
    """Ops whose definition at ``opset`` (< MIN_OPSET) differs from the one at MIN_OPSET.

    A model below opset 7 imports when none of its ops changed between its
    opset and 7: it then means the same as at opset 7.
    """
    changed = []
    for op in sorted(set(op_types)):
        try:
            old = defs.get_schema(op, opset, "").since_version
            at_min = defs.get_schema(op, MIN_OPSET, "").since_version
        except Exception:
            continue  # unknown ops are reported by the support check
        if old != at_min:
            changed.append(op)
    return changed


def check_text(model: onnx.ModelProto, file: str) -> None:
    """Refuse names that are not valid UTF-8 (protobuf hands them over as bytes, not str).

    Runs first, on the freshly parsed model: every later step reads these fields as text.
    """
    bad: list[str] = []

    def text(value, what):
        if isinstance(value, bytes):
            bad.append(f"{what} {value[:40]!r}")

    def tensor(t, what):
        text(t.name, f"{what} name")
        for entry in t.external_data:
            text(entry.key, f"external data key of {what}")
            text(entry.value, f"external data value of {what}")

    def graph(g):
        text(g.name, "graph name")
        for vi in [*g.input, *g.output, *g.value_info]:
            text(vi.name, "value name")
            _value_type_text(vi.type, text)
        for t in g.initializer:
            tensor(t, "initializer")
        for sp in g.sparse_initializer:
            tensor(sp.values, "sparse initializer")
            tensor(sp.indices, "sparse initializer indices")
        for node in g.node:
            nodes(node)

    def nodes(node):
        for field_name in ("name", "op_type", "domain"):
            text(getattr(node, field_name), f"node {field_name}")
        for name in [*node.input, *node.output]:
            text(name, "node input/output name")
        for attr in node.attribute:
            text(attr.name, "attribute name")
            text(attr.ref_attr_name, "attribute reference")
            if attr.type == onnx.AttributeProto.TENSOR:
                tensor(attr.t, "attribute tensor")
            for t in attr.tensors:
                tensor(t, "attribute tensor")
            for sp in [attr.sparse_tensor, *attr.sparse_tensors]:
                tensor(sp.values, "attribute sparse tensor")
                tensor(sp.indices, "attribute sparse tensor indices")
            if attr.type == onnx.AttributeProto.GRAPH:
                graph(attr.g)
            for g in attr.graphs:
                graph(g)

    for o in model.opset_import:
        text(o.domain, "opset domain")
    for fn in model.functions:
        for field_name in ("name", "domain", "overload"):
            text(getattr(fn, field_name), f"function {field_name}")
        for name in [*fn.input, *fn.output, *fn.attribute]:
            text(name, "function input/output/attribute name")
        for o in fn.opset_import:
            text(o.domain, "opset domain")
        for node in fn.node:
            nodes(node)
    graph(model.graph)
    if bad:
        shown = bad[:MAX_LISTED_NAMES] + (
            [f"... and {len(bad) - MAX_LISTED_NAMES} more"] if len(bad) > MAX_LISTED_NAMES else []
        )
        raise EmberError(f"{len(bad)} name(s) are not valid UTF-8 (a corrupt file?)", file=file, details=shown)


def _value_type_text(tp: onnx.TypeProto, text) -> None:
    which = tp.WhichOneof("value")
    if which in ("tensor_type", "sparse_tensor_type"):
        for d in getattr(tp, which).shape.dim:
            text(d.dim_param, "dim_param")
    elif which == "sequence_type":
        _value_type_text(tp.sequence_type.elem_type, text)
    elif which == "optional_type":
        _value_type_text(tp.optional_type.elem_type, text)
    elif which == "map_type":
        _value_type_text(tp.map_type.value_type, text)


# ---------------------------------------------------------------- types

ANONYMOUS_DIM_PARAMS = ("", "?")


def type_from_proto(proto: onnx.TypeProto) -> Type | None:
    """The Ember type a model declares; ``dim_param`` "?" (and empty) is an anonymous dim.

    Exporters such as PaddlePaddle's write "?" for every unknown dim: each is its own unknown
    (``None``), never one symbol shared by unrelated dims.
    """
    try:
        t = bridge.type_from_proto(proto)
    except ValueError as exc:  # an unknown element type (the validation gate names the value first)
        raise EmberError(str(exc)) from None
    return _anonymous(t)


def _anonymous(t: Type | None) -> Type | None:
    if isinstance(t, TensorType) and t.shape is not None and any(d in ANONYMOUS_DIM_PARAMS for d in t.shape):
        return TensorType(t.dtype, tuple(None if d in ANONYMOUS_DIM_PARAMS else d for d in t.shape))
    if isinstance(t, SequenceType) and t.elem is not None:
        return SequenceType(_anonymous(t.elem))
    if isinstance(t, OptionalType) and t.elem is not None:
        return OptionalType(_anonymous(t.elem))
    return t


# ---------------------------------------------------------------- tensors


def tensor_to_array(proto: onnx.TensorProto, base_dir: str, file: str) -> np.ndarray:
    """The numpy array of an initializer; external data is memory-mapped read-only."""
    if proto.data_location == onnx.TensorProto.EXTERNAL:
        return _external_array(proto, base_dir, file)
    try:
        return bridge.array_from_proto(proto)
    except Exception as exc:
        raise EmberError(f"cannot read tensor '{proto.name}': {exc}", file=file) from None


def _external_array(proto: onnx.TensorProto, base_dir: str, file: str) -> np.ndarray:
    info = {e.key: e.value for e in proto.external_data}
    path = resolve_inside(base_dir, info.get("location", ""), file=file, what=f"external data of tensor '{proto.name}'")
    if not os.path.isfile(path):
        raise EmberError(f"external data file '{info.get('location')}' of tensor '{proto.name}' is missing", file=file)
    offset = int(info.get("offset", 0) or 0)
    shape = tuple(int(d) for d in proto.dims)
    try:
        dtype = DType.from_onnx(proto.data_type)
    except Exception:
        raise EmberError(f"tensor '{proto.name}' has unknown data type {proto.data_type}", file=file) from None
    count = int(np.prod(shape, dtype=np.int64))
    size = os.path.getsize(path)
    plain = dtype.np.kind in "biufc" and dtype.np.itemsize * 8 == _onnx_bits(dtype)
    if plain:
        nbytes = count * dtype.np.itemsize
        if offset + nbytes > size:
            raise EmberError(
                f"external data of tensor '{proto.name}' is shorter than its shape {list(shape)} needs "
                f"({nbytes} bytes; the file holds {max(size - offset, 0)} from offset {offset})",
                file=file,
            )
        if "length" in info and int(info["length"]) != nbytes:
            raise EmberError(
                f"external data of tensor '{proto.name}' does not hold the {nbytes} bytes its shape {list(shape)} "
                f"needs (length {info['length']})",
                file=file,
            )
        if count == 0:
            return np.zeros(shape, dtype=dtype.np)
        return np.memmap(path, dtype=dtype.np.newbyteorder("<"), mode="r", offset=offset, shape=shape)
    # packed or exotic types: read the bytes and let onnx decode them
    length = int(info.get("length", size - offset))
    with open(path, "rb") as f:
        f.seek(offset)
        raw = f.read(length)
    inline = onnx.TensorProto()
    inline.CopyFrom(proto)
    del inline.external_data[:]
    inline.data_location = onnx.TensorProto.DEFAULT
    inline.raw_data = raw
    return bridge.array_from_proto(inline)


def _onnx_bits(dtype: DType) -> int:
    if dtype in (DType.INT4, DType.UINT4, DType.FLOAT4E2M1):
        return 4
    if dtype is DType.BOOL or dtype is DType.STRING:
        return -1
    return dtype.np.itemsize * 8


# ---------------------------------------------------------------- node order


def subgraphs_of(node: onnx.NodeProto) -> Iterator[onnx.GraphProto]:
    """The graphs held by a node's attributes (If branches, Loop/Scan bodies)."""
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            yield attr.g
        elif attr.type == onnx.AttributeProto.GRAPHS:
            yield from attr.graphs


def free_names(graph: onnx.GraphProto) -> set[str]:
    """Names a (sub)graph reads without defining them: its captures of enclosing values."""
    defined = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    defined |= {t.values.name for t in graph.sparse_initializer}
    used: set[str] = set()
    for node in graph.node:
        used.update(n for n in node.input if n)
        for sub in subgraphs_of(node):
            used |= free_names(sub)
        defined.update(node.output)
    used.update(o.name for o in graph.output)
    return used - defined


def node_reads(node: onnx.NodeProto) -> set[str]:
    """Every name a node reads: its inputs and its subgraphs' captures."""
    names = {n for n in node.input if n}
    for sub in subgraphs_of(node):
        names |= free_names(sub)
    return names


def sort_nodes(nodes: Iterable[onnx.NodeProto], file: str) -> list[onnx.NodeProto]:
    """Nodes in a valid order (stable: already-sorted graphs keep theirs); EmberError on a cycle."""
    nodes = list(nodes)
    producer = {}
    for i, node in enumerate(nodes):
        for name in node.output:
            if name:
                producer.setdefault(name, i)
    waiting_on = [0] * len(nodes)
    consumers: list[list[int]] = [[] for _ in nodes]
    for i, node in enumerate(nodes):
        for name in node_reads(node):
            p = producer.get(name)
            if p is not None and p != i:
                waiting_on[i] += 1
                consumers[p].append(i)
            elif p == i:
                raise EmberError(
                    f"reads its own output '{name}' (a cycle)",
                    file=file,
                    node=node.name or node.output[0],
                    op=node.op_type,
                )
    ready = [i for i, n in enumerate(waiting_on) if n == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(nodes[i])
        for c in consumers[i]:
            waiting_on[c] -= 1
            if waiting_on[c] == 0:
                heapq.heappush(ready, c)
    if len(order) < len(nodes):
        stuck = [nodes[i] for i, n in enumerate(waiting_on) if n > 0]
        first = stuck[0]
        names = ", ".join(f"'{n.name or n.output[0]}' ({n.op_type})" for n in stuck[:6])
        raise EmberError(
            f"the graph has a cycle through {len(stuck)} node(s): {names}",
            file=file,
            node=first.name or (first.output[0] if first.output else ""),
            op=first.op_type,
        )
    return order


__all__ = [
    "load_model_proto",
    "type_from_proto",
    "model_opsets",
    "normalise_domain",
    "sort_nodes",
    "tensor_to_array",
    "sparse_to_array",
    "free_names",
    "subgraphs_of",
]
