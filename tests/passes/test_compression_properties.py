"""The lossy compression passes on random graphs: the IR stays valid, I/O types stay, and values move
no further than the pass allows (16-bit rounding for the float conversions)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from compiler.ir.interpreter import interpret_list
from compiler.ir.verifier import verify
from compiler.passes import available_passes, get_pass
from compiler.testing import graph_and_inputs
from compiler.testing.assertions import clone_graph

LOSSY = [name for name in available_passes() if getattr(get_pass(name), "lossy", False)]
# ops whose error stays proportional to the inputs' (no cancellation-prone Sub/Div, no Exp blow-up)
WELL_CONDITIONED = ["Add", "Mul", "Relu", "Abs", "Neg", "Sigmoid", "Tanh", "MatMul", "Max", "Min"]
TOLERANCE = {"convert-float16": 1e-2, "convert-bfloat16": 6e-2}


@pytest.mark.parametrize("pass_name", LOSSY)
def test_lossy_pass_keeps_graph_valid_and_values_close(pass_name):
    pass_ = get_pass(pass_name)()
    tolerance = TOLERANCE.get(pass_name)

    @settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(graph_and_inputs(ops=WELL_CONDITIONED, max_nodes=5))
    def check(case):
        graph, inputs = case
        inputs = {k: np.clip(v, -4, 4) if np.issubdtype(v.dtype, np.floating) else v for k, v in inputs.items()}
        before = interpret_list(graph, inputs)
        after_graph = clone_graph(graph)
        pass_(after_graph)
        verify(after_graph)
        assert [p.type for p in after_graph.params] == [p.type for p in graph.params]
        assert [v.type.dtype for v in after_graph.outputs] == [v.type.dtype for v in graph.outputs]
        after = interpret_list(after_graph, inputs)
        if tolerance is None:
            return
        for b, a in zip(before, after):
            b, a = np.asarray(b, dtype=np.float64), np.asarray(a, dtype=np.float64)
            scale = max(1.0, float(np.abs(b).max(initial=0.0)))
            assert np.allclose(a, b, rtol=tolerance, atol=tolerance * scale, equal_nan=True)

    check()
