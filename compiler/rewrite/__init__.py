"""Pattern rewriting: declarative patterns, rules with checks, one greedy driver.

API in one screen (see ``docs/writing-a-pass.md`` for a worked example)::

    from compiler.rewrite import op, Var, Const, rule, RuleSet, apply_rules

    x, y = Var("x"), Var("y")

    @rule(op.Add(x, Const("zero", value=0.0), commute=True), name="add-zero")
    def add_zero(rw, m):                 # rw: Rewriter (builds at the root), m: Match
        return m.x                       # the value that replaces the root's result

    @rule(op.Mul(op.Relu(x, name="r"), Const("c")), check=lambda m: m.c.min() > 0)
    def ...                              # check may return MatchResult.fail("reason")

    RULES = RuleSet([add_zero]) + OTHER_RULES            # sets combine with +
    changed = apply_rules(graph, RULES)                  # greedy worklist to a fixed point
    changed = apply_rules_once(graph, RULES)             # one walk, no revisits

- ``pattern``: ``op.Name(*operands, attrs..., commute=, name=, where=)``, ``Var`` (any
  value, with dtype/rank/static-shape/predicate constraints), ``Const`` (a ``Constant``
  with an optional splat value or array predicate); a repeated ``Var`` name must bind
  the same value.  Match bindings read as ``m.x`` / ``m["x"]`` (Values; a ``Const``
  binds its array), nodes as ``m.nodes["r"]`` (the root as ``m.root``); read a matched
  node's attributes with ``get_attr(node, "alpha")``, which fills in the op's default.
- ``rule``: ``RewriteRule(pattern, rewrite, check=, name=, benefit=)``; ``check`` and
  pattern failures carry a reason (``MatchResult.fail("why")``), which the match tracer
  and ``--pattern-stats`` show; ``NodeRule(op, fn, check=)`` bodies may return one too.
- ``rewriter``: every mutation inside a rule goes through ``Rewriter``, which notifies
  listeners (the driver's worklist, statistics).
- ``driver``: ``apply_rules`` (greedy, capped: a rule that keeps firing is named in
  the error), ``apply_rules_counted`` (the same, with each rule's count: a rule-set pass's
  ``PassResult``) and ``apply_rules_once`` (walk); ``with observing(MatchTracer()) as t:``
  records why each rule did or did not fire (``t.report()``).
"""

from .driver import (
    MatchTracer,
    RewriteObserver,
    RuleCounts,
    apply_rules,
    apply_rules_counted,
    apply_rules_once,
    observing,
)
from .pattern import AnyOf, Const, Match, OpPattern, Pattern, Var, op
from .rewriter import RewriteListener, Rewriter
from .rule import MatchResult, NodeRule, RewriteRule, RuleSet, get_attr, rule

__all__ = [
    "MatchTracer",
    "RewriteObserver",
    "RuleCounts",
    "apply_rules",
    "apply_rules_counted",
    "apply_rules_once",
    "observing",
    "AnyOf",
    "Const",
    "Match",
    "OpPattern",
    "Pattern",
    "Var",
    "op",
    "Rewriter",
    "RewriteListener",
    "MatchResult",
    "NodeRule",
    "RewriteRule",
    "RuleSet",
    "rule",
    "get_attr",
]
