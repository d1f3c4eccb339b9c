"""Groups made by the ``fuse`` pass compile to one kernel call each, and the libraries still match
the interpreter: SiLU, written-out HardSwish and residual Add + Relu after a Conv, reductions with
elementwise producers and epilogues, and a group with two results."""

from __future__ import annotations

import numpy as np
import pytest
from compiled_checks import check_against_interpreter
from onnx import TensorProto, helper, numpy_helper

from codegen.plan import build_plan
from codegen.tvm.registry import get_lowering
from compiler.driver import prepare_for_codegen
from frontends.onnx import import_model

F = TensorProto.FLOAT
RNG = np.random.default_rng(0)


def _model(nodes, inputs, outputs, consts=()):
    graph = helper.make_graph(
        nodes,
        "fused",
        [helper.make_tensor_value_info(n, F, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, F, s) for n, s in outputs],
        initializer=[numpy_helper.from_array(np.asarray(a), n) for n, a in consts],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def _conv(out="c"):
    w = (RNG.standard_normal((8, 8, 3, 3)) * 0.2).astype(np.float32)
    b = RNG.standard_normal(8).astype(np.float32)
    return helper.make_node("Conv", ["x", "w", "b"], [out], pads=[1, 1, 1, 1]), [("w", w), ("b", b)]


def silu_model():
    conv, consts = _conv()
    nodes = [conv, helper.make_node("Sigmoid", ["c"], ["s"]), helper.make_node("Mul", ["c", "s"], ["y"])]
    return _model(nodes, [("x", [1, 8, 10, 10])], [("y", [1, 8, 10, 10])], consts)


def hardswish_model():
    conv, consts = _conv()
    nodes = [
        conv,
        helper.make_node("Add", ["c", "three"], ["a"]),
        helper.make_node("Clip", ["a", "zero", "six"], ["k"]),
        helper.make_node("Mul", ["c", "k"], ["m"]),
        helper.make_node("Div", ["m", "six"], ["y"]),
    ]
    consts += [("three", np.float32(3)), ("zero", np.float32(0)), ("six", np.float32(6))]
    return _model(nodes, [("x", [1, 8, 10, 10])], [("y", [1, 8, 10, 10])], consts)


def residual_model():
    """Relu(x) feeds both the Conv and the residual Add: a diamond from the first Relu."""
    conv, consts = _conv()
    conv.input[0] = "r"
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        conv,
        helper.make_node("Add", ["c", "r"], ["a"]),
        helper.make_node("Relu", ["a"], ["y"]),
    ]
    return _model(nodes, [("x", [1, 8, 10, 10])], [("y", [1, 8, 10, 10])], consts)


def reduction_model():
    """A reduction with elementwise producers and epilogues: e = Exp(x - max(x)), y = e / sum(e * x)."""
    nodes = [
        helper.make_node("ReduceMax", ["x", "axes"], ["mx"], keepdims=1),
        helper.make_node("Sub", ["x", "mx"], ["d"]),
        helper.make_node("Exp", ["d"], ["e"]),
        helper.make_node("Mul", ["e", "x"], ["ex"]),
        helper.make_node("ReduceSum", ["ex", "axes"], ["s"], keepdims=1),
        helper.make_node("Div", ["e", "s"], ["y"]),
    ]
    return _model(nodes, [("x", [6, 40])], [("y", [6, 40])], [("axes", np.array([1], np.int64))])


def two_results_model():
    nodes = [
        helper.make_node("Tanh", ["x"], ["t"]),
        helper.make_node("Sigmoid", ["t"], ["s"]),
        helper.make_node("Mul", ["t", "s"], ["y"]),
    ]
    return _model(nodes, [("x", [4, 33])], [("t", [4, 33]), ("y", [4, 33])])


# model, kernel calls with the fuse pass's groups, kernel calls with one per node (fusion off)
CASES = {
    "silu": (silu_model, 1, 2),  # O2's simplify makes x * Sigmoid(x) one Swish (lowered): Conv, Swish
    "hardswish": (hardswish_model, 1, 2),  # O2's simplify makes the written-out form one HardSwish
    "residual": (residual_model, 2, 4),
    "reduction": (reduction_model, 2, 6),
    "two_results": (two_results_model, 1, 2),  # Tanh, then t * Sigmoid(t) as one Swish
}


def _calls(model, fuse: bool) -> int:
    graph = prepare_for_codegen(import_model(model), "O2")
    return len(build_plan(graph, get_lowering, fuse=fuse).calls)


@pytest.mark.parametrize("name", sorted(CASES))
def test_groups_become_one_kernel_call_each(name):
    make, fused, unfused = CASES[name]
    assert _calls(make(), fuse=True) == fused
    assert _calls(make(), fuse=False) == unfused


@pytest.mark.parametrize("name", sorted(CASES))
def test_fused_libraries_match_the_interpreter(name):
    model = CASES[name][0]()
    shapes = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    feeds = {n: RNG.standard_normal(s).astype(np.float32) for n, s in shapes.items()}
    check_against_interpreter(model, feeds, rtol=1e-4, atol=1e-5)


def test_a_two_result_group_is_one_call_writing_both_buffers():
    graph = prepare_for_codegen(import_model(two_results_model()), "O2")
    (call,) = build_plan(graph, get_lowering).calls
    assert len(call.outputs) == 2 and len(call.spec.outputs) == 2
    assert len(call.node_names) == len(call.spec.ops) == 2
