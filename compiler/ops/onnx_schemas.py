"""onnx's operator schemas as the registry reads them.

Attribute kinds and defaults and operand/result arity come from ``onnx.defs``
(latest opset: importers normalise older opsets to it); nothing here is
hand-written per op.  ``make_node_proto`` builds the one-node protos through
which onnx's shape inference (``infer_onnx.py``) and reference kernels
(``reference_onnx.py``) see an Ember node.
"""

from __future__ import annotations

from onnx import defs, helper

from .. import onnx_bridge as bridge
from .infer_onnx import ONNX_DOMAINS, split_domain
from .registry import REQUIRED, AttrSpec

# The onnx domains whose ops Ember declares; ops outside the default one are named "<domain>.<op>".
DECLARED_DOMAINS = ("",) + ONNX_DOMAINS
# Ops no kernel can run one node at a time (Gradient differentiates the graph around it).
UNDECLARED = {"ai.onnx.preview.training.Gradient"}

_MAX = 2**31 - 1


def schema_of(name: str):
    """The latest onnx OpSchema of op ``name`` ("Conv", "ai.onnx.ml.Scaler"), or None."""
    domain, op_type = split_domain(name)
    try:
        return defs.get_schema(op_type, domain)
    except defs.SchemaError:
        return None


def onnx_schema(name: str):
    """The latest onnx OpSchema of a default-domain op."""
    return defs.get_schema(name, defs.onnx_opset_version(), "")


def earlier_schema(schema):
    """The schema before ``schema`` (for ops onnx deprecated whose earlier versions models still use)."""
    return defs.get_schema(schema.name, schema.since_version - 1, schema.domain)


def onnx_op_names() -> set[str]:
    """Every op of the declared domains that onnx defines and has not deprecated, minus ``UNDECLARED``."""
    names = set()
    for schema in defs.get_all_schemas():
        if schema.domain in DECLARED_DOMAINS and not schema.deprecated:
            names.add(f"{schema.domain}.{schema.name}" if schema.domain else schema.name)
    return names - UNDECLARED


def attr_specs(schema) -> dict[str, AttrSpec]:
    """The attribute schema of an op: kind and default (``REQUIRED`` or None = optional) of each."""
    specs = {}
    for name, attr in schema.attributes.items():
        kind = bridge.attr_kind(attr.type)
        if attr.required:
            default = REQUIRED
        elif attr.default_value is not None and attr.default_value.type != 0:
            default = bridge.attr_value_from_proto(attr.default_value)
        else:
            default = None
        specs[name] = AttrSpec(name, kind, default)
    return specs


def arity(schema) -> tuple[tuple[int, int | None], tuple[int, int | None]]:
    """((min, max) operands, (min, max) results); max None = variadic."""
    return (
        (schema.min_input, None if schema.max_input >= _MAX else schema.max_input),
        (schema.min_output, None if schema.max_output >= _MAX else schema.max_output),
    )


def make_node_proto(op: str, attrs: dict, n_inputs: int, n_outputs: int, input_names=None, output_names=None):
    """A NodeProto for an Ember op (attribute kinds taken from the op's schema)."""
    from .registry import get_op

    op_def = get_op(op)
    ins = input_names if input_names is not None else [f"i{i}" for i in range(n_inputs)]
    outs = output_names if output_names is not None else [f"o{i}" for i in range(n_outputs)]
    domain, op_type = split_domain(op)
    node = helper.make_node(op_type, ins, outs, domain=domain or None)
    for key, value in attrs.items():
        spec = op_def.attrs.get(key) if op_def else None
        node.attribute.append(bridge.attr_to_proto(key, value, spec.kind if spec else None))
    return node
