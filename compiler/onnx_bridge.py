"""Conversions between Ember's IR pieces and ONNX protobuf pieces.

Used by the op registry (to reuse onnx's shape inference and reference
kernels), by the ONNX frontend and by the exporter, so that each conversion
is written once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import AttributeProto, TypeProto, helper, numpy_helper

from .ir.types import DType, OptionalType, SequenceType, TensorType, Type

# ---------------------------------------------------------------- types


def type_to_proto(t: Type | None) -> TypeProto:
    """An ONNX TypeProto for an Ember type (symbols become dim_param, unknown dims stay empty)."""
    proto = TypeProto()
    if t is None:
        return proto
    if isinstance(t, TensorType):
        tt = proto.tensor_type
        tt.elem_type = t.dtype.onnx
        if t.shape is not None:
            shape = tt.shape
            shape.SetInParent()
            for d in t.shape:
                dim = shape.dim.add()
                if isinstance(d, int):
                    dim.dim_value = d
                elif isinstance(d, str):
                    dim.dim_param = d
        return proto
    if isinstance(t, SequenceType):
        proto.sequence_type.SetInParent()
        if t.elem is not None:
            proto.sequence_type.elem_type.CopyFrom(type_to_proto(t.elem))
        return proto
    if isinstance(t, OptionalType):
        proto.optional_type.SetInParent()
        if t.elem is not None:
            proto.optional_type.elem_type.CopyFrom(type_to_proto(t.elem))
        return proto
    raise TypeError(f"cannot express {t} as an ONNX type")


def type_from_proto(proto: TypeProto) -> Type | None:
    """The Ember type of an ONNX TypeProto (None when the proto says nothing)."""
    which = proto.WhichOneof("value")
    if which == "tensor_type":
        tt = proto.tensor_type
        if tt.elem_type == 0:
            return None
        shape = None
        if tt.HasField("shape"):
            # a negative dim_value (onnx's inference on dead, invalid code) counts as unknown
            shape = tuple(
                (d.dim_value if d.dim_value >= 0 else None) if d.HasField("dim_value") else (d.dim_param or None)
                for d in tt.shape.dim
            )
        return TensorType(DType.from_onnx(tt.elem_type), shape)
    if which == "sequence_type":
        st = proto.sequence_type
        return SequenceType(type_from_proto(st.elem_type) if st.HasField("elem_type") else None)
    if which == "optional_type":
        ot = proto.optional_type
        return OptionalType(type_from_proto(ot.elem_type) if ot.HasField("elem_type") else None)
    return None


# ---------------------------------------------------------------- tensors


def array_to_proto(array: np.ndarray, name: str = "") -> onnx.TensorProto:
    """A TensorProto holding ``array`` (ml_dtypes and strings included)."""
    array = np.asarray(array)
    if array.dtype == object:
        return helper.make_tensor(
            name, onnx.TensorProto.STRING, array.shape, [s.encode() if isinstance(s, str) else s for s in array.flat]
        )
    dtype = DType.from_np(array.dtype)
    packed_ints = (DType.INT2, DType.UINT2, DType.INT4, DType.UINT4)
    if dtype in packed_ints + (DType.FLOAT4E2M1, DType.BFLOAT16) or dtype.name.startswith("FLOAT8"):
        return helper.make_tensor(
            name,
            dtype.onnx,
            array.shape,
            array.astype(np.int64).flatten().tolist() if dtype in packed_ints else array.astype(np.float32).flatten(),
        )
    return numpy_helper.from_array(array, name)


def array_from_proto(proto: onnx.TensorProto, base_dir: str | None = None) -> np.ndarray:
    """The numpy array of a TensorProto (external data read from ``base_dir``)."""
    if proto.data_location == onnx.TensorProto.EXTERNAL:
        from onnx.external_data_helper import load_external_data_for_tensor

        proto = onnx.TensorProto.FromString(proto.SerializeToString())
        load_external_data_for_tensor(proto, base_dir or ".")
    array = numpy_helper.to_array(proto)
    if proto.data_type == onnx.TensorProto.STRING:
        array = np.array([s.decode() if isinstance(s, bytes) else s for s in array.flat], dtype=object).reshape(
            array.shape
        )
    return array


# ---------------------------------------------------------------- attributes

_KIND_OF_ATTR_TYPE = {
    AttributeProto.INT: "int",
    AttributeProto.FLOAT: "float",
    AttributeProto.STRING: "string",
    AttributeProto.TENSOR: "tensor",
    AttributeProto.GRAPH: "graph",
    AttributeProto.INTS: "ints",
    AttributeProto.FLOATS: "floats",
    AttributeProto.STRINGS: "strings",
    AttributeProto.TENSORS: "tensors",
    AttributeProto.GRAPHS: "graphs",
    AttributeProto.TYPE_PROTO: "type",
    AttributeProto.TYPE_PROTOS: "types",
    AttributeProto.SPARSE_TENSOR: "sparse_tensor",
    AttributeProto.SPARSE_TENSORS: "sparse_tensors",
}
_ATTR_TYPE_OF_KIND = {v: k for k, v in _KIND_OF_ATTR_TYPE.items()}


def attr_kind(attr_type: int) -> str:
    return _KIND_OF_ATTR_TYPE[attr_type]


def attr_value_from_proto(attr: AttributeProto, convert_graph=None) -> Any:
    """The Ember value of an ONNX attribute (graphs go through ``convert_graph``)."""
    kind = _KIND_OF_ATTR_TYPE.get(attr.type)
    if kind == "int":
        return int(attr.i)
    if kind == "float":
        return float(np.float32(attr.f))
    if kind == "string":
        return attr.s.decode("utf-8", errors="replace")
    if kind == "ints":
        return [int(x) for x in attr.ints]
    if kind == "floats":
        return [float(np.float32(x)) for x in attr.floats]
    if kind == "strings":
        return [s.decode("utf-8", errors="replace") for s in attr.strings]
    if kind == "tensor":
        return array_from_proto(attr.t)
    if kind == "tensors":
        return [array_from_proto(t) for t in attr.tensors]
    if kind == "type":
        return type_from_proto(attr.tp)
    if kind == "types":
        return [type_from_proto(t) for t in attr.type_protos]
    if kind == "sparse_tensor":
        return sparse_to_array(attr.sparse_tensor)
    if kind == "graph":
        if convert_graph is None:
            raise ValueError(f"attribute '{attr.name}' holds a graph but no converter was given")
        return convert_graph(attr.g)
    if kind == "graphs":
        return [convert_graph(g) for g in attr.graphs]
    raise ValueError(f"attribute '{attr.name}' has unsupported type {attr.type}")


def sparse_to_array(sp: onnx.SparseTensorProto) -> np.ndarray:
    """A dense array for an ONNX sparse tensor (initializer or attribute)."""
    values = numpy_helper.to_array(sp.values)
    indices = numpy_helper.to_array(sp.indices)
    dense = np.zeros(tuple(sp.dims), dtype=values.dtype)
    if indices.ndim == 1:
        dense.reshape(-1)[indices] = values
    else:
        dense[tuple(indices.T)] = values
    return dense


def attr_to_proto(name: str, value: Any, kind: str | None = None, convert_graph=None) -> AttributeProto:
    """An ONNX AttributeProto for an Ember attribute value of the given kind."""
    from .ir.core import Graph

    if kind is None:
        kind = infer_attr_kind(value)
    if kind in ("tensor", "sparse_tensor"):
        return helper.make_attribute(name, array_to_proto(np.asarray(value)))
    if kind in ("tensors", "sparse_tensors"):
        return helper.make_attribute(name, [array_to_proto(v) for v in value], attr_type=AttributeProto.TENSORS)
    if kind == "graph" or isinstance(value, Graph):
        return helper.make_attribute(name, convert_graph(value))
    if kind == "graphs":
        return helper.make_attribute(name, [convert_graph(g) for g in value], attr_type=AttributeProto.GRAPHS)
    if kind == "type":
        return helper.make_attribute(name, type_to_proto(value))
    if kind == "types":
        return helper.make_attribute(name, [type_to_proto(t) for t in value], attr_type=AttributeProto.TYPE_PROTOS)
    if kind == "int":
        return helper.make_attribute(name, int(value), attr_type=AttributeProto.INT)
    if kind == "float":
        return helper.make_attribute(name, float(value), attr_type=AttributeProto.FLOAT)
    if kind == "string":
        return helper.make_attribute(name, value, attr_type=AttributeProto.STRING)
    if kind == "ints":
        return helper.make_attribute(name, [int(v) for v in value], attr_type=AttributeProto.INTS)
    if kind == "floats":
        return helper.make_attribute(name, [float(v) for v in value], attr_type=AttributeProto.FLOATS)
    if kind == "strings":
        return helper.make_attribute(name, list(value), attr_type=AttributeProto.STRINGS)
    raise ValueError(f"cannot convert attribute '{name}' of kind {kind}")


def infer_attr_kind(value: Any) -> str:
    """Attribute kind from a Python value (lists: from their first element; empty: ints)."""
    from .ir.core import Graph

    if isinstance(value, bool):
        return "int"
    if isinstance(value, (int, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating)):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, np.ndarray):
        return "tensor"
    if isinstance(value, Graph):
        return "graph"
    if isinstance(value, Type):
        return "type"
    if isinstance(value, (list, tuple)):
        if not value:
            return "ints"
        first = infer_attr_kind(value[0])
        if first == "float" or any(isinstance(v, float) for v in value):
            return "floats"
        return {"int": "ints", "string": "strings", "tensor": "tensors", "graph": "graphs", "type": "types"}[first]
    raise TypeError(f"no attribute kind for {type(value).__name__}")


def attr_type_enum(kind: str) -> int:
    return _ATTR_TYPE_OF_KIND[kind]
