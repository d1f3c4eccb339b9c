"""The verifier: structural SSA checks plus per-op checks against the registry.

Checks, each reported with the node, its op and the offending value:
- every operand is defined before its use, in this graph or an enclosing one
  (dominance), and each value is defined once;
- use lists match the operands and outputs exactly;
- operand/result counts fit the op; attributes fit the op's schema;
- result types are compatible with what type inference gives;
- operand shapes keep the op's shape contract (``OpDef.contract``: Conv's channels x group,
  Gemm's inner dims, Reshape's element count...), as far as static dims and constants tell;
- nested graphs are well-formed in turn.
"""

from __future__ import annotations

from .core import Graph, Node, Use, Value
from .printer import format_type


class VerifyError(Exception):
    """The IR breaks an invariant; ``problems`` lists every finding."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("IR verification failed:\n  " + "\n  ".join(problems))


def _vname(v: Value) -> str:
    return f"%{v.name}" if v.name else "an unnamed value"


class Verifier:
    def __init__(self, check_types: bool = True):
        self.check_types = check_types
        self.problems: list[str] = []

    def fail(self, msg: str) -> None:
        self.problems.append(msg)

    def graph(self, graph: Graph, outer: set[int]) -> None:
        defined = set(outer)
        for p in graph.params:
            if id(p) in defined:
                self.fail(f"parameter {_vname(p)} of graph '{graph.name}' is defined twice")
            defined.add(id(p))
            self.uses(p)
        for node in graph.nodes:
            if node.graph is not graph:
                self.fail(f"{node.describe()} is listed in graph '{graph.name}' but belongs elsewhere")
            for i, v in enumerate(node.operands):
                if v is None:
                    continue
                if id(v) not in defined:
                    where = "later" if v.producer is not None and v.producer.graph is graph else "nowhere in scope"
                    self.fail(
                        f"{node.describe()}: operand {i} ({_vname(v)}) is not defined before its use (defined {where})"
                    )
                if Use(node, i) not in v._uses:
                    self.fail(f"{node.describe()}: operand {i} ({_vname(v)}) is missing from its use list")
            for sub in node.subgraphs:
                if sub.parent is not node:
                    self.fail(f"{node.describe()}: nested graph '{sub.name}' does not point back to its node")
                self.graph(sub, defined)
            self.node(node)
            for r in node.results:
                if id(r) in defined:
                    self.fail(f"{node.describe()}: result {_vname(r)} is defined twice")
                if r.producer is not node:
                    self.fail(f"{node.describe()}: result {_vname(r)} names another producer")
                defined.add(id(r))
                self.uses(r)
        for i, v in enumerate(graph.outputs):
            if id(v) not in defined:
                self.fail(f"graph '{graph.name}': output {i} ({_vname(v)}) is not defined in scope")

    def uses(self, v: Value) -> None:
        for use in v._uses:
            user = use.user
            if isinstance(user, Node):
                ok = use.index < len(user._operands) and user._operands[use.index] is v and user.graph is not None
            else:
                ok = use.index < len(user._outputs) and user._outputs[use.index] is v
            if not ok:
                where = user.describe() if isinstance(user, Node) else f"graph '{user.name}' output"
                self.fail(f"{_vname(v)} has a dangling use by {where} (index {use.index})")

    def node(self, node: Node) -> None:
        from ..ops import InferenceError, get_op, infer_types

        op_def = get_op(node.op)
        if op_def is None:
            self.fail(f"{node.describe()}: unknown op '{node.op}'")
            return
        lo, hi = op_def.inputs
        n = len(node.operands)
        if n < lo or (hi is not None and n > hi):
            self.fail(f"{node.describe()}: takes {lo}..{hi if hi is not None else 'any'} operands, has {n}")
        lo, hi = op_def.outputs
        n = len(node.results)
        if n < lo or (hi is not None and n > hi):
            self.fail(f"{node.describe()}: makes {lo}..{hi if hi is not None else 'any'} results, has {n}")
        bad_attrs = op_def.check_attrs(node.attrs)
        for reason in bad_attrs:
            self.fail(f"{node.describe()}: {reason}")
        if self.check_types and op_def.infer is not None:
            try:
                inferred = infer_types(node.op, node.operands, node.attrs, len(node.results), node)
            except InferenceError as exc:
                self.fail(f"{node.describe()}: type inference failed: {exc}")
                return
            for r, t in zip(node.results, inferred):
                if t is not None and r.type is not None and not r.type.is_compatible(t):
                    self.fail(
                        f"{node.describe()}: result {_vname(r)} has type {format_type(r.type)} "
                        f"but inference gives {format_type(t)}"
                    )
        if not bad_attrs:
            self.contract(node)

    def contract(self, node: Node) -> None:
        """The op's shape contract (only once inference, if any, accepted the node)."""
        from ..ops import check_contract

        for reason in check_contract(node.op, node.operands, node.attrs, len(node.results), node):
            self.fail(f"{node.describe()}: breaks the {node.op} shape contract: {reason}")


def verify(graph: Graph, *, check_types: bool = True) -> None:
    """Raise ``VerifyError`` listing every problem found in ``graph``."""
    v = Verifier(check_types)
    v.graph(graph, set())
    if v.problems:
        raise VerifyError(v.problems)
