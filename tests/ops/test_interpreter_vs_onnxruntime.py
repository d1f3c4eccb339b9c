"""Differential test: the reference interpreter against onnxruntime on random graphs.

Graphs come from ``compiler.testing.strategies`` (float32: onnxruntime lacks
float16/float64 kernels for several of the generated ops), go to ONNX through
the exporter, and must give the same outputs in both.  This checks the
registry's kernels and types where they are used together, including If and
Loop bodies that read outer values.
"""

import numpy as np
import onnxruntime as ort
from hypothesis import HealthCheck, given, settings

from compiler import interpret, print_ir
from compiler.testing.strategies import graph_and_inputs
from frontends.onnx import exporter


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph_and_inputs(max_nodes=8, symbolic=True))
def test_interpreter_matches_onnxruntime(case):
    graph, inputs = case
    model = exporter.export_model(graph)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    fed = {i.name for i in session.get_inputs()}
    got = session.run(None, {k: v for k, v in inputs.items() if k in fed})
    expected = interpret(graph, inputs)
    assert len(got) == len(graph.outputs)
    for value, actual in zip(graph.outputs, got):
        ours = expected[value.name]
        assert np.shape(actual) == np.shape(ours) and np.asarray(actual).dtype == ours.dtype
        np.testing.assert_allclose(
            ours, actual, rtol=1e-4, atol=1e-5, err_msg=f"output %{value.name}\n{print_ir(graph, resources={})}"
        )
