"""The vectorisable float32 exp behind Sigmoid and Swish (``codegen/tvm/lower/vector_math.py``):
accurate over the whole float range, NaN kept, and no scalar libm ``expf`` call left in the library."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from compiled_checks import node_model
from onnx import TensorProto

from frontends.onnx.backend import EmberBackend

F = TensorProto.FLOAT


def _values():
    grid = np.linspace(-100, 100, 40001, dtype=np.float32)
    edges = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 88.3, 88.4, -87.3, -87.4, 1e-30, -1e-30], np.float32)
    return np.concatenate([grid, edges])


def test_sigmoid_matches_float64_and_keeps_nan():
    x = _values()
    model = node_model("Sigmoid", [("x", F, [x.size])], [("y", F, [x.size])])
    rep = EmberBackend.prepare(model, compile=True)
    got = rep.run({"x": x})[0]
    want = 1 / (1 + np.exp(-x.astype(np.float64)))
    finite = ~np.isnan(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=4e-7, atol=1e-37)
    assert np.isnan(got[~finite]).all()


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_swish_matches_float64_and_keeps_nan(alpha):
    """``swish_f32`` drops exp's NaN and range selects (the division carries them): still within a
    few ulp of float64 everywhere, NaN for NaN and for -inf (as IEEE x * sigmoid(x)), +inf kept, and
    no subnormal results."""
    x = _values()
    model = node_model("Swish", [("x", F, [x.size])], [("y", F, [x.size])], opset=24, alpha=alpha)
    got = EmberBackend.prepare(model, compile=True).run({"x": x})[0]
    wide = x.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        want = wide / (1 + np.exp(-alpha * wide))
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=4e-7, atol=1e-35)
    assert np.isnan(got[np.isnan(x)]).all()
    assert got[x == np.inf][0] == np.inf and np.isnan(got[x == -np.inf][0])  # -inf * sigmoid(-inf) = -inf * 0
    tiny = (got != 0) & (np.abs(got) < np.finfo(np.float32).tiny)
    assert not tiny.any(), x[tiny]


def test_sigmoid_library_calls_no_scalar_expf(tmp_path):
    from compiler import compile as compile_model

    path = str(tmp_path / "sigmoid.so")
    compile_model(node_model("Sigmoid", [("x", F, [1024])], [("y", F, [1024])]), path)
    symbols = subprocess.run(["nm", "-D", path], capture_output=True, text=True, check=True).stdout
    assert "expf" not in symbols
