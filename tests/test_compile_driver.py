"""One compile driver: ``ember compile``, ``prepare(compile=True)`` and ``compiler.compile`` give
byte-identical libraries for one model (``compiler.driver.compile_model`` with the default
pipeline ``O2`` then ``codegen-prepare``), and the driver's pipeline is what ``ember opt`` shows."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import compiler
from compiler import print_ir
from compiler.cli import main
from compiler.driver import prepare_for_codegen
from frontends.onnx import import_model
from frontends.onnx.backend import prepare

F = TensorProto.FLOAT


def small_model() -> onnx.ModelProto:
    """MatMul by a weight, a product of two constants (O2 folds it), Celu (expanded into its body)."""
    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3) / 10, "w")
    two = numpy_helper.from_array(np.array(2.0, np.float32), "two")
    three = numpy_helper.from_array(np.array(3.0, np.float32), "three")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("Mul", ["two", "three"], ["six"]),
        helper.make_node("Mul", ["h", "six"], ["h6"]),
        helper.make_node("Celu", ["h6"], ["y"], alpha=1.5),
    ]
    graph = helper.make_graph(
        nodes,
        "small",
        [helper.make_tensor_value_info("x", F, [2, 4])],
        [helper.make_tensor_value_info("y", F, [2, 3])],
        initializer=[w, two, three],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_builds_are_reproducible(tmp_path):
    """The premise of the next test: one driver, one model, two folders, the same bytes."""
    libs = [tmp_path / f"run{k}" / "model.so" for k in range(2)]
    for lib in libs:
        compiler.compile(import_model(small_model()), str(lib))
    assert libs[0].read_bytes() == libs[1].read_bytes()


def test_cli_backend_and_python_api_give_byte_identical_libraries(tmp_path):
    model_path = tmp_path / "small.onnx"
    onnx.save(small_model(), model_path)
    by_cli, by_backend, by_api = (tmp_path / d / "model.so" for d in ("cli", "backend", "api"))
    by_cli.parent.mkdir()
    assert main(["compile", str(model_path), "-o", str(by_cli), "-q"]) == 0
    by_backend.parent.mkdir()
    rep = prepare(small_model(), compile=True, library=str(by_backend))
    compiler.compile(str(model_path), str(by_api))
    assert by_cli.read_bytes() == by_backend.read_bytes() == by_api.read_bytes()
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)
    h = 6 * (x @ (np.arange(12, dtype=np.float32).reshape(4, 3) / 10))
    want = np.maximum(h, 0) + np.minimum(0, 1.5 * np.expm1(h / 1.5))
    np.testing.assert_allclose(rep.run([x])[0], want, rtol=1e-5, atol=1e-6)


def test_opt_shows_the_graph_codegen_receives(tmp_path, capsys):
    """``ember opt --passes O2,codegen-prepare`` prints exactly the driver's prepared graph."""
    model_path = tmp_path / "small.onnx"
    onnx.save(small_model(), model_path)
    out = tmp_path / "prepared.ir"
    assert main(["opt", str(model_path), "--passes", "O2,codegen-prepare", "-o", str(out)]) == 0
    prepared = prepare_for_codegen(import_model(small_model()))
    assert out.read_text().strip() == print_ir(prepared).strip()
    assert not any(n.op == "Celu" for n in prepared.nodes)


def test_o0_still_prepares():
    """``--opt O0``: no graph optimisation and no kernel fusion, but the preparation runs."""
    from compiler.driver import fuses, opt_level

    graph = prepare_for_codegen(import_model(small_model()), "O0")
    ops = [n.op for n in graph.walk()]  # fused groups' bodies included
    assert "Celu" not in ops and "Elu" in ops
    assert not fuses("O0") and opt_level("O0") == 0
    assert fuses("O2") and opt_level("O3") == 3
