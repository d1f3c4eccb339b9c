"""onnxruntime ``com.microsoft`` fusions import as standard ops and match onnxruntime."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler import EmberError, interpret, verify
from frontends.onnx import import_model

F32 = TensorProto.FLOAT
MS = "com.microsoft"


def run_both(nodes, inputs, outputs, initializers=()):
    graph_proto = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, F32, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, F32, None) for n in outputs],
        initializer=list(initializers),
    )
    model = helper.make_model(graph_proto, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)])
    model.ir_version = 8
    rng = np.random.default_rng(0)
    feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in inputs}
    graph = import_model(model)
    verify(graph)
    assert all(not n.op.startswith(MS) for n in graph.walk())
    ours = interpret(graph, feeds)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for name, expected in zip(outputs, sess.run(outputs, feeds)):
        np.testing.assert_allclose(ours[name], expected, rtol=1e-4, atol=1e-4, err_msg=name)
    return graph


@pytest.mark.parametrize(
    "op, inputs, attrs",
    [
        ("Gelu", ["x"], {}),
        ("BiasGelu", ["x", "b"], {}),
        ("FastGelu", ["x", "b"], {}),
        ("FastGelu", ["x"], {}),
        ("QuickGelu", ["x"], {"alpha": 1.5}),
    ],
)
def test_gelu_family(op, inputs, attrs):
    shapes = {"x": [2, 3, 8], "b": [8]}
    run_both([helper.make_node(op, inputs, ["y"], domain=MS, **attrs)], [(n, shapes[n]) for n in inputs], ["y"])


@pytest.mark.parametrize("attrs", [{}, {"transA": 1}, {"transB": 1, "alpha": 0.5}])
def test_fused_matmul(attrs):
    a_shape = [2, 5, 4] if attrs.get("transA") else [2, 4, 5]
    b_shape = [3, 5] if attrs.get("transB") else [5, 3]
    run_both(
        [helper.make_node("FusedMatMul", ["a", "b"], ["y"], domain=MS, **attrs)],
        [("a", a_shape), ("b", b_shape)],
        ["y"],
    )


def test_skip_layer_norm_with_sum_output():
    rng = np.random.default_rng(1)
    params = [numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), n) for n in ("g", "be", "bi")]
    node = helper.make_node(
        "SkipLayerNormalization", ["x", "s", "g", "be", "bi"], ["y", "", "", "sum"], domain=MS, epsilon=1e-5
    )
    run_both([node], [("x", [2, 3, 8]), ("s", [2, 3, 8])], ["y", "sum"], params)


def test_fused_matmul_batch_transpose_refused():
    node = helper.make_node("FusedMatMul", ["a", "b"], ["y"], domain=MS, transBatchA=1, name="fm")
    graph_proto = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("a", F32, [2, 3, 4]), helper.make_tensor_value_info("b", F32, [4, 2])],
        [helper.make_tensor_value_info("y", F32, None)],
    )
    model = helper.make_model(graph_proto, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)])
    with pytest.raises(EmberError, match="transBatchA") as info:
        import_model(model)
    assert info.value.node == "fm" and info.value.op == "com.microsoft.FusedMatMul"
