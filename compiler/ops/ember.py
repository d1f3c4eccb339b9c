"""Ember's own ops (domains ``ember`` and ``test``): what rewrites and tests need that no ONNX op is.

``ember.Fused`` holds a group of ops that code generation lowers as one kernel call (the ``fuse``
pass makes it; its ``body`` is a closed graph).  ``test.source`` produces an opaque value of the
type written on the node; it lets tests and the hypothesis graph generator create values without
constants.  The interpreter gives it zeros.
"""

from __future__ import annotations

import numpy as np

from ..ir.types import DType, TensorType
from .declare import Family
from .ngrams import ngram_counts
from .registry import REQUIRED, AttrSpec, Fusion, Trait
from .trees import TreeTables
from .trees import scores as tree_scores

FAMILY = Family("ember")


def _source_reference(inputs, attrs, ctx):
    t = ctx.node.results[0].type if ctx.node is not None else None
    if not isinstance(t, TensorType) or not t.is_static:
        raise ValueError("test.source needs a static tensor type to produce a value")
    return [np.zeros(t.shape, dtype=t.dtype.np)]


FAMILY.op(
    "test.source",
    traits=frozenset({Trait.PURE}),
    inputs=(0, 0),
    outputs=(1, 1),
    infer=None,
    kernel=_source_reference,
    domain="test",
    doc="Produces an opaque value of the node's declared type (zeros when interpreted).",
)


def _check_count_infer(ctx):
    return [ctx.input_types[0]]


def _check_count_reference(inputs, attrs, ctx):
    x, n = inputs
    expected = int(ctx.attr("count"))
    got = int(np.asarray(n).reshape(-1)[0])
    if got != expected:
        raise ValueError(f"{ctx.attr('what')}: the count is {got}, but the graph was written out for {expected}")
    return [x]


FAMILY.op(
    "ember.CheckCount",
    inputs=(2, 2),
    outputs=(1, 1),
    domain="ember",
    attrs=[AttrSpec("count", "int", REQUIRED), AttrSpec("what", "string", "count")],
    infer=_check_count_infer,
    kernel=_check_count_reference,
    doc="Passes x through when the scalar n equals the attribute count, else fails (a run-time check "
    "left by rewrites that fixed a count, e.g. a Loop written out for its declared length).",
)


def _ngram_counts_infer(ctx):
    x = ctx.input_types[0]
    size = int(ctx.attrs["size"])
    if not isinstance(x, TensorType) or x.shape is None:
        return [TensorType(DType.FLOAT32, None)]
    return [TensorType(DType.FLOAT32, tuple(x.shape[:-1]) + (size,))]


def _ngram_counts_reference(inputs, attrs, ctx):
    x, grams, lengths, columns = inputs
    return [ngram_counts(x, grams, lengths, columns, int(ctx.attr("size")), int(ctx.attr("max_skip_count")))]


FAMILY.op(
    "ember.NgramCounts",
    inputs=(4, 4),
    outputs=(1, 1),
    domain="ember",
    traits=frozenset({Trait.PURE}),
    attrs=[AttrSpec("size", "int", REQUIRED), AttrSpec("max_skip_count", "int", 0)],
    infer=_ngram_counts_infer,
    kernel=_ngram_counts_reference,
    doc="Counts, per row of x (last axis), each n-gram grams[g, :lengths[g]] with gaps 1..max_skip_count+1 "
    "(unigrams once) into column columns[g] of a float32 [..., size] result (TfIdfVectorizer's counting).",
)


def _tree_ensemble_infer(ctx):
    x, weights = ctx.input_types[0], ctx.input_types[9]
    rows = x.shape[:1] if isinstance(x, TensorType) and x.shape is not None else None
    targets = weights.shape[1:2] if isinstance(weights, TensorType) and weights.shape is not None else None
    shape = None if rows is None or targets is None else tuple(rows) + tuple(targets)
    return [TensorType(DType.FLOAT64, shape)]


def _tree_ensemble_reference(inputs, attrs, ctx):
    x, *tables = inputs
    t = TreeTables(
        *[np.asarray(a) for a in tables],
        depth=int(ctx.attr("depth")),
        aggregate=ctx.attr("aggregate"),
        post_transform="NONE",
        base_values=None,
    )
    return [tree_scores(x, t)]


FAMILY.op(
    "ember.TreeEnsemble",
    inputs=(11, 11),
    outputs=(1, 1),
    domain="ember",
    traits=frozenset({Trait.PURE}),
    attrs=[AttrSpec("depth", "int", REQUIRED), AttrSpec("aggregate", "string", "SUM")],
    infer=_tree_ensemble_infer,
    kernel=_tree_ensemble_reference,
    doc="float64 [rows, targets] scores of a tree ensemble over x [rows, features], walked `depth` steps "
    "through the tables (feature, split, mode, true_next, false_next, missing_true, members, roots, weights, "
    "mask) of compiler/ops/trees.py and aggregated (SUM, AVERAGE, MIN, MAX) without base values or transform.",
)


def _lookup_infer(ctx):
    x, table = ctx.input_types
    if isinstance(x, TensorType) and x.dtype not in (DType.UINT8, DType.INT8):
        raise ValueError(f"ember.Lookup indexes by an 8-bit integer, not {x.dtype}")
    if isinstance(table, TensorType) and table.shape is not None and tuple(table.shape) != (256,):
        raise ValueError(f"ember.Lookup's table holds one value for each of 256 indices, not {table.shape}")
    shape = x.shape if isinstance(x, TensorType) else None
    return [TensorType(table.dtype, shape)] if isinstance(table, TensorType) else [None]


def _lookup_reference(inputs, attrs, ctx):
    x, table = inputs
    return [np.asarray(table)[np.asarray(x).astype(np.int64) - np.iinfo(x.dtype).min]]


# elementwise for fusion: out[i] reads x[i] (and the constant table), so it joins a conv's epilogue
FAMILY.op(
    "ember.Lookup",
    inputs=(2, 2),
    outputs=(1, 1),
    domain="ember",
    traits=frozenset({Trait.PURE}),
    infer=_lookup_infer,
    kernel=_lookup_reference,
    fusion=Fusion.ELEMENTWISE,
    doc="y[i] = table[x[i] - m], m the least value of x's 8-bit type: a function of x given by its value at "
    "each of the 256 (made by `lookup-8bit`).",
)


def _fused_infer(ctx):
    return [v.type for v in ctx.attrs["body"].outputs]


def _fused_reference(inputs, attrs, ctx):
    return ctx.interpreter.run_graph(attrs["body"], list(inputs))


FAMILY.op(
    "ember.Fused",
    inputs=(0, None),
    outputs=(1, None),
    domain="ember",
    traits=frozenset({Trait.PURE}),
    attrs=[AttrSpec("body", "graph", REQUIRED)],
    infer=_fused_infer,
    kernel=_fused_reference,
    doc="One fused kernel: runs its closed body graph (parameters = the group's inputs, in operand order; "
    "outputs = the group's results, in result order). Made by the `fuse` pass; codegen lowers the body "
    "as one kernel call.",
)


# The blocked-layout ops of convert-layout, declared in this family from their own module.
from . import ember_layout  # noqa: E402, F401
