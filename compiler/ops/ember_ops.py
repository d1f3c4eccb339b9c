"""Ember's own ops (outside the ONNX default domain).

``test.source`` produces an opaque value of the type written on the node; it
lets tests and the hypothesis graph generator create values without
constants.  The interpreter gives it zeros.
"""

from __future__ import annotations

import numpy as np

from ..ir.types import TensorType
from .registry import REQUIRED, AttrSpec, OpDef, Trait, register_op


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


def _check_count_infer(ctx):
    return [ctx.input_types[0]]


def _check_count_reference(inputs, attrs, ctx):
    x, n = inputs
    expected = int(ctx.attr("count"))
    got = int(np.asarray(n).reshape(-1)[0])
    if got != expected:
        raise ValueError(f"{ctx.attr('what')}: the count is {got}, but the graph was written out for {expected}")
    return [x]


register_op(OpDef(
    name="ember.CheckCount", inputs=(2, 2), outputs=(1, 1), domain="ember",
    attrs={"count": AttrSpec("count", "int", REQUIRED), "what": AttrSpec("what", "string", "count")},
    infer=_check_count_infer, reference=_check_count_reference,
    doc="Passes x through when the scalar n equals the attribute count, else fails (a run-time check "
        "left by rewrites that fixed a count, e.g. a Loop written out for its declared length).",
))
