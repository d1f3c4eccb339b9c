"""ONNX ModelProto -> Ember Graph.

The walk, in order:

1. load and check the protobuf (``loader.py``): file, opsets, and one error listing every
   unsupported op with counts; opsets below 7, and op versions no normaliser covers, fall back
   to ``onnx.version_converter``;
2. per graph: initializers become ``Constant`` nodes (named after the initializer; an
   initializer also listed as an input, IR v3 style, is a constant), remaining inputs become
   parameters (``input_shapes`` pins their dims; symbolic dims stay symbols), nodes are sorted
   and converted in order, outputs are bound by name;
3. per node: inputs resolve through a ``Scope`` chain, so nested graphs (If/Loop/Scan) read
   outer values directly; model-local functions and schema functions of ops Ember lacks are
   inlined (``compiler/onnx_functions.py``); older op versions and a few non-standard ops go through the
   converters in ``converters/``; everything else converts one-to-one.  Result types come from
   the registry's inference, refined by the model's declared value_info/output types;
4. every node is checked against its op's shape contract (``OpDef.contract``: what onnx's
   inference lets through, such as Conv's channels x group); the import fails once the whole
   model is read, listing every node that breaks one, with its op and shapes.
"""

from __future__ import annotations

import collections
import itertools
from typing import Any, Sequence

import onnx
from onnx import defs

from compiler import onnx_bridge as bridge
from compiler.diagnostics import EmberError
from compiler.ir.core import Graph, Node, Value
from compiler.ir.types import TensorType, Type
from compiler.onnx_functions import (
    body_param_hints,
    function_opsets,
    inline_call,
    schema_function_body,
    schema_with_function,
)
from compiler.ops import get_op

from ..common import Scope, checked_numel
from . import converters
from .loader import (
    MIN_OPSET,
    load_model_proto,
    model_opsets,
    normalise_domain,
    old_opset_changes,
    sort_nodes,
    subgraphs_of,
    tensor_to_array,
    type_from_proto,
)
from .node_converter import NodeConverter, NotNormalised
from .validate import max_tensor_bytes as tensor_byte_limit
from .validate import operand_type_problems, sparse_to_array, validate_model

MAX_FUNCTION_DEPTH = 32


def import_model(
    model,
    *,
    input_shapes: dict[str, Sequence[int | str]] | None = None,
    base_dir: str | None = None,
    initializer_inputs: str = "constant",
    max_tensor_bytes: int | None = None,
) -> Graph:
    """Import an ONNX model (a path, bytes or a ModelProto) as an Ember Graph.

    ``input_shapes`` pins input dims by input name (ints or symbol names); a
    pinned symbol takes the same value in every other input.  ``base_dir`` is
    where external data lives for in-memory models.  ``initializer_inputs``
    says what an initializer that is also listed as a graph input becomes:
    ``"constant"`` (default: IR v3 listed every initializer as an input) or
    ``"param"`` (ONNX's "overridable default": a real input).  ``max_tensor_bytes`` caps the size
    of any one tensor, checked before it is allocated (default ``$EMBER_MAX_TENSOR_BYTES`` or
    16 GiB).  The model passes the validation gate (``validate.py``) before anything is read.
    """
    if initializer_inputs not in ("constant", "param"):
        raise EmberError(f"initializer_inputs must be 'constant' or 'param', not {initializer_inputs!r}")
    proto, file, base_dir = load_model_proto(model, base_dir)
    limit = tensor_byte_limit(max_tensor_bytes)
    options = dict(input_shapes=input_shapes, initializer_inputs=initializer_inputs, max_tensor_bytes=limit)
    try:
        return OnnxImporter(proto, file, base_dir, **options).run()
    except (NotNormalised, OpsetTooOld) as error:
        # an opset below 7 only needs lifting to 7: the normalisers take it from there
        target = MIN_OPSET if isinstance(error, OpsetTooOld) else defs.onnx_opset_version()
        upgraded = _upgrade_with_version_converter(proto, target)
        if upgraded is None:
            raise error from None
        try:
            return OnnxImporter(upgraded, file, base_dir, **options).run()
        except EmberError:
            raise error from None


class OpsetTooOld(EmberError):
    """The model's default opset is below 7 and some of its ops changed since."""


def _upgrade_with_version_converter(model: onnx.ModelProto, target: int) -> onnx.ModelProto | None:
    """The model converted to opset ``target`` by onnx.version_converter, or None when that fails.

    Only a fallback (op versions without a normaliser, opsets below 7): the
    converter fails on many real models, so the per-op normalisers come first.
    """
    from onnx import version_converter

    try:
        return version_converter.convert_version(model, target)
    except Exception:
        return None


class OnnxImporter:
    """Converts one ModelProto; holds the model-wide tables (opsets, functions, declared types)."""

    def __init__(
        self,
        model: onnx.ModelProto,
        file: str,
        base_dir: str,
        input_shapes: dict[str, Sequence[int | str]] | None = None,
        initializer_inputs: str = "constant",
        max_tensor_bytes: int | None = None,
    ):
        self.model = model
        self.limit = tensor_byte_limit(max_tensor_bytes)
        self.file = file
        self.base_dir = base_dir
        self.input_shapes = {k: tuple(v) for k, v in (input_shapes or {}).items()}
        self.initializer_inputs = initializer_inputs
        self.symbols: dict[str, int | str] = {}  # symbol -> value pinned through input_shapes
        self.opsets = model_opsets(model, file)
        self.functions = {(normalise_domain(f.domain), f.name): f for f in model.functions}
        self.declared: dict[str, Type] = {}
        self._counter = itertools.count()
        self.broken: list[tuple[onnx.NodeProto, str, list[str]]] = []  # (node, Ember op, contract problems)

    # ------------------------------------------------------------ entry
    def run(self) -> Graph:
        """The imported graph (raises EmberError on bad input)."""
        self.check_old_opset()  # first: a model below opset 7 may be lifted by the version converter
        validate_model(
            self.model,
            self.file,
            self.base_dir,
            limit=self.limit,
            unsupported=self.unsupported_ops,
            converts=lambda domain, op: self.is_supported(domain, op, self.opsets),
        )
        self.symbols = self.pinned_symbols()
        graph = Graph(_graph_name(self.model.graph.name))
        try:
            self.convert_graph(self.model.graph, graph, Scope(), top=True)
        except EmberError as error:
            if not self.broken or isinstance(error, (NotNormalised, OpsetTooOld)):
                raise
            raise self.contract_error(later=error) from None
        if self.broken:
            raise self.contract_error()
        unused = set(self.input_shapes) - {p.name for p in graph.params}
        if unused:
            raise EmberError(
                f"input_shapes names unknown input(s): {', '.join(sorted(unused))} "
                f"(inputs: {', '.join(p.name for p in graph.params)})",
                file=self.file,
            )
        graph.metadata.update(source=self.file, opset=self.opsets.get(""), producer=self.model.producer_name)
        return graph

    def error(self, message: str, node: onnx.NodeProto | None = None) -> EmberError:
        """An EmberError naming this model's file and, when given, the node and its op."""
        if node is None:
            return EmberError(message, file=self.file)
        label = node.name or (node.output[0] if node.output else "")
        op = node.op_type if not node.domain else f"{node.domain}.{node.op_type}"
        return EmberError(message, file=self.file, node=label, op=op)

    def contract_error(self, later: EmberError | None = None) -> EmberError:
        """One EmberError for every node that breaks its op's shape contract (and what failed after)."""
        named = [
            (node.name or (node.output[0] if node.output else ""), op, "; ".join(problems))
            for node, op, problems in self.broken
        ]
        if len(named) == 1 and later is None:
            label, op, problems = named[0]
            return EmberError(f"breaks its shape contract: {problems}", file=self.file, node=label, op=op)
        details = [f"node '{label}' ({op}): {problems}" for label, op, problems in named]
        if later is not None:
            details.append(f"(then: {later})")
        return EmberError(f"{len(named)} node(s) break their op's shape contract", file=self.file, details=details)

    # ------------------------------------------------------------ support check
    def op_version(self, domain: str, op_type: str, opsets: dict[str, int]) -> int | None:
        """``since_version`` of the op's schema under ``opsets`` (None when onnx has no schema)."""
        version = opsets.get(domain)
        if version is None:
            return None
        try:
            return defs.get_schema(op_type, version, domain).since_version
        except Exception:
            return None

    def is_supported(self, domain: str, op_type: str, opsets: dict[str, int]) -> bool:
        """Whether some path converts the op: local function, Ember op, normaliser or schema function."""
        if (domain, op_type) in self.functions:
            return True
        if converters.has_converter(op_type, domain) or (domain == "" and get_op(op_type) is not None):
            return True
        if domain and get_op(f"{domain}.{op_type}") is not None:
            return True
        return self.schema_function(domain, op_type, opsets) is not None

    def schema_function(self, domain: str, op_type: str, opsets: dict[str, int]):
        """The op's schema if it has a (possibly context-dependent) function body, else None."""
        return schema_with_function(op_type, domain, opsets[domain]) if domain in opsets else None

    def unsupported_ops(self) -> list[str]:
        """Every op no path converts, with its node count (``"Op xN"``), in name order."""
        missing: collections.Counter = collections.Counter()
        seen_functions: set = set()

        def visit(nodes, opsets):
            for node in nodes:
                domain = normalise_domain(node.domain)
                key = (domain, node.op_type)
                if key in self.functions and key not in seen_functions:
                    seen_functions.add(key)
                    fn = self.functions[key]
                    visit(fn.node, {**opsets, **function_opsets(fn)})
                elif domain not in opsets and key not in self.functions:
                    missing[f"{node.domain}.{node.op_type} (domain '{node.domain}' is not imported)"] += 1
                elif not self.is_supported(domain, node.op_type, opsets):
                    missing[f"{node.domain + '.' if domain else ''}{node.op_type}"] += 1
                for sub in subgraphs_of(node):
                    visit(sub.node, opsets)

        visit(self.model.graph.node, self.opsets)
        return [f"{op} x{n}" for op, n in sorted(missing.items())]

    def check_old_opset(self) -> None:
        """A default opset below 7 imports only when none of the model's ops changed since."""
        opset = self.opsets.get("")
        if opset is None or opset >= MIN_OPSET:
            return
        ops = [n.op_type for n in _all_nodes(self.model.graph) if normalise_domain(n.domain) == ""]
        changed = old_opset_changes(ops, opset)
        if changed:
            raise OpsetTooOld(
                f"opset {opset} is older than the oldest supported ({MIN_OPSET}) and these ops "
                f"changed since: {', '.join(changed)}; upgrade the model with "
                f"onnx.version_converter",
                file=self.file,
            )

    def pinned_symbols(self) -> dict[str, int | str]:
        """Symbols of the declared input shapes that ``input_shapes`` gives a value."""
        symbols: dict[str, int | str] = {}
        for inp in self.model.graph.input:
            t = type_from_proto(inp.type)
            dims = self.input_shapes.get(inp.name)
            if dims is None or not isinstance(t, TensorType) or t.shape is None or len(t.shape) != len(dims):
                continue
            for old, new in zip(t.shape, dims):
                if isinstance(old, str) and old != new:
                    if symbols.setdefault(old, new) != new:
                        raise EmberError(
                            f"input_shapes gives symbol '{old}' two values: {symbols[old]} and {new}", file=self.file
                        )
        return symbols

    def substitute(self, t: Type | None) -> Type | None:
        """``t`` with pinned symbols replaced by their values."""
        if not self.symbols or not isinstance(t, TensorType) or t.shape is None:
            return t
        return TensorType(t.dtype, tuple(self.symbols.get(d, d) if isinstance(d, str) else d for d in t.shape))

    # ------------------------------------------------------------ graphs
    def convert_graph(
        self,
        gproto: onnx.GraphProto,
        graph: Graph,
        scope: Scope,
        *,
        top: bool = False,
        param_hints: Sequence[Type | None] = (),
        opsets: dict[str, int] | None = None,
        prefix: str = "",
    ) -> None:
        """Fill ``graph`` from ``gproto``; ``scope`` is this graph's own (child) scope.

        ``opsets`` and ``prefix`` differ from the model's only for subgraphs of inlined functions.
        """
        for vi in itertools.chain(gproto.value_info, gproto.output):
            t = type_from_proto(vi.type)
            if t is not None:
                self.declared.setdefault(vi.name, self.substitute(t))
        initializers = set()
        for tensor in gproto.initializer:
            self._define_constant(graph, scope, tensor.name, tensor_to_array(tensor, self.base_dir, self.file))
            initializers.add(tensor.name)
        for sparse in gproto.sparse_initializer:
            array = sparse_to_array(sparse, self.read_tensor, f"sparse initializer '{sparse.values.name}'", self.file)
            self._define_constant(graph, scope, sparse.values.name, array)
            initializers.add(sparse.values.name)
        hints = list(param_hints)
        for i, inp in enumerate(gproto.input):
            if inp.name in initializers and not (top and self.initializer_inputs == "param"):
                continue
            t = type_from_proto(inp.type)
            if t is None and i < len(hints):
                t = hints[i]
            if top:
                t = self._pinned(inp.name, t)
            if inp.name in initializers:  # initializer_inputs="param": the input replaces the constant
                scope.lookup(inp.name).producer.erase()
            elif scope.defines_locally(inp.name):
                raise self.error(f"graph input '{inp.name}' is listed twice")
            if isinstance(t, TensorType) and t.is_static:
                checked_numel(t.shape, f"graph input '{inp.name}'", self.file, t.dtype.itemsize, self.limit)
            scope.define(inp.name, graph.add_param(t, inp.name))
        for node in sort_nodes(gproto.node, self.file):
            self.convert_node(node, graph, scope, opsets or self.opsets, prefix)
        graph.outputs = self._bind_outputs(gproto, graph, scope)

    def read_tensor(self, proto: onnx.TensorProto):
        """A tensor's array; external data is read from inside the model's folder."""
        return tensor_to_array(proto, self.base_dir, self.file)

    def read_attr_tensors(self, attr: onnx.AttributeProto, node: onnx.NodeProto):
        """The array(s) of a tensor or sparse-tensor attribute, external data read like initializers'."""
        A = onnx.AttributeProto
        what = f"attribute '{attr.name}'"
        try:
            if attr.type == A.TENSOR:
                return self.read_tensor(attr.t)
            if attr.type == A.TENSORS:
                return [self.read_tensor(t) for t in attr.tensors]
            if attr.type == A.SPARSE_TENSOR:
                return sparse_to_array(attr.sparse_tensor, self.read_tensor, what, self.file)
            return [sparse_to_array(sp, self.read_tensor, what, self.file) for sp in attr.sparse_tensors]
        except EmberError as error:
            raise self.error(error.message, node) from None

    def _define_constant(self, graph: Graph, scope: Scope, name: str, array) -> None:
        node = Node("Constant", [], [TensorType.of(array)], {"value": array}, [name])
        graph.append(node)
        scope.define(name, node.results[0])

    def _pinned(self, name: str, t: Type | None) -> Type:
        if t is None:
            raise EmberError(f"graph input '{name}' has no type", file=self.file)
        dims = self.input_shapes.get(name)
        if dims is None:
            return self.substitute(t)
        if not isinstance(t, TensorType):
            raise EmberError(f"input_shapes pins '{name}', which is not a tensor", file=self.file)
        if t.shape is not None and len(t.shape) != len(dims):
            raise EmberError(
                f"input_shapes gives '{name}' rank {len(dims)}, the model says rank {len(t.shape)}", file=self.file
            )
        if t.shape is not None:
            for old, new in zip(t.shape, dims):
                if isinstance(old, int) and isinstance(new, int) and old != new:
                    raise EmberError(
                        f"input_shapes gives '{name}' shape {list(dims)}, but the model fixes it to {list(t.shape)}",
                        file=self.file,
                    )
        return TensorType(t.dtype, tuple(dims))

    def _bind_outputs(self, gproto: onnx.GraphProto, graph: Graph, scope: Scope) -> list[Value]:
        outs: list[Value] = []
        for out in gproto.output:
            try:
                v = scope.lookup(out.name)
            except KeyError:
                raise self.error(f"graph output '{out.name}' is never produced") from None
            if v is None:
                raise self.error(f"graph output '{out.name}' is an absent optional value")
            if v.name != out.name or any(v is o for o in outs):
                node = Node("Identity", [v], [v.type], {}, [out.name])
                graph.append(node)
                v = node.results[0]
            outs.append(v)
        return outs

    # ------------------------------------------------------------ nodes
    def resolve(self, name: str, scope: Scope, node: onnx.NodeProto) -> Value | None:
        """The value an input name refers to (None for an absent optional input)."""
        if not name:
            return None
        try:
            return scope.lookup(name)
        except KeyError:
            raise self.error(
                f"input '{name}' is not defined by any node, initializer or graph input (a dangling name)", node
            ) from None

    def convert_node(
        self, node: onnx.NodeProto, graph: Graph, scope: Scope, opsets: dict[str, int], prefix: str = "", depth: int = 0
    ) -> None:
        """Convert one NodeProto into graph nodes; binds its output names in ``scope``."""
        domain = normalise_domain(node.domain)
        inputs = [self.resolve(n, scope, node) for n in node.input]
        key = (domain, node.op_type)
        if key in self.functions:
            fn = self.functions[key]
            results = self.inline_function(fn, node, graph, inputs, {**opsets, **function_opsets(fn)}, prefix, depth)
        else:
            attrs = self.convert_attrs(node, scope, inputs, opsets, prefix)
            try:
                results = self.convert_op(node, domain, graph, inputs, attrs, opsets, prefix, depth)
            except EmberError:
                raise
            except Exception as exc:  # a converter or IR check tripped on odd input: still name the node
                raise self.error(f"cannot convert this node ({type(exc).__name__}: {exc})", node) from exc
        for name, value in zip(node.output, results):
            if name:
                if value is None:
                    raise self.error(f"output '{name}' was not produced by the conversion", node)
                if scope.defines_locally(name):
                    raise self.error(
                        f"output '{name}' is already defined in this graph (ONNX names are assigned once)", node
                    )
                scope.define(name, value)

    def convert_attrs(
        self, node: onnx.NodeProto, scope: Scope, inputs: list[Value | None], opsets: dict[str, int], prefix: str
    ) -> dict[str, Any]:
        """The node's attributes as Ember values; graph attributes become nested Graphs."""
        attrs = {}
        A = onnx.AttributeProto
        for attr in node.attribute:
            if attr.ref_attr_name:
                raise self.error(f"attribute '{attr.name}' refers to a function attribute outside a function", node)
            hints = body_param_hints(node, attr.name, inputs)

            def convert_graph(g, hints=hints):
                sub = Graph(_graph_name(g.name, "body"))
                self.convert_graph(g, sub, scope.child(), param_hints=hints, opsets=opsets, prefix=prefix)
                return sub

            tensor_kinds = (A.TENSOR, A.TENSORS, A.SPARSE_TENSOR, A.SPARSE_TENSORS)
            if attr.type in tensor_kinds:
                attrs[attr.name] = self.read_attr_tensors(attr, node)
                continue
            try:
                attrs[attr.name] = bridge.attr_value_from_proto(attr, convert_graph)
            except EmberError:
                raise
            except Exception as exc:
                raise self.error(f"cannot read attribute '{attr.name}': {exc}", node) from None
        return attrs

    def convert_op(self, node, domain, graph, inputs, attrs, opsets, prefix, depth):
        """Results of a non-function node: normaliser, one-to-one Ember op, or schema function body."""
        version = self.op_version(domain, node.op_type, opsets) or 1
        wrong = operand_type_problems(node, opsets.get(domain), [v.type if v is not None else None for v in inputs])
        if wrong:
            raise self.error(f"type error: {'; '.join(wrong)}", node)
        ctx = NodeConverter(self, graph, node, inputs, attrs, version, prefix)
        fn = converters.find_converter(node.op_type, version, domain)
        if fn is not None:
            return _padded(fn(ctx), len(node.output))
        if domain == "" and get_op(node.op_type) is not None:
            return ctx.emit(node.op_type, inputs, attrs, final=True)
        if domain and get_op(f"{domain}.{node.op_type}") is not None:
            return ctx.emit(f"{domain}.{node.op_type}", inputs, attrs, final=True)
        schema = self.schema_function(domain, node.op_type, opsets)
        if schema is None:
            raise self.error("unsupported op", node)
        fn = schema_function_body(schema, node, inputs, opsets[domain])
        if fn is None:
            raise self.error("unsupported op (its function body could not be built)", node)
        return self.inline_function(fn, node, graph, inputs, {**opsets, **function_opsets(fn)}, prefix, depth)

    def inline_function(self, fn, node, graph, inputs, opsets, prefix, depth) -> list[Value | None]:
        """Expand a function call in place: formal inputs bind to the actual values."""
        if depth >= MAX_FUNCTION_DEPTH:
            raise self.error(f"function '{fn.name}' nests deeper than {MAX_FUNCTION_DEPTH} (recursive?)", node)
        fscope = Scope()
        inner_prefix = f"{prefix}{node.name or node.output[0]}/"
        values = inline_call(
            fn,
            node,
            inputs,
            fscope,
            lambda bound: self.convert_node(bound, graph, fscope, opsets, inner_prefix, depth + 1),
            order=lambda nodes: sort_nodes(nodes, self.file),
        )
        results = []
        for v, actual in zip(values, node.output):
            if v is not None and actual:
                if v.producer is not None and v.producer.graph is graph and v.name.startswith(inner_prefix):
                    v.name = prefix + actual
                else:
                    v = NodeConverter(self, graph, node, [v], {}, 1, prefix).emit("Identity", [v], final=True)[0]
            results.append(v)
        return results


# ---------------------------------------------------------------- helpers


def _all_nodes(graph: onnx.GraphProto):
    for node in graph.node:
        yield node
        for sub in subgraphs_of(node):
            yield from _all_nodes(sub)


def _graph_name(name: str, default: str = "main") -> str:
    return name or default


def _padded(results, n: int) -> list:
    results = list(results)
    return results + [None] * (n - len(results))
