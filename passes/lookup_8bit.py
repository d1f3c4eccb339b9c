"""``lookup-8bit``: a quantized activation (a chain of elementwise ops from dequantized 8-bit values to
a QuantizeLinear) becomes one table lookup, as onnxruntime's QLinear activations are.

    QuantizeLinear(f(DequantizeLinear(x, s, z), ...), s2, z2)   ->  ember.Lookup(x, T)
        T[v - m] = the same chain evaluated on v, for each of the 256 values v of x's type (m its least)

where every run-time operand of the chain comes from the one 8-bit ``x``, through DequantizeLinear
(or an ``ember.Lookup`` made before), every other operand is a one-element constant, and every op
is elementwise and pure: the result is then a function of ``x`` alone, element by element, and the
interpreter computes it once for all 256 values. The chain must hold a transcendental op (Sigmoid,
Tanh, Exp, Erf, ...) or a lookup already made: a requantization of cheap ops costs less computed
than looked up. SiLU after a quantized conv, ``Q(DQ(x) * DQ(Q(Sigmoid(DQ(x)))))``, is one table
whichever Q is rewritten first (the inner one's lookup joins the outer one's chain).

Why: a static QDQ EfficientNet-B0 spent a quarter or more of its time in the float sigmoid of its
65 SiLUs (their conv epilogues' requantize, exponential and division per element); a lookup is one
load. The table is what the interpreter computes, so the compiled result matches the reference
(the float chain compiled could round a value onto the other side of a quantization step).

A code-generation preparation (``codegen-prepare``): ``ember.Lookup`` is not an ONNX op.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.ir.builder import Builder
from compiler.ir.core import Graph, Node, Value
from compiler.ir.interpreter import interpret_list
from compiler.ir.types import DType, TensorType
from compiler.ops import Trait, get_op
from compiler.passes import Pass, PassResult
from compiler.rewrite import MatchResult, NodeRule, RuleSet, apply_rules_counted

LOOKUP = "ember.Lookup"
MAX_CHAIN = 32  # ops in a chain, its root included
EIGHT_BIT = (DType.UINT8, DType.INT8)


def _walkable(node: Node | None) -> bool:
    """An op a chain may hold: pure, elementwise (or a lookup made before), one result."""
    if node is None:
        return False
    op_def = get_op(node.op)
    elementwise = node.op == LOOKUP or (op_def is not None and op_def.has(Trait.ELEMENTWISE))
    return elementwise and op_def.has(Trait.PURE) and len(node.results) == 1


class _NotAChain(Exception):
    """Why the ops ending at a node are not a function of one 8-bit value."""


def _chain(root: Node) -> tuple[Value, list[Node]] | str:
    """``(x, nodes)``: the one 8-bit value the elementwise ops ending at ``root`` are a function of,
    and those ops, each after the ops it reads (``root`` last); or why they are not."""
    nodes: list[Node] = []  # finished, operands first
    leaf_of: dict[int, Value] = {}
    visiting: set[int] = set()

    def node_leaf(node: Node) -> Value:
        if id(node) in leaf_of:
            return leaf_of[id(node)]
        visiting.add(id(node))
        if len(visiting) > MAX_CHAIN:
            raise _NotAChain(f"more than {MAX_CHAIN} ops")
        leaves = set()
        for index, value in enumerate(node.operands):
            if value is None:
                continue
            if value.const_value is not None:
                if np.size(value.const_value) != 1 and not (node.op == LOOKUP and index == 1):  # a lookup's table
                    raise _NotAChain(f"'{node.op}' reads a constant of {np.size(value.const_value)} elements")
            elif index == 0 and node.op in ("DequantizeLinear", LOOKUP):
                leaves.add(integer_leaf(value))
            elif _walkable(value.producer):
                leaves.add(node_leaf(value.producer))
            else:
                source = f"'{value.producer.op}'" if value.producer is not None else "a graph input"
                raise _NotAChain(f"it reads {source} other than through DequantizeLinear")
        if len(leaves) != 1:
            raise _NotAChain("it is a function of two run-time values" if leaves else "it reads no run-time value")
        leaf_of[id(node)] = leaf = leaves.pop()
        nodes.append(node)
        return leaf

    def integer_leaf(value: Value) -> Value:
        """``value`` (read by a DequantizeLinear or lookup), or the one value its own chain is a
        function of, where it is one: ``Q(Sigmoid(DQ(x)))`` read again is still a function of ``x``."""
        if not _walkable(value.producer):
            return value
        saved = len(nodes), set(visiting), dict(leaf_of)
        try:
            return node_leaf(value.producer)
        except _NotAChain:
            del nodes[saved[0] :]
            visiting.clear(), leaf_of.clear()
            visiting.update(saved[1]), leaf_of.update(saved[2])
            return value

    try:
        x = node_leaf(root)
    except _NotAChain as why:
        return str(why)
    return x, nodes


def _applies(node: Node) -> MatchResult:
    result = node.results[0]
    if not isinstance(result.type, TensorType) or result.type.dtype not in EIGHT_BIT:
        return MatchResult.fail("not quantized to 8 bits")
    found = _chain(node)
    if isinstance(found, str):
        return MatchResult.fail(found)
    x, nodes = found
    if not isinstance(x.type, TensorType) or x.type.dtype not in EIGHT_BIT or x.type.shape is None:
        return MatchResult.fail("the dequantized value is not an 8-bit tensor of known shape")
    if result.type.shape != x.type.shape:
        return MatchResult.fail("the result is broadcast beyond the dequantized value's shape")
    if not any(n.op == LOOKUP or get_op(n.op).has(Trait.TRANSCENDENTAL) for n in nodes):
        return MatchResult.fail("no transcendental op: cheaper computed than looked up")
    return MatchResult.success()


def _table(root: Node, x: Value, nodes: list[Node]) -> np.ndarray:
    """The chain (``nodes`` in ``_chain``'s order) evaluated by the interpreter on each of the 256
    values of ``x``'s type."""
    graph = Graph("lookup")
    b = Builder(graph)
    info = np.iinfo(x.type.dtype.np)
    values = {id(x): b.param("x", TensorType(x.type.dtype, (256,)))}
    for node in nodes:  # operands first
        operands = []
        for value in node.operands:
            if value is None:
                operands.append(None)
            elif id(value) in values:
                operands.append(values[id(value)])
            else:  # a one-element constant, as a scalar (x is 1-D here), or a lookup's table
                constant = np.asarray(value.const_value)
                operands.append(b.constant(constant.reshape(()) if constant.size == 1 else constant))
        values[id(node.results[0])] = b.op(node.op, operands, dict(node.attrs))
    graph.outputs = [values[id(root.results[0])]]
    with np.errstate(all="ignore"):  # e.g. onnx.reference's Sigmoid overflows exp on its way to 0 or 1
        (table,) = interpret_list(graph, {"x": np.arange(info.min, info.max + 1).astype(x.type.dtype.np)})
    return np.asarray(table)


def _rewrite(node: Node, rw) -> bool:
    x, nodes = _chain(node)
    table = _table(node, x, nodes)
    rw.replace_node(node, rw.op(LOOKUP, [x, rw.constant(table)], name=node.name))
    return True


RULES = RuleSet([NodeRule("QuantizeLinear", _rewrite, check=_applies, name="lookup-8bit")], name="lookup-8bit")


@dataclass(frozen=True)
class Lookup8BitPass(Pass):
    """Quantized elementwise chains of an 8-bit value -> one 256-entry table lookup (module docstring)."""

    name = "lookup-8bit"

    def run(self, graph: Graph) -> PassResult:
        return PassResult(*apply_rules_counted(graph, RULES))
