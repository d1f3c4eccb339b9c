"""``flatten-matmul-batch``: a batched MatMul with a shared 2-D right operand becomes one 2-D product.

    MatMul(a[..., M, K], b[K, N])     ->  Reshape(MatMul(Reshape(a, [P*M, K]), b), [..., M, N])
                                          (also ``b[1, ..., K, N]``, reshaped to ``[K, N]``)
    U(Reshape(p[R, N], [..., N]), c)  ->  Reshape(U(p, c'), [..., N])     (U elementwise)

where ``P``, the product of ``a``'s leading dims, is more than 1 and ``M`` is under ``MAX_ROWS``.
The batched form computes each of the ``P`` products on its own and reads all of ``b`` once per
batch element: a CRNN's classifier ``[T, 1, 512] x [512, 8000]`` read its 16 MB weight 80 times
(34% of the model's time), and ViT's attention projections ``[197, 1, 768] x [768, 2304]`` 197 times.  As one
``[P*M, K] x [K, N]`` product the register-tiled schedule reads each panel of ``b`` once for all
rows.  Reshape is a view in Ember's code generation, so the Reshapes cost nothing.

The second rule sinks the output Reshape past the elementwise ops that read it (bias Add, GELU,
a layer scale, a residual Add) so that they stay the product's fused epilogue (``fuse`` joins only
elementwise consumers of the product's own shape; a view stops a group), and ``simplify`` then
makes ``MatMul + Add`` one ``Gemm``.  It applies to a rank-2 ``p`` made by an anchor (MatMul,
Gemm, Conv) or an elementwise op, read only through the Reshape, which must keep the last axis.
Each other operand ``c`` becomes ``c'``: a scalar or 1-D ``c`` as it is, one that varies along
the last axis only as a 1-D vector, one of the full shape reshaped to ``[R, N]`` (a view); any
other ``c`` stops the sinking there.

Left alone: products with a single batch element (BERT's ``[1, S, H]`` activations), a batched
or 1-D ``b`` or one of higher rank than ``a``, non-float products, non-static shapes, and
``MAX_ROWS`` rows or more per batch element: the batched schedule then fills its 8-row register
tiles and keeps a batch element's rows in L1 across all column panels, whereas the flat product
streams every row past each panel (ConvNeXt's ``[1, 28, 28, 192] x [192, 768]``: 1.50 -> 1.67
ms flat; ``[1, 14, 14, 384] x [384, 1536]``: 1.30 -> 1.19 ms, 1 thread).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from compiler.ir.core import Graph, Node, Value
from compiler.ops import Fusion
from compiler.passes import Pass, PassResult
from compiler.rewrite import MatchResult, NodeRule, RuleSet, apply_rules_counted

from .fuse_rules import fusion_kind
from .rules.common import is_float, only_use_is, static_shape

MAX_ROWS = 16  # rows per batch element from which the batched product is as fast (module docstring)


def _shape_constant(rw, shape) -> Value:
    return rw.constant(np.array(list(shape), np.int64))


def _flattenable(node: Node) -> MatchResult:
    """A float MatMul of a static ``a`` of rank >= 3 with several batch elements of few rows, and a
    ``b`` that is 2-D once its leading 1s are dropped."""
    a_shape, b_shape = static_shape(node.operands[0]), static_shape(node.operands[1])
    if a_shape is None or b_shape is None or not is_float(node.results[0]):
        return MatchResult.fail("not a float product of static shapes")
    if len(a_shape) < 3 or len(b_shape) < 2 or len(b_shape) > len(a_shape):
        return MatchResult.fail(f"operands of rank {len(a_shape)} and {len(b_shape)}")
    if any(d != 1 for d in b_shape[:-2]):
        return MatchResult.fail(f"b of shape {b_shape} is batched")
    if math.prod(a_shape[:-2]) <= 1:
        return MatchResult.fail("a single batch element: already one 2-D product")
    if a_shape[-2] >= MAX_ROWS:
        return MatchResult.fail(f"{a_shape[-2]} rows per batch element fill the register tiles")
    return MatchResult.success()


def _flatten_matmul(node: Node, rw) -> bool:
    """MatMul(a[..., M, K], b[K, N]) -> Reshape(MatMul(Reshape(a, [P*M, K]), b), [..., M, N])."""
    a, b = node.operands[0], node.operands[1]
    a_shape = static_shape(a)
    flat_a = rw.op("Reshape", [a, _shape_constant(rw, (math.prod(a_shape[:-1]), a_shape[-1]))])
    if len(static_shape(b)) > 2:  # [1, ..., K, N]: a view as [K, N] (folded when constant)
        b = rw.op("Reshape", [b, _shape_constant(rw, static_shape(b)[-2:])])
    flat = rw.op("MatMul", [flat_a, b], name=node.name)
    rw.replace_node(node, rw.op("Reshape", [flat, _shape_constant(rw, static_shape(node.results[0]))]))
    return True


def _flat_reshape(value: Value) -> Value | None:
    """The rank-2 input of a Reshape producing ``value`` that keeps its last axis, else None."""
    node = value.producer
    if node is None or node.op != "Reshape":
        return None
    inner, outer = static_shape(node.operands[0]), static_shape(value)
    if inner is None or outer is None or len(inner) != 2 or not outer or inner[-1] != outer[-1]:
        return None
    producer = node.operands[0].producer
    if producer is None or fusion_kind(producer) not in (Fusion.ANCHOR, Fusion.ELEMENTWISE):
        return None
    return node.operands[0]


def _follows_rows(c: Value, out_shape: tuple[int, ...]) -> bool:
    """Whether operand ``c`` of an elementwise op of shape ``out_shape`` can be made to fit its
    flat ``[R, N]`` form: a scalar or 1-D, varying along the last axis only, or of the full shape."""
    shape = static_shape(c)
    return shape is not None and (len(shape) <= 1 or all(d == 1 for d in shape[:-1]) or shape == out_shape)


def _flat_operand(rw, c: Value, out_shape: tuple[int, ...], flat_shape: tuple[int, ...]) -> Value:
    """Operand ``c`` (``_follows_rows``) made to fit ``flat_shape``."""
    shape = static_shape(c)
    if len(shape) <= 1:
        return c
    if shape == out_shape:
        return rw.op("Reshape", [c, _shape_constant(rw, flat_shape)])
    vector = c.const_value  # varies along the last axis only: a bias
    if vector is not None:
        return rw.constant(np.ascontiguousarray(vector.reshape(-1)))
    return rw.op("Reshape", [c, _shape_constant(rw, shape[-1:])])


def _reshaped_operand(node: Node) -> Value | None:
    """The operand of ``node`` that a flattening Reshape makes, read only by ``node``, of ``node``'s shape."""
    out_shape = static_shape(node.results[0])
    for v in node.operands:
        if v is not None and _flat_reshape(v) is not None and only_use_is(v, node) and static_shape(v) == out_shape:
            return v
    return None


def _sinkable(node: Node) -> MatchResult:
    """An elementwise op of one result reading a flattening Reshape that only it reads, whose other
    operands follow the rows."""
    if fusion_kind(node) != Fusion.ELEMENTWISE or len(node.results) != 1:
        return MatchResult.fail("not an elementwise op with one result")
    reshaped = _reshaped_operand(node)
    if reshaped is None:
        return MatchResult.fail("no operand of its shape is a Reshape of a 2-D product read only here")
    out_shape = static_shape(node.results[0])
    for v in node.operands:
        if v is not None and v is not reshaped and not _follows_rows(v, out_shape):
            return MatchResult.fail(f"operand %{v.name} of shape {static_shape(v)} does not follow the rows")
    return MatchResult.success()


def _sink_reshape(node: Node, rw) -> bool:
    """U(Reshape(p, s), c) -> Reshape(U(p, c'), s) (see the module docstring)."""
    out_shape = static_shape(node.results[0])
    reshaped = _reshaped_operand(node)
    flat = _flat_reshape(reshaped)
    flat_shape = static_shape(flat)
    operands = [
        flat if v is reshaped else None if v is None else _flat_operand(rw, v, out_shape, flat_shape)
        for v in node.operands
    ]
    inner = rw.op(node.op, operands, dict(node.attrs), name=node.name)
    rw.replace_node(node, rw.op("Reshape", [inner, _shape_constant(rw, out_shape)]))
    return True


FLATTEN_RULES = RuleSet(
    [
        NodeRule("MatMul", _flatten_matmul, check=_flattenable, name="flatten-matmul-batch"),
        NodeRule("*", _sink_reshape, check=_sinkable, name="sink-reshape-elementwise"),
    ],
    name="flatten-matmul-batch",
)


@dataclass(frozen=True)
class FlattenMatMulBatchPass(Pass):
    """Batched MatMuls against one 2-D ``b`` become a 2-D product; the Reshape back sinks past
    elementwise epilogues (see the module docstring)."""

    name = "flatten-matmul-batch"

    def run(self, graph: Graph) -> PassResult:
        return PassResult(*apply_rules_counted(graph, FLATTEN_RULES))
