"""Turn cases of onnx's node test suite into Ember graphs, without the ONNX frontend.

A node case is a one-node ONNX model plus input/expected-output data sets.
``case_graph`` rebuilds it as an Ember graph: one parameter per model input
(with the model's declared type), the node's attributes converted through
``compiler.onnx_bridge`` (nested graphs converted recursively here), and the
result types inferred by the op registry.  ``check_case`` then compares the
inferred types with the model's declared outputs and the interpreter's values
with the expected ones, using the case's own rtol/atol.
"""

from __future__ import annotations

import functools
import re
import warnings

import numpy as np
import onnx
from onnx import defs

from compiler import Builder, DType, Graph, TensorType, Value, interpret, verify
from compiler import onnx_bridge as bridge
from compiler.ir.types import OptionalType, SequenceType, Type


@functools.lru_cache(maxsize=1)
def node_cases_by_op() -> dict[str, list]:
    """Single-node cases of onnx's suite, grouped by op type (about 6 s, done once)."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases()
    by_op: dict[str, list] = {}
    for case in cases:
        if case.model is None or len(case.model.graph.node) != 1 or not case.data_sets:
            continue
        by_op.setdefault(ember_op_name(case.model.graph.node[0]), []).append(case)
    for op, cases in by_op.items():
        cases.sort(key=lambda c: (c.name != "test_" + snake_case(op), len(c.name), c.name))
    return by_op


# Ops whose later revisions only widened type constraints: older cases still hold.
SEMANTICS_SINCE = {"If": 13, "Loop": 13, "Scan": 9}


def ember_op_name(node: onnx.NodeProto) -> str:
    """Ember's name of an ONNX node's op: the op type, prefixed by its domain outside the default one."""
    domain = "" if node.domain in ("", "ai.onnx") else node.domain
    return f"{domain}.{node.op_type}" if domain else node.op_type


def model_opset(case, domain: str = "") -> int:
    domains = ("", "ai.onnx") if domain == "" else (domain,)
    return max(o.version for o in case.model.opset_import if o.domain in domains)


def unsupported_reason(case) -> str | None:
    """Why Ember cannot take this case as it is, or None.

    Two reasons: the model targets an older opset than the op's latest
    definition (Ember ops have latest-opset semantics, importers normalise old
    ones), or it uses an element type Ember has no dtype for (int2, uint2, e8m0).
    """
    node = case.model.graph.node[0]
    op, domain = ember_op_name(node), "" if node.domain == "ai.onnx" else node.domain
    latest = defs.get_schema(node.op_type, 2**31 - 1, domain).since_version
    since = SEMANTICS_SINCE.get(op) or latest
    if model_opset(case, domain) < since:
        return f"opset {model_opset(case, domain)} predates {op}-{since}"
    infos = list(case.model.graph.input) + list(case.model.graph.output)
    for node in _all_nodes(case.model.graph):
        infos += [a.t for a in node.attribute if a.type == onnx.AttributeProto.TENSOR]
        infos += [
            a for a in node.attribute if a.name in ("to", "output_dtype", "dtype") and a.type == onnx.AttributeProto.INT
        ]
    for info in infos:
        try:
            if isinstance(info, onnx.ValueInfoProto):
                bridge.type_from_proto(info.type)
            elif isinstance(info, onnx.TensorProto):
                DType.from_onnx(info.data_type)
            elif info.i:
                DType.from_onnx(info.i)
        except ValueError as exc:
            return str(exc)
    return None


def _all_nodes(graph: onnx.GraphProto):
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _all_nodes(attr.g)


def usable_cases(op: str) -> list:
    """The suite's cases for ``op`` that Ember takes as they are."""
    return [c for c in node_cases_by_op().get(op, []) if unsupported_reason(c) is None]


def snake_case(op: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", op).lower()


# ----------------------------------------------------------------------------- building graphs


def convert_subgraph(proto: onnx.GraphProto, scopes: list[dict[str, Value]]) -> Graph:
    """An Ember graph for a nested ONNX graph; names not defined inside come from ``scopes``."""
    graph = Graph(proto.name or "body")
    b = Builder(graph)
    local: dict[str, Value] = {}
    declared = {vi.name: bridge.type_from_proto(vi.type) for vi in list(proto.value_info) + list(proto.output)}
    for vi in proto.input:
        local[vi.name] = b.param(vi.name, bridge.type_from_proto(vi.type))
    for init in proto.initializer:
        local[init.name] = b.constant(bridge.array_from_proto(init), name=init.name)
    for node in proto.node:
        add_node(b, node, [*scopes, local], declared)
    graph.outputs = [lookup(vi.name, [*scopes, local]) for vi in proto.output]
    return graph


def lookup(name: str, scopes: list[dict[str, Value]]) -> Value | None:
    if not name:
        return None
    for scope in reversed(scopes):
        if name in scope:
            return scope[name]
    raise KeyError(f"value '{name}' is not defined")


def add_node(
    b: Builder, node: onnx.NodeProto, scopes: list[dict[str, Value]], declared: dict[str, Type | None] | None = None
) -> list[Value]:
    """Append ``node`` to the builder's graph (types inferred, else the declared ones)."""
    operands = [lookup(name, scopes) for name in node.input]
    while operands and operands[-1] is None:
        operands.pop()
    attrs = {a.name: bridge.attr_value_from_proto(a, lambda g: convert_subgraph(g, scopes)) for a in node.attribute}
    outputs = list(node.output)
    while outputs and not outputs[-1]:
        outputs.pop()
    names = [o or f"unused{i}" for i, o in enumerate(outputs)]
    try:
        made = b.node(ember_op_name(node), operands, attrs, num_results=len(outputs), names=names)
    except Exception:
        declared = declared or {}
        if not all(declared.get(o) is not None for o in outputs):
            raise
        made = b.node(ember_op_name(node), operands, attrs, result_types=[declared[o] for o in outputs], names=names)
    for name, value in zip(outputs, made.results):
        if name:
            scopes[-1][name] = value
    return list(made.results)


def case_graph(case) -> Graph:
    """The Ember graph of a single-node case; its outputs are the model's outputs."""
    gp = case.model.graph
    graph = Graph(case.name)
    b = Builder(graph)
    scope: dict[str, Value] = {}
    for vi in gp.input:
        scope[vi.name] = b.param(vi.name, bridge.type_from_proto(vi.type))
    for init in gp.initializer:
        scope[init.name] = b.constant(bridge.array_from_proto(init), name=init.name)
    add_node(b, gp.node[0], [scope])
    graph.outputs = [scope[vi.name] for vi in gp.output]
    return graph


# ----------------------------------------------------------------------------- comparing


def expected_types(case) -> list[Type | None]:
    return [bridge.type_from_proto(vi.type) for vi in case.model.graph.output]


def types_agree(inferred: Type | None, expected: Type | None) -> bool:
    """Inference may know less than the model declares, but must not contradict it."""
    if inferred is None or expected is None:
        return inferred is not None or expected is None
    if isinstance(inferred, (SequenceType, OptionalType)):
        return (
            type(inferred) is type(expected) and types_agree(inferred.elem, expected.elem)
            if inferred.elem is not None
            else type(inferred) is type(expected)
        )
    return inferred.is_compatible(expected)


def as_value(value):
    """A data-set value as the interpreter holds it (TensorProtos of exotic dtypes become arrays)."""
    if isinstance(value, onnx.TensorProto):
        return bridge.array_from_proto(value)
    if isinstance(value, list):
        return [as_value(v) for v in value]
    return value


def case_data(case, data_set: int = 0) -> tuple[dict, list]:
    """Input values by parameter name and the expected outputs (sequences as lists, empty optionals None)."""
    values, expected = case.data_sets[data_set]
    inputs = {vi.name: as_value(v) for vi, v in zip(case.model.graph.input, values)}
    return inputs, [as_value(v) for v in expected]


def assert_values_close(actual, expected, rtol: float, atol: float, what: str) -> None:
    """Recursive comparison of tensors, sequences (lists) and optionals (None)."""
    if isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), (
            f"{what}: expected a sequence of {len(expected)}"
        )
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_values_close(a, e, rtol, atol, f"{what}[{i}]")
        return
    if expected is None:
        assert actual is None, f"{what}: expected an empty optional, got {actual!r}"
        return
    expected, actual = np.asarray(expected), np.asarray(actual)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != expected {expected.shape}"
    if expected.dtype.kind in "OUS":
        np.testing.assert_array_equal(actual.astype(object), expected.astype(object), err_msg=what)
        return
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != expected {expected.dtype}"
    if DType.from_np(expected.dtype).is_float:  # includes ml_dtypes floats (bf16, f8, f4)
        np.testing.assert_allclose(
            actual.astype(np.float64), expected.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True, err_msg=what
        )
        return
    if expected.dtype.kind != "c":
        np.testing.assert_array_equal(actual, expected, err_msg=what)
        return
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


def check_case(case, *, values: bool = True) -> Graph:
    """Build, type-check and (unless ``values`` is False) run one case against its expected outputs."""
    graph = case_graph(case)
    verify(graph)
    for i, (v, want) in enumerate(zip(graph.outputs, expected_types(case))):
        assert types_agree(v.type, want), f"{case.name}: output {i} inferred {v.type}, model says {want}"
    inputs, expected = case_data(case)
    got = interpret(graph, inputs)
    for i, (v, want) in enumerate(zip(graph.outputs, expected)):
        actual = got[v.name]
        if isinstance(v.type, TensorType) and want is not None:
            assert types_agree(v.type, TensorType.of(np.asarray(want))), (
                f"{case.name}: output {i} inferred {v.type}, data is {TensorType.of(np.asarray(want))}"
            )
        if values:
            assert_values_close(actual, want, case.rtol, case.atol, f"{case.name} output {i} (%{v.name})")
        elif want is not None and not isinstance(want, list):
            assert np.asarray(actual).shape == np.asarray(want).shape
            assert np.asarray(actual).dtype == np.asarray(want).dtype
    return graph
