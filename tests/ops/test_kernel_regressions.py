"""Regression cases for reference-kernel bugs found outside the node suite.

Bugs in code owned elsewhere (the family modules of compiler/ops, reference_onnx.py) run
as xfail with the reason; once fixed they report XPASS: then drop the marker.
"""

import numpy as np
import pytest

from compiler import Builder, DType, Graph, TensorType, interpret


def run_unary(op: str, x: np.ndarray) -> np.ndarray:
    g = Graph()
    b = Builder(g)
    p = b.param("x", TensorType.of(x))
    g.outputs = [b.op(op, [p], names=["y"])]
    return interpret(g, {"x": x})["y"]


@pytest.mark.xfail(
    strict=False,
    reason="onnx.reference's Softsign writes into np.abs(x), which is a numpy scalar "
    "for 0-d input; Ember's kernels need a Softsign that handles 0-d arrays",
)
def test_softsign_on_a_scalar():
    y = run_unary("Softsign", np.array(3.0, np.float32))
    assert y.shape == () and float(y) == 0.75


@pytest.mark.parametrize("dtype", [DType.FLOAT16, DType.FLOAT32, DType.FLOAT64])
def test_softsign_on_tensors(dtype):
    x = np.array([-3.0, 0.0, 1.0], dtype.np)
    np.testing.assert_allclose(run_unary("Softsign", x), x / (1 + np.abs(x)), rtol=1e-3)
