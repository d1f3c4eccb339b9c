"""ONNX functions: model-local FunctionProtos and the function bodies of op schemas.

A call is expanded in place by the importer (``OnnxImporter.inline_function``);
this module prepares the pieces: the function's own opsets, body nodes with
``ref_attr_name`` attributes bound to the caller's values (or the function's
defaults), and the FunctionProto of a schema (context-dependent bodies are
built from the actual input types).
"""

from __future__ import annotations

import onnx

from compiler import onnx_bridge as bridge
from compiler.ir.core import Value

from .loader import normalise_domain


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


def schema_function_body(schema, node: onnx.NodeProto, inputs: list[Value | None], opset: int):
    """The FunctionProto that defines ``node``'s op (context-dependent bodies need input types)."""
    if schema.has_function:
        return schema.function_body
    types = [bridge.type_to_proto(v.type if v is not None else None) for v in inputs]
    try:
        data = schema.get_context_dependent_function(opset, node.SerializeToString(),
                                                     [t.SerializeToString() for t in types])
    except Exception:
        try:
            data = schema.get_context_dependent_function(node.SerializeToString(),
                                                         [t.SerializeToString() for t in types])
        except Exception:
            return None
    fn = onnx.FunctionProto()
    fn.ParseFromString(data)
    return fn
