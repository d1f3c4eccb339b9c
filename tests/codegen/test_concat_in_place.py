"""In-place Concat (``codegen.plan._Planner.concat_in_place``): the kernels that compute a channel
Concat's operands write their slices of its buffer, and the Concat makes no kernel call."""

from __future__ import annotations

import numpy as np
import pytest
from compiled_checks import check_against_interpreter
from onnx import TensorProto, helper, numpy_helper

from codegen.memory import plan_memory
from codegen.plan import build_plan
from codegen.tvm.registry import get_lowering
from compiler.driver import prepare_for_codegen
from frontends.onnx import import_model

F = TensorProto.FLOAT


def _fire(channels=(16, 16), hw=(8, 8), batch=1, extra_outputs=(), concat_inputs=("a", "b"), axis=1):
    """x -> Relu(Conv1x1) 'a' and Relu(Conv3x3) 'b' -> Concat(axis) 'y' (a SqueezeNet fire module)."""
    rng = np.random.default_rng(3)
    inits, nodes = [], []
    for name, k, out in (("a", 1, channels[0]), ("b", 3, channels[1])):
        weight = (rng.standard_normal((out, 4, k, k)) * 0.3).astype(np.float32)
        inits.append(numpy_helper.from_array(weight, f"w{name}"))
        nodes.append(helper.make_node("Conv", ["x", f"w{name}"], [f"c{name}"], pads=[k // 2] * 4))
        nodes.append(helper.make_node("Relu", [f"c{name}"], [name]))
    nodes.append(helper.make_node("Concat", list(concat_inputs), ["y"], axis=axis))
    outputs = [helper.make_tensor_value_info("y", F, None)]
    outputs += [helper.make_tensor_value_info(name, F, None) for name in extra_outputs]
    graph = helper.make_graph(
        nodes, "fire", [helper.make_tensor_value_info("x", F, [batch, 4, *hw])], outputs, initializer=inits
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _plan(model):
    return build_plan(prepare_for_codegen(import_model(model), "O2"), get_lowering)


def _concat_calls(plan) -> int:
    return sum(any(op.op == "Concat" for op in call.spec.ops) for call in plan.calls)


def _feeds(model):
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    return {"x": np.random.default_rng(4).standard_normal(shape).astype(np.float32)}


@pytest.mark.parametrize("extra_outputs", [(), ("a",)])
def test_channel_concat_of_kernel_results_is_written_in_place(extra_outputs):
    model = _fire(extra_outputs=extra_outputs)
    plan = _plan(model)
    assert _concat_calls(plan) == 0
    by_name = {buf.name: buf for buf in plan.buffers}
    y, a, b = by_name["y"], by_name["a"], by_name["b"]
    assert a.storage == b.storage == y.storage
    assert (a.offset, b.offset) == (y.offset, y.offset + a.nbytes)
    memory = plan_memory(plan)
    assert memory.arena_bytes >= memory.offsets[y.storage] + y.offset + y.nbytes
    check_against_interpreter(model, _feeds(model))


@pytest.mark.parametrize(
    "why,kwargs",
    [
        ("a slice that starts unaligned (3 channels of 3 x 3 floats)", dict(channels=(3, 5), hw=(3, 3))),
        ("dims before the axis above 1 (batch 2)", dict(batch=2)),
        ("one operand twice", dict(concat_inputs=("a", "b", "a"))),
        ("a graph input as an operand", dict(concat_inputs=("a", "x"), channels=(16, 16))),
        ("the last axis", dict(axis=3)),
    ],
)
def test_concat_stays_a_kernel_where_slices_cannot_alias(why, kwargs):
    model = _fire(**kwargs)
    plan = _plan(model)
    assert _concat_calls(plan) == 1, why
    assert all(buf.offset == 0 for buf in plan.buffers)
    check_against_interpreter(model, _feeds(model))
