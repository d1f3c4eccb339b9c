"""Linear-algebra lowerings (codegen/tvm/lower/linalg.py) compiled: Det, and half-precision MatMul
(with the Softmax after it) rounding exactly like the reference.

Each model is one node with declared output shapes, as exported models with static shapes have;
parameters are model inputs where the op allows it. The compiled library must give the
interpreter's answer for every value consistent with those shapes, and fail the run with a message
naming the op, never a wrong result, for a value that is not."""

from __future__ import annotations

import numpy as np
import pytest
from compiled_checks import check_against_interpreter, node_model
from onnx import TensorProto, helper

F, I64, H = TensorProto.FLOAT, TensorProto.INT64, TensorProto.FLOAT16


@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 4), (1, 1)])
def test_det(shape):
    x = np.random.default_rng(8).standard_normal(shape).astype(np.float32)
    x2 = x.copy()
    if len(shape) == 3:
        x2[1, 2] = x2[1, 0]  # a singular matrix
    check_against_interpreter(
        node_model("Det", [("x", F, list(shape))], [("y", F, list(shape[:-2]))]), {"x": x2}, rtol=1e-4, atol=1e-5
    )


# Half-precision MatMul and Softmax round like the reference ----------------------------------------------

BF16 = TensorProto.BFLOAT16


@pytest.mark.parametrize("elem", [H, BF16])
def test_half_matmul_add_softmax_match_reference_exactly(elem):
    """fp16/bf16 MatMul accumulates in float32 and rounds once; Softmax rounds each step as numpy does
    (bf16: element-by-element bf16 sums). A fused Add after the MatMul must see the rounded product."""
    import ml_dtypes

    dtype = np.float16 if elem == H else ml_dtypes.bfloat16
    rng = np.random.default_rng(13)
    nodes = [
        helper.make_node("MatMul", ["a", "b"], ["p"]),
        helper.make_node("Add", ["p", "c"], ["q"]),
        helper.make_node("Softmax", ["q"], ["y"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "attn",
        [
            helper.make_tensor_value_info("a", elem, [2, 4, 16]),
            helper.make_tensor_value_info("b", elem, [2, 16, 6]),
            helper.make_tensor_value_info("c", elem, [4, 6]),
        ],
        [helper.make_tensor_value_info("y", elem, [2, 4, 6])],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    feeds = {
        "a": rng.standard_normal((2, 4, 16)).astype(dtype),
        "b": rng.standard_normal((2, 16, 6)).astype(dtype),
        "c": (rng.standard_normal((4, 6)) * 2).astype(dtype),
    }
    check_against_interpreter(m, feeds, rtol=0, atol=0)
