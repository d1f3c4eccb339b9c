"""Per-op normalisers: ONNX nodes of older op versions rewritten to latest-opset semantics.

Ember's ops follow the newest ONNX opset.  A converter is registered for an op
(and its domain, default "") and the range of op versions (``since_version`` of
the op's schema in the model's opset) whose semantics differ from the newest
one; every other node converts one-to-one.  Converters are grouped by op family:

- ``tensor.py``: Reshape-like ops whose attributes became inputs (Slice, Pad,
  Split, Squeeze, Unsqueeze, TopK), Scatter -> ScatterElements, Constant;
- ``nn.py``: BatchNormalization, Dropout, Softmax/LogSoftmax/Hardmax (2-D
  coercion), Clip, GroupNormalization;
- ``reduce.py``: ReduceX ``axes`` attribute -> input;
- ``resize.py``: Upsample and Resize-10 -> Resize;
- ``vision.py``: RoiAlign-10, GridSample-16, DFT-17 (changed defaults/encodings);
- ``control.py``: Scan-8 (batched) -> Loop over the batch of Scan-9;
- ``legacy.py``: experimental ops of early exporters (ImageScaler, Scale, Crop...) -> standard ops;
- ``contrib.py``: common onnxruntime ``com.microsoft`` fusions (Gelu family, FusedMatMul,
  SkipLayerNormalization) -> standard ops.

A converter is ``fn(ctx: ConvertContext) -> list[Value | None]`` returning one
value per ONNX output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from compiler.ir.core import Value


class ConvertContext(Protocol):
    """What a converter sees of one ONNX node (implemented by the importer)."""

    op_type: str
    name: str
    version: int  # since_version of the node's op schema in the model's opset
    inputs: list[Value | None]  # None for an absent optional input
    attrs: dict[str, Any]
    output_names: list[str]  # "" for an absent optional output

    def emit(
        self,
        op: str,
        operands: Sequence[Value | None],
        attrs: dict[str, Any] | None = None,
        *,
        num_results: int | None = None,
        final: bool = False,
    ) -> list[Value]:
        """Create a node; ``final=True`` names its results after the ONNX node's outputs."""

    def const(self, array: np.ndarray, *, final: bool = False) -> Value:
        """A Constant node holding ``array``; ``final=True`` names it after the node's first output."""

    def fail(self, message: str) -> Exception:
        """An EmberError naming the file, node and op (to be raised by the caller)."""


ConverterFn = Callable[[ConvertContext], list]


@dataclass(frozen=True)
class Converter:
    """A normaliser for ``op`` (of ``domain``) versions in ``[since, until)``."""

    op: str
    since: int
    until: int
    fn: ConverterFn
    domain: str = ""


_TABLE: dict[str, list[Converter]] = {}  # keyed by "op" (default domain) or "domain.op"


def _key(op: str, domain: str) -> str:
    return f"{domain}.{op}" if domain else op


def converter(op: str, since: int = 1, until: int = 10**6, *, domain: str = "") -> Callable[[ConverterFn], ConverterFn]:
    """Register ``fn`` as the converter of ``op`` for op versions ``since <= v < until``."""

    def deco(fn: ConverterFn) -> ConverterFn:
        _TABLE.setdefault(_key(op, domain), []).append(Converter(op, since, until, fn, domain))
        return fn

    return deco


def find_converter(op: str, version: int, domain: str = "") -> ConverterFn | None:
    """The converter for ``op`` at op version ``version``, or None (convert one-to-one)."""
    for entry in _TABLE.get(_key(op, domain), ()):
        if entry.since <= version < entry.until:
            return entry.fn
    return None


def has_converter(op: str, domain: str = "") -> bool:
    """True when some op version of ``op`` has a converter (deprecated ops included)."""
    return _key(op, domain) in _TABLE


def i64(values) -> np.ndarray:
    """An int64 array, the dtype ONNX uses for shapes, axes and indices."""
    return np.asarray(values, dtype=np.int64)


def axes_attribute_to_input(op: str) -> Callable:
    """A converter for ``op`` versions that carried ``axes`` as an attribute (now an input)."""

    def convert(ctx):
        attrs = dict(ctx.attrs)
        axes = attrs.pop("axes", None)
        operands = [ctx.inputs[0]]
        if axes is not None:
            operands.append(ctx.const(i64(axes)))
        return ctx.emit(op, operands, attrs, final=True)

    convert.__doc__ = f"{op} with ``axes`` as an attribute."
    return convert


def optional_input(ctx: ConvertContext, index: int) -> Value | None:
    """Input ``index`` of the node, or None when absent."""
    return ctx.inputs[index] if index < len(ctx.inputs) else None


from . import contrib, control, legacy, nn, reduce, resize, tensor, vision  # noqa: E402,F401  (registration side effects)
