"""The reference interpreter: runs a graph node by node with the ops' NumPy kernels.

It is the oracle for every pass and backend, so it favours being right:
inputs are checked against the graph's parameter types, each kernel's
outputs are checked against the node's result types, and failures name the
node and op.
"""

from __future__ import annotations

from collections import ChainMap
from typing import Any, Mapping, Sequence

import numpy as np

from .core import Graph, Node, Value
from .types import OptionalType, SequenceType, TensorType, Type


class InterpreterError(Exception):
    """A run failed; the message names the node and op."""


def _check_value(value: Any, t: Type | None, what: str) -> None:
    if isinstance(t, TensorType):
        arr = np.asarray(value) if not isinstance(value, np.ndarray) else value
        if value is None or isinstance(value, list):
            raise InterpreterError(f"{what}: expected a tensor {t}, got {type(value).__name__}")
        if arr.dtype != t.dtype.np and not (t.dtype.value == "str" and arr.dtype.kind in "OU"):
            raise InterpreterError(f"{what}: expected dtype {t.dtype.value}, got {arr.dtype}")
        if t.shape is not None:
            if arr.ndim != len(t.shape) or any(isinstance(d, int) and d != s for d, s in zip(t.shape, arr.shape)):
                raise InterpreterError(f"{what}: expected shape {t}, got {list(arr.shape)}")
    elif isinstance(t, SequenceType) and not isinstance(value, list):
        raise InterpreterError(f"{what}: expected a sequence, got {type(value).__name__}")


class Interpreter:
    """Evaluates graphs; ``check_types`` verifies every kernel output against the IR types."""

    def __init__(self, check_types: bool = True):
        self.check_types = check_types
        self._env: ChainMap = ChainMap()

    def run_graph(self, graph: Graph, args: Sequence[Any]) -> list[Any]:
        """Run ``graph`` on positional ``args``; enclosing values come from the current scope."""
        if len(args) != len(graph.params):
            raise InterpreterError(f"graph '{graph.name}' takes {len(graph.params)} inputs, got {len(args)}")
        saved = self._env
        self._env = saved.new_child()
        try:
            for p, a in zip(graph.params, args):
                self._env[id(p)] = a
            for node in graph.nodes:
                self.run_node(node)
            return [self._env[id(v)] for v in graph.outputs]
        finally:
            self._env = saved

    def run_node(self, node: Node) -> None:
        from ..ops import EvalContext, check_contract, get_op

        op_def = get_op(node.op)
        if op_def is None or op_def.reference is None:
            raise InterpreterError(f"{node.describe()}: op '{node.op}' has no reference implementation")
        try:
            inputs = [None if v is None else self._env[id(v)] for v in node.operands]
        except KeyError:
            raise InterpreterError(f"{node.describe()}: an operand was not computed before use") from None
        ctx = EvalContext(
            node.op, node.attrs, len(node.results), [None if v is None else v.type for v in node.operands], node, self
        )
        try:
            outputs = op_def.reference(inputs, node.attrs, ctx)
        except InterpreterError:
            raise
        except Exception as exc:
            broken = check_contract(node.op, node.operands, node.attrs, len(node.results), node)
            if broken:  # say why rather than how the kernel tripped (a graph that was never verified)
                raise InterpreterError(
                    f"{node.describe()}: breaks the {node.op} shape contract: " + "; ".join(broken)
                ) from exc
            raise InterpreterError(f"{node.describe()}: {type(exc).__name__}: {exc}") from exc
        if len(outputs) < len(node.results):
            raise InterpreterError(
                f"{node.describe()}: kernel gave {len(outputs)} outputs, the node has {len(node.results)}"
            )
        for r, out in zip(node.results, outputs):
            if isinstance(r.type, TensorType) and out is not None and not isinstance(out, (np.ndarray, list)):
                out = np.asarray(out, dtype=r.type.dtype.np)
            if self.check_types:
                _check_value(out, r.type, f"{node.describe()} result %{r.name}")
            self._env[id(r)] = out


def interpret(graph: Graph, inputs: Mapping[str, Any], *, check_types: bool = True) -> dict[str, Any]:
    """Run ``graph`` on inputs given by parameter name; returns outputs by value name."""
    missing = [p.name for p in graph.params if p.name not in inputs]
    if missing:
        raise InterpreterError(
            f"missing inputs: {', '.join(missing)} "
            f"(graph '{graph.name}' takes {', '.join(p.name for p in graph.params)})"
        )
    unknown = sorted(set(inputs) - {p.name for p in graph.params})
    if unknown:
        raise InterpreterError(f"unknown inputs: {', '.join(unknown)}")
    args = []
    for p in graph.params:
        value = inputs[p.name]
        if isinstance(p.type, TensorType) and not isinstance(value, np.ndarray):
            value = np.asarray(value, dtype=p.type.dtype.np)
        _check_value(value, p.type, f"input '{p.name}'")
        args.append(value)
    outs = Interpreter(check_types).run_graph(graph, args)
    result: dict[str, Any] = {}
    for i, (v, out) in enumerate(zip(graph.outputs, outs)):
        result[v.name or f"output{i}"] = out
    return result


__all__ = ["interpret", "Interpreter", "InterpreterError", "OptionalType", "Value"]
