"""ONNX functions: model-local FunctionProtos, the function bodies of op schemas, and their
conversion into Ember nodes.

The ONNX importer inlines function calls while it imports (``OnnxImporter.inline_function``)
with the walk ``inline_call`` and these pieces: a function's own opsets (``function_opsets``),
body nodes whose ``ref_attr_name`` attributes are bound to the caller's values or the function's
defaults (``bind_attribute_refs``), and the FunctionProto of a schema (``schema_with_function``,
``schema_function_body``; context-dependent bodies are built from the actual input types).

After import, the ``expand-functions`` pass replaces an Ember node by its op's function body:
``function_body_graph(node)`` builds that body as a graph whose parameters stand for the node's
run-time operands (constant operands are copied in, so bodies that branch on them see their
values), with the same ``inline_call`` walk.  Body nodes convert one-to-one into Ember ops
(which follow the newest opset):

    Constant {value_float | value_ints | ...}  ->  Constant {value = array}
    Op-v(x) {a}   where ``a`` became input ``a`` of the newest Op  ->  Op(x, Constant a)
    Op(x)         where Ember has no Op but its schema has a body  ->  that body, inlined

Nested graphs (an ``If`` in AffineGrid's body) convert the same way and read outer values by name.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import onnx
from onnx import defs, helper

from . import onnx_bridge as bridge
from .diagnostics import EmberError
from .ir.core import Graph, Node, Value
from .ir.scope import Scope
from .ir.types import DType, TensorType, Type
from .ops import get_op
from .ops.inference import infer_types

DEFAULT_DOMAINS = ("", "ai.onnx")
MAX_FUNCTION_DEPTH = 32


class FunctionExpansionError(EmberError):
    """A node's function body cannot be built or converted (the node is then left as it is)."""


def normalise_domain(domain: str) -> str:
    """``ai.onnx`` and ``""`` both name the default domain."""
    return "" if domain in DEFAULT_DOMAINS else domain


def function_opsets(fn) -> dict[str, int]:
    """Domain -> version imported by a FunctionProto."""
    return {normalise_domain(o.domain): int(o.version) for o in fn.opset_import}


def bind_attribute_refs(node: onnx.NodeProto, given: dict, defaults: dict) -> onnx.NodeProto:
    """A copy of a function-body node with ``ref_attr_name`` attributes replaced by actual values."""
    if not any(a.ref_attr_name for a in node.attribute):
        return node
    bound = onnx.NodeProto()
    bound.CopyFrom(node)
    del bound.attribute[:]
    for attr in node.attribute:
        if not attr.ref_attr_name:
            bound.attribute.append(attr)
            continue
        source = given.get(attr.ref_attr_name) or defaults.get(attr.ref_attr_name)
        if source is None:
            continue  # unset optional attribute: the op's default applies
        copy = onnx.AttributeProto()
        copy.CopyFrom(source)
        copy.name = attr.name
        bound.attribute.append(copy)
    return bound


def schema_with_function(op_type: str, domain: str, opset: int):
    """The op's schema at ``opset`` if it has a (possibly context-dependent) function body, else None."""
    try:
        schema = defs.get_schema(op_type, opset, domain)
    except Exception:
        return None
    return schema if schema.has_function or schema.has_context_dependent_function else None


def schema_function_body(schema, node: onnx.NodeProto, inputs: list[Value | None], opset: int):
    """The FunctionProto that defines ``node``'s op (context-dependent bodies need input types)."""
    if schema.has_function:
        return schema.function_body
    types = [bridge.type_to_proto(v.type if v is not None else None) for v in inputs]
    try:
        data = schema.get_context_dependent_function(
            opset, node.SerializeToString(), [t.SerializeToString() for t in types]
        )
    except Exception:
        try:
            data = schema.get_context_dependent_function(
                node.SerializeToString(), [t.SerializeToString() for t in types]
            )
        except Exception:
            return None
    fn = onnx.FunctionProto()
    fn.ParseFromString(data)
    return fn


def constant_array(attrs: dict[str, Any]) -> np.ndarray:
    """The array a Constant node holds, whichever of its value attributes gives it."""
    if len(attrs) != 1:
        raise ValueError(f"Constant needs exactly one value attribute, has {sorted(attrs) or 'none'}")
    ((key, value),) = attrs.items()
    if key in ("value", "sparse_value"):
        return np.asarray(value)
    scalar = {"value_float": np.float32, "value_floats": np.float32, "value_int": np.int64, "value_ints": np.int64}
    if key in scalar:
        return np.asarray(value, dtype=scalar[key])
    if key in ("value_string", "value_strings"):
        return np.array(value, dtype=object)
    raise ValueError(f"Constant has an unknown attribute '{key}'")


def node_proto(node: Node) -> onnx.NodeProto:
    """``node`` as an ONNX NodeProto reading ``in<i>`` and writing ``out<i>``, with the schema's
    defaults for attributes it leaves out (bodies may refer to them)."""
    op_def = get_op(node.op)
    attrs = []
    for name, value in node.attrs.items():
        kind = op_def.attrs[name].kind if op_def is not None and name in op_def.attrs else None
        attrs.append(bridge.attr_to_proto(name, value, kind))
    given = {a.name for a in attrs}
    schema = defs.get_schema(node.op, defs.onnx_opset_version(), "")
    for name, spec in schema.attributes.items():
        default = spec.default_value
        if name not in given and default is not None and default.type != onnx.AttributeProto.UNDEFINED:
            attr = onnx.AttributeProto()
            attr.CopyFrom(default)
            attr.name = name
            attrs.append(attr)
    in_names = [f"in{i}" if v is not None else "" for i, v in enumerate(node.operands)]
    proto = helper.make_node(
        node.op, in_names, [f"out{i}" for i in range(len(node.results))], name=node.name or "expanded"
    )
    proto.attribute.extend(attrs)
    return proto


def function_body_graph(node: Node) -> Graph:
    """The body of ``node``'s (default-domain) op as a graph: one parameter per run-time operand
    of ``node``, constant operands copied in as ``Constant`` nodes, one output per result.
    Raises ``FunctionExpansionError`` when the op has no body or a body node cannot be converted."""
    opset = defs.onnx_opset_version()
    schema = schema_with_function(node.op, "", opset)
    if schema is None or "." in node.op:
        raise FunctionExpansionError("the op has no ONNX function body", node=node.name, op=node.op)
    graph = Graph(f"{node.op}_body")
    inputs: list[Value | None] = []
    for v in node.operands:
        if v is None:
            inputs.append(None)
        elif v.const_value is not None:
            array = np.asarray(v.const_value)
            inputs.append(_append(graph, Node("Constant", [], [TensorType.of(array)], {"value": array}, [v.name])))
        else:
            inputs.append(graph.add_param(v.type, v.name))
    proto = node_proto(node)
    fn = schema_function_body(schema, proto, inputs, opset)
    if fn is None:
        raise FunctionExpansionError("its function body could not be built", node=node.name, op=node.op)
    converter = _BodyConverter(node)
    try:
        results = converter.inline(graph, fn, proto, inputs, {"": opset, **function_opsets(fn)}, 0)
    except FunctionExpansionError:
        raise
    except Exception as exc:  # an inference or attribute check tripped on the body
        raise FunctionExpansionError(
            f"its function body does not convert ({type(exc).__name__}: {exc})", node=node.name, op=node.op
        ) from exc
    if len(results) < len(node.results) or any(r is None for r, o in zip(results, node.results) if o.has_uses()):
        raise FunctionExpansionError("its function body leaves a used result undefined", node=node.name, op=node.op)
    graph.outputs = [r if r is not None else inputs[0] for r in results[: len(node.results)]]
    return graph


def _append(graph: Graph, node: Node) -> Value:
    graph.append(node)
    return node.results[0]


def inline_call(
    fn,
    call: onnx.NodeProto,
    inputs: list,
    scope,
    convert: Callable[[onnx.NodeProto], None],
    order: Callable[[Any], list] = list,
) -> list:
    """Walk the body of ``fn`` called as ``call`` on ``inputs``: bind the formal inputs in ``scope``
    (an object with ``define``, ``lookup`` and ``in``), hand each body node, in ``order``, with its
    attribute references bound to the call's attributes or ``fn``'s defaults, to ``convert`` (which
    binds its outputs in ``scope``); returns the value of each formal output (None when undefined).
    The importer inlines functions with it, and ``function_body_graph`` builds bodies with it."""
    for i, formal in enumerate(fn.input):
        scope.define(formal, inputs[i] if i < len(inputs) else None)
    given = {a.name: a for a in call.attribute}
    defaults = {a.name: a for a in fn.attribute_proto}
    for body_node in order(fn.node):
        convert(bind_attribute_refs(body_node, given, defaults))
    return [scope.lookup(formal) if formal in scope else None for formal in fn.output]


class _BodyConverter:
    """Converts function-body NodeProtos into Ember nodes appended to a graph."""

    def __init__(self, node: Node):
        self.node = node
        self.count = 0

    def inline(
        self, graph: Graph, fn, proto: onnx.NodeProto, inputs: list[Value | None], opsets: dict[str, int], depth: int
    ) -> list[Value | None]:
        """Append ``fn``'s body (a call ``proto`` on ``inputs``) to ``graph``; returns its outputs."""
        if depth >= MAX_FUNCTION_DEPTH:
            raise FunctionExpansionError(f"function '{fn.name}' nests deeper than {MAX_FUNCTION_DEPTH}")
        scope = Scope()
        return inline_call(fn, proto, inputs, scope, lambda node: self.convert(graph, node, scope, opsets, depth))

    def convert(self, graph: Graph, proto: onnx.NodeProto, scope: Scope, opsets: dict[str, int], depth: int) -> None:
        """Convert one body node; binds its outputs in ``scope``."""
        domain = normalise_domain(proto.domain)
        inputs = [scope.lookup(n) if n else None for n in proto.input]
        attrs = {
            a.name: bridge.attr_value_from_proto(
                a, lambda g, name=a.name: self.subgraph(g, scope, opsets, depth, body_param_hints(proto, name, inputs))
            )
            for a in proto.attribute
        }
        op = proto.op_type if not domain else f"{domain}.{proto.op_type}"
        op_def = get_op(op)
        if op == "Constant":
            results = [self.emit(graph, "Constant", [], {"value": constant_array(attrs)}, proto)]
        elif op_def is not None:
            operands, attrs = _attributes_to_inputs(proto, domain, inputs, attrs)
            operands = [
                self.emit(graph, "Constant", [], {"value": v}, onnx.NodeProto()) if isinstance(v, np.ndarray) else v
                for v in operands
            ]
            problems = op_def.check_attrs(attrs)
            if problems:
                raise FunctionExpansionError(f"body node {proto.op_type}: {problems[0]}")
            results = self.emit_all(graph, op, operands, attrs, proto)
        else:
            schema = schema_with_function(proto.op_type, domain, opsets.get(domain, 1))
            fn = None if schema is None else schema_function_body(schema, proto, inputs, opsets.get(domain, 1))
            if fn is None:
                raise FunctionExpansionError(f"function body uses {op}, which Ember lacks")
            results = self.inline(graph, fn, proto, inputs, {**opsets, **function_opsets(fn)}, depth + 1)
        for name, value in zip(proto.output, results):
            if name:
                scope.define(name, value)

    def subgraph(self, gproto: onnx.GraphProto, outer: Scope, opsets: dict[str, int], depth: int, hints: list) -> Graph:
        """A nested graph of a body node (its nodes may read ``outer`` values); ``hints``: parameter
        types implied by the node's operands, for parameters the body leaves untyped."""
        sub = Graph(gproto.name or "body")
        scope = Scope(outer)
        for i, inp in enumerate(gproto.input):
            t = bridge.type_from_proto(inp.type)
            if t is None and i < len(hints):
                t = hints[i]
            scope.define(inp.name, sub.add_param(t, inp.name))
        for tensor in gproto.initializer:
            array = bridge.array_from_proto(tensor)
            scope.define(
                tensor.name, _append(sub, Node("Constant", [], [TensorType.of(array)], {"value": array}, [tensor.name]))
            )
        for body_node in gproto.node:
            self.convert(sub, body_node, scope, opsets, depth)
        sub.outputs = [scope.lookup(out.name) for out in gproto.output]
        return sub

    def emit(self, graph: Graph, op: str, operands, attrs, proto) -> Value:
        return self.emit_all(graph, op, operands, attrs, proto)[0]

    def emit_all(self, graph: Graph, op: str, operands, attrs, proto) -> list[Value]:
        """Append ``op`` with inferred result types, named after the body node's outputs."""
        operands = list(operands)
        while operands and operands[-1] is None:
            operands.pop()
        count = len(proto.output) or 1
        if op == "Constant":
            count = 1
        types = infer_types(op, operands, attrs, count)
        if any(t is None for t in types):
            raise FunctionExpansionError(f"cannot infer the result types of body node {proto.op_type}")
        self.count += 1
        base = self.node.name or self.node.op
        names = [f"{base}/{n}_{self.count}" if n else "" for n in proto.output] or [""]
        label = proto.name or (proto.output[0] if proto.output else op)
        new = Node(op, operands, types, attrs, names, name=f"{label}_{self.count}")
        graph.append(new)
        return list(new.results)


def _attributes_to_inputs(proto: onnx.NodeProto, domain: str, inputs: list, attrs: dict):
    """Operands and attributes for the newest version of the op: an attribute of an older version
    that the newest one takes as an input of the same name (ReduceMax-11's ``axes``) becomes a
    constant operand."""
    op_def = get_op(proto.op_type if not domain else f"{domain}.{proto.op_type}")
    moved = [name for name in attrs if name not in op_def.attrs]
    if not moved:
        return inputs, attrs
    try:
        newest = defs.get_schema(proto.op_type, defs.onnx_opset_version(), domain)
    except Exception:
        return inputs, attrs
    positions = {p.name: i for i, p in enumerate(newest.inputs)}
    operands, attrs = list(inputs), dict(attrs)
    for name in moved:
        if name not in positions:
            continue
        value = attrs.pop(name)
        array = np.asarray(value, dtype=np.int64 if np.asarray(value).dtype.kind in "iu" else np.float32)
        operands += [None] * (positions[name] + 1 - len(operands))
        operands[positions[name]] = array  # made a Constant node by the caller
    return operands, attrs


def body_param_hints(node: onnx.NodeProto, attr_name: str, inputs: list[Value | None]) -> list[Type | None]:
    """Parameter types of a Loop/Scan body implied by the node's inputs (bodies may leave them out)."""
    types = [v.type if v is not None else None for v in inputs]
    if node.op_type == "Loop" and attr_name == "body":
        # a carried value may change shape between iterations: keep only its dtype and rank
        carried = [
            TensorType(t.dtype, None if t.shape is None else (None,) * len(t.shape)) if isinstance(t, TensorType) else t
            for t in types[2:]
        ]
        return [TensorType(DType.INT64, ()), TensorType(DType.BOOL, ())] + carried
    if node.op_type == "Scan" and attr_name == "body":
        attrs = {a.name: a for a in node.attribute}
        n_scan = attrs["num_scan_inputs"].i if "num_scan_inputs" in attrs else 0
        n_state = len(types) - n_scan
        axes = list(attrs["scan_input_axes"].ints) if "scan_input_axes" in attrs else [0] * n_scan
        hints = types[:n_state]
        for t, axis in zip(types[n_state:], axes):
            if isinstance(t, TensorType) and t.shape is not None and t.shape:
                axis %= len(t.shape)
                hints.append(TensorType(t.dtype, t.shape[:axis] + t.shape[axis + 1 :]))
            else:
                hints.append(t)
        return hints
    return []
