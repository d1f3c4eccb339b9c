"""Unroll ``Scan`` nodes with a static trip count into straight-line graph code before codegen.

Code generation has no loops over nested graphs, but with static shapes a ``Scan`` runs a known
number of steps ``T`` (the scan axis of its first scan input), so it can be written out:

    Scan(s..., x...){body}  ->  for t in 0..T-1:
                                    x_t = Gather(x, t or T-1-t, axis=scan_input_axis)
                                    s..., y_t... = clone of body(s..., x_t...)
                                y = Concat(Unsqueeze(y_t, axis) for t in order, axis)

Body nodes may read outer values directly; the clones read the same values (nested graphs in
a body are copied).  Scans with a non-static trip count or more than ``MAX_UNROLL`` steps are left
alone (the planner then names them as unsupported).
"""

from __future__ import annotations

import numpy as np

from compiler.ir.builder import Builder
from compiler.ir.core import Graph, Node, Value
from compiler.ir.types import TensorType

MAX_UNROLL = 64


def _trip_count(node: Node, n_state: int, axes: list[int]) -> int | None:
    scan_in = node.operands[n_state:]
    if not scan_in or not isinstance(scan_in[0].type, TensorType) or scan_in[0].type.shape is None:
        return None
    shape = scan_in[0].type.shape
    length = shape[axes[0] % len(shape)]
    return length if isinstance(length, int) and 0 < length <= MAX_UNROLL else None


CONCAT_FANIN = 32  # inputs per Concat node: a kernel call takes a bounded number of buffers


def concat(b: Builder, parts: list, axis: int):
    """``Concat(parts, axis)`` as a tree of Concats of at most ``CONCAT_FANIN`` inputs each."""
    while len(parts) > CONCAT_FANIN:
        parts = [chunk[0] if len(chunk) == 1 else b.op("Concat", chunk, {"axis": axis})
                 for chunk in (parts[i:i + CONCAT_FANIN] for i in range(0, len(parts), CONCAT_FANIN))]
    return parts[0] if len(parts) == 1 else b.op("Concat", parts, {"axis": axis})


def _clone_body(graph: Graph, anchor: Node, body: Graph, args: list, step: int,
                nodes: list | None = None) -> list:
    """Copy ``body``'s nodes before ``anchor`` with its params bound to ``args``; returns its outputs
    (the copies are appended to ``nodes`` when given)."""
    mapping = {id(p): a for p, a in zip(body.params, args)}
    for inner in body.nodes:
        clone = _copy_node(inner, mapping, step)
        graph.insert_before(anchor, clone)
        if nodes is not None:
            nodes.append(clone)
    return [mapping.get(id(v), v) for v in body.outputs]


def _copy_node(inner: Node, mapping: dict, step: int) -> Node:
    """A copy of ``inner`` reading ``mapping``'s replacements; nested graphs are copied too."""
    operands = [None if v is None else mapping.get(id(v), v) for v in inner.operands]
    attrs = {}
    for key, value in inner.attrs.items():
        if isinstance(value, Graph):
            value = _copy_graph(value, mapping, step)
        elif isinstance(value, list) and any(isinstance(x, Graph) for x in value):
            value = [_copy_graph(x, mapping, step) if isinstance(x, Graph) else x for x in value]
        attrs[key] = value
    clone = Node(inner.op, operands, [r.type for r in inner.results], attrs,
                 [f"{r.name}_t{step}" if r.name else "" for r in inner.results],
                 name=f"{inner.name}_t{step}" if inner.name else "")
    for old, new in zip(inner.results, clone.results):
        mapping[id(old)] = new
    return clone


def _copy_graph(sub: Graph, mapping: dict, step: int) -> Graph:
    """A deep copy of nested graph ``sub`` (its reads of outer values go through ``mapping``)."""
    copy = Graph(sub.name)
    for p in sub.params:
        mapping[id(p)] = copy.add_param(p.type, p.name)
    for inner in sub.nodes:
        copy.append(_copy_node(inner, mapping, step))
    copy.outputs = [mapping.get(id(v), v) for v in sub.outputs]
    return copy


def replace_results(graph: Graph, node: Node, results: list) -> None:
    """Redirect ``node``'s results to ``results`` and erase it; a result that is a graph output
    keeps its name (through an ``Identity`` when the new value is a parameter or another output)."""
    for old, new in zip(node.results, results):
        if not old.has_uses():
            continue
        if old.name and any(not isinstance(u.user, Node) for u in old.uses):
            if new.is_param or any(not isinstance(u.user, Node) for u in new.uses):
                new = Builder(graph, before=node).op("Identity", [new])
            new.name = old.name
        old.replace_all_uses_with(new)
    node.erase()


def unroll_scan(graph: Graph, node: Node) -> bool:
    """Replace one ``Scan`` by its unrolled steps; False when it cannot be unrolled."""
    body = node.attrs["body"]
    n_scan = int(node.attrs["num_scan_inputs"])
    n_state = len(node.operands) - n_scan
    in_axes = list(node.attrs.get("scan_input_axes") or [0] * n_scan)
    in_dirs = list(node.attrs.get("scan_input_directions") or [0] * n_scan)
    n_out = len(body.outputs) - n_state
    out_axes = list(node.attrs.get("scan_output_axes") or [0] * n_out)
    out_dirs = list(node.attrs.get("scan_output_directions") or [0] * n_out)
    steps = _trip_count(node, n_state, in_axes)
    if steps is None:
        return False
    b = Builder(graph, before=node)
    state = list(node.operands[:n_state])
    collected: list[list] = [[] for _ in range(n_out)]
    for t in range(steps):
        slices = []
        for x, axis, direction in zip(node.operands[n_state:], in_axes, in_dirs):
            index = b.constant(np.array(steps - 1 - t if direction else t, np.int64))
            slices.append(b.op("Gather", [x, index], {"axis": int(axis)}))
        outs = _clone_body(graph, node, body, state + slices, t)
        state = outs[:n_state]
        for acc, v in zip(collected, outs[n_state:]):
            acc.append(v)
    results = list(state)
    for acc, axis, direction in zip(collected, out_axes, out_dirs):
        if direction:
            acc = acc[::-1]
        rank = (acc[0].type.rank if isinstance(acc[0].type, TensorType) else None)
        if rank is None:
            return False
        axis = int(axis) % (rank + 1)
        axes = b.constant(np.array([axis], np.int64))
        parts = [b.op("Unsqueeze", [v, axes]) for v in acc]
        results.append(concat(b, parts, axis))
    replace_results(graph, node, results)
    return True


def unroll_scans(graph: Graph) -> int:
    """Unroll every top-level ``Scan`` of ``graph`` that can be; returns how many were."""
    return sum(unroll_scan(graph, n) for n in list(graph.nodes) if n.op == "Scan")


MAX_LOOP_STEPS = 256  # iterations of a Loop written out; more is refused


def _fold_nodes(graph: Graph, nodes: list) -> dict:
    """Fold the constant ones among ``nodes`` (in order); returns {id(old value): new constant}."""
    from passes.fold_constants import try_fold

    replaced = {}
    for inner in nodes:
        if inner.graph is not graph:
            continue
        outs = try_fold(inner, 1 << 20)
        if outs is None:
            continue
        b = Builder(graph, before=inner)
        for old, array in zip(inner.results, outs):
            new = b.constant(array, name=old.name)
            old.replace_all_uses_with(new)
            replaced[id(old)] = new
        inner.erase()
    return replaced


def _rollback(node: Node, marker: Node | None) -> None:
    """Erase the nodes inserted before ``node`` since ``marker`` (its previous node then)."""
    while node.prev is not marker:
        node.prev.erase(safe=False)


def declared_scan_length(node: Node) -> int | None:
    """The length every scan output of ``node`` (a Loop) is declared with, or None."""
    n_state = max(0, len(node.operands) - 2)
    lengths = set()
    for result in node.results[n_state:]:
        t = result.type
        if not isinstance(t, TensorType) or t.shape is None or not t.shape or not isinstance(t.shape[0], int):
            return None
        lengths.add(t.shape[0])
    return lengths.pop() if len(lengths) == 1 else None


def condition_passes_through(body: Graph) -> bool:
    """True when a Loop body returns its condition input unchanged (through Identity nodes): the
    loop then runs all its iterations or none."""
    value = body.outputs[0]
    while value.producer is not None and value.producer.op == "Identity":
        value = value.producer.operands[0]
    return len(body.params) > 1 and value is body.params[1]


def loop_problem(node: Node) -> str | None:
    """Why ``node`` (a Loop) cannot be unrolled before its iterations run, or None."""
    trips, cond = (list(node.operands) + [None, None])[:2]
    n_scan = len(node.attrs["body"].outputs) - 1 - max(0, len(node.operands) - 2)
    if trips is not None and trips.const_value is None:
        if not n_scan or declared_scan_length(node) is None:
            return ("its trip count is not a compile-time constant (and no declared scan output length "
                    "fixes it)")
        if declared_scan_length(node) > MAX_LOOP_STEPS:
            return (f"its declared scan output length {declared_scan_length(node)} is more than the "
                    f"{MAX_LOOP_STEPS} iterations code generation writes out")
        if cond is not None and cond.const_value is None and not condition_passes_through(node.attrs["body"]):
            return "its condition and its trip count are both run-time values"
        return None
    if trips is not None and int(np.asarray(trips.const_value)) > MAX_LOOP_STEPS:
        return (f"its trip count {int(np.asarray(trips.const_value))} is more than the {MAX_LOOP_STEPS} "
                "iterations code generation writes out")
    if cond is not None and cond.const_value is None:
        if trips is None:
            return "its condition is computed at run time and no constant trip count bounds it"
        if n_scan:
            return "its condition is computed at run time and its scan outputs' length would depend on it"
    return None


# ops whose kernels can fail (or trap) on some run-time values of their non-data operands: indices,
# shapes, divisors.  Code computed speculatively (the untaken branch of an If, the iterations of a
# Loop after its condition turned false) must not contain them with such operands at run time.
CHECKED_OPERAND_OPS = {
    "Gather", "GatherElements", "GatherND", "Scatter", "ScatterElements", "ScatterND", "OneHot",
    "Reshape", "Expand", "Tile", "Range", "ConstantOfShape", "Pad", "Resize", "Upsample", "TopK",
    "Compress", "NonZero", "Slice", "Split", "Squeeze", "Unsqueeze", "CumSum", "ReduceSum",
}


def speculation_problem(nodes) -> str | None:
    """Why ``nodes`` cannot safely run when their results are then discarded, or None."""
    for n in nodes:
        if n.op in CHECKED_OPERAND_OPS and any(v is not None and v.const_value is None for v in n.operands[1:]):
            return f"{n.op} with a run-time index or shape operand could fail on values never meant to reach it"
        if n.op in ("Div", "Mod") and isinstance(n.results[0].type, TensorType):
            divisor = n.operands[1].const_value
            if n.results[0].type.dtype.np.kind in "iu" and (divisor is None or not np.all(divisor)):
                return f"integer {n.op} by a run-time divisor could trap on a zero never meant to reach it"
    return None


def _scalar_bool(b: Builder, cond: Value) -> Value:
    """``cond`` as a rank-0 bool (a Loop's condition may be a one-element tensor)."""
    if isinstance(cond.type, TensorType) and cond.type.rank != 0:
        return b.op("Reshape", [cond, b.constant(np.zeros(0, np.int64))])
    return cond


def _masked_state_ok(old: list, new: list) -> bool:
    """Loop-carried values keep one static type, so ``Where(running, new, old)`` selects them."""
    return all(isinstance(o.type, TensorType) and o.type.is_static and o.type == n.type for o, n in zip(old, new))


def unroll_loop(graph: Graph, node: Node) -> bool:
    """Replace one ``Loop`` with a constant trip count or condition by its iterations; False (the
    graph unchanged) when it cannot be unrolled.

        Loop(M, c, v...){body}  ->  for i while i < M and c:  c, v..., y_i... = body(i, c, v...)
                                    y = Concat(Unsqueeze(y_i, 0) for each i, axis 0)

    A condition known only at run time (with a constant M and no scan outputs) runs all M
    iterations with the loop-carried values frozen once it turns false:
    ``v = Where(running, body(v), v)``, ``running = And(running, c)``.

    A trip count known only at run time, with a constant condition (or one the body passes through
    unchanged: ``c ? M : 0`` iterations) and scan outputs declared with one length N, runs N
    iterations, and every result passes through ``ember.CheckCount(r, M)`` {count = N}, so a library
    run with another M fails instead of answering for N.
    """
    if loop_problem(node) is not None:
        return False
    body = node.attrs["body"]
    operands = list(node.operands) + [None] * max(0, 2 - len(node.operands))
    run_time_trips = operands[0] is not None and operands[0].const_value is None
    if run_time_trips:  # written out for the declared scan length; checked against M at run time
        trips = declared_scan_length(node)
    else:
        trips = None if operands[0] is None else int(np.asarray(operands[0].const_value))
    state = list(operands[2:])
    n_scan = len(body.outputs) - 1 - len(state)
    marker = node.prev
    b = Builder(graph, before=node)
    cond = operands[1] if operands[1] is not None else b.constant(np.array(True))
    count = operands[0]  # the iterations that a run-time trip count must give
    if run_time_trips and cond.const_value is None:  # an invariant condition: M iterations or none
        count = b.op("Where", [_scalar_bool(b, cond), count, b.constant(np.array(0, np.int64))])  # M: int64
        cond = b.constant(np.array(True))
    running = None if cond.const_value is not None else _scalar_bool(b, cond)  # None: statically running
    collected: list[list] = [[] for _ in range(n_scan)]
    step = 0
    while trips is None or step < trips:
        if running is None and not bool(np.asarray(cond.const_value).reshape(-1)[0]):
            break
        if step >= MAX_LOOP_STEPS:
            _rollback(node, marker)
            return False
        new_nodes: list = []
        index = b.constant(np.array(step, np.int64))
        outs = _clone_body(graph, node, body, [index, cond if running is None else running] + state,
                           step, new_nodes)
        folded = _fold_nodes(graph, new_nodes)  # the condition and index arithmetic of this step
        outs = [folded.get(id(v), v) for v in outs]
        if running is not None and speculation_problem(n for n in new_nodes if n.graph is graph):
            _rollback(node, marker)  # this iteration may run after the condition turned false
            return False
        new_cond, new_state = outs[0], outs[1:1 + len(state)]
        step += 1
        if running is None and new_cond.const_value is not None:
            cond, state = new_cond, new_state
            for acc, v in zip(collected, outs[1 + len(state):]):
                acc.append(v)
            continue
        # a condition computed at run time: mask the remaining iterations
        if trips is None or n_scan or not _masked_state_ok(state, new_state):
            _rollback(node, marker)
            return False
        if running is not None:
            new_state = [b.op("Where", [running, n, o]) for n, o in zip(new_state, state)]
            running = b.op("And", [running, _scalar_bool(b, new_cond)])
        else:
            running = _scalar_bool(b, new_cond)
        state = new_state
    results = list(state)
    for acc, out in zip(collected, body.outputs[1 + len(state):]):
        if not acc:  # no iteration ran: an empty scan output
            t = out.type
            if not isinstance(t, TensorType) or not t.is_static:
                _rollback(node, marker)
                return False
            results.append(b.constant(np.zeros((0, *t.shape), t.dtype.np)))
            continue
        parts = [b.op("Unsqueeze", [v, b.constant(np.array([0], np.int64))]) for v in acc]
        results.append(concat(b, parts, 0))
    if run_time_trips:
        if step != trips:  # the condition stopped it early: the declared length cannot be met
            _rollback(node, marker)
            return False
        what = f"Loop '{node.name}' trip count"
        results = [b.op("ember.CheckCount", [r, count], attrs={"count": trips, "what": what})
                   for r in results]
    replace_results(graph, node, results)
    return True


def unroll_loops(graph: Graph) -> int:
    """Unroll every top-level ``Loop`` of ``graph`` that can be; returns how many were."""
    return sum(unroll_loop(graph, n) for n in list(graph.nodes) if n.op == "Loop")
