"""float32 Softmax over the last axis, compiled by rows (``lower/nn/normalization.py``, the
``softmax`` schedule): vector partial maxima and sums, exp once per element, the output division in
whole vectors plus a scalar tail. Compared with the interpreter on row widths below, at and past the
vector width, on rows holding -inf, +inf and NaN, and with an attention-style prologue fused in."""

from __future__ import annotations

import numpy as np
import pytest
from compiled_checks import check_against_interpreter, node_model, only_kernel
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT


def _schedule_used(model) -> str:
    from codegen.tvm.kernel import build_kernel_module

    spec, target = only_kernel(model)
    return build_kernel_module(spec, "k", target.to_tvm(), target.schedule_params())[1]


@pytest.mark.parametrize("shape", [(3, 5), (2, 4, 16), (12, 7, 197), (1, 2, 3, 40)])
def test_softmax_rows_match_the_interpreter(shape):
    model = node_model("Softmax", [("x", F, list(shape))], [("y", F, list(shape))], axis=-1)
    assert _schedule_used(model) == "softmax"
    x = (np.random.default_rng(len(shape)).standard_normal(shape) * 20).astype(np.float32)
    check_against_interpreter(model, {"x": x}, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("target", ["x86-64:vector_bits=256", "x86-64:vector_bits=512", "aarch64"])
def test_softmax_rows_schedule_at_every_vector_width(target):
    """The partial maxima and sums are 16 lanes wide whatever the vector (2 AVX2, 4 NEON vectors):
    a 197-wide row's whole runs are counted in those, its exponentials' in vectors. Counting both
    in vectors cut the 13-run loop after 24 and TVM refused the schedule (AVX2 and NEON fell back
    to the generic one)."""
    import tvm
    from tvm import te

    from codegen.tvm.kernel import spec_to_te
    from codegen.tvm.schedule import apply_schedule

    shape = [12, 7, 197]
    model = node_model("Softmax", [("x", F, shape)], [("y", F, shape)], axis=-1)
    spec, tgt = only_kernel(model, target)
    params = tgt.schedule_params()
    placeholders, outputs = spec_to_te(spec, [], params)
    mod = tvm.IRModule({"main": te.create_prim_func(placeholders + outputs)})
    assert apply_schedule(mod, "softmax", params)[1] == "softmax"


def test_softmax_rows_with_infinities_and_nan():
    """A NaN or +inf makes its whole row NaN, -inf entries get 0, as numpy's reference computes."""
    x = np.zeros((4, 20), np.float32)
    x[0, 3] = np.nan
    x[1, 17] = np.inf
    x[2, :5] = -np.inf
    x[3] = np.linspace(-100, 100, 20)
    model = node_model("Softmax", [("x", F, [4, 20])], [("y", F, [4, 20])], axis=1)
    rep = check_against_interpreter(model, {"x": x}, rtol=1e-5, atol=1e-7)
    y = rep.run({"x": x})[0]
    assert np.isnan(y[0]).all() and np.isnan(y[1]).all() and (y[2, :5] == 0).all()


def test_attention_scores_fuse_into_the_softmax_kernel():
    """Scale and mask before Softmax (attention's scores) fuse into the softmax kernel's loads."""
    rng = np.random.default_rng(3)
    mask = numpy_helper.from_array(np.where(rng.random((1, 50)) < 0.2, -1e4, 0).astype(np.float32), "m")
    scale = numpy_helper.from_array(np.array(0.125, np.float32), "s")
    nodes = [
        helper.make_node("Mul", ["x", "s"], ["a"]),
        helper.make_node("Add", ["a", "m"], ["b"]),
        helper.make_node("Softmax", ["b"], ["y"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "scores",
        [helper.make_tensor_value_info("x", F, [4, 50, 50])],
        [helper.make_tensor_value_info("y", F, [4, 50, 50])],
        initializer=[mask, scale],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert _schedule_used(model) == "softmax"
    check_against_interpreter(model, {"x": rng.standard_normal((4, 50, 50)).astype(np.float32) * 8})


@pytest.mark.parametrize("shape", [(3, 5), (12, 7, 197), (1, 80, 800)])
def test_log_softmax_rows_match_the_interpreter(tmp_path, shape):
    """float32 LogSoftmax over the last axis takes the same rows (x - max - log(sum)): vectorised
    exponentials where topi's form made a libm ``expf`` call per value (a CTC head's 80 x 8000
    LogSoftmax: 2.54 -> 0.27 ms, Zen 4, 1 thread); -inf, +inf and NaN as the interpreter has them."""
    import subprocess

    from compiler import compile as compile_model
    from frontends.onnx.backend import EmberBackend

    model = node_model("LogSoftmax", [("x", F, list(shape))], [("y", F, list(shape))], axis=-1)
    assert _schedule_used(model) == "softmax"
    x = (np.random.default_rng(len(shape)).standard_normal(shape) * 5).astype(np.float32)
    check_against_interpreter(model, {"x": x}, rtol=1e-5, atol=1e-5)
    # spread wider, exp(x - max) underflows where the interpreter (ONNX's reference: log of the
    # softmax) gives -inf; x - max - log(sum) is the log-probability itself, as in float64
    wide = x.astype(np.float64) * 8
    shifted = wide - wide.max(axis=-1, keepdims=True)
    want = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    got = EmberBackend.prepare(model, compile=True).run({"x": wide.astype(np.float32)})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    if shape == (3, 5):
        x[0, 1], x[1, :] = -np.inf, -np.inf
        x[2, 2] = np.nan
        check_against_interpreter(model, {"x": x}, rtol=1e-5, atol=1e-5)
    path = str(tmp_path / "log_softmax.so")
    compile_model(model, path)
    symbols = subprocess.run(["nm", "-D", path], capture_output=True, text=True, check=True).stdout
    assert "expf" not in symbols
