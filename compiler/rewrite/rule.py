"""Rewrite rules: pattern -> check (fails with a reason) -> rewrite with the builder.

``RewriteRule(pattern, rewrite, check=None, name=, benefit=1)``:

- ``pattern``: an ``OpPattern`` (or ``AnyOf`` of them) whose root op indexes the rule;
- ``check(m) -> MatchResult | bool``: extra conditions on the bindings;
  ``MatchResult.fail("reason")`` says why the rule does not apply;
- ``rewrite(rw, m) -> Value | sequence of Values | None``: builds the
  replacement with ``rw`` (a ``Rewriter`` placed before the root) and returns
  the values that replace the root's results; ``None`` means the rewrite made
  its own changes through ``rw``; ``MatchResult.fail("reason")`` declines.

``NodeRule(op_name, fn, check=None, name=)`` is the imperative escape hatch:
``fn(node, rw)`` returns True if it changed something, or
``MatchResult.fail("reason")`` (or False) when it leaves the node alone;
``check(node) -> MatchResult | bool`` may rule nodes out before ``fn`` runs.

Every rule kind says why it did not fire: a pattern or check failure, a declined
rewrite, or a plain ``False`` from a NodeRule body (reported as "<function> declined"
when it gives no reason).  The driver hands the reason to observers
(``--pattern-stats``, the match tracer).

``RuleSet`` groups rules by root op; ``a + b`` combines sets (or rules).
``get_attr(node, name)`` reads an attribute with the op's default filled in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from ..ir.core import Node, Value
from .pattern import AnyOf, Match, OpPattern
from .rewriter import needs_output_copy


@dataclass(frozen=True)
class MatchResult:
    """Outcome of a ``check``: truthy on success; ``reason`` explains a failure."""

    ok: bool
    reason: str = ""

    @staticmethod
    def success() -> "MatchResult":
        return MatchResult(True)

    @staticmethod
    def fail(reason: str) -> "MatchResult":
        return MatchResult(False, reason)

    def __bool__(self) -> bool:
        return self.ok


RewriteFn = Callable[[Any, Match], "Value | Sequence[Value] | MatchResult | None"]
CheckFn = Callable[[Match], "MatchResult | bool"]
NodeFn = Callable[[Node, Any], "bool | MatchResult | None"]
NodeCheckFn = Callable[[Node], "MatchResult | bool"]


def declined(verdict: Any, fn: Any) -> MatchResult:
    """The failure a falsy ``verdict`` from ``fn`` stands for: its own reason, or one naming ``fn``."""
    reason = getattr(verdict, "reason", "")
    if not reason:
        what = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
        reason = f"{what} declined (returned {verdict!r}, no reason given)"
    return MatchResult.fail(reason)


class RewriteRule:
    """A declarative rule; ``try_match(node)`` gives ``(Match | None, reason)``."""

    def __init__(
        self,
        pattern: OpPattern | AnyOf,
        rewrite: RewriteFn,
        check: CheckFn | None = None,
        *,
        name: str = "",
        benefit: int = 1,
    ):
        if not isinstance(pattern, (OpPattern, AnyOf)):
            raise TypeError(f"a rule's pattern must be rooted at an op, got {pattern!r}")
        self.pattern, self.rewrite_fn, self.check_fn = pattern, rewrite, check
        self.name = name or getattr(rewrite, "__name__", "rule").replace("_", "-")
        self.benefit = benefit
        self.location = _location(rewrite)

    @property
    def roots(self) -> list[str]:
        """Op names this rule can fire on (used to index rule sets)."""
        if isinstance(self.pattern, AnyOf):
            return self.pattern.roots
        return [self.pattern.op]

    def try_match(self, node: Node) -> tuple[Match | None, str]:
        """Match the pattern at ``node`` and run the check; ``(None, reason)`` on failure."""
        alternatives = self.pattern.alternatives if isinstance(self.pattern, AnyOf) else (self.pattern,)
        reasons = []
        for alt in alternatives:
            m = Match(node)
            if isinstance(alt, OpPattern) and alt.match_node(node, m):
                break
            reasons.append(m.reason or "pattern did not match")
        else:
            return None, "; ".join(reasons)
        if self.check_fn is not None:
            verdict = self.check_fn(m)
            if not verdict:
                return None, declined(verdict, self.check_fn).reason
        return m, ""

    def rewrite(self, node: Node, m: Match, rw) -> "bool | MatchResult":
        """Build the replacement for a match at ``node``.

        True when the graph changed; otherwise a failed ``MatchResult`` saying why not.
        """
        rw.set_insertion_point_before(node)
        replacement = self.rewrite_fn(rw, m)
        if replacement is None:
            return True
        if isinstance(replacement, MatchResult):
            return True if replacement.ok else declined(replacement, self.rewrite_fn)
        if isinstance(replacement, Value):
            replacement = [replacement]
        if all(old is new for old, new in zip(node.results, replacement)):
            return MatchResult.fail("the rewrite returned the root's own results (nothing to change)")
        if node.op == "Identity" and needs_output_copy(node.results[0], replacement[0]):
            return MatchResult.fail("the result is a graph output its operand cannot stand for (outputs keep names)")
        _name_like(node, replacement, rw.rule_name)
        rw.replace_node(node, list(replacement))
        return True

    def __add__(self, other: "RewriteRule | RuleSet") -> "RuleSet":
        return RuleSet([self]) + other

    def __repr__(self) -> str:
        return f"<RewriteRule {self.name}: {self.pattern!r}>"


def _name_like(root: Node, replacement, rule_name: str) -> None:
    """An unnamed node this rewrite made for a result takes the name of the root it replaces, so
    profiles and errors keep naming the model's node (``MatMul + Add -> Gemm`` is still the Add)."""
    if not root.name:
        return
    for value in replacement:
        made = value.producer if isinstance(value, Value) else None
        if made is not None and not made.name and getattr(made, "provenance", None) == rule_name:
            made.name = root.name


class NodeRule:
    """Imperative rule: ``fn(node, rw)`` on every node of op ``root`` (``"*"`` = any op).

    ``fn`` returns True when it changed the graph; ``MatchResult.fail("reason")``
    (or any falsy value) when it did not.  ``check(node)``, if given, runs first and
    may rule the node out with a reason, like a ``RewriteRule``'s check.
    """

    def __init__(self, root: str, fn: NodeFn, *, check: NodeCheckFn | None = None, name: str = "", benefit: int = 1):
        self.root, self.fn, self.check_fn, self.benefit = root, fn, check, benefit
        self.name = name or getattr(fn, "__name__", "rule").replace("_", "-")
        self.location = _location(fn)

    @property
    def roots(self) -> list[str]:
        """Op names this rule can fire on (``["*"]`` for any op)."""
        return [self.root]

    def try_match(self, node: Node) -> tuple[Match | None, str]:
        """Run ``check`` (if any) on ``node``; ``(None, reason)`` when it rules the node out."""
        if self.check_fn is not None:
            verdict = self.check_fn(node)
            if not verdict:
                return None, declined(verdict, self.check_fn).reason
        return Match(node), ""

    def rewrite(self, node: Node, m: Match, rw) -> "bool | MatchResult":
        """Run ``fn``: True when the graph changed, otherwise a failed ``MatchResult`` saying why not."""
        rw.set_insertion_point_before(node)
        verdict = self.fn(node, rw)
        return True if verdict else declined(verdict, self.fn)

    def __add__(self, other) -> "RuleSet":
        return RuleSet([self]) + other


AnyRule = RewriteRule | NodeRule


class RuleSet:
    """An ordered collection of rules indexed by root op; combine with ``+``."""

    def __init__(self, rules: Iterable[AnyRule] = (), name: str = ""):
        self.rules: list[AnyRule] = list(rules)
        self.name = name
        self._index: dict[str, list[AnyRule]] | None = None

    def for_op(self, op_name: str) -> list[AnyRule]:
        """Rules that may fire on a node of ``op_name``, highest benefit first."""
        if self._index is None:
            index: dict[str, list[AnyRule]] = {}
            for r in self.rules:
                for root in r.roots:
                    index.setdefault(root, []).append(r)
            for rules in index.values():
                rules.sort(key=lambda r: -r.benefit)
            self._index = index
        wildcard = self._index.get("*", [])
        return self._index.get(op_name, []) + wildcard if wildcard else self._index.get(op_name, [])

    def __add__(self, other: "RuleSet | AnyRule") -> "RuleSet":
        extra = other.rules if isinstance(other, RuleSet) else [other]
        return RuleSet(self.rules + list(extra), self.name)

    def __iter__(self):
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)


def rule(
    pattern: OpPattern | AnyOf, *, check: CheckFn | None = None, name: str = "", benefit: int = 1
) -> Callable[[RewriteFn], RewriteRule]:
    """Decorator: turn ``def fn(rw, m)`` into a ``RewriteRule`` named after the function."""

    def deco(fn: RewriteFn) -> RewriteRule:
        return RewriteRule(pattern, fn, check, name=name, benefit=benefit)

    return deco


def get_attr(node: Node, name: str) -> Any:
    """``node``'s attribute ``name``, or the op's declared default when the node does not set it.

    ``node.attrs`` holds only the attributes written on the node (importers and
    builders leave defaults out), so ``node.attrs.get("alpha")`` is ``None`` for a
    ``LeakyRelu`` at its default slope; ``get_attr(node, "alpha")`` gives 0.01.
    A name that is not in the op's schema raises ``KeyError`` (a typo, not a default).
    """
    from ..ops import get_op

    op_def = get_op(node.op)
    if op_def is None:
        return node.attrs.get(name)
    if name not in op_def.attrs and name not in node.attrs:
        known = ", ".join(sorted(op_def.attrs)) or "none"
        raise KeyError(f"{node.op} has no attribute '{name}' (its attributes: {known})")
    return op_def.get_attr(node.attrs, name)


def _location(fn: Any) -> str:
    code = getattr(fn, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code is not None else ""
