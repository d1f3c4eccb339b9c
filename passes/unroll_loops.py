"""``unroll-loops{max-steps=256}``: write out ``Loop`` nodes with a constant trip count or condition.

    Loop(M, c, v...){body}  ->  for i while i < M and c:  c, v..., y_i... = body(i, c, v...)
                                y = Concat(Unsqueeze(y_i, 0) for each i, axis 0)

- A condition known only at run time (with a constant ``M`` and no scan outputs) runs all ``M``
  iterations with the loop-carried values frozen once it turns false:
  ``v = Where(running, body(v), v)``, ``running = And(running, c)``; refused when an iteration
  holds an op that may trap on values never meant to reach it (``OpDef.may_trap``).
- A trip count known only at run time, with a constant condition (or one the body passes through
  unchanged: ``c ? M : 0`` iterations) and scan outputs declared with one length ``N``, runs ``N``
  iterations, and every result passes through ``ember.CheckCount(r, M)`` {count = N}, so a library
  run with another ``M`` fails instead of answering for ``N``.

Each iteration's condition and index arithmetic is folded as it is written out (``fold-constants``'
``fold_node``), so a condition that becomes constant stops the unrolling.  A Loop that cannot be
written out is left alone; ``check-codegen-ready`` names it with ``loop_problem``'s reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.ir.core import Graph, Node
from compiler.ir.types import TensorType
from compiler.passes import Pass, PassResult
from compiler.rewrite import Rewriter

from .fold_constants import fold_node
from .unrolling import clone_body, concat, replace_results, rollback, scalar_bool, speculation_problem

MAX_LOOP_STEPS = 256  # iterations of a Loop written out; more is refused


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


def loop_problem(node: Node, max_steps: int = MAX_LOOP_STEPS) -> str | None:
    """Why ``node`` (a Loop) cannot be unrolled before its iterations run, or None."""
    trips, cond = (list(node.operands) + [None, None])[:2]
    n_scan = len(node.attrs["body"].outputs) - 1 - max(0, len(node.operands) - 2)
    if trips is not None and trips.const_value is None:
        if not n_scan or declared_scan_length(node) is None:
            return "its trip count is not a compile-time constant (and no declared scan output length fixes it)"
        if declared_scan_length(node) > max_steps:
            return (
                f"its declared scan output length {declared_scan_length(node)} is more than the "
                f"{max_steps} iterations code generation writes out"
            )
        if cond is not None and cond.const_value is None and not condition_passes_through(node.attrs["body"]):
            return "its condition and its trip count are both run-time values"
        return None
    if trips is not None and int(np.asarray(trips.const_value)) > max_steps:
        return (
            f"its trip count {int(np.asarray(trips.const_value))} is more than the {max_steps} "
            "iterations code generation writes out"
        )
    if cond is not None and cond.const_value is None:
        if trips is None:
            return "its condition is computed at run time and no constant trip count bounds it"
        if n_scan:
            return "its condition is computed at run time and its scan outputs' length would depend on it"
    return None


def _fold_nodes(rw: Rewriter, nodes: list) -> dict:
    """Fold the constant ones among ``nodes`` (in order, with ``fold-constants``' rules and a 1 MiB
    limit); returns {id(old value): new constant}."""
    replaced = {}
    for inner in nodes:
        if inner.graph is None or inner.graph is not rw.graph:
            continue
        olds = list(inner.results)
        consts = fold_node(rw, inner, 1 << 20)
        if consts is not None:
            replaced.update((id(old), new) for old, new in zip(olds, consts))
    return replaced


def _masked_state_ok(old: list, new: list) -> bool:
    """Loop-carried values keep one static type, so ``Where(running, new, old)`` selects them."""
    return all(isinstance(o.type, TensorType) and o.type.is_static and o.type == n.type for o, n in zip(old, new))


def unroll_loop(rw: Rewriter, node: Node, max_steps: int = MAX_LOOP_STEPS) -> bool:
    """Replace one ``Loop`` by its iterations (see the module docstring); False, with the graph
    unchanged, when it cannot be unrolled."""
    if loop_problem(node, max_steps) is not None:
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
    rw.set_insertion_point_before(node)
    b = rw
    cond = operands[1] if operands[1] is not None else b.constant(np.array(True))
    count = operands[0]  # the iterations that a run-time trip count must give
    if run_time_trips and cond.const_value is None:  # an invariant condition: M iterations or none
        count = b.op("Where", [scalar_bool(b, cond), count, b.constant(np.array(0, np.int64))])  # M: int64
        cond = b.constant(np.array(True))
    running = None if cond.const_value is not None else scalar_bool(b, cond)  # None: statically running
    collected: list[list] = [[] for _ in range(n_scan)]
    step = 0
    while trips is None or step < trips:
        if running is None and not bool(np.asarray(cond.const_value).reshape(-1)[0]):
            break
        if step >= max_steps:
            rollback(rw, node, marker)
            return False
        new_nodes: list = []
        index = b.constant(np.array(step, np.int64))
        outs = clone_body(rw, body, [index, cond if running is None else running] + state, step, new_nodes)
        folded = _fold_nodes(rw, new_nodes)  # the condition and index arithmetic of this step
        rw.set_insertion_point_before(node)
        outs = [folded.get(id(v), v) for v in outs]
        if running is not None and speculation_problem(n for n in new_nodes if n.graph is node.graph):
            rollback(rw, node, marker)  # this iteration may run after the condition turned false
            return False
        new_cond, new_state = outs[0], outs[1 : 1 + len(state)]
        step += 1
        if running is None and new_cond.const_value is not None:
            cond, state = new_cond, new_state
            for acc, v in zip(collected, outs[1 + len(state) :]):
                acc.append(v)
            continue
        # a condition computed at run time: mask the remaining iterations
        if trips is None or n_scan or not _masked_state_ok(state, new_state):
            rollback(rw, node, marker)
            return False
        if running is not None:
            new_state = [b.op("Where", [running, n, o]) for n, o in zip(new_state, state)]
            running = b.op("And", [running, scalar_bool(b, new_cond)])
        else:
            running = scalar_bool(b, new_cond)
        state = new_state
    results = list(state)
    for acc, out in zip(collected, body.outputs[1 + len(state) :]):
        if not acc:  # no iteration ran: an empty scan output
            t = out.type
            if not isinstance(t, TensorType) or not t.is_static:
                rollback(rw, node, marker)
                return False
            results.append(b.constant(np.zeros((0, *t.shape), t.dtype.np)))
            continue
        parts = [b.op("Unsqueeze", [v, b.constant(np.array([0], np.int64))]) for v in acc]
        results.append(concat(b, parts, 0))
    if run_time_trips:
        if step != trips:  # the condition stopped it early: the declared length cannot be met
            rollback(rw, node, marker)
            return False
        what = f"Loop '{node.name}' trip count"
        results = [b.op("ember.CheckCount", [r, count], attrs={"count": trips, "what": what}) for r in results]
    replace_results(rw, node, results)
    return True


@dataclass(frozen=True)
class UnrollLoopsPass(Pass):
    """Unroll every top-level ``Loop`` that can be (see the module docstring)."""

    name = "unroll-loops"
    max_steps: int = MAX_LOOP_STEPS

    def run(self, graph: Graph) -> PassResult:
        rw = Rewriter(graph, rule_name=self.name)
        count = sum(unroll_loop(rw, n, self.max_steps) for n in list(graph.nodes) if n.op == "Loop")
        return PassResult(count > 0, {"unrolled": count})
