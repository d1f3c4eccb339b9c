"""Bad input gives one clear EmberError naming the file, node and op; never a raw traceback."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler import EmberError
from frontends import load_model
from frontends.onnx import import_model

F32, I64 = TensorProto.FLOAT, TensorProto.INT64
LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def model_of(nodes, inputs, outputs, opset=17, initializers=(), extra_opsets=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model


def save(tmp_path, model, name="m.onnx"):
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return str(path)


def import_error(source, **kw) -> EmberError:
    with pytest.raises(EmberError) as info:
        import_model(source, **kw)
    return info.value


# ------------------------------------------------------------------ files


def test_truncated_file(tmp_path):
    data = open(os.path.join(LIGHT, "light_squeezenet.onnx"), "rb").read()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    err = import_error(str(path))
    assert err.file == str(path) and "truncated" in str(err)


def test_non_onnx_file(tmp_path):
    path = tmp_path / "notes.onnx"
    path.write_text("these are my notes, not a model\n")
    err = import_error(str(path))
    assert str(path) in str(err) and "not a valid ONNX model" in str(err)


def test_empty_file_is_not_a_model(tmp_path):
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    err = import_error(str(path))
    assert str(path) in str(err) and "not an ONNX model" in str(err)


def test_missing_file(tmp_path):
    err = import_error(str(tmp_path / "nope.onnx"))
    assert "no such model file" in str(err)


def test_load_model_rejects_unknown_extension(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"x")
    with pytest.raises(EmberError, match="unknown model file extension '.bin'"):
        load_model(str(path))


def test_load_model_dispatches_onnx(tmp_path):
    model = model_of([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F32, [2])], [vi("y", F32, [2])])
    graph = load_model(save(tmp_path, model), input_shapes={"x": [2]})
    assert [n.op for n in graph.nodes] == ["Relu"]


# ------------------------------------------------------------------ graph structure


def test_cycle_is_refused(tmp_path):
    nodes = [
        helper.make_node("Add", ["x", "b"], ["a"], name="first"),
        helper.make_node("Relu", ["a"], ["b"], name="second"),
        helper.make_node("Neg", ["b"], ["y"], name="third"),
    ]
    path = save(tmp_path, model_of(nodes, [vi("x", F32, [2])], [vi("y", F32, [2])]))
    err = import_error(path)
    assert err.file == path and "cycle" in str(err)
    assert err.node in ("first", "second") and err.op in ("Add", "Relu")
    assert "'first' (Add)" in str(err) and "'second' (Relu)" in str(err)


def test_dangling_input_name(tmp_path):
    nodes = [helper.make_node("Add", ["x", "ghost"], ["y"], name="adder")]
    path = save(tmp_path, model_of(nodes, [vi("x", F32, [2])], [vi("y", F32, [2])]))
    err = import_error(path)
    assert (err.file, err.node, err.op) == (path, "adder", "Add")
    assert "'ghost'" in str(err) and "dangling" in str(err)


def test_dangling_name_inside_subgraph(tmp_path):
    then_g = helper.make_graph(
        [helper.make_node("Neg", ["nowhere"], ["t"], name="inner")], "then", [], [vi("t", F32, [2])]
    )
    node = helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=then_g)
    path = save(tmp_path, model_of([node], [vi("c", TensorProto.BOOL, [])], [vi("y", F32, [2])]))
    err = import_error(path)
    assert err.node == "inner" and err.op == "Neg" and "'nowhere'" in str(err)


def test_type_mismatch_between_operands(tmp_path):
    nodes = [helper.make_node("Add", ["x", "n"], ["y"], name="mixed")]
    path = save(tmp_path, model_of(nodes, [vi("x", F32, [2]), vi("n", I64, [2])], [vi("y", F32, [2])]))
    err = import_error(path)
    assert (err.file, err.node, err.op) == (path, "mixed", "Add") and "type error" in str(err)


def test_type_mismatch_with_declared_output(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="act")]
    path = save(tmp_path, model_of(nodes, [vi("x", F32, [2])], [vi("y", I64, [2])]))
    err = import_error(path)
    assert (err.node, err.op) == ("act", "Relu") and "type mismatch" in str(err) and "i64" in str(err)


def test_output_never_produced(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    path = save(tmp_path, model_of(nodes, [vi("x", F32, [2])], [vi("z", F32, [2])]))
    err = import_error(path)
    assert err.file == path and "'z' is never produced" in str(err)


# ------------------------------------------------------------------ ops and opsets


def test_all_unsupported_ops_listed_once_with_counts(tmp_path):
    body = helper.make_graph(
        [helper.make_node("FancyOp", ["x"], ["t"], domain="acme")], "then", [], [vi("t", F32, [2])]
    )
    nodes = [
        helper.make_node("FancyOp", ["x"], ["a"], domain="acme"),
        helper.make_node("FancyOp", ["a"], ["b"], domain="acme"),
        helper.make_node("Warp", ["b"], ["c"], domain="acme"),
        helper.make_node("Mystery", ["c"], ["d"]),
        helper.make_node("Zap", ["d"], ["e"], domain="unimported"),
        helper.make_node("If", ["cond"], ["y"], then_branch=body, else_branch=body),
    ]
    model = model_of(
        nodes, [vi("x", F32, [2]), vi("cond", TensorProto.BOOL, [])], [vi("y", F32, [2])], extra_opsets=[("acme", 1)]
    )
    path = save(tmp_path, model)
    err = import_error(path)
    text = str(err)
    assert err.file == path and "4 unsupported op type(s) (7 node(s))" in text
    assert "acme.FancyOp x4" in text and "acme.Warp x1" in text and "Mystery x1" in text
    assert "unimported.Zap" in text and "not imported" in text


def test_opset_too_new(tmp_path):
    opset = onnx.defs.onnx_opset_version() + 1
    model = model_of([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F32, [2])], [vi("y", F32, [2])], opset)
    path = save(tmp_path, model)
    err = import_error(path)
    assert err.file == path and f"opset {opset} is newer than" in str(err)


def test_opset_too_old_where_version_converter_fails(tmp_path):
    node = helper.make_node("Tile", ["x", "r"], ["y"])  # Tile-1 has no adapter to Tile-6
    r = numpy_helper.from_array(np.array([2], np.float32), "r")
    model = model_of([node], [vi("x", F32, [2])], [vi("y", F32, None)], 5, [r])
    path = save(tmp_path, model)
    err = import_error(path)
    assert err.file == path and "opset 5 is older than the oldest supported (7)" in str(err)
    assert "changed since: Tile" in str(err)


def test_opset_too_old_lifted_by_version_converter():
    node = helper.make_node("Add", ["x", "x"], ["y"], broadcast=1)
    graph = import_model(model_of([node], [vi("x", F32, [2])], [vi("y", F32, [2])], 5))
    assert graph.metadata["opset"] == 7 and [n.op for n in graph.nodes] == ["Add"]


def test_old_opset_with_unchanged_ops_imports():
    model = model_of(
        [helper.make_node("Not", ["x"], ["y"])], [vi("x", TensorProto.BOOL, [2])], [vi("y", TensorProto.BOOL, [2])], 1
    )
    graph = import_model(model)
    assert [n.op for n in graph.nodes] == ["Not"]


def test_old_form_without_normaliser_is_reported_not_misread(tmp_path):
    nodes = [helper.make_node("BatchNormalization", ["x", "s", "s", "s", "s"], ["y"], spatial=0)]
    s = numpy_helper.from_array(np.ones(3, np.float32), "s")
    path = save(tmp_path, model_of(nodes, [vi("x", F32, [1, 3, 2, 2])], [vi("y", F32, None)], 8, [s]))
    err = import_error(path)
    assert err.op == "BatchNormalization" and "spatial=0" in str(err)


# ------------------------------------------------------------------ inputs and external data


def test_input_shapes_errors(tmp_path):
    model = model_of([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F32, ["n", 3])], [vi("y", F32, None)])
    path = save(tmp_path, model)
    assert "rank 3" in str(import_error(path, input_shapes={"x": [1, 2, 3]}))
    assert "fixes it to" in str(import_error(path, input_shapes={"x": [1, 4]}))
    assert "unknown input(s): nope" in str(import_error(path, input_shapes={"nope": [1]}))


def _external_model(tmp_path, location):
    w = numpy_helper.from_array(np.ones(4, np.float32), "w")
    model = model_of(
        [helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", F32, [4])], [vi("y", F32, [4])], initializers=[w]
    )
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    folder = tmp_path / "model"
    folder.mkdir()
    return save(folder, model)


def test_external_data_path_traversal_refused(tmp_path):
    (tmp_path / "secret.bin").write_bytes(np.ones(4, np.float32).tobytes())
    path = _external_model(tmp_path, "../secret.bin")
    err = import_error(path)
    assert err.file == path and "path traversal" in str(err) and "'w'" in str(err)


def test_external_data_absolute_path_refused(tmp_path):
    target = tmp_path / "abs.bin"
    target.write_bytes(np.ones(4, np.float32).tobytes())
    err = import_error(_external_model(tmp_path, str(target)))
    assert "absolute path" in str(err)


def test_external_data_missing_file(tmp_path):
    err = import_error(_external_model(tmp_path, "weights.bin"))
    assert "'weights.bin'" in str(err) and "missing" in str(err)


def test_external_data_too_short(tmp_path):
    path = _external_model(tmp_path, "weights.bin")
    (tmp_path / "model" / "weights.bin").write_bytes(b"\0" * 8)
    assert "shorter" in str(import_error(path))


def test_converter_failure_names_the_node(tmp_path):
    node = helper.make_node("GroupNormalization", ["x", "s", "s"], ["y"], name="gn")  # num_groups missing
    s = numpy_helper.from_array(np.ones(2, np.float32), "s")
    path = save(tmp_path, model_of([node], [vi("x", F32, [1, 4, 3])], [vi("y", F32, None)], 18, [s]))
    err = import_error(path)
    assert (err.file, err.node, err.op) == (path, "gn", "GroupNormalization")


def test_name_assigned_twice(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="one"), helper.make_node("Neg", ["x"], ["y"], name="two")]
    path = save(tmp_path, model_of(nodes, [vi("x", F32, [2])], [vi("y", F32, [2])]))
    err = import_error(path)
    assert err.node in ("one", "two") and "'y' is already defined" in str(err)


def test_load_model_dispatches_ir(tmp_path):
    from compiler import print_ir

    model = model_of([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F32, [2])], [vi("y", F32, [2])])
    path = tmp_path / "m.ir"
    path.write_text(print_ir(import_model(model)))
    graph = load_model(str(path))
    assert [n.op for n in graph.nodes] == ["Relu"]
    with pytest.raises(EmberError, match="do not apply to .ir files"):
        load_model(str(path), input_shapes={"x": [2]})


def test_input_listed_twice(tmp_path):
    model = model_of(
        [helper.make_node("Relu", ["x"], ["y"])], [vi("x", F32, [2]), vi("x", F32, [2])], [vi("y", F32, [2])]
    )
    path = save(tmp_path, model)
    assert "graph input 'x' is listed twice" in str(import_error(path))


@pytest.mark.parametrize("seed", [0, 1])
def test_corrupted_models_raise_only_ember_errors(seed):
    """Seeded fuzz: truncations and byte flips of real models import or raise EmberError, nothing else."""
    import random

    rng = random.Random(seed)
    sources = [
        open(os.path.join(LIGHT, "light_squeezenet.onnx"), "rb").read(),
        open(os.path.join(LIGHT, "light_shufflenet.onnx"), "rb").read(),
    ]
    outcomes = {"imported": 0, "refused": 0}
    for _ in range(60):
        data = bytearray(rng.choice(sources))
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data))]
        else:
            for _ in range(rng.randrange(1, 6)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            import_model(bytes(data))
            outcomes["imported"] += 1
        except EmberError as err:
            assert "<in-memory bytes>" in str(err), f"seed {seed}: {err}"
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0, f"seed {seed}: {outcomes}"
