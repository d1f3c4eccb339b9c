"""The converter registry and what a layer converter sees (``LayerContext``).

A converter is ``fn(ctx) -> list[Value]`` registered for one or more Caffe
layer types with ``@converter("ReLU")``.  It reads the layer's parameters
from ``ctx.layer``, its inputs from ``ctx.inputs`` and its trained blobs
through ``ctx.weight(i, shape)``, which checks the shape against the one the
layer implies and names the layer when they disagree.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from compiler import Builder, EmberError, Value
from compiler.ir.types import TensorType

ConverterFn = Callable[["LayerContext"], Sequence[Value]]
CONVERTERS: dict[str, ConverterFn] = {}


def f32(value: float) -> float:
    """A float32 field value as the shortest Python float that reads back to it (0.45, not 0.449999988)."""
    return float(str(np.float32(value)))


def converter(*layer_types: str):
    """Register ``fn`` as the converter of each of ``layer_types``."""

    def deco(fn: ConverterFn) -> ConverterFn:
        for t in layer_types:
            CONVERTERS[t] = fn
        return fn

    return deco


class LayerContext:
    """One layer being converted: its message, input values, blobs and a builder."""

    def __init__(self, layer, inputs: list[Value], blobs: list[np.ndarray], builder: Builder, file: str):
        self.layer = layer
        self.inputs = inputs
        self.blobs = blobs
        self.b = builder
        self.file = file

    # diagnostics ------------------------------------------------------------
    def error(self, message: str) -> EmberError:
        """An EmberError naming this layer and its type."""
        return EmberError(message, file=self.file, node=self.layer.name, op=self.layer.type)

    # shapes -----------------------------------------------------------------
    def shape(self, i: int = 0) -> tuple[int, ...]:
        """The static shape of input ``i`` (Caffe nets have static shapes)."""
        t = self.inputs[i].type
        if not isinstance(t, TensorType) or not t.is_static:
            raise self.error(f"input {i} ('{self.layer.bottom[i]}') has no static shape ({t})")
        return t.shape

    def axis(self, axis: int, rank: int) -> int:
        """A Caffe axis (negative counts from the end) as a non-negative index, checked."""
        if not -rank <= axis < rank:
            raise self.error(f"axis {axis} is out of range for a rank-{rank} input")
        return axis + rank if axis < 0 else axis

    def expect_inputs(self, low: int, high: int | None = None) -> None:
        """Raise unless the layer has ``low``..``high`` bottoms."""
        high = low if high is None else high
        if not low <= len(self.inputs) <= high:
            want = str(low) if low == high else f"{low} to {high}"
            raise self.error(f"takes {want} bottom blobs, got {len(self.inputs)}")

    # weights ----------------------------------------------------------------
    def weight(self, i: int, shape: Sequence[int], what: str = "weights") -> np.ndarray:
        """Blob ``i`` reshaped to ``shape``; legacy 4-D shapes padded with leading 1s are accepted."""
        shape = tuple(int(d) for d in shape)
        if i >= len(self.blobs):
            raise self.error(
                f"missing {what} (blob {i}): the layer has {len(self.blobs)} blobs; "
                f"pass the .caffemodel with the trained weights"
            )
        array = self.blobs[i]
        legacy = len(shape) <= 4 and array.ndim == 4 and array.shape == (1,) * (4 - len(shape)) + shape
        if array.shape != shape and not legacy:
            raise self.error(
                f"blob {i} ({what}) has shape {list(array.shape)} but the layer needs "
                f"{list(shape)}: the caffemodel does not match the prototxt"
            )
        return array.reshape(shape)

    # building ---------------------------------------------------------------
    def op(self, op: str, operands: Sequence[Value | None], attrs: dict | None = None, **kw):
        """Build an op (see ``Builder.op``); returns its result or results."""
        return self.b.op(op, list(operands), attrs or {}, **kw)

    def const(self, array, dtype=np.float32, name: str = "") -> Value:
        """A float32 (or ``dtype``) constant."""
        return self.b.constant(np.asarray(array, dtype=dtype), name=name)

    def ints(self, values: Sequence[int]) -> Value:
        """An int64 1-D constant (shapes, axes, starts/ends)."""
        return self.b.constant(np.asarray(list(values), dtype=np.int64))
