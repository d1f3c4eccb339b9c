"""Expand ops that have no lowering into their ONNX function bodies before code generation.

ONNX defines many composite ops (``Attention``, ``RMSNormalization``, ``GroupNormalization``,
``NegativeLogLikelihoodLoss``, ``SoftmaxCrossEntropyLoss``, ``Celu``, ``Swish``, window
functions...) by a function body, possibly context-dependent (built from the node's attributes
and input types).  The interpreter runs these ops directly, so the importer keeps them as single
nodes; code generation instead needs every op lowered.  ``expand_unlowered(graph)`` replaces each
top-level node whose op has no lowering, but has a function body, by that body:

    Op(x, ...) {attrs}  ->  body nodes of Op's FunctionProto for (attrs, types of x, ...)

Constant operands become initializers of the one-node model that is expanded, so bodies that
branch on them (and shape inference afterwards) see their values.  The expansion repeats (a body
may use another composite op) up to ``MAX_ROUNDS`` times.  A node that cannot be expanded is left
alone: the planner then reports it as unsupported, naming the op and the node.

``prepare_for_codegen`` runs this with folding and the control-flow rewrites until nothing changes:
RNN/GRU/LSTM written out per step (``ops_more_rnn``), Scan and Loop unrolled (``ops_more_unroll``),
``If`` with a constant condition inlined, and ``If`` with a run-time one computed both ways and
selected, ``Where(cond, then, else)``, when both branches are small, pure, safe to compute when not
taken, and of one static type.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import defs, helper

from compiler import onnx_bridge as bridge
from compiler.diagnostics import EmberError
from compiler.ir.core import Graph, Node
from compiler.ir.types import TensorType
from compiler.ops import Trait, get_op

from .registry import get_lowering

MAX_ROUNDS = 4  # nested composite ops (a body using another composite op) expand this deep
KEEP_OPS = {"Constant", "Identity"}  # the planner handles these without a lowering


def _needs_expansion(node: Node) -> bool:
    """A default-domain op without a lowering, not folded by the planner, with an ONNX schema."""
    if node.op in KEEP_OPS or "." in node.op or get_lowering(node.op) is not None:
        return False
    op_def = get_op(node.op)
    if op_def is not None and op_def.has(Trait.SHAPE_ONLY):
        return False  # Shape/Size: the planner folds them from static types
    if node.subgraphs:
        return False
    try:
        schema = defs.get_schema(node.op, defs.onnx_opset_version(), "")
    except Exception:
        return False
    return bool(schema.has_function or schema.has_context_dependent_function)


def _node_model(node: Node) -> onnx.ModelProto:
    """A one-node ONNX model computing ``node`` (constant operands as initializers)."""
    op_def = get_op(node.op)
    attrs = []
    for name, value in node.attrs.items():
        kind = op_def.attrs[name].kind if op_def is not None and name in op_def.attrs else None
        attrs.append(bridge.attr_to_proto(name, value, kind))
    given = {a.name for a in attrs}
    schema = defs.get_schema(node.op, defs.onnx_opset_version(), "")
    for name, spec in schema.attributes.items():  # bodies may refer to defaulted attributes
        default = spec.default_value
        if name not in given and default is not None and default.type != onnx.AttributeProto.UNDEFINED:
            attr = onnx.AttributeProto()
            attr.CopyFrom(default)
            attr.name = name
            attrs.append(attr)
    in_names = [f"in{i}" if v is not None else "" for i, v in enumerate(node.operands)]
    out_names = [f"out{i}" for i in range(len(node.results))]
    proto = helper.make_node(node.op, in_names, out_names, name=node.name or "expanded")
    proto.attribute.extend(attrs)
    inputs, inits = [], []
    for name, v in zip(in_names, node.operands):
        if v is None:
            continue
        const = v.const_value
        if const is not None:
            inits.append(bridge.array_to_proto(np.asarray(const), name))
        else:
            inputs.append(helper.make_value_info(name, bridge.type_to_proto(v.type)))
    outputs = [helper.make_value_info(n, bridge.type_to_proto(r.type)) for n, r in zip(out_names, node.results)]
    graph = helper.make_graph([proto], "expand", inputs, outputs, initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", defs.onnx_opset_version())])


def _expanding_importer(model: onnx.ModelProto, op: str):
    """An ONNX importer that converts ``op`` through its schema function body, not Ember's op."""
    from frontends.onnx import importer as imp
    from frontends.onnx.functions import function_opsets, schema_function_body

    class ExpandingImporter(imp.OnnxImporter):
        def convert_op(self, node, domain, graph, inputs, attrs, opsets, prefix, depth):
            if domain != "" or node.op_type != op:
                return super().convert_op(node, domain, graph, inputs, attrs, opsets, prefix, depth)
            schema = self.schema_function(domain, node.op_type, opsets)
            fn = schema_function_body(schema, node, inputs, opsets[domain]) if schema else None
            if fn is None:
                raise self.error("no function body to expand", node)
            return self.inline_function(fn, node, graph, inputs, {**opsets, **function_opsets(fn)},
                                        prefix, depth)

    return ExpandingImporter(model, None, None)


def _splice(graph: Graph, node: Node, body: Graph) -> None:
    """Replace ``node`` in ``graph`` by the nodes of ``body`` (whose params are its dynamic operands)."""
    dynamic = [v for v in node.operands if v is not None and v.const_value is None]
    if len(dynamic) != len(body.params):
        raise EmberError(f"expanding {node.op}: {len(body.params)} body inputs for {len(dynamic)} operands",
                         node=node.name, op=node.op)
    for param, actual in zip(body.params, dynamic):
        param.replace_all_uses_with(actual)
    results = list(body.outputs)
    body.outputs = []
    for inner in list(body.nodes):
        body._unlink(inner)
        inner.graph = None
        if inner.name:
            inner.name = f"{node.name}/{inner.name}"
        graph.insert_before(node, inner)
    for old, new in zip(node.results, results):
        if old.has_uses():
            new_value = new if not new.is_param else dynamic[body.params.index(new)]
            old.replace_all_uses_with(new_value)
    node.erase()


def fold_castlike_of_constants(graph: Graph) -> int:
    """``CastLike(Constant c, x)`` -> ``Constant(c as x's dtype)``: only ``x``'s type matters, and
    function bodies build constants this way (``-inf`` as the input's dtype for masks and pads)."""
    from compiler.ir.builder import Builder
    from compiler.ir.types import TensorType

    count = 0
    for node in list(graph.nodes):
        if node.op != "CastLike" or node.operands[0] is None or node.operands[0].const_value is None:
            continue
        like = node.operands[1].type
        if not isinstance(like, TensorType):
            continue
        value = np.asarray(node.operands[0].const_value).astype(like.dtype.np)
        const = Builder(graph, before=node).constant(value, name=node.result.name)
        node.result.replace_all_uses_with(const)
        node.erase()
        count += 1
    return count


def inline_constant_ifs(graph: Graph) -> int:
    """``If(Constant c){then, else}`` -> the nodes of the branch ``c`` selects (they may read outer
    values directly, so they move into ``graph`` unchanged)."""
    count = 0
    for node in list(graph.nodes):
        if node.op != "If" or node.operands[0] is None or node.operands[0].const_value is None:
            continue
        taken = bool(np.asarray(node.operands[0].const_value).reshape(-1)[0])
        branch = node.attrs["then_branch" if taken else "else_branch"]
        if branch.params:
            continue
        results = list(branch.outputs)
        branch.outputs = []
        for inner in list(branch.nodes):
            branch._unlink(inner)
            graph.insert_before(node, inner)
        for old, new in zip(node.results, results):
            old.replace_all_uses_with(new)
        node.erase()
        count += 1
    return count


MAX_SELECT_NODES = 64  # nodes per branch of an If computed both ways and selected with Where


def select_problem(node: Node) -> str | None:
    """Why ``node`` (an If with a run-time condition) cannot become ``Where(cond, then, else)``."""
    from .ops_more_unroll import speculation_problem

    for key in ("then_branch", "else_branch"):
        branch = node.attrs[key]
        inner = list(branch.walk())
        if branch.params or len(inner) > MAX_SELECT_NODES:
            return f"its {key} has more than {MAX_SELECT_NODES} nodes to compute both ways"
        for n in inner:
            op_def = get_op(n.op)
            if (n.subgraphs or op_def is None or not op_def.has(Trait.PURE) or op_def.has(Trait.RANDOM)
                    or op_def.has(Trait.SEQUENCE)):
                return f"its {key} uses {n.op}, which is not a pure tensor op"
        unsafe = speculation_problem(inner)
        if unsafe:
            return f"its {key} is unsafe to compute when not taken: {unsafe}"
    then_out, else_out = node.attrs["then_branch"].outputs, node.attrs["else_branch"].outputs
    for t, e, r in zip(then_out, else_out, node.results):
        if t.type == e.type and isinstance(t.type, TensorType) and t.type.is_static:
            continue
        if not _same_elements(t.type, e.type, r.type):
            return f"its branches produce values of different or non-static types ({t.type} vs {e.type})"
    return None


def _same_elements(*types) -> bool:
    """Static tensor types of one dtype and element count (the If's result type among them):
    each branch's value can be reshaped to the result's shape."""
    if not all(isinstance(t, TensorType) and t.is_static for t in types):
        return False
    return (len({t.dtype for t in types}) == 1
            and len({int(np.prod(t.shape, dtype=np.int64)) for t in types}) == 1)


def select_ifs(graph: Graph) -> int:
    """``If(c){then, else}`` with a run-time ``c`` -> both branches' nodes, then
    ``Where(c, then_out, else_out)`` per output, when ``select_problem`` finds nothing against it."""
    from compiler.ir.builder import Builder

    from .ops_more_unroll import replace_results

    count = 0
    for node in list(graph.nodes):
        cond = node.operands[0] if node.op == "If" else None
        if cond is None or cond.const_value is not None or select_problem(node) is not None:
            continue
        picks = []
        for key in ("then_branch", "else_branch"):
            branch = node.attrs[key]
            picks.append(list(branch.outputs))
            branch.outputs = []
            for inner in list(branch.nodes):
                branch._unlink(inner)
                graph.insert_before(node, inner)
        b = Builder(graph, before=node)
        if isinstance(cond.type, TensorType) and cond.type.rank != 0:  # a one-element tensor
            cond = b.op("Reshape", [cond, b.constant(np.zeros(0, np.int64))])
        results = []
        for t, e, r in zip(*picks, node.results):
            if t.type != e.type:  # same elements in other shapes (f32[] vs f32[1]): the If's shape
                shape = b.constant(np.array(r.type.shape, np.int64))
                t, e = (b.op("Reshape", [v, shape]) for v in (t, e))
            results.append(t if t is e else b.op("Where", [cond, t, e]))
        replace_results(graph, node, results)
        count += 1
    return count


def refuse_control_flow(graph: Graph) -> None:
    """A CodegenError naming the first top-level RNN/GRU/LSTM, If or Loop left, and why it could not
    be written out as straight-line code."""
    from ..errors import CodegenError
    from .ops_more_rnn import expand_recurrent
    from .ops_more_unroll import loop_problem

    expand_recurrent(graph)  # a recurrent op left raises why it cannot be written out
    for node in graph.nodes:
        if node.op == "If":
            why = select_problem(node) or "its condition is not a compile-time constant"
        elif node.op == "Loop":
            why = loop_problem(node) or ("its condition is computed at run time and it has scan outputs or "
                                         "no constant trip count, or its body is unsafe to run past the "
                                         "condition, or it runs too long")
        else:
            continue
        raise CodegenError(f"cannot be compiled: {why}; code generation "
                           "needs control flow written out as straight-line code",
                           node=node.name, op=node.op)


def prepare_for_codegen(graph: Graph, max_rounds: int = MAX_ROUNDS) -> None:
    """Expand composite ops (recurrent ones step by step), propagate static shapes and fold
    constants, inline ``If`` nodes whose condition became constant, unroll static ``Scan`` and
    ``Loop`` nodes, and turn the ``If`` nodes left into ``Where`` selections, until nothing changes
    (what ``prepare(compile=True)`` and ``ember compile`` run).  Control flow that cannot be written
    out raises a ``CodegenError`` naming the node and the reason."""
    from compiler.pipeline import run_pipeline

    for _ in range(max_rounds):
        expanded = expand_unlowered(graph)
        run_pipeline(graph, "fixed-point{max-iterations=8}(infer-shapes,shapes-from-uses,fold-constants,dce)")
        from .ops_more_unroll import unroll_loops, unroll_scans

        changed = inline_constant_ifs(graph) + unroll_scans(graph) + unroll_loops(graph)
        if not changed and not expanded:
            changed = select_ifs(graph)  # last: a condition may still fold to a constant
            if not changed:
                break
    refuse_control_flow(graph)


def expand_unlowered(graph: Graph) -> int:
    """Expand every expandable op of ``graph``'s top level; returns how many nodes were expanded.
    Recurrent ops (RNN, GRU, LSTM) have no function body: they are written out step by step;
    an integer TfIdfVectorizer becomes n-gram counting plus weighting (``ops_more_tfidf``); tree
    ensembles become a table-walking kernel (``ops_more_trees``)."""
    from .ops_more_rnn import expand_recurrent
    from .ops_more_tfidf import rewrite_tfidf
    from .ops_more_trees import rewrite_trees

    count = expand_recurrent(graph, strict=False) + rewrite_tfidf(graph) + rewrite_trees(graph)
    for _ in range(MAX_ROUNDS):
        todo = [n for n in graph.nodes if _needs_expansion(n)]
        if not todo:
            break
        for node in todo:
            try:
                body = _expanding_importer(_node_model(node), node.op).run()
            except Exception:
                continue  # left for the planner, which names it as unsupported
            _splice(graph, node, body)
            count += 1
    fold_castlike_of_constants(graph)
    return count
