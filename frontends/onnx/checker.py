"""onnx's checker as the validation gate runs it (``run_checker``).

The checker sees the model through ``_checkable``: external tensors become empty stand-ins (the
gate checks their locations inside the model's folder; the checker would look relative to the
working directory), untyped values and unknown ranks get stand-in types, and an unsorted graph
is checked in Ember's order.  Its first error is mapped to the node it names.
"""

from __future__ import annotations

import re
from typing import Callable, Iterator

import onnx

from compiler.diagnostics import EmberError
from compiler.onnx_functions import normalise_domain

# checker errors left to the importer: ones it reports itself naming the node (the checker names
# only the value), and forms Ember accepts on purpose (deprecated ops and old forms it normalises)
LEFT_TO_THE_IMPORTER = (
    "single static assignment",
    "is not an output of any node",
    "is not output of any previous",
    "Mismatched attribute type",
    "is deprecated in domain_version",
    "not in allowed output sizes",
    "in initializer but not in graph input",  # IR < 4 wanted both; Ember reads either form
)

_CONTEXT = re.compile(r"Name:\s*(\S*)\s+OpType:\s*(\S+)", re.IGNORECASE)
_NO_OP = re.compile(r"No (?:Op|opset) registered for (\S+) with domain_version of (\d+)")


def run_checker(
    model: onnx.ModelProto, file: str, converts: Callable[[str, str], bool]
) -> tuple[str, onnx.NodeProto | None] | None:
    """onnx.checker.check_model(full_check=False) on the model (as ``_checkable`` shows it).

    Errors that Ember reports itself with more context (names assigned twice, outputs never
    produced) are left to the importer.
    """
    checked = _checkable(model)
    try:
        try:
            onnx.checker.check_model(checked, full_check=False)
        except onnx.checker.ValidationError as exc:
            if "topologically sorted" not in str(exc):
                raise
            # Ember sorts the nodes of an unsorted graph itself (a cycle is its own error): check in order
            onnx.checker.check_model(_sorted(checked, file), full_check=False)
    except EmberError as error:
        return error.message, _find_node(model, error.node or "", error.op or "")
    except onnx.checker.ValidationError as exc:
        text = str(exc)
        head = text.split("\n\n==> Context")[0].strip()
        context = _CONTEXT.search(text)
        no_op = _NO_OP.search(head)
        node = _find_node(model, context.group(1), context.group(2)) if context else None
        if no_op and node is not None and converts(normalise_domain(node.domain), node.op_type):
            return None  # an op Ember converts on purpose (a normaliser for a non-standard op)
        if any(text in head for text in LEFT_TO_THE_IMPORTER):
            return None
        return f"onnx checker: {head}", node
    except Exception as exc:  # the checker itself tripping: still an Ember error, never a traceback
        return f"onnx checker failed: {type(exc).__name__}: {exc}", None
    return None


def _sorted(model: onnx.ModelProto, file: str) -> onnx.ModelProto:
    from .loader import sort_nodes

    nodes = sort_nodes(model.graph.node, file)
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    del copy.graph.node[:]
    copy.graph.node.extend(nodes)
    return copy


def _find_node(model: onnx.ModelProto, name: str, op_type: str) -> onnx.NodeProto | None:
    def walk(graph):
        for node in graph.node:
            yield node
            for attr in node.attribute:
                for g in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs):
                    yield from walk(g)

    for node in walk(model.graph):
        if node.op_type == op_type and (node.name == name or (not name and not node.name)):
            return node
    return None


def _external_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    from onnx.external_data_helper import _get_all_tensors

    for t in _get_all_tensors(model):
        if t.data_location == onnx.TensorProto.EXTERNAL:
            yield t


def _value_infos(graph: onnx.GraphProto) -> Iterator[onnx.ValueInfoProto]:
    yield from graph.input
    yield from graph.output
    yield from graph.value_info
    for node in graph.node:
        for attr in node.attribute:
            for g in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs):
                yield from _value_infos(g)


def _unshaped(model: onnx.ModelProto) -> Iterator[onnx.TypeProto]:
    """Untyped values and tensor types without a shape: Ember reads them as unknown, the checker refuses them."""
    for vi in _value_infos(model.graph):
        tp = vi.type
        which = tp.WhichOneof("value")
        if which is None or (which == "tensor_type" and not tp.tensor_type.HasField("shape")):
            yield tp


def _checkable(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model as the checker should see it: external tensors and unknown ranks set aside.

    External data is checked (inside the model's folder) by the walk, but the checker would
    look for it relative to the working directory: external tensors become empty stand-ins.
    A value without a type or a tensor type without a shape (unknown, accepted on purpose) gets
    a stand-in: the checker's structural checks (``full_check=False``) do not compare types.
    """
    if not any(True for _ in _external_tensors(model)) and not any(True for _ in _unshaped(model)):
        return model
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for tp in list(_unshaped(copy)):
        if tp.WhichOneof("value") is None:
            tp.tensor_type.elem_type = onnx.TensorProto.FLOAT  # a stand-in: types are not compared here
        tp.tensor_type.shape.SetInParent()
    for t in _external_tensors(copy):
        t.data_location = onnx.TensorProto.DEFAULT
        del t.external_data[:]
        t.ClearField("raw_data")
        # a stand-in with no elements: the checker only checks the proto's structure here
        del t.dims[:]
        t.dims.append(0)
    return copy
