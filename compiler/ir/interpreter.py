"""The reference interpreter: runs a graph node by node with the ops' NumPy kernels.

It is the oracle for every pass and backend, so it favours being right:
inputs are checked against the graph's parameter types, each kernel's
outputs are checked against the node's result types, and failures name the
node and op.

It is bounded: a node whose result would hold more than ``max_tensor_bytes``
(default 16 GiB, ``$EMBER_MAX_TENSOR_BYTES``) is refused before its kernel runs
(from the result types, or, when they are not static, from type inference on
the actual operands), and a ``Loop`` stops with an error after
``max_loop_iterations`` (default 1,000,000, ``$EMBER_MAX_LOOP_ITERATIONS``);
both raise ``ResourceLimitError``, an ``EmberError`` naming the node and op.
"""

from __future__ import annotations

import math
import os
from collections import ChainMap
from typing import Any, Mapping, Sequence

import numpy as np

from ..diagnostics import EmberError
from .core import Graph, Node, Value
from .types import OptionalType, SequenceType, TensorType, Type

DEFAULT_MAX_TENSOR_BYTES = 16 << 30
DEFAULT_MAX_LOOP_ITERATIONS = 1_000_000
_SMALL_CONST = 4096  # integer operands up to this many elements (floats: 64) are shown to inference


class InterpreterError(Exception):
    """A run failed; the message names the node and op."""


class ResourceLimitError(InterpreterError, EmberError):
    """A run would exceed a limit (``max_tensor_bytes``, ``max_loop_iterations``); refused before
    allocating or while looping, naming the node and op."""


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise EmberError(f"${name} must be a positive integer, not '{text}'") from None
    if value <= 0:
        raise EmberError(f"${name} must be a positive integer, not '{text}'")
    return value


def _type_bytes(t: Type | None) -> int | None:
    """Exact bytes of a static tensor type, else None."""
    if not isinstance(t, TensorType) or t.shape is None or not all(isinstance(d, int) for d in t.shape):
        return None
    try:
        itemsize = np.dtype(t.dtype.np).itemsize
    except TypeError:
        return None
    return math.prod(t.shape) * max(itemsize, 1)


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

    def __init__(
        self,
        check_types: bool = True,
        *,
        max_loop_iterations: int | None = None,
        max_tensor_bytes: int | None = None,
    ):
        self.check_types = check_types
        self.max_loop_iterations = (
            _env_int("EMBER_MAX_LOOP_ITERATIONS", DEFAULT_MAX_LOOP_ITERATIONS)
            if max_loop_iterations is None
            else int(max_loop_iterations)
        )
        self.max_tensor_bytes = (
            _env_int("EMBER_MAX_TENSOR_BYTES", DEFAULT_MAX_TENSOR_BYTES)
            if max_tensor_bytes is None
            else int(max_tensor_bytes)
        )
        if self.max_loop_iterations <= 0 or self.max_tensor_bytes <= 0:
            raise EmberError("max_loop_iterations and max_tensor_bytes must be positive")
        self._env: ChainMap = ChainMap()

    # limits ---------------------------------------------------------------
    def check_loop_iterations(self, node: Node | None, count: int) -> None:
        """Refuse a loop about to run its ``count``-th iteration (or planning ``count``) beyond the cap."""
        if count > self.max_loop_iterations:
            raise ResourceLimitError(
                f"{_unnamed(node)}the loop would run {count} iterations, above the limit of "
                f"{self.max_loop_iterations} (Interpreter(max_loop_iterations=...), $EMBER_MAX_LOOP_ITERATIONS, "
                "ember run --max-loop-iterations)",
                node=None if node is None else node.name or None,
                op=None if node is None else node.op,
            )

    def _check_result_sizes(self, node: Node, inputs: list[Any]) -> None:
        """Refuse ``node`` before its kernel runs when a result would exceed ``max_tensor_bytes``."""
        types: list[Type | None] = [r.type for r in node.results]
        if any(_type_bytes(t) is None for t in types if isinstance(t, TensorType)):
            types = self._infer_from_values(node, inputs) or types
        for r, t in zip(node.results, types):
            nbytes = _type_bytes(t)
            if nbytes is not None and nbytes > self.max_tensor_bytes:
                raise ResourceLimitError(
                    f"{_unnamed(node)}result %{r.name} of shape {list(t.shape)} ({t.dtype.value}) would take "
                    f"{nbytes} bytes, above the limit of {self.max_tensor_bytes} (Interpreter(max_tensor_bytes=...), "
                    "$EMBER_MAX_TENSOR_BYTES, ember run --max-tensor-bytes)",
                    node=node.name or None,
                    op=node.op,
                )

    @staticmethod
    def _infer_from_values(node: Node, inputs: list[Any]) -> list[Type | None] | None:
        """Result types inferred from the operands' actual shapes (small integer operands as constants)."""
        from ..ops import InferContext, get_op

        consts: list[Any] = []
        for k, a in enumerate(inputs):
            small = isinstance(a, np.ndarray) and a.size <= (
                _SMALL_CONST if a.dtype.kind in "iu" else 64 if a.dtype.kind == "f" and k else -1
            )
            consts.append(a if small else None)  # shapes, repeats, pads, sizes, scales
        if all(c is None for c in consts):
            # no operand's values drive the result's shape: it follows from operand shapes, which
            # exist already (inference per run would cost more than the kernel for small tensors)
            return None
        op_def = get_op(node.op)
        if op_def is None or op_def.infer is None or node.subgraphs:
            return None
        in_types: list[Type | None] = []
        for v, a in zip(node.operands, inputs):
            if v is None or not isinstance(a, np.ndarray) or not isinstance(v.type, TensorType):
                in_types.append(None if v is None else v.type)
            else:
                in_types.append(TensorType(v.type.dtype, list(a.shape)))
        try:
            ctx = InferContext(node.op, in_types, node.attrs, len(node.results), consts, node)
            return list(op_def.infer(ctx))
        except Exception:  # the kernel runs and reports its own error
            return None

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
        self._check_result_sizes(node, inputs)
        ctx = EvalContext(
            node.op, node.attrs, len(node.results), [None if v is None else v.type for v in node.operands], node, self
        )
        try:
            outputs = op_def.reference(inputs, node.attrs, ctx)
        except InterpreterError:
            raise
        except MemoryError as exc:
            raise ResourceLimitError(
                f"{_unnamed(node)}out of memory running the kernel ({exc})", node=node.name or None, op=node.op
            ) from None
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


def _unnamed(node: Node | None) -> str:
    """A prefix naming an unnamed node (a named one is named by the error's own fields)."""
    return f"{node.describe()}: " if node is not None and not node.name else ""


def interpret(
    graph: Graph,
    inputs: Mapping[str, Any],
    *,
    check_types: bool = True,
    max_loop_iterations: int | None = None,
    max_tensor_bytes: int | None = None,
) -> dict[str, Any]:
    """Run ``graph`` on inputs given by parameter name; returns outputs by value name (an output
    listed twice appears once: ``interpret_list`` gives one entry per listed output)."""
    outs = interpret_list(
        graph,
        inputs,
        check_types=check_types,
        max_loop_iterations=max_loop_iterations,
        max_tensor_bytes=max_tensor_bytes,
    )
    return {v.name or f"output{i}": out for i, (v, out) in enumerate(zip(graph.outputs, outs))}


def interpret_list(
    graph: Graph,
    inputs: Mapping[str, Any],
    *,
    check_types: bool = True,
    max_loop_iterations: int | None = None,
    max_tensor_bytes: int | None = None,
) -> list[Any]:
    """Run ``graph`` on inputs given by parameter name; returns one result per listed output, in
    order (as onnxruntime does: an output listed twice comes back twice)."""
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
    interp = Interpreter(check_types, max_loop_iterations=max_loop_iterations, max_tensor_bytes=max_tensor_bytes)
    return interp.run_graph(graph, args)


__all__ = [
    "DEFAULT_MAX_LOOP_ITERATIONS",
    "DEFAULT_MAX_TENSOR_BYTES",
    "interpret",
    "interpret_list",
    "Interpreter",
    "InterpreterError",
    "OptionalType",
    "ResourceLimitError",
    "Value",
]
