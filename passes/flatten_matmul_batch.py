"""``flatten-matmul-batch``: a batched MatMul with a shared 2-D right operand becomes one 2-D product.

    MatMul(a[..., M, K], b[K, N])          ->  Reshape(MatMul(Reshape(a, [P*M, K]), b), [..., M, N])
    Add(MatMul(a, b), c),  Add(c, MatMul)  ->  Reshape(Add(MatMul(Reshape(a, [P*M, K]), b), c'), [..., M, N])

where ``P`` is the product of ``a``'s leading dims (more than 1) and ``M`` is under ``MAX_ROWS``.
The batched form computes each of the ``P`` products on its own and reads all of ``b`` once per
batch element: a CRNN's classifier ``[T, 1, 512] x [512, 8000]`` read its 16 MB weight 80 times
(34% of the model's time).  As one ``[P*M, K] x [K, N]`` product the register-tiled schedule reads
each panel of ``b`` once for all rows.  Reshape is a view in Ember's code generation, so the two
Reshapes cost nothing; the bias Add is moved before the output Reshape so that it stays the
product's fused epilogue (and ``simplify`` then makes ``MatMul + Add`` one ``Gemm``).  ``c'`` is
``c`` as a 1-D vector when it varies only along the last axis (a bias), or ``c`` reshaped to
``[P*M, N]`` (a view) when it has the product's shape; any other ``c`` is left after the Reshape.

With ``M`` rows per batch element at or above ``MAX_ROWS`` each panel of ``b`` is already shared by
several register tiles of rows, and a Reshape would stop elementwise consumers other than the Add
from fusing into the product: those are left alone, as are products with a single batch element
(BERT's and ViT's ``[1, S, H]`` activations) and non-static shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from compiler.ir.core import Graph, Node, Value
from compiler.passes import Pass, PassResult
from compiler.rewrite import MatchResult, NodeRule, RuleSet, apply_rules
from compiler.rewrite.driver import RuleCounts, observing

from .rules.common import is_float, only_use_is, static_shape

MAX_ROWS = 32  # rows per batch element below which flattening pays (see the module docstring)


def _flattenable(node: Node) -> MatchResult:
    """A float MatMul of a static ``a`` of rank >= 3 with several batch elements of few rows, and a 2-D ``b``."""
    a_shape, b_shape = static_shape(node.operands[0]), static_shape(node.operands[1])
    if a_shape is None or b_shape is None or not is_float(node.results[0]):
        return MatchResult.fail("not a float product of static shapes")
    if len(a_shape) < 3 or len(b_shape) != 2:
        return MatchResult.fail(f"operands of rank {len(a_shape)} and {len(b_shape)}, not >= 3 and 2")
    if math.prod(a_shape[:-2]) <= 1:
        return MatchResult.fail("a single batch element: already one 2-D product")
    if a_shape[-2] >= MAX_ROWS:
        return MatchResult.fail(f"{a_shape[-2]} rows per batch element: each panel of b is already reused")
    return MatchResult.success()


def _bias_add(product: Value) -> tuple[Node, Value] | None:
    """The Add that is ``product``'s only reader and keeps its shape, with its other operand."""
    users = product.users
    if len(users) != 1 or users[0].op != "Add" or not only_use_is(product, users[0]):
        return None
    add = users[0]
    other = add.operands[1] if add.operands[0] is product else add.operands[0]
    if other is product or static_shape(add.results[0]) != static_shape(product):
        return None
    return add, other


def _flat_addend(rw, c: Value, out_shape: tuple[int, ...]) -> Value | None:
    """``c`` as an addend of the flat ``[rows, N]`` product, or None when it cannot be one."""
    shape = static_shape(c)
    if shape is None:
        return None
    rows, cols = math.prod(out_shape[:-1]), out_shape[-1]
    if all(d == 1 for d in shape[:-1]):  # varies along the last axis only: a bias
        vector = c.const_value
        if vector is not None:
            return rw.constant(np.ascontiguousarray(vector.reshape(-1)))
        return rw.op("Reshape", [c, rw.constant(np.array([shape[-1] if shape else 1], np.int64))])
    if shape == out_shape:
        return rw.op("Reshape", [c, rw.constant(np.array([rows, cols], np.int64))])
    return None


def _flatten_matmul(node: Node, rw) -> bool:
    """MatMul(a[..., M, K], b[K, N]) (+ its bias Add) -> one 2-D product between Reshapes."""
    a, b = node.operands[0], node.operands[1]
    a_shape = static_shape(a)
    out_shape = static_shape(node.results[0])
    rows = math.prod(a_shape[:-1])
    flat_a = rw.op("Reshape", [a, rw.constant(np.array([rows, a_shape[-1]], np.int64))])
    flat = rw.op("MatMul", [flat_a, b])
    found = _bias_add(node.results[0])
    replaced = node
    if found is not None:
        add, c = found
        rw.set_insertion_point_before(add)
        addend = _flat_addend(rw, c, out_shape)
        if addend is not None:
            flat = rw.op("Add", [flat, addend] if add.operands[0] is node.results[0] else [addend, flat])
            replaced = add
    out = rw.op("Reshape", [flat, rw.constant(np.array(out_shape, np.int64))])
    rw.replace_node(replaced, out)
    if replaced is not node:
        rw.erase_node(node)
    return True


FLATTEN_RULES = RuleSet(
    [NodeRule("MatMul", _flatten_matmul, check=_flattenable, name="flatten-matmul-batch")], name="flatten-matmul-batch"
)


@dataclass(frozen=True)
class FlattenMatMulBatchPass(Pass):
    """Batched MatMuls against one 2-D ``b`` (few rows each) become a 2-D product (see the module docstring)."""

    name = "flatten-matmul-batch"

    def run(self, graph: Graph) -> PassResult:
        with observing(RuleCounts()) as counts:
            changed = apply_rules(graph, FLATTEN_RULES)
        return PassResult(changed, dict(counts.applied))
