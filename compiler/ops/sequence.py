"""Sequences and optionals: values that hold a list of tensors, or maybe one.

(SequenceMap, which runs a nested graph per element, is control flow: ``control.py``.)
"""

from __future__ import annotations

from .declare import Family
from .registry import Trait

FAMILY = Family("sequence")
onnx_op = FAMILY.onnx_op

SEQUENCE = {Trait.SEQUENCE}


def optional(inputs, attrs, ctx):
    """An optional is its value, or None when empty (onnx.reference wraps it in a list instead)."""
    return [inputs[0] if inputs else None]


onnx_op("SequenceConstruct", traits=SEQUENCE)
onnx_op("SequenceEmpty", traits=SEQUENCE)
onnx_op("SequenceAt", traits=SEQUENCE)
onnx_op("SequenceErase", traits=SEQUENCE)
onnx_op("SequenceInsert", traits=SEQUENCE)
onnx_op("SequenceLength", traits=SEQUENCE)
onnx_op("SplitToSequence", traits=SEQUENCE)
onnx_op("ConcatFromSequence", traits=SEQUENCE)
onnx_op("Optional", traits=SEQUENCE, kernel=optional)
onnx_op("OptionalGetElement", traits=SEQUENCE)
onnx_op("OptionalHasElement", traits=SEQUENCE)
