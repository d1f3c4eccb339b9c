"""``frontends.onnx.backend`` follows ``onnx.backend.base.Backend``.

Checks the API surface (prepare/run/run_model/run_node/supports_device), the
input forms a rep accepts, clear errors, ``compile=True`` through codegen, and
that onnx's own ``BackendTest`` runner drives Ember without an adapter.
"""

from __future__ import annotations

import io
import sys
import unittest
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler import EmberError
from frontends.onnx import backend

RNG = np.random.default_rng(3)


def _two_output_model() -> onnx.ModelProto:
    """s = x + w (w an initializer also listed as an input, IR v3 style); d = x - y."""
    w = numpy_helper.from_array(np.full((2, 3), 0.5, np.float32), "w")
    nodes = [helper.make_node("Add", ["x", "w"], ["s"]), helper.make_node("Sub", ["x", "y"], ["d"])]
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3]) for n in ("x", "w", "y")]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3]) for n in ("s", "d")]
    graph = helper.make_graph(nodes, "two", vi, outs, [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_supports_cpu_only():
    assert backend.supports_device("CPU")
    assert not backend.supports_device("CUDA")
    assert backend.is_compatible(_two_output_model())
    with pytest.raises(EmberError, match="device 'CUDA' is not supported"):
        backend.prepare(_two_output_model(), device="CUDA")


def test_rep_runs_positional_dict_and_proto_inputs():
    rep = backend.prepare(_two_output_model())
    x, y = RNG.standard_normal((2, 3)).astype(np.float32), RNG.standard_normal((2, 3)).astype(np.float32)
    expected = [x + 0.5, x - y]
    for inputs in ([x, y], {"x": x, "y": y}, [numpy_helper.from_array(x), numpy_helper.from_array(y)]):
        outs = rep.run(inputs)
        assert isinstance(outs, list) and len(outs) == 2
        for e, a in zip(expected, outs):
            np.testing.assert_allclose(a, e, rtol=1e-6)


def test_run_model_and_bad_inputs():
    model = _two_output_model()
    x = np.ones((2, 3), np.float32)
    outs = backend.run_model(model, [x, x])
    np.testing.assert_allclose(outs[1], np.zeros((2, 3)))
    rep = backend.prepare(model)
    with pytest.raises(EmberError, match="missing input.*y"):
        rep.run([x])
    with pytest.raises(EmberError, match="got 3 inputs, the model takes 2"):
        rep.run([x, x, x])
    with pytest.raises(EmberError, match="input 'y'.*dtype"):
        rep.run([x, x.astype(np.float64)])


def test_run_node_types_inputs_from_values():
    node = helper.make_node("Concat", ["a", "b"], ["c"], axis=1)
    a, b = np.ones((2, 1), np.int64), np.zeros((2, 2), np.int64)
    (c,) = backend.run_node(node, [a, b])
    np.testing.assert_array_equal(c, np.concatenate([a, b], axis=1))
    (c2,) = backend.run_node(node, {"a": a, "b": b}, outputs_info=[(np.int64, (2, 3))])
    np.testing.assert_array_equal(c2, c)


def test_run_node_with_sequence_input():
    node = helper.make_node("SequenceAt", ["s", "i"], ["t"])
    seq = [np.arange(3, dtype=np.float32), np.arange(5, dtype=np.float32)]
    (t,) = backend.run_node(node, [seq, np.array(1, np.int64)])
    np.testing.assert_array_equal(t, seq[1])


def test_compile_true_runs_the_compiled_library():
    rep = backend.prepare(_two_output_model(), compile=True)
    assert rep.compiled is not None
    x, y = RNG.standard_normal((2, 3)).astype(np.float32), RNG.standard_normal((2, 3)).astype(np.float32)
    s, d = rep.run([x, y])
    np.testing.assert_allclose(s, x + 0.5, rtol=1e-6)
    np.testing.assert_allclose(d, x - y, rtol=1e-6)


def test_compile_true_without_codegen_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "codegen", None)  # makes `import codegen` fail
    with pytest.raises(EmberError, match="compile=True needs the code generator"):
        backend.prepare(_two_output_model(), compile=True)


def test_onnx_backend_test_runner_drives_ember():
    """onnx's BackendTest (the official harness) runs a few node cases through the module as is."""
    import onnx.backend.test

    with warnings.catch_warnings():  # generating the suite's data warns about deliberate overflows
        warnings.simplefilter("ignore")
        runner = onnx.backend.test.BackendTest(backend, "ember_backend_runner")
        runner.include(r"^test_(relu|add_bcast|if|sequence_insert_at_back|cast_FLOAT_to_FLOAT8E4M3FN)_cpu$")
    result = unittest.TextTestRunner(stream=io.StringIO(), verbosity=0).run(runner.test_suite)
    ran = result.testsRun - len(result.skipped)
    assert ran == 5, f"expected 5 selected cases, ran {ran}"
    assert result.wasSuccessful(), [str(e) for _, e in result.failures + result.errors]
