"""Declarative patterns over the SSA graph.

A pattern describes a tree of producers rooted at one node::

    op.Add(op.MatMul(Var("a"), Var("b")), Var("c"), commute=True)

- ``op.Name(*operands, **attrs)`` matches a node of op ``Name`` whose operands
  match the sub-patterns (``None`` = operand absent, ``Var()`` = anything);
  keyword arguments constrain attributes (a value compared after falling back to
  the op's default, or a predicate ``lambda v: ...``).  ``commute=True`` also
  tries the two operands swapped.  ``name=`` binds the node and its result.
  ``where=`` is a predicate on the node.
- ``Var(name, dtype=, rank=, static=, where=)`` matches any value (with type
  constraints); a repeated name must bind the same value.
- ``Const(name, value=, where=)`` matches a value produced by ``Constant``;
  ``value`` requires every element to equal it; ``where`` is a predicate on the
  array.  The binding is the array; ``m.value_of(name)`` gives the Value.
- ``AnyOf(p1, p2, ...)`` matches the first alternative that fits.

Matching never mutates the graph.  On failure ``Match.reason`` says why.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..ir.core import Node, Value
from ..ir.types import DType, TensorType


class Match:
    """Bindings from a successful (or partial) match: values, constant arrays and nodes by name."""

    def __init__(self, root: Node | None = None):
        self.root = root
        self.values: dict[str, Value] = {}
        self.nodes: dict[str, Node] = {}
        self.matched: list[Node] = []
        self.consts: set[str] = set()
        self.reason = ""

    def copy(self) -> "Match":
        m = Match(self.root)
        m.values, m.nodes, m.matched = dict(self.values), dict(self.nodes), list(self.matched)
        m.consts, m.reason = set(self.consts), self.reason
        return m

    def restore(self, other: "Match") -> None:
        self.values, self.nodes, self.matched = other.values, other.nodes, other.matched
        self.consts, self.reason = other.consts, other.reason

    def fail(self, reason: str) -> bool:
        self.reason = reason
        return False

    def bind(self, name: str, value: Value) -> bool:
        """Bind ``name`` to ``value``; False if it is already bound to a different value."""
        bound = self.values.get(name)
        if bound is None:
            self.values[name] = value
            return True
        return bound is value or self.fail(f"'{name}' is bound to two different values")

    def value_of(self, name: str) -> Value:
        """The Value bound to ``name`` (also for ``Const`` patterns)."""
        return self.values[name]

    def __getitem__(self, name: str) -> Any:
        """The bound Value, or the array for a ``Const`` pattern."""
        v = self.values[name]
        return v.const_value if name in self.consts else v

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"pattern binds no '{name}' (bound: {', '.join(self.values)})") from None


class Pattern:
    """Base class: ``match(value, m)`` returns True and extends ``m``, or False with ``m.reason``."""

    def match(self, value: Value | None, m: Match) -> bool:
        raise NotImplementedError


Pred = Callable[[Any], bool]


class Var(Pattern):
    """Any value, optionally constrained by dtype, rank, static shape or a predicate on the Value."""

    def __init__(
        self,
        name: str = "",
        *,
        dtype: DType | tuple[DType, ...] | None = None,
        rank: int | None = None,
        static: bool = False,
        where: Pred | None = None,
    ):
        self.name, self.rank, self.static, self.where = name, rank, static, where
        self.dtypes = (dtype,) if isinstance(dtype, DType) else dtype

    def match(self, value: Value | None, m: Match) -> bool:
        if value is None:
            return m.fail(f"'{self.name or '_'}' expects a value, the operand is absent")
        t = value.type
        if self.dtypes is not None or self.rank is not None or self.static:
            if not isinstance(t, TensorType):
                return m.fail(f"'{self.name}' expects a tensor, got {t}")
            if self.dtypes is not None and t.dtype not in self.dtypes:
                return m.fail(f"'{self.name}' has dtype {t.dtype.value}")
            if self.rank is not None and t.rank != self.rank:
                return m.fail(f"'{self.name}' has rank {t.rank}, wanted {self.rank}")
            if self.static and not t.is_static:
                return m.fail(f"'{self.name}' has a dynamic shape {t}")
        if self.where is not None and not self.where(value):
            return m.fail(f"'{self.name}' fails its constraint")
        return m.bind(self.name, value) if self.name else True

    def __repr__(self) -> str:
        return self.name or "_"


class Const(Var):
    """A value produced by ``Constant``; ``value`` = every element equals it; ``where`` tests the array."""

    def __init__(self, name: str = "", *, value: float | None = None, where: Pred | None = None, **kw):
        super().__init__(name, **kw)
        self.value, self.array_where = value, where
        self.where = None

    def match(self, value: Value | None, m: Match) -> bool:
        arr = None if value is None else value.const_value
        if arr is None:
            return m.fail(f"'{self.name or 'const'}' expects a constant")
        if self.value is not None and (arr.size == 0 or not np.all(arr == self.value)):
            return m.fail(f"constant '{self.name}' is not all {self.value}")
        if self.array_where is not None and not self.array_where(arr):
            return m.fail(f"constant '{self.name}' fails its constraint")
        if not super().match(value, m):
            return False
        if self.name:
            m.consts.add(self.name)
        return True

    def __repr__(self) -> str:
        return f"Const({self.name or self.value})"


class OpPattern(Pattern):
    """A node of op ``op`` (result ``result``) whose operands and attributes match."""

    def __init__(
        self,
        op: str,
        operands: tuple,
        attrs: dict[str, Any],
        *,
        commute: bool = False,
        name: str = "",
        where: Callable[[Node], bool] | None = None,
        result: int = 0,
        variadic: bool = False,
    ):
        self.op, self.operands, self.attrs = op, tuple(operands), attrs
        self.commute, self.name, self.where, self.result, self.variadic = commute, name, where, result, variadic
        if commute and len(self.operands) != 2:
            raise ValueError(f"commute=True needs exactly two operands, {op} pattern has {len(self.operands)}")

    def match(self, value: Value | None, m: Match) -> bool:
        if value is None or value.producer is None:
            return m.fail(f"expected the result of {self.op}, got {'nothing' if value is None else 'a parameter'}")
        if value.index != self.result:
            return m.fail(f"expected result {self.result} of {self.op}")
        return self.match_node(value.producer, m)

    def match_node(self, node: Node, m: Match) -> bool:
        """Match ``node`` itself (the root of a rule)."""
        if node.op != self.op:
            return m.fail(f"expected {self.op}, found {node.op}")
        if not self._attrs_match(node, m):
            return False
        if self.where is not None and not self.where(node):
            return m.fail(f"{self.op} node fails its constraint")
        ops = node.operands
        if len(ops) != len(self.operands) and not (self.variadic and len(ops) >= len(self.operands)):
            return m.fail(f"{self.op} has {len(ops)} operands, the pattern {len(self.operands)}")
        orders = [ops, (ops[1], ops[0])] if self.commute else [ops]
        saved = m.copy()
        for order in orders:
            if self._operands_match(order, m):
                if self.name:
                    m.nodes[self.name] = node
                    if node.results and not m.bind(self.name, node.results[self.result]):
                        return False
                m.matched.append(node)
                return True
            reason = m.reason
            m.restore(saved.copy())
            m.reason = reason
        return False

    def _operands_match(self, operands, m: Match) -> bool:
        for sub, value in zip(self.operands, operands):
            if sub is None:
                if value is not None:
                    return m.fail(f"{self.op} has an operand where the pattern expects none")
            elif not sub.match(value, m):
                return False
        return True

    def _attrs_match(self, node: Node, m: Match) -> bool:
        if not self.attrs:
            return True
        from ..ops import get_op

        op_def = get_op(node.op)
        for key, want in self.attrs.items():
            have = op_def.get_attr(node.attrs, key) if op_def is not None else node.attrs.get(key)
            ok = want(have) if callable(want) else _attr_equal(have, want)
            if not ok:
                return m.fail(f"{node.op} attribute '{key}' is {have!r}")
        return True

    def __repr__(self) -> str:
        args = ", ".join(repr(o) for o in self.operands)
        return f"{self.op}({args})"


def _attr_equal(have: Any, want: Any) -> bool:
    if isinstance(have, np.ndarray) or isinstance(want, np.ndarray):
        return np.array_equal(np.asarray(have), np.asarray(want))
    if isinstance(have, (list, tuple)) and isinstance(want, (list, tuple)):
        return list(have) == list(want)
    return have == want


class AnyOf(Pattern):
    """The first of several alternatives that matches."""

    def __init__(self, *alternatives: Pattern):
        self.alternatives = alternatives

    def match(self, value: Value | None, m: Match) -> bool:
        saved = m.copy()
        reasons = []
        for alt in self.alternatives:
            if alt.match(value, m):
                return True
            reasons.append(m.reason)
            m.restore(saved.copy())
        return m.fail("; ".join(reasons))

    @property
    def roots(self) -> list[str]:
        return [a.op for a in self.alternatives if isinstance(a, OpPattern)]


class _OpNamespace:
    """``op.Add(x, y)`` builds ``OpPattern("Add", (x, y), {})``; ``op["caffe.PriorBox"](...)`` for dotted names."""

    def __getattr__(self, name: str) -> Callable[..., OpPattern]:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, op_name: str) -> Callable[..., OpPattern]:
        def make(
            *operands,
            commute: bool = False,
            name: str = "",
            where=None,
            result: int = 0,
            variadic: bool = False,
            **attrs,
        ) -> OpPattern:
            return OpPattern(
                op_name, operands, attrs, commute=commute, name=name, where=where, result=result, variadic=variadic
            )

        make.__name__ = op_name
        return make


op = _OpNamespace()
