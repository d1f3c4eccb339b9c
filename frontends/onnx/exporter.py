"""Ember Graph -> ONNX ModelProto: ``export_model(graph)``; ``save_model(graph, path)`` writes it.

The result passes ``onnx.checker.check_model(model, full_check=True)`` and
runs in onnxruntime, so an optimized graph can be opened in Netron or run
anywhere.  How the IR maps onto ONNX:

- every value gets one name, unique across the whole model (nested graphs
  included); graph inputs and outputs keep their names when they can;
- ``Constant`` nodes of the top graph become initializers; in nested graphs
  they stay ``Constant`` nodes;
- nested graphs (``If``/``Loop``/``Scan`` bodies) become GraphProto
  attributes; a body node reading an enclosing value refers to it by name,
  which ONNX reads as an implicit capture from the outer scope;
- a graph output that is not computed by a node of that graph (a parameter,
  a constant, an outer value, or a value listed twice) goes through an
  ``Identity``, so each output name is defined once, inside its graph;
- ops of other ONNX domains (``ai.onnx.ml.LabelEncoder``) keep their domain;
  internal ops (``caffe.PriorBox``, ``ember.*``) are exported as op
  ``PriorBox`` of domain ``caffe`` with an opset import for that domain,
  or refused with an ``EmberError`` when ``custom_ops="error"``;
- the default-domain opset is the lowest one at which every op used has its
  newest semantics (Ember's ops are latest-opset ops), which keeps the model
  loadable by runtimes that lag behind the newest onnx release.  An op
  version counts as having the newest semantics when its signature
  (attributes with defaults, formal inputs and outputs) equals the newest
  one's and its type constraints admit the node's types: onnx bumps versions
  for new element types alone, and those bumps change nothing for a node.
  Some versions changed meaning under an unchanged signature (Flatten's
  negative axis, Loop's arity, pooling's ceil mode, Mod's float cases), so no
  op goes below ``SEMANTIC_FLOOR`` this way, nor below its entry in
  ``SILENT_CHANGES`` (found by running the conformance suite's exports in
  onnxruntime: ``scripts/onnx_conformance.py --export ort``).
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

import numpy as np
import onnx
from onnx import defs, helper

from compiler import onnx_bridge as bridge
from compiler.diagnostics import EmberError
from compiler.ir.core import Graph, Node, Value
from compiler.ir.types import OptionalType, SequenceType, TensorType, Type
from compiler.ops import get_op
from compiler.ops.infer_onnx import ONNX_DOMAINS

PRODUCER = "ember"
MIN_OPSET = 7
EXTERNAL_DATA_BYTES = 1 << 30  # save_model moves weights beside the model past 1 GiB
# Lowering an op's version for type-only bumps stops here (opset 21, onnx 1.16): below it,
# versions changed semantics without changing their signatures.
SEMANTIC_FLOOR = 21
# Versions above the floor whose semantics changed with an unchanged signature.
SILENT_CHANGES = {"AveragePool": 22, "MaxPool": 22, "LpPool": 22, "Mod": 28}


def export_model(
    graph: Graph, *, opset: int | None = None, custom_ops: str = "export", value_info: bool = True, check: bool = False
) -> onnx.ModelProto:
    """Export ``graph`` as an ONNX model.

    ``opset``: the default-domain opset to declare (default: the lowest at which every op
    used has its newest semantics).  ``custom_ops``: ``"export"`` writes non-ONNX ops with
    their domain, ``"error"`` refuses them.  ``value_info``: record the types of
    intermediate values.  ``check``: run ``onnx.checker.check_model(full_check=True)``.
    """
    if custom_ops not in ("export", "error"):
        raise EmberError(f"custom_ops must be 'export' or 'error', not '{custom_ops}'")
    exporter = _Exporter(custom_ops == "error", value_info)
    gproto = exporter.export_graph(graph, top=True)
    opsets = exporter.opset_imports(opset)
    model = helper.make_model(gproto, opset_imports=opsets, producer_name=PRODUCER)
    model.ir_version = max(helper.find_min_ir_version_for(opsets, ignore_unknown=True), 7)
    if check:
        try:
            onnx.checker.check_model(model, full_check=True)
        except Exception as exc:
            raise EmberError(f"the exported model fails the ONNX checker: {exc}") from None
    return model


def save_model(graph: Graph, path: str, *, external_data: bool | None = None, **kw: Any) -> onnx.ModelProto:
    """Export ``graph`` and write it to ``path``; returns the model as written.

    Weights go to ``<path>.data`` beside the model when ``external_data`` is true, or by default
    when they pass ``EXTERNAL_DATA_BYTES`` (protobuf cannot serialise a message over 2 GB).
    Other keywords go to ``export_model``.
    """
    import os

    model = export_model(graph, **kw)
    threshold = 0  # asked for: every initializer goes out
    if external_data is None:
        external_data = sum(len(t.raw_data) for t in model.graph.initializer) > EXTERNAL_DATA_BYTES
        threshold = 1024  # too big to embed: small tensors may stay
    try:
        if external_data:
            onnx.save_model(
                model,
                path,
                save_as_external_data=True,
                all_tensors_to_one_file=True,
                location=os.path.basename(path) + ".data",
                size_threshold=threshold,
            )
        else:
            onnx.save_model(model, path)
    except (OSError, ValueError) as exc:
        raise EmberError(f"cannot write the model: {exc}", file=path) from None
    return model


def split_op_name(op: str) -> tuple[str, str]:
    """``"caffe.PriorBox"`` -> ``("caffe", "PriorBox")``; default-domain ops -> ``("", op)``."""
    if "." not in op:
        return "", op
    domain, _, op_type = op.rpartition(".")
    return domain, op_type


class _Names:
    """Hands out model-wide unique names, preferring each value's own."""

    def __init__(self):
        self.taken: set[str] = set()
        self.of: dict[int, str] = {}
        self._counter = itertools.count()

    def fresh(self, base: str) -> str:
        base = base or "v"
        name = base
        while name in self.taken:
            name = f"{base}__{next(self._counter)}"
        self.taken.add(name)
        return name

    def name(self, value: Value) -> str:
        key = id(value)
        if key not in self.of:
            self.of[key] = self.fresh(value.name)
        return self.of[key]


class _Exporter:
    """Builds GraphProtos for a graph and its nested graphs; tracks domains and op versions used."""

    def __init__(self, refuse_custom: bool, value_info: bool):
        self.refuse_custom = refuse_custom
        self.with_value_info = value_info
        self.names = _Names()
        self.domains: dict[str, int] = {}
        self.default_version = MIN_OPSET
        self.node_counter = itertools.count()

    # ------------------------------------------------------------ graphs
    def export_graph(self, graph: Graph, top: bool = False) -> onnx.GraphProto:
        """One GraphProto; names of this graph's params and outputs are claimed first."""
        if top:
            for v in list(graph.params) + list(graph.outputs):
                self.names.name(v)
        inputs = [self._value_info(p, "graph input", required=top) for p in graph.params]
        nodes: list[onnx.NodeProto] = []
        initializers: list[onnx.TensorProto] = []
        infos: list[onnx.ValueInfoProto] = []
        for node in graph.nodes:
            if top and node.op == "Constant" and isinstance(node.attrs.get("value"), np.ndarray):
                initializers.append(bridge.array_to_proto(node.attrs["value"], self.names.name(node.result)))
                continue
            nodes.append(self.export_node(node))
            if self.with_value_info:
                infos.extend(
                    helper.make_value_info(self.names.name(r), bridge.type_to_proto(r.type))
                    for r in node.results
                    if r.type is not None and r.has_uses() and r not in graph.outputs
                )
        outputs = self._outputs(graph, nodes, top)
        return helper.make_graph(nodes, graph.name or "main", inputs, outputs, initializers, value_info=infos)

    def _outputs(self, graph: Graph, nodes: list[onnx.NodeProto], top: bool) -> list[onnx.ValueInfoProto]:
        """Output ValueInfos; outputs not computed by a node of ``graph`` go through an Identity."""
        outputs, seen = [], set()
        for v in graph.outputs:
            name = self.names.name(v)
            computed_here = (
                v.producer is not None and v.producer.graph is graph and not (top and v.producer.op == "Constant")
            )
            top_input = top and v.is_param and v.graph is graph  # may be an output as is
            if name in seen or not (computed_here or top_input):
                out_name = self.names.fresh(f"{v.name or 'out'}_out")
                nodes.append(
                    helper.make_node("Identity", [name], [out_name], name=self.names.fresh(f"identity_{out_name}"))
                )
                name = out_name
            seen.add(name)
            outputs.append(helper.make_value_info(name, bridge.type_to_proto(v.type)))
        return outputs

    def _value_info(self, value: Value, what: str, required: bool = True) -> onnx.ValueInfoProto:
        """A ValueInfo; a nested graph's input may stay untyped (ONNX lets the op supply it)."""
        if value.type is None and required:
            raise EmberError(f"{what} '{value.name}' has no type; ONNX needs one")
        return helper.make_value_info(self.names.name(value), bridge.type_to_proto(value.type))

    # ------------------------------------------------------------ nodes
    def export_node(self, node: Node) -> onnx.NodeProto:
        domain, op_type = split_op_name(node.op)
        self._note_op(node, domain, op_type)
        inputs = ["" if v is None else self.names.name(v) for v in node.operands]
        while inputs and inputs[-1] == "":
            inputs.pop()
        outputs = [self.names.name(r) for r in node.results]
        name = self.names.fresh(node.name or f"{op_type}_{next(self.node_counter)}")
        proto = helper.make_node(op_type, inputs, outputs, name=name, domain=domain or None)
        op_def = get_op(node.op)
        for key, value in _attrs_to_write(node, op_def, domain, op_type).items():
            if value is None:
                continue
            spec = op_def.attrs.get(key) if op_def is not None else None
            try:
                proto.attribute.append(
                    bridge.attr_to_proto(key, value, spec.kind if spec else None, convert_graph=self.export_graph)
                )
            except EmberError:
                raise
            except Exception as exc:
                raise EmberError(
                    f"cannot export attribute '{key}': {exc}", node=node.name or outputs[0], op=node.op
                ) from None
        return proto

    def _note_op(self, node: Node, domain: str, op_type: str) -> None:
        """Record the domain (and, for ONNX ops, the opset the op's newest schema needs)."""
        if domain == "":
            if not _history(op_type):
                raise EmberError("op is not an ONNX op and has no domain", node=node.name, op=node.op)
            self.default_version = max(self.default_version, oldest_equivalent_version(node, op_type))
            return
        if self.refuse_custom and domain not in ONNX_DOMAINS:
            raise EmberError(
                f"internal op of domain '{domain}' has no ONNX equivalent (custom_ops='error')",
                node=node.name or (node.results[0].name if node.results else None),
                op=node.op,
            )
        version = 1
        try:
            version = defs.get_schema(op_type, 10**6, domain).since_version
        except Exception:
            pass
        self.domains[domain] = max(self.domains.get(domain, 1), version)

    def opset_imports(self, opset: int | None) -> list[onnx.OperatorSetIdProto]:
        version = self.default_version if opset is None else opset
        if opset is not None and opset < self.default_version:
            raise EmberError(
                f"opset {opset} is too old: the graph uses ops whose newest semantics need opset {self.default_version}"
            )
        imports = [helper.make_opsetid("", version)]
        imports += [helper.make_opsetid(d, v) for d, v in sorted(self.domains.items())]
        return imports


def _attrs_to_write(node: Node, op_def, domain: str, op_type: str) -> dict[str, Any]:
    """The node's attributes, plus the schema defaults of function-bodied ONNX ops: onnx's own
    checker fails to expand some bodies (MeanVarianceNormalization) whose attributes are left out."""
    attrs = dict(node.attrs)
    if domain == "" and op_def is not None and _history(op_type) and _history(op_type)[-1].has_function:
        for name, spec in op_def.attrs.items():
            if name not in attrs and not spec.required and spec.default is not None:
                attrs[name] = spec.default
    return attrs


@functools.lru_cache(maxsize=None)
def _history(op_type: str) -> tuple:
    """Every version of a default-domain op's schema, oldest first (empty for non-ONNX ops)."""
    try:
        newest = defs.get_schema(op_type, defs.onnx_opset_version(), "")
    except Exception:
        return ()
    versions, version = [], newest.since_version
    while version >= 1:
        try:
            schema = defs.get_schema(op_type, version, "")
        except Exception:  # no version that old
            break
        versions.append(schema)
        version = schema.since_version - 1
    return tuple(reversed(versions))


@functools.lru_cache(maxsize=None)
def _signature(schema) -> tuple:
    """What a version bump may change besides types: attributes (kind, required, default) and formals."""
    attrs = tuple(
        sorted(
            (name, a.type, a.required, a.default_value.SerializeToString() if a.default_value else b"")
            for name, a in schema.attributes.items()
        )
    )
    return (attrs, tuple((f.name, f.option) for f in schema.inputs), tuple((f.name, f.option) for f in schema.outputs))


def type_string(t: Type | None) -> str | None:
    """onnx's type-constraint spelling of an Ember type (``tensor(float)``, ``seq(tensor(int64))``)."""
    if isinstance(t, TensorType):
        name = onnx.TensorProto.DataType.Name(t.dtype.onnx).lower()
        return f"tensor({ {'float': 'float', 'double': 'double'}.get(name, name) })"
    if isinstance(t, (SequenceType, OptionalType)) and t.elem is not None:
        inner = type_string(t.elem)
        kind = "seq" if isinstance(t, SequenceType) else "optional"
        return None if inner is None else f"{kind}({inner})"
    return None


def _accepts(schema, node: Node) -> bool:
    """True when the schema's type constraints admit the node's operand and result types."""
    constraints = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}
    for formals, values in ((schema.inputs, node.operands), (schema.outputs, node.results)):
        for i, value in enumerate(values):
            if value is None or not formals:
                continue
            formal = formals[min(i, len(formals) - 1)]
            allowed = constraints.get(formal.type_str, {formal.type_str})
            spelled = type_string(value.type)
            if spelled is not None and spelled not in allowed:
                return False
    return True


def oldest_equivalent_version(node: Node, op_type: str) -> int:
    """The oldest opset (not below ``SEMANTIC_FLOOR`` unless the newest version is) at which
    ``op_type`` still means what its newest version means for ``node``."""
    history = _history(op_type)
    newest = history[-1]
    if newest.since_version <= SEMANTIC_FLOOR:
        return newest.since_version
    version = newest.since_version
    floor = max(SEMANTIC_FLOOR, SILENT_CHANGES.get(op_type, 0))
    for schema in reversed(history):  # each version rules the opsets from its since_version up
        if _signature(schema) != _signature(newest) or not _accepts(schema, node):
            break
        version = max(schema.since_version, floor)
        if schema.since_version <= floor:
            break
    return version


def ort_session(model: onnx.ModelProto, **kw: Any):
    """An onnxruntime InferenceSession for an exported model (used by tests and tools)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"], **kw)


__all__ = ["export_model", "save_model", "split_op_name", "ort_session"]
