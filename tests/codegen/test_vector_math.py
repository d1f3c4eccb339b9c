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


AVX2 = "x86-64:features=+avx2+fma,vector_bits=256"  # no vscalefps: the clamped form


@pytest.mark.parametrize("target", [None, AVX2], ids=["host", "avx2"])
@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_swish_matches_float64_and_keeps_nan(alpha, target):
    """``swish_f32`` drops exp's NaN and range selects (the division carries them): still within a
    few ulp of float64 everywhere, NaN for NaN and for -inf (as IEEE x * sigmoid(x)), +inf kept, and
    no subnormal results; both forms (``vscalefps`` on AVX-512, the clamped exponent elsewhere)."""
    x = _values()
    model = node_model("Swish", [("x", F, [x.size])], [("y", F, [x.size])], opset=24, alpha=alpha)
    options = {"target": target} if target else {}
    got = EmberBackend.prepare(model, compile=True, **options).run({"x": x})[0]
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


def test_swish_scales_with_vscalefps_on_avx512_only(tmp_path):
    """On AVX-512 SiLU's e^ is scaled by 2^n in one ``vscalefps`` (``ScheduleParams.vector_ldexp``);
    on AVX2 and aarch64 ``llvm.ldexp`` would be a libm ``ldexpf`` call per lane, so the library
    keeps the exponent-bit form there and imports no ``ldexpf``."""
    from compiler import compile as compile_model

    model = node_model("Swish", [("x", F, [1024])], [("y", F, [1024])], opset=24)
    for target, scaled in (("x86-64:features=+avx2+fma+avx512f,vector_bits=512", True), (AVX2, False)):
        path = str(tmp_path / f"swish_{scaled}.so")
        compile_model(model, path, target=target)
        asm = subprocess.run(["objdump", "-d", path], capture_output=True, text=True, check=True).stdout
        symbols = subprocess.run(["nm", "-D", path], capture_output=True, text=True, check=True).stdout
        assert ("vscalefps" in asm) == scaled, target
        assert "ldexp" not in symbols and "expf" not in symbols
