"""Compiled libraries: outputs keep their names and order (an output listed twice comes back twice,
as onnxruntime returns it), and an instance used from several threads never gives a wrong answer
(the C entry refuses a concurrent run with ERR_BUSY; the Python ``Model`` serialises its calls)."""

from __future__ import annotations

import ctypes
import threading

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import compiler
from compiler.ir.interpreter import interpret_list
from compiler.pipeline import run_pipeline
from compiler.runtime import RuntimeLoadError, load
from frontends.onnx import import_model

ERR_BUSY = 7


def _outputs_model() -> onnx.ModelProto:
    """``y = Squeeze(Unsqueeze(x))`` (O2 folds it to ``x``), ``r = Relu(x)``; outputs y, r, y."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3]) for n in ("y", "r", "y")]
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [0])
    nodes = [
        helper.make_node("Unsqueeze", ["x", "axes"], ["u"]),
        helper.make_node("Squeeze", ["u", "axes"], ["y"]),
        helper.make_node("Relu", ["x"], ["r"]),
    ]
    graph = helper.make_graph(nodes, "outputs", [x], outs, [axes])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("pipeline", ["O0", "O2"])
def test_compiled_outputs_keep_names_order_and_repeats(tmp_path, pipeline):
    ort = pytest.importorskip("onnxruntime")
    model = _outputs_model()
    x = np.array([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]], np.float32)
    expected = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})
    assert len(expected) == 3
    lib = str(tmp_path / "m.so")
    compiler.compile(model, lib, pipeline=pipeline)
    with load(lib) as m:
        assert [o.name for o in m.outputs] == ["y", "r", "y"]
        got = m.run_list({"x": x})
        assert len(got) == 3
        for g, e in zip(got, expected):
            np.testing.assert_array_equal(g, e)
        named = m.run({"x": x})
        assert sorted(named) == ["r", "y"]
        np.testing.assert_array_equal(named["y"], x)  # was a KeyError: O2 renamed the output to "x"
    graph = import_model(model)
    run_pipeline(graph, pipeline)
    got = interpret_list(graph, {"x": x})
    assert [v.name for v in graph.outputs] == ["y", "r", "y"] and len(got) == 3
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)


@pytest.fixture(scope="module")
def slow_lib(tmp_path_factory):
    """A model whose run takes milliseconds: eight chained 256x256 MatMuls."""
    rng = np.random.default_rng(0)
    n = 256
    inits, nodes, prev = [], [], "x"
    for i in range(8):
        w = (rng.standard_normal((n, n)) / np.sqrt(n)).astype(np.float32)
        inits.append(onnx.numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [f"h{i}"]))
        prev = f"h{i}"
    nodes.append(helper.make_node("Identity", [prev], ["y"]))
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, n])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    lib = str(tmp_path_factory.mktemp("threads") / "chain.so")
    compiler.compile(model, lib)
    x = rng.standard_normal((n, n)).astype(np.float32)
    with load(lib, num_threads=1) as m:
        expected = m.run({"x": x})["y"]
    return lib, x, expected


def test_c_entry_refuses_concurrent_runs_of_one_instance(slow_lib):
    lib, x, expected = slow_lib
    m = load(lib, num_threads=1)
    run = m._fn("run")
    results: list[tuple[int, str, np.ndarray]] = []
    start = threading.Barrier(4)

    def worker():
        out = np.zeros_like(expected)
        in_ptrs = (ctypes.c_void_p * 1)(x.ctypes.data)
        in_sizes = (ctypes.c_size_t * 1)(x.nbytes)
        out_ptrs = (ctypes.c_void_p * 1)(out.ctypes.data)
        out_sizes = (ctypes.c_size_t * 1)(out.nbytes)
        start.wait()
        for _ in range(10):  # the raw C call, bypassing Model's lock
            out[:] = 0
            rc = run(m._handle, in_ptrs, in_sizes, 1, out_ptrs, out_sizes, 1)
            msg = m._fn("last_error")().decode()
            results.append((rc, msg, out.copy()))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = [rc for rc, _, _ in results]
    assert set(codes) <= {0, ERR_BUSY}
    assert ERR_BUSY in codes, "four threads hammering one instance never collided"
    assert codes.count(0) > 0
    for rc, msg, out in results:
        if rc == 0:
            np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)  # never a wrong answer
        else:
            assert "already running on another thread" in msg
            assert not out.any()  # a refused run writes nothing
    m.close()


def test_python_model_serialises_threads(slow_lib):
    lib, x, expected = slow_lib
    m = load(lib, num_threads=1)
    outs: list[np.ndarray] = []
    errors: list[BaseException] = []

    def worker():
        try:
            for _ in range(5):
                outs.append(m.run({"x": x})["y"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(outs) == 20
    for out in outs:
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    m.close()
    with pytest.raises(RuntimeLoadError, match="closed"):
        m.run({"x": x})


def test_one_instance_per_thread_runs_in_parallel(slow_lib):
    lib, x, expected = slow_lib
    models = [load(lib, num_threads=1) for _ in range(3)]
    outs: dict[int, np.ndarray] = {}

    def worker(i):
        outs[i] = models[i].run({"x": x})["y"]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(3):
        np.testing.assert_allclose(outs[i], expected, rtol=1e-5, atol=1e-5)
        models[i].close()
