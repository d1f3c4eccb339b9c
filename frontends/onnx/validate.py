"""The validation gate: every check an ONNX model passes before the importer reads a tensor.

``validate_model`` walks the whole model once (graphs, subgraphs, model-local functions) and
lists every problem at once in one ``EmberError`` (file, then one line per problem naming the
node and its op):

- IR version and opset range (opset 0, an IR newer than the installed onnx);
- element types: graph inputs/outputs/value_info, initializers and attribute tensors (a
  graph's inputs and outputs may not be UNDEFINED);
- tensors: negative dims, sizes above the limit (``max_tensor_bytes``: argument, else
  ``$EMBER_MAX_TENSOR_BYTES``, else 16 GiB) checked before anything is allocated, external
  data locations that leave the model's folder (absolute, ``..``, symlinks out) or are missing;
- sparse tensors: dims, values/indices shapes and index ranges;
- nodes: an op of onnx's used at an opset before it exists; input and output arity against
  the op's schema (extra inputs are refused, never ignored); ``If`` branch signatures (output
  count and element types); ``Loop`` body signatures (inputs and outputs against the carried
  values, an int64 iteration and bool conditions, each carried value's type kept); attribute
  domains (enums such as RNN ``direction``, sizes that must be positive);
- onnx's own checker (``full_check=False``) when the walk found nothing: its first error,
  mapped to the node it names; a "no op registered" error for an op that Ember converts on
  purpose, and the forms in ``LEFT_TO_THE_IMPORTER``, are not problems here.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import onnx
from onnx import defs, numpy_helper

from compiler.diagnostics import EmberError
from compiler.ir.types import DType, TensorType
from compiler.onnx_functions import normalise_domain
from compiler.ops import get_op

from ..common import (  # noqa: F401  (re-exported: the limit is shared by the frontends)
    DEFAULT_MAX_TENSOR_BYTES,
    MAX_TENSOR_BYTES_ENV,
    checked_numel,
    max_tensor_bytes,
    resolve_inside,
)
from .checker import run_checker

MIN_IR_VERSION = 3
MAX_LISTED = 50

# attribute domains: by attribute name where ONNX uses the name one way in every op, else by the
# op's family (``OpDef.family``; BitShift's "direction" is LEFT/RIGHT)
ENUMS = {
    (None, "auto_pad"): {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"},
    ("recurrent", "direction"): {"forward", "reverse", "bidirectional"},
}
POSITIVE_INTS = ("hidden_size", "kernel_shape", "strides", "dilations", "group", "blocksize", "size")
NON_NEGATIVE_INTS = ("pads",)


def element_type(data_type: int) -> DType | None:
    """The Ember dtype of an ONNX element type (None when unknown or UNDEFINED)."""
    try:
        return DType.from_onnx(data_type)
    except (ValueError, KeyError):
        return None


@dataclass
class Problems:
    """Problems found so far: (message, node label or None, op or None)."""

    file: str
    items: list[tuple[str, str | None, str | None]] = field(default_factory=list)

    def add(self, message: str, node: onnx.NodeProto | None = None) -> None:
        if node is None:
            self.items.append((message, None, None))
        else:
            self.items.append((message, node_label(node), node_op(node)))

    def nodes(self) -> set[str]:
        return {label for _, label, _ in self.items if label is not None}

    def error(self) -> EmberError | None:
        """One EmberError listing every problem (None when there is none)."""
        if not self.items:
            return None
        if len(self.items) == 1:
            message, label, op = self.items[0]
            return EmberError(message, file=self.file, node=label, op=op)
        lines = [f"node '{label}' ({op}): {m}" if label is not None else m for m, label, op in self.items]
        if len(lines) > MAX_LISTED:
            lines = lines[:MAX_LISTED] + [f"... and {len(lines) - MAX_LISTED} more"]
        return EmberError(f"{len(self.items)} problem(s) make this model invalid", file=self.file, details=lines)


def node_label(node: onnx.NodeProto) -> str:
    return node.name or (node.output[0] if node.output else "")


def node_op(node: onnx.NodeProto) -> str:
    return node.op_type if not node.domain else f"{node.domain}.{node.op_type}"


# ---------------------------------------------------------------- the gate


def validate_model(
    model: onnx.ModelProto,
    file: str,
    base_dir: str,
    *,
    limit: int,
    unsupported: Callable[[], list[str]] | None = None,
    converts: Callable[[str, str], bool] = lambda domain, op: False,
) -> None:
    """Raise one EmberError listing every problem of ``model`` (and every unsupported op).

    ``unsupported`` lists the ops no path converts (the importer's support check); ``converts``
    says whether Ember converts an op that onnx has no schema for (such errors of the checker
    are not problems).
    """
    problems = Problems(file)
    opsets = _check_versions(model, problems)
    walker = _Walker(problems, base_dir, limit, opsets)
    walker.graph(model.graph)
    for fn in model.functions:
        fn_opsets = {**opsets, **{normalise_domain(o.domain): int(o.version) for o in fn.opset_import}}
        for node in fn.node:
            walker.node(node, fn_opsets)
    missing = unsupported() if unsupported is not None else []
    if not problems.items and not missing:
        found = run_checker(model, file, converts)
        if found is not None:
            problems.add(*found)
    if missing and not problems.items:
        raise EmberError(
            f"{len(missing)} unsupported op type(s) ({_total(missing)} node(s))", file=file, details=missing
        )
    for line in missing:
        problems.add(f"unsupported op type: {line}")
    error = problems.error()
    if error is not None:
        raise error


@functools.cache
def first_version(op_type: str, domain: str) -> int | None:
    """The first opset of ``domain`` that defines ``op_type`` (None when onnx defines no such op)."""
    versions = [
        schema.since_version
        for schema in defs.get_all_schemas_with_history()
        if schema.name == op_type and normalise_domain(schema.domain) == domain
    ]
    return min(versions) if versions else None


def _check_undefined_types(g: onnx.GraphProto, problems: Problems) -> None:
    """A graph's (or subgraph's) input or output declared as a tensor of element type 0 (UNDEFINED), unless another
    entry of the same name (an output listed twice, an input passed through) gives its type."""
    entries = [*(("input", vi) for vi in g.input), *(("output", vi) for vi in g.output)]
    typed = {vi.name for _, vi in entries if _elem_type(vi.type)}
    for side, vi in entries:
        if vi.type.WhichOneof("value") == "tensor_type" and vi.type.tensor_type.elem_type == 0:
            if vi.name not in typed:
                problems.add(f"{side} '{vi.name}' of graph '{g.name}' has element type 0 (UNDEFINED)")
                typed.add(vi.name)  # named once


def _total(missing: list[str]) -> int:
    total = 0
    for line in missing:
        match = re.search(r" x(\d+)$", line)
        total += int(match.group(1)) if match else 1
    return total


def _check_versions(model: onnx.ModelProto, problems: Problems) -> dict[str, int]:
    if model.ir_version > onnx.IR_VERSION:
        problems.add(f"IR version {model.ir_version} is newer than the installed onnx knows ({onnx.IR_VERSION})")
    elif model.ir_version < MIN_IR_VERSION and model.ir_version != 0:
        problems.add(f"IR version {model.ir_version} is older than the oldest supported ({MIN_IR_VERSION})")
    opsets: dict[str, int] = {}
    for o in model.opset_import:
        domain = normalise_domain(o.domain)
        if o.version < 1:
            problems.add(f"opset {o.version} of domain '{o.domain or 'ai.onnx'}' is not a valid version (at least 1)")
        elif domain in opsets and opsets[domain] != o.version:
            problems.add(f"domain '{o.domain or 'ai.onnx'}' is imported twice (opsets {opsets[domain]}, {o.version})")
        opsets[domain] = int(o.version)
    return opsets


class _Walker:
    """Visits every graph, node, attribute and tensor of the model, adding to ``problems``."""

    def __init__(self, problems: Problems, base_dir: str, limit: int, opsets: dict[str, int]):
        self.problems = problems
        self.base_dir = base_dir
        self.limit = limit
        self.opsets = opsets

    def graph(self, g: onnx.GraphProto, opsets: dict[str, int] | None = None) -> None:
        opsets = opsets or self.opsets
        _check_undefined_types(g, self.problems)
        for vi in [*g.input, *g.output, *g.value_info]:
            for message in type_problems(vi.type, f"value '{vi.name}'"):
                self.problems.add(message)
        for tensor in g.initializer:
            self.tensor(tensor, f"initializer '{tensor.name}'")
        for sparse in g.sparse_initializer:
            self.sparse(sparse, f"sparse initializer '{sparse.values.name}'")
        for node in g.node:
            self.node(node, opsets)

    def tensor(self, t: onnx.TensorProto, what: str, node: onnx.NodeProto | None = None) -> None:
        try:
            check_tensor(t, what, self.base_dir, self.problems.file, self.limit)
        except EmberError as error:
            self.problems.add(error.message, node)

    def sparse(self, sp: onnx.SparseTensorProto, what: str, node: onnx.NodeProto | None = None) -> None:
        try:
            check_sparse_header(sp, what, self.base_dir, self.problems.file, self.limit)
        except EmberError as error:
            self.problems.add(error.message, node)

    def node(self, node: onnx.NodeProto, opsets: dict[str, int]) -> None:
        domain = normalise_domain(node.domain)
        self.arity(node, domain, opsets)
        for attr in node.attribute:
            self.attribute(node, attr, opsets)
        if node.op_type == "If" and domain == "":
            self.if_signature(node)
        if node.op_type == "Loop" and domain == "":
            self.loop_signature(node)

    def arity(self, node: onnx.NodeProto, domain: str, opsets: dict[str, int]) -> None:
        version = opsets.get(domain)
        if version is None:
            return
        try:
            schema = defs.get_schema(node.op_type, version, domain)
        except Exception:
            first = first_version(node.op_type, domain)
            if first is not None and first > version:
                self.problems.add(
                    f"{node.op_type} is defined from opset {first} of domain '{domain or 'ai.onnx'}'; "
                    f"the model imports opset {version}",
                    node,
                )
            return  # no schema: Ember's own ops, functions, unsupported ops (reported elsewhere)
        n_in = len(node.input)
        while n_in and not node.input[n_in - 1]:
            n_in -= 1  # trailing empty names are absent optional inputs
        if n_in > schema.max_input:
            self.problems.add(
                f"has {n_in} inputs; {node.op_type}-{schema.since_version} takes at most {schema.max_input}", node
            )
        elif n_in < schema.min_input:
            self.problems.add(
                f"has {n_in} inputs; {node.op_type}-{schema.since_version} needs at least {schema.min_input}", node
            )
        if len(node.output) > schema.max_output:
            self.problems.add(
                f"has {len(node.output)} outputs; {node.op_type}-{schema.since_version} makes at most "
                f"{schema.max_output}",
                node,
            )
        elif len(node.output) < schema.min_output:
            self.problems.add(
                f"has {len(node.output)} outputs; {node.op_type}-{schema.since_version} makes at least "
                f"{schema.min_output}",
                node,
            )

    def attribute(self, node: onnx.NodeProto, attr: onnx.AttributeProto, opsets: dict[str, int]) -> None:
        A = onnx.AttributeProto
        what = f"attribute '{attr.name}'"
        if attr.type == A.TENSOR:
            self.tensor(attr.t, what, node)
        elif attr.type == A.TENSORS:
            for t in attr.tensors:
                self.tensor(t, what, node)
        elif attr.type == A.SPARSE_TENSOR:
            self.sparse(attr.sparse_tensor, what, node)
        elif attr.type == A.SPARSE_TENSORS:
            for sp in attr.sparse_tensors:
                self.sparse(sp, what, node)
        elif attr.type == A.GRAPH:
            self.graph(attr.g, opsets)
        elif attr.type == A.GRAPHS:
            for g in attr.graphs:
                self.graph(g, opsets)
        elif attr.type in (A.TYPE_PROTO, A.TYPE_PROTOS):
            for tp in [attr.tp] if attr.type == A.TYPE_PROTO else list(attr.type_protos):
                for message in type_problems(tp, what):
                    self.problems.add(message, node)
        if attr.ref_attr_name:
            return
        allowed_values = ENUMS.get((None, attr.name)) or ENUMS.get((_family(node), attr.name))
        if allowed_values and attr.type == A.STRING:
            value = attr.s.decode("utf-8", errors="replace")
            if value not in allowed_values:
                allowed = ", ".join(sorted(allowed_values))
                self.problems.add(f"attribute '{attr.name}' is '{value}'; expected one of {allowed}", node)
        if attr.name in POSITIVE_INTS or attr.name in NON_NEGATIVE_INTS:
            values = [attr.i] if attr.type == A.INT else list(attr.ints) if attr.type == A.INTS else []
            least = 1 if attr.name in POSITIVE_INTS else 0
            if any(v < least for v in values):
                kind = "positive" if least else "non-negative"
                self.problems.add(f"attribute '{attr.name}' is {_shown(attr)}; it must be {kind}", node)

    def loop_signature(self, node: onnx.NodeProto) -> None:
        body = next((a.g for a in node.attribute if a.name == "body" and a.type == onnx.AttributeProto.GRAPH), None)
        if body is not None:
            for message in _loop_problems(node, body):
                self.problems.add(message, node)

    def if_signature(self, node: onnx.NodeProto) -> None:
        branches = {a.name: a.g for a in node.attribute if a.type == onnx.AttributeProto.GRAPH}
        then, other = branches.get("then_branch"), branches.get("else_branch")
        if then is None or other is None:
            return  # a missing branch is the checker's (and the op's) error
        outputs = len(node.output)
        for name, g in (("then_branch", then), ("else_branch", other)):
            if len(g.output) != outputs:
                self.problems.add(f"{name} has {len(g.output)} output(s), the If node {outputs}", node)
        for i, (a, b) in enumerate(zip(then.output, other.output)):
            ta, tb = _elem_type(a.type), _elem_type(b.type)
            if ta and tb and ta != tb:
                self.problems.add(
                    f"output {i} is {onnx.TensorProto.DataType.Name(ta)} in then_branch but "
                    f"{onnx.TensorProto.DataType.Name(tb)} in else_branch",
                    node,
                )


def _loop_problems(node: onnx.NodeProto, body: onnx.GraphProto) -> Iterator[str]:
    """A Loop body takes (iteration, condition, N carried) and gives (condition, N carried, K scanned)."""
    carried = max(len(node.input) - 2, 0)
    B, I64 = onnx.TensorProto.BOOL, onnx.TensorProto.INT64
    for what, vi, want in (("input 0 (the iteration)", body.input[:1], I64), ("input 1", body.input[1:2], B)):
        found = _elem_type(vi[0].type) if vi else 0
        if found and found != want:
            yield f"body {what} is {_type_name(found)}; a Loop gives {_type_name(want)}"
    found = _elem_type(body.output[0].type) if body.output else 0
    if found and found != B:
        yield f"body output 0 (the condition) is {_type_name(found)}, not bool"
    for k, (vi_in, vi_out) in enumerate(zip(body.input[2:], body.output[1 : 1 + carried])):
        a, b = _elem_type(vi_in.type), _elem_type(vi_out.type)
        if a and b and a != b:
            yield f"carried value {k} comes into the body as {_type_name(a)} but leaves it as {_type_name(b)}"
    if len(body.input) != 2 + carried:
        yield f"body takes {len(body.input)} input(s); a Loop with {carried} carried value(s) gives {2 + carried}"
    if len(body.output) < 1 + carried:
        yield f"body gives {len(body.output)} output(s); a Loop with {carried} carried value(s) needs {1 + carried}"
    elif len(node.output) != len(body.output) - 1:
        yield f"has {len(node.output)} output(s) but its body gives {len(body.output) - 1} after the condition"


def operand_type_problems(node: onnx.NodeProto, opset: int | None, operand_types: list) -> list[str]:
    """Operands whose element type the op's schema does not allow (``If`` on a float condition...).

    Only tensor operands with a known dtype are checked, against the schema of the node's
    default-domain op at ``opset``; ops without a schema (Ember's own, contrib) are not. Ember
    extends two things on purpose: a type a later version of the op admits (int2 in Cast-24, say)
    is accepted, and bfloat16 wherever float16 is (kernels compute it in float32).
    """
    if normalise_domain(node.domain) or opset is None:
        return []
    try:
        schema = defs.get_schema(node.op_type, opset, "")
        newest = defs.get_schema(node.op_type, defs.onnx_opset_version(), "")
    except Exception:
        return []
    allowed = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}
    if newest.since_version != schema.since_version:
        later = {c.type_param_str: set(c.allowed_type_strs) for c in newest.type_constraints}
        for param, types in allowed.items():
            types |= later.get(param, set())
    for types in allowed.values():
        if "tensor(float16)" in types:
            types.add("tensor(bfloat16)")
    formals = list(schema.inputs)
    problems = []
    for i, t in enumerate(operand_types):
        if not formals or not isinstance(t, TensorType):
            continue
        formal = formals[min(i, len(formals) - 1)]
        if i >= len(formals) and formal.option != defs.OpSchema.FormalParameterOption.Variadic:
            continue
        types = allowed.get(formal.type_str, {formal.type_str})
        name = f"tensor({onnx.TensorProto.DataType.Name(t.dtype.onnx).lower()})"
        if not any(a.startswith("tensor(") for a in types):
            continue  # a sequence or optional parameter: checked by inference
        if name not in types:
            shown = ", ".join(sorted(a[7:-1] for a in types if a.startswith("tensor(")))
            problems.append(f"input {i} ('{formal.name}') is {name[7:-1]}; {node.op_type} takes {shown}")
    return problems


def _family(node: onnx.NodeProto) -> str | None:
    if normalise_domain(node.domain):
        return None
    op_def = get_op(node.op_type)
    return op_def.family if op_def is not None else None


def _shown(attr: onnx.AttributeProto) -> str:
    return str(attr.i) if attr.type == onnx.AttributeProto.INT else str(list(attr.ints))


def _type_name(elem_type: int) -> str:
    return onnx.TensorProto.DataType.Name(elem_type).lower()


def _elem_type(tp: onnx.TypeProto) -> int:
    if tp.WhichOneof("value") == "tensor_type":
        t = tp.tensor_type.elem_type
        return t if element_type(t) is not None else 0
    return 0


def type_problems(tp: onnx.TypeProto, what: str) -> Iterator[str]:
    """Unknown element types anywhere inside a TypeProto."""
    which = tp.WhichOneof("value")
    if which == "tensor_type" or which == "sparse_tensor_type":
        tt = getattr(tp, which)
        if tt.elem_type != 0 and element_type(tt.elem_type) is None:
            yield f"{what} has unknown element type {tt.elem_type}"
    elif which == "sequence_type" and tp.sequence_type.HasField("elem_type"):
        yield from type_problems(tp.sequence_type.elem_type, what)
    elif which == "optional_type" and tp.optional_type.HasField("elem_type"):
        yield from type_problems(tp.optional_type.elem_type, what)
    elif which == "map_type" and tp.map_type.HasField("value_type"):
        yield from type_problems(tp.map_type.value_type, what)


# ---------------------------------------------------------------- tensors


def check_tensor(t: onnx.TensorProto, what: str, base_dir: str, file: str | None, limit: int) -> int:
    """Element count of a TensorProto after checking type, dims, size and external location."""
    dtype = element_type(t.data_type)
    if dtype is None:
        raise EmberError(f"{what} has unknown element type {t.data_type}", file=file)
    count = checked_numel(t.dims, what, file, max(dtype.itemsize, 1), limit)
    if t.data_location == onnx.TensorProto.EXTERNAL:
        info = {e.key: e.value for e in t.external_data}
        path = resolve_inside(base_dir, info.get("location", ""), file=file, what=f"external data of {what}")
        if not os.path.isfile(path):
            raise EmberError(f"external data file '{info.get('location')}' of {what} is missing", file=file)
        for key in ("offset", "length"):
            if key in info and (not info[key].strip().isdigit()):
                raise EmberError(f"external data of {what} has a bad {key} '{info[key]}'", file=file)
    return count


def check_sparse_header(sp: onnx.SparseTensorProto, what: str, base_dir: str, file: str | None, limit: int) -> None:
    """A sparse tensor's dims, value/index tensors and their shapes (index ranges: ``sparse_to_array``)."""
    values_dtype = element_type(sp.values.data_type)
    if values_dtype is None:
        raise EmberError(f"{what} has values of unknown element type {sp.values.data_type}", file=file)
    checked_numel(sp.dims, what, file, max(values_dtype.itemsize, 1), limit)
    nnz = check_tensor(sp.values, f"values of {what}", base_dir, file, limit)
    if len(sp.values.dims) != 1:
        raise EmberError(f"{what}: values must be 1-D, not of shape {list(sp.values.dims)}", file=file)
    if sp.indices.data_type not in (onnx.TensorProto.INT64, onnx.TensorProto.INT32):
        raise EmberError(f"{what}: indices must be int64, not element type {sp.indices.data_type}", file=file)
    check_tensor(sp.indices, f"indices of {what}", base_dir, file, limit)
    shape = list(sp.indices.dims)
    if shape not in ([nnz], [nnz, len(sp.dims)]):
        raise EmberError(
            f"{what}: indices of shape {shape} do not fit {nnz} values in {len(sp.dims)} dims "
            f"(expected [{nnz}] or [{nnz}, {len(sp.dims)}])",
            file=file,
        )
    if sp.indices.data_location != onnx.TensorProto.EXTERNAL:
        try:
            indices = numpy_helper.to_array(sp.indices)
        except Exception as exc:
            raise EmberError(f"{what}: cannot read its indices ({type(exc).__name__}: {exc})", file=file) from None
        check_indices(indices, tuple(int(d) for d in sp.dims), what, file)


def check_indices(indices: np.ndarray, dims: tuple[int, ...], what: str, file: str | None) -> None:
    """EmberError when a sparse tensor's (linear or coordinate) index lies outside ``dims``."""
    indices = np.asarray(indices).astype(np.int64, copy=False)
    size = int(np.prod(dims, dtype=np.int64)) if dims else 1
    if indices.ndim == 1:
        bad = (indices < 0) | (indices >= size)
    else:
        bad = ((indices < 0) | (indices >= np.asarray(dims, dtype=np.int64))).any(axis=1)
    if bad.any():
        first = indices[int(np.argmax(bad))]
        raise EmberError(
            f"{what}: index {first.tolist()} is out of range for shape {list(dims)} "
            f"({int(bad.sum())} of {len(indices)} indices)",
            file=file,
        )


def sparse_to_array(sp: onnx.SparseTensorProto, read: Callable[[onnx.TensorProto], np.ndarray], what: str, file):
    """The dense array of a checked sparse tensor; ``read`` reads its values and indices tensors."""
    dims = tuple(int(d) for d in sp.dims)
    values = np.asarray(read(sp.values)).reshape(-1)
    indices = np.asarray(read(sp.indices)).astype(np.int64, copy=False)
    check_indices(indices, dims, what, file)
    if indices.ndim not in (1, 2) or len(indices) != len(values):
        raise EmberError(f"{what}: {len(indices)} indices for {len(values)} values", file=file)
    dense = np.zeros(dims, dtype=values.dtype)
    if indices.ndim == 1:
        dense.reshape(-1)[indices] = values
    else:
        dense[tuple(indices.T)] = values
    return dense


__all__ = [
    "DEFAULT_MAX_TENSOR_BYTES",
    "MAX_TENSOR_BYTES_ENV",
    "check_sparse_header",
    "check_tensor",
    "checked_numel",
    "max_tensor_bytes",
    "sparse_to_array",
    "validate_model",
]
