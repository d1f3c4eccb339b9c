"""The validation gate at import and external-data containment.

External data of initializers, of Constant-node attribute tensors and of sparse initializers is
read from the model's folder only (``../``, absolute paths and symlinks out are refused; a file
beside the model is found from any working directory).  Invalid models are refused before
anything is read, every problem listed at once with its node and op; absurd sizes are refused
before allocation; ``dim_param "?"`` is an anonymous dim.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler import EmberError, interpret
from frontends.onnx import import_model
from frontends.onnx.validate import DEFAULT_MAX_TENSOR_BYTES, MAX_TENSOR_BYTES_ENV

F32, I64 = TensorProto.FLOAT, TensorProto.INT64
BESIDE = np.array([1.0, 2.0], np.float32)  # the legitimate data, beside the model
DECOY = np.array([-7.0, -7.0], np.float32)  # a same-named file in the working directory or outside


def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def model_of(nodes, inputs, outputs, opset=17, initializers=(), sparse=(), ir=8):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    graph.sparse_initializer.extend(sparse)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir
    return model


def import_error(source, **kw) -> EmberError:
    with pytest.raises(EmberError) as info:
        import_model(source, **kw)
    return info.value


def external(name, location, dims=(2,)):
    t = TensorProto(name=name, data_type=F32, dims=list(dims))
    t.data_location = TensorProto.EXTERNAL
    entry = t.external_data.add()
    entry.key, entry.value = "location", location
    return t


# ---------------------------------------------------------------- external data: three carriers


def initializer_model(location):
    node = helper.make_node("Add", ["x", "w"], ["y"], name="add")
    return model_of([node], [vi("x", F32, [2])], [vi("y", F32, [2])], initializers=[external("w", location)])


def attribute_model(location):
    const = helper.make_node("Constant", [], ["w"], name="const", value=external("value", location))
    node = helper.make_node("Add", ["x", "w"], ["y"], name="add")
    return model_of([const, node], [vi("x", F32, [2])], [vi("y", F32, [2])])


def sparse_model(location):
    values = external("w", location)
    indices = numpy_helper.from_array(np.array([0, 1], np.int64), "w_indices")
    sparse = helper.make_sparse_tensor(values, indices, [2])
    node = helper.make_node("Add", ["x", "w"], ["y"], name="add")
    return model_of([node], [vi("x", F32, [2])], [vi("y", F32, [2])], sparse=[sparse])


CARRIERS = {"initializer": initializer_model, "attribute": attribute_model, "sparse": sparse_model}


@pytest.fixture
def layout(tmp_path):
    """tmp/model/ (the model's folder), tmp/cwd/ (another working directory), tmp/secret.bin."""
    (tmp_path / "model").mkdir()
    (tmp_path / "cwd").mkdir()
    DECOY.tofile(tmp_path / "secret.bin")
    DECOY.tofile(tmp_path / "cwd" / "w.bin")
    DECOY.tofile(tmp_path / "cwd" / "secret.bin")
    return tmp_path


def save_in(folder, model):
    path = folder / "m.onnx"
    path.write_bytes(model.SerializeToString())
    return str(path)


@pytest.mark.parametrize("carrier", sorted(CARRIERS))
def test_data_beside_the_model_is_found_from_another_cwd(layout, carrier, monkeypatch):
    BESIDE.tofile(layout / "model" / "w.bin")
    path = save_in(layout / "model", CARRIERS[carrier]("w.bin"))
    monkeypatch.chdir(layout / "cwd")  # holds a decoy w.bin
    graph = import_model(os.path.relpath(path))
    out = interpret(graph, {"x": np.zeros(2, np.float32)})["y"]
    np.testing.assert_array_equal(out, BESIDE)


@pytest.mark.parametrize("carrier", sorted(CARRIERS))
def test_missing_beside_the_model_is_not_read_from_the_cwd(layout, carrier, monkeypatch):
    path = save_in(layout / "model", CARRIERS[carrier]("w.bin"))
    monkeypatch.chdir(layout / "cwd")  # holds w.bin, which must not be read
    err = import_error(path)
    assert err.file == path and "missing" in str(err), str(err)


@pytest.mark.parametrize("carrier", sorted(CARRIERS))
@pytest.mark.parametrize("escape", ["dotdot", "absolute", "symlink"])
def test_escapes_from_the_model_folder_are_refused(layout, carrier, escape, monkeypatch):
    folder = layout / "model"
    if escape == "dotdot":
        location = "../secret.bin"
    elif escape == "absolute":
        location = str(layout / "secret.bin")
    else:
        os.symlink(layout / "secret.bin", folder / "link.bin")
        location = "link.bin"
    path = save_in(folder, CARRIERS[carrier](location))
    monkeypatch.chdir(layout / "cwd")
    err = import_error(path)
    text = str(err)
    assert err.file == path and ("outside the model's folder" in text or "absolute path" in text), text
    if carrier == "attribute":
        assert "const" in text and "Constant" in text, text


def test_in_memory_model_reads_from_base_dir_only(layout, monkeypatch):
    BESIDE.tofile(layout / "model" / "w.bin")
    monkeypatch.chdir(layout / "cwd")
    model = attribute_model("w.bin")
    graph = import_model(model, base_dir=str(layout / "model"))
    np.testing.assert_array_equal(interpret(graph, {"x": np.zeros(2, np.float32)})["y"], BESIDE)


# ---------------------------------------------------------------- the gate


def relu_model(**kw):
    return model_of([helper.make_node("Relu", ["x"], ["y"], name="r")], [vi("x", F32, [2])], [vi("y", F32, [2])], **kw)


def test_extra_node_input_is_refused_not_ignored():
    model = relu_model()
    model.graph.node[0].input.append("x")
    err = import_error(model)
    assert err.node == "r" and err.op == "Relu" and "2 inputs" in err.message and "at most 1" in err.message


def test_opset_zero_and_too_new_ir_are_refused():
    assert "opset 0 of domain" in str(import_error(relu_model(opset=0)))  # with the op defined from opset 1
    assert "newer than the installed onnx" in import_error(relu_model(ir=onnx.IR_VERSION + 5)).message


def test_if_branches_with_different_output_counts():
    one = helper.make_graph([helper.make_node("Neg", ["x"], ["a"])], "t", [], [vi("a", F32, [2])])
    two = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["b"]), helper.make_node("Abs", ["x"], ["c"])],
        "e",
        [],
        [vi("b", F32, [2]), vi("c", F32, [2])],
    )
    node = helper.make_node("If", ["cond"], ["y"], name="branch", then_branch=one, else_branch=two)
    model = model_of([node], [vi("cond", TensorProto.BOOL, []), vi("x", F32, [2])], [vi("y", F32, [2])])
    err = import_error(model)
    assert err.node == "branch" and err.op == "If" and "else_branch has 2 output(s), the If node 1" in str(err)


def test_gru_direction_outside_its_enum():
    w = numpy_helper.from_array(np.zeros((1, 6, 2), np.float32), "W")
    r = numpy_helper.from_array(np.zeros((1, 6, 2), np.float32), "R")
    node = helper.make_node("GRU", ["x", "W", "R"], ["", "h"], name="gru", hidden_size=2, direction="sideways")
    model = model_of([node], [vi("x", F32, [1, 1, 2])], [vi("h", F32, None)], initializers=[w, r])
    err = import_error(model)
    assert err.node == "gru" and err.op == "GRU" and "'sideways'" in err.message and "bidirectional" in err.message


def test_negative_initializer_dims_and_unknown_element_types_are_listed_together():
    w = TensorProto(name="w", data_type=F32, dims=[-2])
    model = model_of(
        [helper.make_node("Add", ["x", "w"], ["y"], name="add")],
        [vi("x", F32, [2])],
        [vi("y", F32, [2])],
        initializers=[w],
    )
    model.graph.input[0].type.tensor_type.elem_type = 99
    err = import_error(model)
    text = str(err)
    assert "2 problem(s)" in err.message, text
    assert "initializer 'w' has a negative dim" in text and "value 'x' has unknown element type 99" in text


def test_every_problem_and_unsupported_op_at_once():
    nodes = [
        helper.make_node("Relu", ["x", "x"], ["a"], name="too_many"),
        helper.make_node("NoSuchOp", ["a"], ["b"], name="odd"),
        helper.make_node("LRN", ["b"], ["y"], name="lrn", size=0),
    ]
    err = import_error(model_of(nodes, [vi("x", F32, [1, 2, 2, 2])], [vi("y", F32, None)]))
    text = str(err)
    assert "3 problem(s)" in text, text
    assert "node 'too_many' (Relu)" in text and "node 'lrn' (LRN)" in text and "NoSuchOp x1" in text, text


def test_sparse_index_out_of_range_names_the_tensor():
    values = numpy_helper.from_array(np.ones(2, np.float32), "w")
    indices = numpy_helper.from_array(np.array([0, 9], np.int64), "w_indices")
    sparse = helper.make_sparse_tensor(values, indices, [4])
    node = helper.make_node("Identity", ["w"], ["y"], name="id")
    err = import_error(model_of([node], [], [vi("y", F32, [4])], sparse=[sparse]))
    assert "sparse initializer 'w'" in err.message and "index 9 is out of range for shape [4]" in err.message


def test_huge_sparse_initializer_is_refused_before_allocation():
    values = numpy_helper.from_array(np.ones(1, np.float32), "w")
    indices = numpy_helper.from_array(np.array([0], np.int64), "w_indices")
    sparse = helper.make_sparse_tensor(values, indices, [1 << 40])
    node = helper.make_node("Identity", ["w"], ["y"], name="id")
    err = import_error(model_of([node], [], [vi("y", F32, None)], sparse=[sparse]))
    assert "4.0 TiB" in err.message and "over the limit of 16.0 GiB" in err.message and MAX_TENSOR_BYTES_ENV in str(err)


def _const(name, values):
    return numpy_helper.from_array(np.array(values, np.int64), name)


@pytest.mark.parametrize(
    "op, operands, init",
    [
        ("Expand", ["x", "shape"], [_const("shape", [1 << 25, 1 << 25])]),
        ("Tile", ["x", "reps"], [_const("reps", [1 << 25, 1 << 25])]),
        (
            "Resize",
            ["x", "", "", "sizes"],
            [_const("sizes", [1 << 25, 1 << 25])],
        ),
    ],
)
def test_absurd_constant_sizes_are_refused_naming_the_node(op, operands, init):
    node = helper.make_node(op, operands, ["y"], name="big")
    model = model_of([node], [vi("x", F32, [1, 1])], [vi("y", F32, None)], initializers=init)
    err = import_error(model)
    assert err.node == "big" and err.op == op and "PiB" in err.message and "over the limit" in err.message, str(err)


def test_the_limit_is_configurable(monkeypatch):
    w = numpy_helper.from_array(np.zeros(1024, np.float32), "w")
    model = model_of(
        [helper.make_node("Add", ["x", "w"], ["y"], name="add")],
        [vi("x", F32, [1024])],
        [vi("y", F32, [1024])],
        initializers=[w],
    )
    assert DEFAULT_MAX_TENSOR_BYTES == 16 << 30
    import_model(model)
    assert "over the limit of 1.0 KiB" in import_error(model, max_tensor_bytes=1024).message
    monkeypatch.setenv(MAX_TENSOR_BYTES_ENV, "2048")
    assert "over the limit of 2.0 KiB" in import_error(model).message
    monkeypatch.setenv(MAX_TENSOR_BYTES_ENV, "lots")
    assert MAX_TENSOR_BYTES_ENV in import_error(model).message


# ---------------------------------------------------------------- anonymous dims


@pytest.mark.parametrize("anonymous", ["?", ""])
def test_question_mark_and_empty_dim_params_are_each_their_own_unknown(anonymous):
    x = vi("x", F32, [anonymous, 3, anonymous, anonymous])
    y = vi("y", F32, [anonymous, 3, anonymous, anonymous])
    node = helper.make_node("Relu", ["x"], ["y"], name="r")
    model = model_of([node], [x], [y])
    graph = import_model(model, input_shapes={"x": [1, 3, 48, 192]})
    assert graph.params[0].type.shape == (1, 3, 48, 192)
    graph = import_model(model)
    assert graph.params[0].type.shape == (None, 3, None, None)


def test_question_mark_does_not_tie_two_inputs():
    a, b = vi("a", F32, ["?", 4]), vi("b", F32, ["?", 4])
    node = helper.make_node("Concat", ["a", "b"], ["y"], name="cat", axis=0)
    graph = import_model(model_of([node], [a, b], [vi("y", F32, None)]), input_shapes={"a": [1, 4], "b": [5, 4]})
    out = interpret(graph, {"a": np.zeros((1, 4), np.float32), "b": np.ones((5, 4), np.float32)})["y"]
    assert out.shape == (6, 4)


def test_names_that_are_not_utf8_are_refused_not_a_traceback(tmp_path):
    data = relu_model().SerializeToString().replace(b"Relu", b"Re\xfau")
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    err = import_error(str(path))
    assert err.file == str(path) and "not valid UTF-8" in err.message and "op_type" in str(err)


def test_loop_body_with_the_wrong_outputs():
    body = helper.make_graph(
        [helper.make_node("Identity", ["c"], ["c_out"], name="keep")],
        "body",
        [vi("i", I64, []), vi("c", TensorProto.BOOL, []), vi("acc", F32, [2])],
        [vi("c_out", TensorProto.BOOL, [])],  # the carried value is missing
    )
    trips = numpy_helper.from_array(np.array(3, np.int64), "trips")
    node = helper.make_node("Loop", ["trips", "", "x"], ["y"], name="loop", body=body)
    err = import_error(model_of([node], [vi("x", F32, [2])], [vi("y", F32, [2])], initializers=[trips]))
    assert err.node == "loop" and err.op == "Loop" and "body gives 1 output(s)" in err.message, str(err)


def test_external_location_with_a_nul_is_refused(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(initializer_model("w\0.bin").SerializeToString())
    assert "NUL" in import_error(str(path)).message


def test_graph_input_over_the_limit_is_refused():
    model = relu_model()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1 << 62
    err = import_error(model)
    assert "graph input 'x'" in err.message and "over the limit" in err.message


def test_operand_types_outside_the_schema_constraints():
    then = helper.make_graph([helper.make_node("Neg", ["x"], ["a"])], "t", [], [vi("a", F32, [2])])
    other = helper.make_graph([helper.make_node("Abs", ["x"], ["b"])], "e", [], [vi("b", F32, [2])])
    node = helper.make_node("If", ["cond"], ["y"], name="branch", then_branch=then, else_branch=other)
    err = import_error(model_of([node], [vi("cond", F32, []), vi("x", F32, [2])], [vi("y", F32, [2])]))
    assert err.node == "branch" and err.op == "If" and "input 0 ('cond') is float; If takes bool" in err.message


def test_external_length_must_match_the_shape(tmp_path):
    np.arange(4, dtype=np.float32).tofile(tmp_path / "w.bin")
    model = initializer_model("w.bin")
    entry = model.graph.initializer[0].external_data.add()
    entry.key, entry.value = "length", "16"  # the tensor is 2 floats: 8 bytes
    path = save_in(tmp_path, model)
    assert "does not hold the 8 bytes" in import_error(path).message


def test_if_branches_with_different_output_types():
    then = helper.make_graph([helper.make_node("Neg", ["x"], ["a"])], "t", [], [vi("a", F32, [2])])
    other = helper.make_graph([helper.make_node("Cast", ["x"], ["b"], to=I64)], "e", [], [vi("b", I64, [2])])
    node = helper.make_node("If", ["cond"], ["y"], name="branch", then_branch=then, else_branch=other)
    model = model_of([node], [vi("cond", TensorProto.BOOL, []), vi("x", F32, [2])], [vi("y", F32, [2])])
    err = import_error(model)
    assert err.node == "branch" and "output 0 is FLOAT in then_branch but INT64 in else_branch" in err.message
