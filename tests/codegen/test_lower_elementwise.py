"""Elementwise lowerings (codegen/tvm/lower/elementwise.py) with run-time operands: Dropout's
training mode and ratio.

Each model is one node with declared output shapes, as exported models with static shapes have;
parameters are model inputs where the op allows it. The compiled library must give the
interpreter's answer for every value consistent with those shapes, and fail the run with a message
naming the op, never a wrong result, for a value that is not."""

from __future__ import annotations

import numpy as np
import pytest
from compiled_checks import check, check_against_interpreter, compiled_and_reference, node_model, param_model, refused
from onnx import TensorProto, helper

from frontends.onnx.backend import EmberBackend

F, I64 = TensorProto.FLOAT, TensorProto.INT64


X = np.arange(24, dtype=np.float32).reshape(2, 3, 4)


def test_dropout_training_mode_and_ratio_at_run_time():
    """Training with ratio 0 is the identity; a nonzero ratio in training mode fails the run."""
    inputs = [("x", F, [2, 3, 4]), ("r", F, []), ("t", TensorProto.BOOL, [])]
    rep, ref = compiled_and_reference(param_model("Dropout", inputs, [2, 3, 4]))
    for ratio, training in ((0.0, True), (0.7, False), (0.0, False)):
        check(rep, ref, [X, np.array(ratio, np.float32), np.array(training)])
    refused(rep, [X, np.array(0.5, np.float32), np.array(True)], ["Dropout", "training mode"])


def test_dropout_constant_training_mode_with_a_ratio_refused_at_compile_time():
    from codegen import CodegenError

    training = helper.make_tensor("t", TensorProto.BOOL, [], [True])
    node = helper.make_node("Dropout", ["x", "", "t"], ["y"])
    graph = helper.make_graph(
        [node],
        "dropout",
        [helper.make_tensor_value_info("x", F, [2, 3, 4])],
        [helper.make_tensor_value_info("y", F, [2, 3, 4])],
        initializer=[training],
    )
    with pytest.raises(CodegenError, match="Dropout: training mode"):
        EmberBackend.prepare(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), compile=True)


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_swish_is_lowered_with_its_alpha(alpha):
    """Swish (opset 24) has its own kernel: ``simplify`` turns a written-out SiLU into it, and a
    graph optimised twice keeps it inside a fused group, where no function expansion reaches."""
    model = node_model("Swish", [("x", F, [2, 3, 5])], [("y", F, [2, 3, 5])], opset=24, alpha=alpha)
    x = np.linspace(-30, 30, 30, dtype=np.float32).reshape(2, 3, 5)
    x[0, 0, :3] = [np.nan, np.inf, -np.inf]  # -inf: x * sigmoid(x) is -inf * 0, NaN
    check_against_interpreter(model, [x])
