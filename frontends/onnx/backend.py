"""``frontends.onnx.backend``: Ember as an ``onnx.backend.base.Backend``.

    from frontends.onnx import backend
    rep = backend.prepare(model)               # import -> Graph (verified)
    outputs = rep.run([x])                     # list, in the model's output order
    backend.run_node(node_proto, [a, b])       # one node, wrapped into a model

By default a rep runs the graph through the reference interpreter.
``prepare(model, compile=True)`` compiles it with ``compiler.driver.compile_model`` (the driver
``ember compile`` uses) to a shared library and runs that through ``compiler.runtime``; when codegen is not
available the call fails with an ``EmberError`` saying so.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Mapping, Sequence

import numpy as np
import onnx
from onnx import helper
from onnx.backend.base import Backend, BackendRep, Device, DeviceType

from compiler.diagnostics import EmberError
from compiler.ir.core import Graph
from compiler.ir.interpreter import Interpreter, InterpreterError, _check_value
from compiler.ir.types import TensorType
from compiler.ir.verifier import verify

from .importer import import_model


class EmberBackendRep(BackendRep):
    """A prepared model: the imported graph plus how to run it (interpreter or compiled library)."""

    def __init__(self, graph: Graph, input_names: Sequence[str], compiled: Any = None):
        self.graph = graph
        self.input_names = list(input_names)
        self.compiled = compiled

    def run(self, inputs: Any, **kwargs) -> list[Any]:
        """Run on ``inputs`` (one array, a list in input order, or a dict by name); returns a list."""
        feeds = {name: _from_proto(value) for name, value in self._feeds(inputs).items()}
        if self.compiled is not None:
            out = self.compiled.run(feeds)
            return [out[info.name] for info in self.compiled.outputs]
        args = []
        for p in self.graph.params:
            value = feeds[p.name]
            if isinstance(p.type, TensorType) and not isinstance(value, np.ndarray):
                value = np.asarray(value, dtype=p.type.dtype.np)
            try:
                _check_value(value, p.type, f"input '{p.name}'")
            except InterpreterError as exc:
                raise EmberError(str(exc)) from None
            args.append(value)
        try:
            return Interpreter().run_graph(self.graph, args)
        except InterpreterError as exc:
            raise EmberError(f"run failed: {exc}") from None

    def _feeds(self, inputs: Any) -> dict[str, Any]:
        """Inputs by parameter name; positional inputs follow the model's non-initializer inputs."""
        wanted = [p.name for p in self.graph.params]
        if isinstance(inputs, Mapping):
            feeds = dict(inputs)
        else:
            if isinstance(inputs, np.ndarray):
                inputs = [inputs]
            inputs = list(inputs)
            if len(inputs) > len(self.input_names):
                raise EmberError(
                    f"got {len(inputs)} inputs, the model takes {len(self.input_names)} ({', '.join(self.input_names)})"
                )
            feeds = dict(zip(self.input_names, inputs))
        missing = [n for n in wanted if n not in feeds]
        if missing:
            raise EmberError(f"missing input(s): {', '.join(missing)} (the model takes {', '.join(wanted)})")
        return feeds


class EmberBackend(Backend):
    """The ONNX backend API over Ember's importer, interpreter and (optionally) code generator."""

    @classmethod
    def is_compatible(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs) -> bool:
        return cls.supports_device(device)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        """Ember runs on the host CPU only."""
        try:
            return Device(device).type == DeviceType.CPU
        except Exception:
            return False

    @classmethod
    def prepare(cls, model: Any, device: str = "CPU", **kwargs) -> EmberBackendRep:
        """Import (and verify) ``model``; ``compile=True`` also builds a shared library.

        Other keywords: ``input_shapes`` (passed to the importer), ``target`` (codegen target),
        ``library`` (a path: keep the compiled library there instead of in a temporary folder).
        """
        if not cls.supports_device(device):
            raise EmberError(f"device '{device}' is not supported (Ember runs on CPU)")
        proto = (
            model
            if isinstance(model, onnx.ModelProto)
            else onnx.load(model)
            if isinstance(model, (str, os.PathLike))
            else None
        )
        graph = import_model(model, input_shapes=kwargs.get("input_shapes"))
        try:
            verify(graph)
        except Exception as exc:
            raise EmberError(f"the imported graph does not verify: {exc}") from None
        input_names = _input_names(proto, graph)
        compiled = (
            _compile(graph, kwargs.get("target", "x86-64"), kwargs.get("library")) if kwargs.get("compile") else None
        )
        return EmberBackendRep(graph, input_names, compiled)

    @classmethod
    def run_model(cls, model: Any, inputs: Any, device: str = "CPU", **kwargs) -> list[Any]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(
        cls,
        node: onnx.NodeProto,
        inputs: Any,
        device: str = "CPU",
        outputs_info: Sequence[tuple] | None = None,
        **kwargs,
    ) -> list[Any]:
        """Run a single node on ``inputs`` (arrays in the node's input order, or a dict by name)."""
        model = _model_of_node(node, inputs, outputs_info, kwargs.get("opset_version"))
        if isinstance(inputs, Mapping):
            inputs = [inputs[n] for n in node.input if n]
        return cls.prepare(model, device, **kwargs).run(list(inputs))


def _from_proto(value: Any) -> Any:
    """ONNX protos given as inputs (TensorProto, SequenceProto, OptionalProto) as runtime values."""
    from onnx import numpy_helper

    from compiler import onnx_bridge as bridge

    if isinstance(value, onnx.TensorProto):
        return bridge.array_from_proto(value)
    if isinstance(value, onnx.SequenceProto):
        return [_from_proto(v) for v in numpy_helper.to_list(value)]
    if isinstance(value, onnx.OptionalProto):
        return _from_proto(numpy_helper.to_optional(value))
    return value


def _input_names(proto: onnx.ModelProto | None, graph: Graph) -> list[str]:
    """Names that positional inputs bind to: the model's inputs that are not initializers."""
    if proto is None:
        return [p.name for p in graph.params]
    init = {t.name for t in proto.graph.initializer}
    return [i.name for i in proto.graph.input if i.name not in init]


def _compile(graph: Graph, target: str, library: str | None = None):
    """Compile ``graph`` through the one compile driver (``compiler.driver.compile_model``: O2, then
    ``codegen-prepare``, then codegen, as ``ember compile`` does) into ``library`` (a temporary file
    when None) and load it; EmberError when codegen is unavailable."""
    try:
        import codegen  # noqa: F401  (the code generator the driver ends with)
        from compiler.driver import compile_model
        from compiler.runtime import load
    except ImportError as exc:
        raise EmberError(f"compile=True needs the code generator, which is not available ({exc})") from None
    if library is not None:
        compile_model(graph, library, target)
        return load(library)
    folder = tempfile.mkdtemp(prefix="ember_backend_")
    try:
        path = os.path.join(folder, "model.so")
        compile_model(graph, path, target)
        return load(path)  # once loaded, the library no longer needs its file
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _type_of(value: Any):
    """The Ember type of a runtime value; a sequence's element type covers all its elements."""
    from compiler.ir.types import OptionalType, SequenceType, type_of_value

    if isinstance(value, list):
        types = [_type_of(v) for v in value]
        if not types:
            return SequenceType(TensorType(type_of_value(np.zeros(0, np.float32)).dtype, None))
        first = types[0]
        if all(isinstance(t, TensorType) and t.dtype == first.dtype and t.rank == first.rank for t in types):
            dims = tuple(d if all(t.shape[i] == d for t in types) else None for i, d in enumerate(first.shape))
            return SequenceType(TensorType(first.dtype, dims))
        return SequenceType(first)
    if value is None:
        return OptionalType(None)
    return type_of_value(np.asarray(value))


def _value_info_of(name: str, value: Any) -> onnx.ValueInfoProto:
    """A ValueInfoProto describing a runtime value (tensor, list = sequence, None = optional)."""
    from compiler import onnx_bridge as bridge

    return helper.make_value_info(name, bridge.type_to_proto(_type_of(value)))


def _model_of_node(node: onnx.NodeProto, inputs: Any, outputs_info, opset: int | None) -> onnx.ModelProto:
    """Wrap one node into a model whose inputs are typed from the given values."""
    values = [inputs[n] for n in node.input if n] if isinstance(inputs, Mapping) else list(inputs)
    names = [n for n in node.input if n]
    graph_inputs = [_value_info_of(n, _from_proto(v)) for n, v in zip(names, values)]
    graph_outputs = []
    for i, name in enumerate(n for n in node.output if n):
        if outputs_info is not None and i < len(outputs_info):
            dtype, shape = outputs_info[i]
            elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
            graph_outputs.append(helper.make_tensor_value_info(name, elem, shape))
        else:
            graph_outputs.append(helper.make_empty_tensor_value_info(name))
    graph = helper.make_graph([node], "node", graph_inputs, graph_outputs)
    opsets = [helper.make_opsetid(node.domain or "", opset or onnx.defs.onnx_opset_version())]
    return helper.make_model(graph, opset_imports=opsets)


prepare = EmberBackend.prepare
run_model = EmberBackend.run_model
run_node = EmberBackend.run_node
supports_device = EmberBackend.supports_device
is_compatible = EmberBackend.is_compatible

__all__ = ["EmberBackend", "EmberBackendRep", "prepare", "run_model", "run_node", "supports_device", "is_compatible"]
