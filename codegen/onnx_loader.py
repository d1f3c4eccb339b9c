"""Load an ONNX model as a Graph for code generation.

Uses the ONNX frontend (``frontends.onnx.import_model``) when it is available; otherwise a minimal
converter for static-shape, single-graph models (initializers -> Constant nodes, shapes from
``onnx.shape_inference``), enough for Ember's tests and benchmarks.
"""

from __future__ import annotations

import onnx


def load_onnx(model) -> "object":
    """A Graph for ``model`` (path or ModelProto)."""
    try:
        from frontends.onnx import import_model  # type: ignore[attr-defined]
    except Exception:
        import_model = None
    if import_model is not None:
        return import_model(model)
    return _minimal_import(model)


def _minimal_import(model):
    from compiler.ir.core import Graph, Node
    from compiler.onnx_bridge import array_from_proto, attr_value_from_proto, type_from_proto

    proto = onnx.load(model) if isinstance(model, str) else model
    proto = onnx.shape_inference.infer_shapes(proto, strict_mode=False, data_prop=True)
    g_proto = proto.graph
    types = {vi.name: type_from_proto(vi.type) for vi in
             list(g_proto.input) + list(g_proto.value_info) + list(g_proto.output)}
    graph = Graph(g_proto.name or "model")
    values = {}
    inits = {t.name for t in g_proto.initializer}
    for inp in g_proto.input:
        if inp.name not in inits:
            values[inp.name] = graph.add_param(types[inp.name], inp.name)
    for init in g_proto.initializer:
        arr = array_from_proto(init)
        from compiler.ir.types import DType, TensorType
        node = Node("Constant", [], [TensorType(DType.from_np(arr.dtype), arr.shape)], {"value": arr}, [init.name])
        graph.append(node)
        values[init.name] = node.results[0]
    for i, n in enumerate(g_proto.node):
        attrs = {a.name: attr_value_from_proto(a) for a in n.attribute}
        operands = [values[name] if name else None for name in n.input]
        node = Node(n.op_type, operands, [types.get(o) for o in n.output], attrs, list(n.output),
                    name=n.name or f"{n.op_type}_{i}")
        graph.append(node)
        for name, v in zip(n.output, node.results):
            values[name] = v
    graph.outputs = [values[o.name] for o in g_proto.output]
    return graph
