"""The converter context of one ONNX node: ``NodeConverter`` creates, types and names its nodes.

Every node the importer makes goes through ``NodeConverter.emit``: attributes are checked
against the op's schema (``NotNormalised`` when an older op version left some), result types
come from the registry's inference refined by the model's declared types, each result's size
is checked against the tensor size limit before anything can allocate it, and shape-contract
problems are recorded for the importer's one listing error.
"""

from __future__ import annotations

import itertools

import numpy as np
import onnx

from compiler.diagnostics import EmberError
from compiler.ir.core import Graph, Node, Value
from compiler.ir.printer import format_type
from compiler.ir.types import TensorType, Type
from compiler.ops import get_op
from compiler.ops.inference import InferenceError, check_contract, infer_types

from ..common import checked_numel


class NotNormalised(EmberError):
    """An older op version left attributes the newest op does not know (no normaliser covers it)."""


class NodeConverter:
    """The ``ConvertContext`` a converter sees for one ONNX node."""

    def __init__(self, importer, graph: Graph, node: onnx.NodeProto, inputs, attrs, version: int, prefix: str):
        self.importer = importer
        self.graph = graph
        self.proto = node
        self.op_type = node.op_type
        self.name = prefix + (node.name or (node.output[0] if node.output else ""))
        self.version = version
        self.inputs = list(inputs)
        self.attrs = dict(attrs)
        self.output_names = list(node.output)
        self.prefix = prefix

    def fail(self, message: str) -> EmberError:
        """An EmberError naming the file, this node and its op."""
        return self.importer.error(message, self.proto)

    def const(self, array, *, final: bool = False) -> Value:
        """A Constant node holding ``array``; ``final=True`` names it after the node's first output."""
        array = array if isinstance(array, np.ndarray) else np.asarray(array)
        name = self.prefix + self.output_names[0] if final else f"{self.name}/const{next(self.importer._counter)}"
        node = Node("Constant", [], [TensorType.of(array)], {"value": array}, [name])
        self.graph.append(node)
        return node.results[0]

    def emit(
        self, op: str, operands, attrs=None, *, num_results: int | None = None, final: bool = False
    ) -> list[Value]:
        """Create, type and append a node; ``final=True`` names results after the ONNX outputs.

        Types come from the registry's inference, refined by the model's declared types
        for final results; an inference failure is a type error naming the node.
        """
        attrs = dict(attrs or {})
        op_def = get_op(op)
        if op_def is None:
            raise self.fail(f"no Ember op '{op}'")
        wrong_kind = {spec.check(value) for key, value in attrs.items() if (spec := op_def.attrs.get(key))}
        for problem in op_def.check_attrs(attrs):
            hint = (
                f"wrong attribute type: {problem}"
                if problem in wrong_kind
                else f"{problem} (op version {self.version} is not normalised to the newest opset)"
            )
            error = self.fail(hint)
            raise NotNormalised(error.message, file=error.file, node=error.node, op=error.op)
        if num_results is None:
            num_results = len(self.output_names) if final else max(op_def.outputs[0], 1)
        operands = list(operands)
        while operands and operands[-1] is None:
            operands.pop()
        try:
            types = infer_types(op, operands, attrs, num_results)
        except InferenceError as exc:
            shown = ", ".join(
                "none" if v is None else format_type(v.type) if v.type is not None else "?" for v in operands
            )
            raise self.fail(f"type error: {exc} (operands: {shown})") from None
        problems = check_contract(op, operands, attrs, num_results)
        if problems:
            self.importer.broken.append((self.proto, op, problems))
        if final:
            names = [self.prefix + n if n else "" for n in self.output_names[:num_results]]
            names += [""] * (num_results - len(names))
            declared = [
                self.importer.declared.get(n) if n and not self.prefix else None
                for n in self.output_names[:num_results]
            ]
            types = [self._merge(t, d, n) for t, d, n in itertools.zip_longest(types, declared, names)]
        else:
            names = [f"{self.name}/{op}{next(self.importer._counter)}" for _ in range(num_results)]
        for i, t in enumerate(types):
            if isinstance(t, TensorType) and t.is_static:
                try:
                    checked_numel(
                        t.shape, f"result {i} ({format_type(t)})", None, t.dtype.itemsize, self.importer.limit
                    )
                except EmberError as error:
                    raise self.fail(error.message) from None
        node = Node(op, operands, types, attrs, names, self.name if final else "")
        self.graph.append(node)
        return list(node.results)

    def _merge(self, inferred: Type | None, declared: Type | None, name: str) -> Type | None:
        """Inferred type refined by the model's declaration; a dtype clash is a type error."""
        if inferred is None or declared is None:
            return inferred if inferred is not None else declared
        if isinstance(inferred, TensorType) and isinstance(declared, TensorType):
            if inferred.dtype != declared.dtype:
                raise self.fail(
                    f"type mismatch: '{name}' is {inferred.dtype.value} but the model declares {declared.dtype.value}"
                )
            if inferred.shape is None:
                return declared
            if declared.shape is not None and len(declared.shape) == len(inferred.shape):
                return TensorType(
                    inferred.dtype, tuple(d if i is None else i for i, d in zip(inferred.shape, declared.shape))
                )
        return inferred
