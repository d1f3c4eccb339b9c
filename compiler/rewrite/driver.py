"""Rewrite drivers: a greedy worklist driver to a fixed point, and a one-shot walk.

``apply_rules(graph, rules)`` seeds a worklist with every node (nested graphs
included), pops nodes in program order and tries the rules indexed under the
node's op, highest benefit first.  After a rewrite, the nodes it created, the
users of replaced values and the producers of erased nodes' operands are pushed
back.  Trivially dead pure nodes are erased on the way.  The run stops when the
worklist is empty (a fixed point); a run that exceeds ``max_rewrites`` raises an
``EmberError`` naming the rule that fired most, which is almost always the one
that loops.  An exception inside a rule is re-raised as an ``EmberError`` naming
the rule, its source location, the node and its op.

``apply_rules_once(graph, rules)`` visits each original node once, in order, and
applies the first rule that fits (for one-shot lowerings).

Observers (``observing(obs)``) see every attempt: the per-pattern statistics
instrument and the match tracer use this.  Every attempt that leaves the node
alone is reported with a reason: the pattern's, the check's, or the one a
rewrite (or a ``NodeRule`` body) gave when it declined.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections import Counter
from typing import Iterator

from ..diagnostics import EmberError
from ..ir.core import Graph, Node, Value
from .rewriter import RewriteListener, Rewriter
from .rule import RuleSet


class RewriteObserver:
    """Receives every rule attempt made by a driver (all hooks default to no-ops)."""

    def rule_failed(self, rule, node: Node, reason: str) -> None:
        pass

    def rule_applied(self, rule, node: Node) -> None:
        pass


class RuleCounts(RewriteObserver):
    """Counts the rewrites each rule applied: ``with observing(RuleCounts()) as c: ...``, then
    ``c.applied`` maps rule names to counts (what a pass reports as its statistics)."""

    def __init__(self):
        self.applied: dict[str, int] = {}

    def rule_applied(self, rule, node: Node) -> None:
        self.applied[rule.name] = self.applied.get(rule.name, 0) + 1


class MatchTracer(RewriteObserver):
    """Records every attempt: ``(rule name, rule location, node description, reason or "applied")``.

    ``with observing(MatchTracer()) as t: apply_rules(...)``, then ``print(t.report())`` to see
    why a rule did not fire where you expected it to.
    """

    def __init__(self, rule_names: set[str] | None = None):
        self.rule_names = rule_names
        self.events: list[tuple[str, str, str, str]] = []

    def _record(self, rule, node: Node, outcome: str) -> None:
        if self.rule_names is None or rule.name in self.rule_names:
            self.events.append((rule.name, rule.location, node.describe(), outcome))

    def rule_failed(self, rule, node: Node, reason: str) -> None:
        self._record(rule, node, reason)

    def rule_applied(self, rule, node: Node) -> None:
        self._record(rule, node, "applied")

    def report(self) -> str:
        return "\n".join(f"{name} on {where}: {outcome}  [{loc}]" for name, loc, where, outcome in self.events)


_OBSERVERS: contextvars.ContextVar[tuple[RewriteObserver, ...]] = contextvars.ContextVar(
    "ember_rewrite_observers", default=()
)


@contextlib.contextmanager
def observing(observer: RewriteObserver) -> Iterator[RewriteObserver]:
    """Let ``observer`` see every rule attempt made inside the ``with`` block."""
    token = _OBSERVERS.set(_OBSERVERS.get() + (observer,))
    try:
        yield observer
    finally:
        _OBSERVERS.reset(token)


class _Worklist(RewriteListener):
    """A LIFO of nodes without duplicates; keeps itself right through rewriter notifications."""

    def __init__(self):
        self.stack: list[Node] = []
        self.members: set[int] = set()

    def push(self, node: Node | None) -> None:
        if node is not None and id(node) not in self.members:
            self.members.add(id(node))
            self.stack.append(node)

    def pop(self) -> Node:
        node = self.stack.pop()
        self.members.discard(id(node))
        return node

    def node_inserted(self, node: Node) -> None:
        self.push(node)

    def value_replaced(self, old: Value, new: Value) -> None:
        self.push(new.producer)
        for user in new.users:
            self.push(user)

    def operand_changed(self, node: Node, index: int) -> None:
        self.push(node)


def _is_trivially_dead(node: Node) -> bool:
    from ..ops import Trait, get_op

    if not node.results or any(r.has_uses() for r in node.results):
        return False
    op_def = get_op(node.op)
    return op_def is not None and op_def.has(Trait.PURE) and not op_def.has(Trait.RANDOM)


def _try_rules(node: Node, rules: RuleSet, rw: Rewriter, observers) -> object | None:
    """Apply the first rule that fits ``node``; the rule, or None if none changed anything."""
    for r in rules.for_op(node.op):
        try:
            m, reason = r.try_match(node)
            if m is None:
                for o in observers:
                    o.rule_failed(r, node, reason)
                continue
            rw.rule_name = r.name
            changed = r.rewrite(node, m, rw)
        except EmberError:
            raise
        except Exception as exc:
            raise EmberError(
                f"rewrite rule '{r.name}' failed: {type(exc).__name__}: {exc}",
                node=node.name or None,
                op=node.op,
                details=[f"rule defined at {r.location}"],
            ) from exc
        if changed:
            for o in observers:
                o.rule_applied(r, node)
            return r
        for o in observers:
            o.rule_failed(r, node, getattr(changed, "reason", "") or "the rewrite changed nothing")
    return None


def apply_rules(graph: Graph, rules: RuleSet, *, max_rewrites: int | None = None, erase_dead: bool = True) -> bool:
    """Rewrite ``graph`` greedily to a fixed point; True if anything changed."""
    rules = rules if isinstance(rules, RuleSet) else RuleSet(rules)
    worklist = _Worklist()
    for node in reversed(list(graph.walk())):
        worklist.push(node)
    cap = max_rewrites if max_rewrites is not None else 20 * len(worklist.stack) + 200
    rw = Rewriter(graph, [worklist])
    observers = _OBSERVERS.get()
    fired: Counter[str] = Counter()
    changed = False
    while worklist.stack:
        node = worklist.pop()
        if node.graph is None:
            continue
        if erase_dead and _is_trivially_dead(node):
            rw.erase_node(node)
            changed = True
            continue
        applied = _try_rules(node, rules, rw, observers)
        if applied is None:
            continue
        changed = True
        fired[applied.name] += 1
        if sum(fired.values()) > cap:
            name, count = fired.most_common(1)[0]
            worst = next(r for r in rules if r.name == name)
            raise EmberError(
                f"rewriting did not reach a fixed point after {cap} rewrites: rule '{name}' "
                f"fired {count} times (it probably undoes itself or another rule)",
                details=[f"rule defined at {worst.location}"],
            )
    return changed


def apply_rules_counted(graph: Graph, rules: RuleSet) -> tuple[bool, dict[str, int]]:
    """``apply_rules`` and how many times each rule fired: what a rule-set pass reports
    (``PassResult(*apply_rules_counted(graph, RULES))``)."""
    with observing(RuleCounts()) as counts:
        changed = apply_rules(graph, rules)
    return changed, dict(counts.applied)


def apply_rules_once(graph: Graph, rules: RuleSet) -> bool:
    """Visit every node once in program order and apply the first fitting rule; True if anything changed."""
    rules = rules if isinstance(rules, RuleSet) else RuleSet(rules)
    rw = Rewriter(graph)
    observers = _OBSERVERS.get()
    changed = False
    for node in list(graph.walk()):
        if node.graph is not None and _try_rules(node, rules, rw, observers) is not None:
            changed = True
    return changed
