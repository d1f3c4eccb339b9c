"""Ember's own ops (outside the ONNX default domain).

``test.source`` produces an opaque value of the type written on the node; it
lets tests and the hypothesis graph generator create values without
constants.  The interpreter gives it zeros.
"""

from __future__ import annotations

import numpy as np

from ..ir.types import TensorType
from .registry import OpDef, Trait, register_op


def _source_reference(inputs, attrs, ctx):
    t = ctx.node.results[0].type if ctx.node is not None else None
    if not isinstance(t, TensorType) or not t.is_static:
        raise ValueError("test.source needs a static tensor type to produce a value")
    return [np.zeros(t.shape, dtype=t.dtype.np)]


register_op(OpDef(
    name="test.source", traits=frozenset({Trait.PURE}), inputs=(0, 0), outputs=(1, 1),
    infer=None, reference=_source_reference, domain="test",
    doc="Produces an opaque value of the node's declared type (zeros when interpreted).",
))
