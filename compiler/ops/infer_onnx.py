"""Type and shape inference for ONNX ops through onnx's own per-op inference."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import defs, shape_inference

from .. import onnx_bridge as bridge
from .registry import InferContext

ONNX_DOMAINS = ("ai.onnx.preview.training", "ai.onnx.ml")  # longest prefix first


def split_domain(op: str) -> tuple[str, str]:
    """``"ai.onnx.ml.LabelEncoder"`` -> ``("ai.onnx.ml", "LabelEncoder")``; default-domain ops -> ``("", op)``."""
    for domain in ONNX_DOMAINS:
        if op.startswith(domain + "."):
            return domain, op[len(domain) + 1 :]
    return "", op


def _newest_versions() -> dict[str, int]:
    versions: dict[str, int] = {}
    for schema in defs.get_all_schemas_with_history():
        versions[schema.domain] = max(versions.get(schema.domain, 1), schema.since_version)
    return versions


DOMAIN_VERSIONS = _newest_versions()
_OPSET = [onnx.helper.make_opsetid(d, DOMAIN_VERSIONS[d]) for d in ("",) + ONNX_DOMAINS if d in DOMAIN_VERSIONS]


class InferenceFailed(Exception):
    """onnx's shape inference rejected the node; the message says why."""


def onnx_infer(ctx: InferContext):
    """Output types of an ONNX op, given its input types, constant inputs and attributes."""
    from .onnx_schemas import make_node_proto

    if ctx.op == "Constant" and isinstance(ctx.attrs.get("value"), np.ndarray):
        # the type is the array's; serialising a large weight into a proto would be slow (or fail over 2 GB)
        return [bridge.TensorType.of(ctx.attrs["value"])]
    names = [f"in{i}" if t is not None else "" for i, t in enumerate(ctx.input_types)]
    node = make_node_proto(
        ctx.op, ctx.attrs, len(names), ctx.num_outputs, names, [f"out{i}" for i in range(ctx.num_outputs)]
    )
    input_types = {n: bridge.type_to_proto(t) for n, t in zip(names, ctx.input_types) if n}
    input_data = {}
    for n, arr in zip(names, ctx.const_inputs):
        if n and arr is not None and isinstance(arr, np.ndarray) and arr.size <= 4096:
            input_data[n] = bridge.array_to_proto(arr, n)
    domain, op_type = split_domain(ctx.op)
    schema = defs.get_schema(op_type, DOMAIN_VERSIONS.get(domain, 1), domain)
    try:
        out = shape_inference.infer_node_outputs(schema, node, input_types, input_data, opset_imports=_OPSET)
    except Exception as exc:  # onnx raises several exception kinds for bad nodes
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise InferenceFailed(msg) from None
    return [
        bridge.type_from_proto(_without_negative_dims(out[f"out{i}"])) if f"out{i}" in out else None
        for i in range(ctx.num_outputs)
    ]


def _without_negative_dims(proto: onnx.TypeProto) -> onnx.TypeProto:
    """onnx's inference can compute a negative dim (e.g. Split of a too-short axis in a branch that
    never runs); such a dim says nothing, so it becomes unknown."""
    which = proto.WhichOneof("value")
    if which == "tensor_type":
        if any(d.HasField("dim_value") and d.dim_value < 0 for d in proto.tensor_type.shape.dim):
            proto = onnx.TypeProto.FromString(proto.SerializeToString())
            for d in proto.tensor_type.shape.dim:
                if d.HasField("dim_value") and d.dim_value < 0:
                    d.Clear()
    elif which in ("sequence_type", "optional_type"):
        inner = getattr(proto, which)
        if inner.HasField("elem_type"):
            fixed = _without_negative_dims(inner.elem_type)
            if fixed is not inner.elem_type:
                proto = onnx.TypeProto.FromString(proto.SerializeToString())
                getattr(proto, which).elem_type.CopyFrom(fixed)
    return proto
