"""End-to-end codegen tests: compile small models, run them through the loader, compare numerics."""

from __future__ import annotations

import os

import codegen_models as models
import numpy as np
import pytest

from codegen import CodegenError, UnsupportedOpsError, compile_graph
from compiler import interpret
from compiler.runtime import RuntimeLoadError, load
from frontends.onnx import import_model as load_onnx


@pytest.fixture(scope="module")
def convnet_lib(tmp_path_factory):
    graph = load_onnx(models.convnet())
    path = str(tmp_path_factory.mktemp("convnet") / "model.so")
    result = compile_graph(graph, path)
    return graph, path, result


def test_convnet_matches_interpreter(convnet_lib):
    graph, path, result = convnet_lib
    x = np.random.default_rng(3).standard_normal((1, 3, 32, 32)).astype(np.float32)
    expected = interpret(graph, {"x": x})["probs"]
    got = load(path).run(x=x)["probs"]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert result.arena_bytes > 0 and result.num_unique_kernels <= result.num_kernels


def test_encoder_matches_interpreter(tmp_path):
    graph = load_onnx(models.encoder_block())
    path = str(tmp_path / "enc.so")
    compile_graph(graph, path, prefix="enc", weights="external")
    assert os.path.exists(tmp_path / "enc.weights") and os.path.exists(tmp_path / "enc.h")
    x = np.random.default_rng(4).standard_normal((1, 16, 32)).astype(np.float32)
    expected = interpret(graph, {"x": x})["out"]
    got = load(path).run(x=x)["out"]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    # a truncated or missing weights file is an error code with a message, not a crash
    weights = tmp_path / "enc.weights"
    data = weights.read_bytes()
    weights.write_bytes(data[:-4])
    with pytest.raises(RuntimeLoadError, match="wrong size"):
        load(path)
    weights.unlink()
    with pytest.raises(RuntimeLoadError, match="cannot open weights"):
        load(path)
    moved = tmp_path / "elsewhere.bin"
    moved.write_bytes(data)
    np.testing.assert_allclose(load(path, weights_path=str(moved)).run(x=x)["out"], got)


def test_loader_checks_inputs(convnet_lib):
    _, path, _ = convnet_lib
    model = load(path)
    assert [i.name for i in model.inputs] == ["x"] and model.outputs[0].shape == (1, 10)
    with pytest.raises(RuntimeLoadError, match="shape"):
        model.run(x=np.zeros((1, 3, 32, 31), np.float32))
    with pytest.raises(RuntimeLoadError, match="dtype"):
        model.run(x=np.zeros((1, 3, 32, 32), np.float64))
    with pytest.raises(RuntimeLoadError, match="missing input"):
        model.run({})
    with pytest.raises(RuntimeLoadError, match="unknown input"):
        model.run(x=np.zeros((1, 3, 32, 32), np.float32), y=1)


def test_unsupported_op_names_every_op(tmp_path):
    from onnx import TensorProto, helper

    # Random ops have no lowering (a library would need Ember's own random generator).
    nodes = [helper.make_node("Bernoulli", ["x"], ["a"]), helper.make_node("Multinomial", ["x"], ["b"])]
    graph = helper.make_graph(
        nodes,
        "bad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 4]),
            helper.make_tensor_value_info("b", TensorProto.INT32, [2, 1]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    with pytest.raises(UnsupportedOpsError) as info:
        compile_graph(load_onnx(model), str(tmp_path / "bad.so"))
    message = str(info.value)
    assert "Bernoulli" in message and "Multinomial" in message and "interpret" in message


def test_string_tensors_are_refused_by_name(tmp_path):
    """Strings never reach kernel compilation: the error names the value and the interpreter."""
    from onnx import TensorProto, helper

    node = helper.make_node("Equal", ["x", "y"], ["z"])
    graph = helper.make_graph(
        [node],
        "strings",
        [helper.make_tensor_value_info(n, TensorProto.STRING, [2]) for n in "xy"],
        [helper.make_tensor_value_info("z", TensorProto.BOOL, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    with pytest.raises(CodegenError, match="value 'x' has type str.2., but compiled libraries carry numeric"):
        compile_graph(load_onnx(model), str(tmp_path / "strings.so"))


def test_bad_prefix_and_target(tmp_path):
    graph = load_onnx(models.convnet())
    with pytest.raises(CodegenError, match="prefix"):
        compile_graph(graph, str(tmp_path / "m.so"), prefix="not valid")
    with pytest.raises(CodegenError, match="unknown target"):
        compile_graph(graph, str(tmp_path / "m.so"), target="riscv")


def test_memory_plan_reuses_buffers():
    from codegen.memory import plan_memory
    from codegen.plan import build_plan
    from codegen.tvm.registry import get_lowering

    plan = build_plan(load_onnx(models.convnet()), get_lowering)
    memory = plan_memory(plan)
    assert memory.arena_bytes < memory.naive_bytes
    assert all(off % 64 == 0 for off in memory.offsets.values())


def test_grouped_convs_match_interpreter(tmp_path):
    graph = load_onnx(models.grouped_convs())
    path = str(tmp_path / "g.so")
    compile_graph(graph, path)
    x = np.random.default_rng(5).standard_normal((1, 16, 15, 15)).astype(np.float32)
    np.testing.assert_allclose(load(path).run(x=x)["y"], interpret(graph, {"x": x})["y"], rtol=1e-4, atol=1e-4)


def test_two_prefixed_models_in_one_process(tmp_path, convnet_lib):
    graph, first, _ = convnet_lib
    second = str(tmp_path / "second.so")
    compile_graph(graph, second, prefix="second_model")
    x = np.random.default_rng(8).standard_normal((1, 3, 32, 32)).astype(np.float32)
    a, b = load(first), load(second)
    assert b.prefix == "second_model" and os.path.exists(tmp_path / "second_model.h")
    np.testing.assert_array_equal(a.run(x=x)["probs"], b.run(x=x)["probs"])
    assert b.info()["param_count"] > 0 and b.info()["flops"] > 0


def test_float16_and_int_models(tmp_path):
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Mul", ["a", "a"], ["sq"]),
        helper.make_node("Add", ["sq", "a"], ["y"]),
        helper.make_node("Cast", ["y"], ["z"], to=TensorProto.INT32),
    ]
    graph = helper.make_graph(
        nodes,
        "h",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT16, [3, 5])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT16, [3, 5]),
            helper.make_tensor_value_info("z", TensorProto.INT32, [3, 5]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    g = load_onnx(model)
    compile_graph(g, str(tmp_path / "h.so"))
    a = (np.arange(15).reshape(3, 5) / 4).astype(np.float16)
    got = load(str(tmp_path / "h.so")).run(a=a)
    expected = interpret(g, {"a": a})
    np.testing.assert_allclose(got["y"].astype(np.float32), expected["y"].astype(np.float32), rtol=1e-3)
    np.testing.assert_array_equal(got["z"], expected["z"])
