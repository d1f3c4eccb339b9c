"""Traits are promises that passes rely on; check them against the reference kernels.

- ``commutative``: reversing the operands does not change the result;
- ``elementwise``: the result has the broadcast shape of the operands (or the
  first operand's shape, for per-axis parameters such as quantization scales);
- ``reduction``: the result has no more dims than the first operand;
- ``shape-only``: the result depends on operand shapes, not values;
- ``random`` ops are never ``pure``.
Each check runs on the onnx node-suite cases that Ember takes (see onnx_node_cases.py).
"""

import warnings

import numpy as np
import pytest
from onnx_node_cases import case_data, case_graph, usable_cases

from compiler import TensorType, Trait, all_ops, interpret


def ops_with(trait: Trait) -> list[str]:
    return [op.name for op in all_ops() if op.has(trait)]


def run(graph, inputs) -> list:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        out = interpret(graph, inputs)
    return [out[v.name] for v in graph.outputs]


def tensor_cases(op: str) -> list:
    """Cases whose inputs are all tensors (no sequences or optionals)."""
    found = [c for c in usable_cases(op) if all(isinstance(p.type, TensorType) for p in case_graph(c).params)]
    return found


def test_every_trait_check_has_cases():
    for trait in (Trait.COMMUTATIVE, Trait.ELEMENTWISE, Trait.REDUCTION, Trait.SHAPE_ONLY):
        assert any(tensor_cases(op) for op in ops_with(trait)), trait


def test_random_ops_are_not_pure():
    assert ops_with(Trait.RANDOM)
    for op in all_ops():
        if op.has(Trait.RANDOM):
            assert not op.has(Trait.PURE), op.name


@pytest.mark.parametrize("op", ops_with(Trait.COMMUTATIVE))
def test_commutative_ops_ignore_operand_order(op):
    checked = 0
    for case in tensor_cases(op):
        graph = case_graph(case)
        node = graph.outputs[0].producer
        if len(node.operands) < 2 or None in node.operands:
            continue
        inputs, _ = case_data(case)
        before = run(graph, inputs)
        node.operands = list(reversed(node.operands))
        after = run(graph, inputs)
        for a, b in zip(before, after):
            np.testing.assert_allclose(a, b, rtol=1e-6, err_msg=case.name)
        checked += 1
    assert checked, f"no case of {op} has two or more operands"


@pytest.mark.parametrize("op", ops_with(Trait.ELEMENTWISE))
def test_elementwise_ops_keep_the_broadcast_shape(op):
    cases = tensor_cases(op)
    if not cases:
        pytest.skip(f"the suite has no tensor case of {op}")
    for case in cases:
        graph = case_graph(case)
        inputs, _ = case_data(case)
        shapes = [np.shape(inputs[p.name]) for p in graph.params]
        first = np.shape(inputs[graph.outputs[0].producer.operands[0].name]) if graph.params else ()
        try:
            expected = np.broadcast_shapes(*shapes)
        except ValueError:  # per-axis parameters (e.g. quantization scales) do not broadcast
            expected = first
        for out in run(graph, inputs):
            assert np.shape(out) in (expected, first), f"{case.name}: {np.shape(out)} from inputs {shapes}"


@pytest.mark.parametrize("op", ops_with(Trait.REDUCTION))
def test_reductions_do_not_add_dims(op):
    for case in tensor_cases(op):
        graph = case_graph(case)
        inputs, _ = case_data(case)
        data = inputs[graph.outputs[0].producer.operands[0].name]
        for out in run(graph, inputs):
            assert np.ndim(out) <= np.ndim(data), case.name


@pytest.mark.parametrize("op", ops_with(Trait.SHAPE_ONLY))
def test_shape_only_ops_ignore_values(op):
    cases = tensor_cases(op)
    assert cases
    for case in cases:
        graph = case_graph(case)
        inputs, _ = case_data(case)
        zeros = {k: np.zeros_like(v) for k, v in inputs.items()}
        for a, b in zip(run(graph, inputs), run(graph, zeros)):
            np.testing.assert_array_equal(a, b, err_msg=case.name)
