"""Types of Ember's graph IR: element dtypes, dims, tensor/sequence/optional types.

A dim is an ``int`` (static), a ``str`` (a named symbol such as ``"batch"``) or
``None`` (unknown).  A tensor's shape is a tuple of dims, or ``None`` when even
the rank is unknown.  Text forms: ``f32[1,3,batch,?]``, ``i64[]`` (scalar),
``f32[*]`` (unknown rank), ``seq<f32[2]>``, ``opt<f32[2]>``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Union

import ml_dtypes
import numpy as np
from onnx import TensorProto

Dim = Union[int, str, None]
Shape = Union[tuple[Dim, ...], None]


class DType(enum.Enum):
    """Element types; ``value`` is the short text name used by the printer."""

    BOOL = "bool"
    INT2 = "i2"
    INT4 = "i4"
    INT8 = "i8"
    INT16 = "i16"
    INT32 = "i32"
    INT64 = "i64"
    UINT2 = "u2"
    UINT4 = "u4"
    UINT8 = "u8"
    UINT16 = "u16"
    UINT32 = "u32"
    UINT64 = "u64"
    FLOAT16 = "f16"
    BFLOAT16 = "bf16"
    FLOAT32 = "f32"
    FLOAT64 = "f64"
    FLOAT8E4M3FN = "f8e4m3fn"
    FLOAT8E4M3FNUZ = "f8e4m3fnuz"
    FLOAT8E5M2 = "f8e5m2"
    FLOAT8E5M2FNUZ = "f8e5m2fnuz"
    FLOAT8E8M0 = "f8e8m0"
    FLOAT4E2M1 = "f4e2m1"
    COMPLEX64 = "c64"
    COMPLEX128 = "c128"
    STRING = "str"

    @property
    def np(self) -> np.dtype:
        """The numpy dtype that holds values of this type."""
        return _TO_NUMPY[self]

    @property
    def onnx(self) -> int:
        """The ``onnx.TensorProto`` data type enum."""
        return _TO_ONNX[self]

    @property
    def is_float(self) -> bool:
        return self in _FLOATS

    @property
    def is_int(self) -> bool:
        return self in _INTS

    @property
    def itemsize(self) -> int:
        return self.np.itemsize

    @classmethod
    def from_np(cls, dtype) -> "DType":
        dtype = np.dtype(dtype)
        if dtype.kind in "UO":
            return cls.STRING
        try:
            return _FROM_NUMPY[dtype]
        except KeyError:
            raise ValueError(f"numpy dtype {dtype} has no Ember dtype") from None

    @classmethod
    def from_onnx(cls, elem_type: int) -> "DType":
        try:
            return _FROM_ONNX[elem_type]
        except KeyError:
            name = TensorProto.DataType.Name(elem_type) if elem_type in TensorProto.DataType.values() else elem_type
            raise ValueError(f"ONNX element type {name} is not supported") from None

    @classmethod
    def parse(cls, text: str) -> "DType":
        try:
            return cls(text)
        except ValueError:
            raise ValueError(f"unknown dtype '{text}'") from None


_TO_NUMPY = {
    DType.BOOL: np.dtype(np.bool_),
    DType.INT2: np.dtype(ml_dtypes.int2),
    DType.INT4: np.dtype(ml_dtypes.int4),
    DType.INT8: np.dtype(np.int8),
    DType.INT16: np.dtype(np.int16),
    DType.INT32: np.dtype(np.int32),
    DType.INT64: np.dtype(np.int64),
    DType.UINT2: np.dtype(ml_dtypes.uint2),
    DType.UINT4: np.dtype(ml_dtypes.uint4),
    DType.UINT8: np.dtype(np.uint8),
    DType.UINT16: np.dtype(np.uint16),
    DType.UINT32: np.dtype(np.uint32),
    DType.UINT64: np.dtype(np.uint64),
    DType.FLOAT16: np.dtype(np.float16),
    DType.BFLOAT16: np.dtype(ml_dtypes.bfloat16),
    DType.FLOAT32: np.dtype(np.float32),
    DType.FLOAT64: np.dtype(np.float64),
    DType.FLOAT8E4M3FN: np.dtype(ml_dtypes.float8_e4m3fn),
    DType.FLOAT8E4M3FNUZ: np.dtype(ml_dtypes.float8_e4m3fnuz),
    DType.FLOAT8E5M2: np.dtype(ml_dtypes.float8_e5m2),
    DType.FLOAT8E5M2FNUZ: np.dtype(ml_dtypes.float8_e5m2fnuz),
    DType.FLOAT8E8M0: np.dtype(ml_dtypes.float8_e8m0fnu),
    DType.FLOAT4E2M1: np.dtype(ml_dtypes.float4_e2m1fn),
    DType.COMPLEX64: np.dtype(np.complex64),
    DType.COMPLEX128: np.dtype(np.complex128),
    DType.STRING: np.dtype(object),
}
_FROM_NUMPY = {v: k for k, v in _TO_NUMPY.items()}
_TO_ONNX = {
    DType.BOOL: TensorProto.BOOL,
    DType.INT2: TensorProto.INT2,
    DType.INT4: TensorProto.INT4,
    DType.INT8: TensorProto.INT8,
    DType.INT16: TensorProto.INT16,
    DType.INT32: TensorProto.INT32,
    DType.INT64: TensorProto.INT64,
    DType.UINT2: TensorProto.UINT2,
    DType.UINT4: TensorProto.UINT4,
    DType.UINT8: TensorProto.UINT8,
    DType.UINT16: TensorProto.UINT16,
    DType.UINT32: TensorProto.UINT32,
    DType.UINT64: TensorProto.UINT64,
    DType.FLOAT16: TensorProto.FLOAT16,
    DType.BFLOAT16: TensorProto.BFLOAT16,
    DType.FLOAT32: TensorProto.FLOAT,
    DType.FLOAT64: TensorProto.DOUBLE,
    DType.FLOAT8E4M3FN: TensorProto.FLOAT8E4M3FN,
    DType.FLOAT8E4M3FNUZ: TensorProto.FLOAT8E4M3FNUZ,
    DType.FLOAT8E5M2: TensorProto.FLOAT8E5M2,
    DType.FLOAT8E5M2FNUZ: TensorProto.FLOAT8E5M2FNUZ,
    DType.FLOAT8E8M0: TensorProto.FLOAT8E8M0,
    DType.FLOAT4E2M1: TensorProto.FLOAT4E2M1,
    DType.COMPLEX64: TensorProto.COMPLEX64,
    DType.COMPLEX128: TensorProto.COMPLEX128,
    DType.STRING: TensorProto.STRING,
}
_FROM_ONNX = {v: k for k, v in _TO_ONNX.items()}
_FLOATS = {
    DType.FLOAT16,
    DType.BFLOAT16,
    DType.FLOAT32,
    DType.FLOAT64,
    DType.FLOAT8E4M3FN,
    DType.FLOAT8E4M3FNUZ,
    DType.FLOAT8E5M2,
    DType.FLOAT8E5M2FNUZ,
    DType.FLOAT8E8M0,
    DType.FLOAT4E2M1,
}
_INTS = {
    DType.INT2,
    DType.INT4,
    DType.INT8,
    DType.INT16,
    DType.INT32,
    DType.INT64,
    DType.UINT2,
    DType.UINT4,
    DType.UINT8,
    DType.UINT16,
    DType.UINT32,
    DType.UINT64,
}


class Type:
    """Base of all value types."""

    def is_compatible(self, other: "Type") -> bool:
        """True when the two types could describe the same runtime value."""
        return self == other


@dataclass(frozen=True)
class TensorType(Type):
    """A tensor of ``dtype`` with ``shape`` (``None`` = unknown rank)."""

    dtype: DType
    shape: Shape = ()

    def __post_init__(self):
        if self.shape is not None:
            object.__setattr__(self, "shape", tuple(self.shape))
            for d in self.shape:
                if not (d is None or isinstance(d, str) or (isinstance(d, (int, np.integer)) and d >= 0)):
                    raise ValueError(f"invalid dim {d!r} in shape {self.shape}")
            object.__setattr__(
                self, "shape", tuple(int(d) if isinstance(d, (int, np.integer)) else d for d in self.shape)
            )

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    @property
    def is_static(self) -> bool:
        return self.shape is not None and all(isinstance(d, int) for d in self.shape)

    @property
    def numel(self) -> int | None:
        if not self.is_static:
            return None
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int | None:
        n = self.numel
        return None if n is None else n * self.dtype.itemsize

    def with_shape(self, shape: Shape) -> "TensorType":
        return TensorType(self.dtype, shape)

    def is_compatible(self, other: Type) -> bool:
        if not isinstance(other, TensorType) or self.dtype != other.dtype:
            return False
        if self.shape is None or other.shape is None:
            return True
        if len(self.shape) != len(other.shape):
            return False
        return all(not (isinstance(a, int) and isinstance(b, int)) or a == b for a, b in zip(self.shape, other.shape))

    def __str__(self) -> str:
        if self.shape is None:
            return f"{self.dtype.value}[*]"
        dims = ",".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.dtype.value}[{dims}]"

    @classmethod
    def of(cls, array) -> "TensorType":
        """The type of a numpy array (or scalar)."""
        array = np.asarray(array)
        return cls(DType.from_np(array.dtype), array.shape)


@dataclass(frozen=True)
class SequenceType(Type):
    """An ONNX sequence of values of ``elem`` (``None`` = unknown element type)."""

    elem: Type | None

    def is_compatible(self, other: Type) -> bool:
        return isinstance(other, SequenceType) and (
            self.elem is None or other.elem is None or self.elem.is_compatible(other.elem)
        )

    def __str__(self) -> str:
        return f"seq<{'?' if self.elem is None else self.elem}>"


@dataclass(frozen=True)
class OptionalType(Type):
    """An ONNX optional: either empty or a value of ``elem``."""

    elem: Type | None

    def is_compatible(self, other: Type) -> bool:
        return isinstance(other, OptionalType) and (
            self.elem is None or other.elem is None or self.elem.is_compatible(other.elem)
        )

    def __str__(self) -> str:
        return f"opt<{'?' if self.elem is None else self.elem}>"


def type_of_value(value) -> Type:
    """The Ember type of a runtime value (array, list for sequences, None for empty optionals)."""
    if isinstance(value, list):
        return SequenceType(type_of_value(value[0]) if value else None)
    if value is None:
        return OptionalType(None)
    return TensorType.of(value)
