"""Graph structure on import: subgraph capture, symbolic dims, functions, external data, order.

Numbers are checked against onnxruntime on the original model; structure is
checked on the IR (outer values read directly by nested graphs, no leftover
function calls, memory-mapped external tensors).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler import interpret, parse_ir, print_ir, verify
from compiler.ir.types import TensorType
from frontends.onnx import import_model

F32, I64, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def model_of(nodes, inputs, outputs, opset=17, initializers=(), functions=(), extra_opsets=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    model = helper.make_model(graph, opset_imports=opsets, functions=list(functions))
    model.ir_version = 8
    return model


def compare_with_ort(model, feeds, **import_kw):
    graph = import_model(model, **import_kw)
    verify(graph)
    ours = interpret(graph, feeds)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in model.graph.output]
    for name, expected in zip(names, sess.run(names, feeds)):
        np.testing.assert_allclose(ours[name], expected, rtol=1e-5, atol=1e-5, err_msg=name)
    return graph


# ------------------------------------------------------------------ control flow


def test_if_branches_read_outer_values_directly():
    then_g = helper.make_graph([helper.make_node("Add", ["x", "y"], ["t"])], "then", [], [vi("t", F32, [3])])
    else_g = helper.make_graph([helper.make_node("Sub", ["x", "y"], ["e"])], "else", [], [vi("e", F32, [3])])
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
        helper.make_node("Greater", ["s", "zero"], ["c"]),
        helper.make_node("If", ["c"], ["out"], then_branch=then_g, else_branch=else_g),
    ]
    zero = numpy_helper.from_array(np.array(0, np.float32), "zero")
    model = model_of(nodes, [vi("x", F32, [3]), vi("y", F32, [3])], [vi("out", F32, [3])], initializers=[zero])
    for sign in (1, -1):
        feeds = {"x": sign * np.array([1, 2, 3], np.float32), "y": np.array([0.5, 0.5, 4], np.float32)}
        graph = compare_with_ort(model, feeds)
    if_node = next(n for n in graph.nodes if n.op == "If")
    add = next(iter(if_node.attrs["then_branch"].nodes))
    assert add.operands[0] is graph.params[0] and add.operands[1] is graph.params[1]


def test_loop_with_carried_state_scan_output_and_capture():
    body = helper.make_graph(
        [
            helper.make_node("Add", ["acc_in", "step"], ["acc_out"]),
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Mul", ["acc_out", "two"], ["scan"]),
        ],
        "body",
        [vi("i", I64, []), vi("cond_in", BOOL, []), vi("acc_in", F32, [2])],
        [vi("cond_out", BOOL, []), vi("acc_out", F32, [2]), vi("scan", F32, [2])],
    )
    two = numpy_helper.from_array(np.array(2, np.float32), "two")
    trip = numpy_helper.from_array(np.array(4, np.int64), "trip")
    cond = numpy_helper.from_array(np.array(True), "cond")
    node = helper.make_node("Loop", ["trip", "cond", "init"], ["final", "scans"], body=body)
    model = model_of(
        [node],
        [vi("init", F32, [2]), vi("step", F32, [2])],
        [vi("final", F32, [2]), vi("scans", F32, [4, 2])],
        initializers=[two, trip, cond],
    )
    feeds = {"init": np.array([1, -1], np.float32), "step": np.array([0.5, 2], np.float32)}
    graph = compare_with_ort(model, feeds)
    loop = next(n for n in graph.nodes if n.op == "Loop")
    body_graph = loop.attrs["body"]
    assert [str(p.type) for p in body_graph.params][:2] == ["i64[]", "bool[]"]
    readers = [n for n in body_graph.nodes if graph.find("step") in n.operands]
    assert readers, "the body must read the outer 'step' parameter directly"


def test_scan_cumulative_sum():
    body = helper.make_graph(
        [
            helper.make_node("Add", ["sum_in", "row"], ["sum_out"]),
            helper.make_node("Identity", ["sum_out"], ["scan_out"]),
        ],
        "body",
        [vi("sum_in", F32, [2]), vi("row", F32, [2])],
        [vi("sum_out", F32, [2]), vi("scan_out", F32, [2])],
    )
    node = helper.make_node("Scan", ["init", "xs"], ["total", "partials"], body=body, num_scan_inputs=1)
    model = model_of(
        [node], [vi("init", F32, [2]), vi("xs", F32, [5, 2])], [vi("total", F32, [2]), vi("partials", F32, [5, 2])]
    )
    feeds = {"init": np.zeros(2, np.float32), "xs": np.arange(10, dtype=np.float32).reshape(5, 2)}
    compare_with_ort(model, feeds)


def test_nested_subgraph_print_parse_round_trip():
    inner = helper.make_graph([helper.make_node("Neg", ["x"], ["n"])], "inner", [], [vi("n", F32, [2])])
    other = helper.make_graph([helper.make_node("Abs", ["x"], ["a"])], "other", [], [vi("a", F32, [2])])
    then_g = helper.make_graph(
        [helper.make_node("If", ["c"], ["r"], then_branch=inner, else_branch=other)], "then", [], [vi("r", F32, [2])]
    )
    else_g = helper.make_graph([helper.make_node("Identity", ["x"], ["i"])], "else", [], [vi("i", F32, [2])])
    node = helper.make_node("If", ["c"], ["out"], then_branch=then_g, else_branch=else_g)
    model = model_of([node], [vi("c", BOOL, []), vi("x", F32, [2])], [vi("out", F32, [2])])
    for c in (True, False):
        graph = compare_with_ort(model, {"c": np.array(c), "x": np.array([1, -2], np.float32)})
    text = print_ir(graph)
    assert print_ir(parse_ir(text)) == text


# ------------------------------------------------------------------ shapes


def symbolic_model():
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("ReduceMean", ["r", "axes"], ["y"], keepdims=1)]
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    return model_of(nodes, [vi("x", F32, ["batch", 8])], [vi("y", F32, ["batch", 1])], 18, [axes])


def test_symbolic_dims_stay_symbols():
    graph = import_model(symbolic_model())
    verify(graph)
    assert graph.params[0].type.shape == ("batch", 8)
    assert graph.outputs[0].type.shape == ("batch", 1)
    x = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    np.testing.assert_allclose(interpret(graph, {"x": x})["y"], np.maximum(x, 0).mean(1, keepdims=True), rtol=1e-6)


def test_input_shapes_pin_symbols():
    graph = import_model(symbolic_model(), input_shapes={"x": [4, 8]})
    verify(graph)
    assert graph.params[0].type.shape == (4, 8)
    assert graph.outputs[0].type.shape == (4, 1)


def test_unknown_dims_fall_back_to_declared_output_types():
    node = helper.make_node("NonZero", ["x"], ["nz"])
    model = model_of([node], [vi("x", F32, [3])], [vi("nz", I64, [1, "count"])])
    graph = import_model(model)
    assert graph.outputs[0].type.shape == (1, "count")


# ------------------------------------------------------------------ functions


def scale_add_function(domain="custom"):
    """y = x * alpha + b, with ``alpha`` an attribute reference (default 2.0)."""
    alpha = helper.make_attribute("alpha", 2.0)
    nodes = [
        helper.make_node("Constant", [], ["a"], value_float=1.0),
        helper.make_node("CastLike", ["a", "x"], ["a1"]),
        helper.make_node("Mul", ["x", "k"], ["xk"]),
        helper.make_node("Add", ["xk", "b"], ["y"]),
    ]
    const_attr = onnx.AttributeProto(name="value_float", ref_attr_name="alpha", type=onnx.AttributeProto.FLOAT)
    nodes.insert(0, helper.make_node("Constant", [], ["k"]))
    nodes[0].attribute.append(const_attr)
    fn = helper.make_function(
        domain, "ScaleAdd", ["x", "b"], ["y"], nodes, [helper.make_opsetid("", 17)], attributes=[]
    )
    fn.attribute_proto.append(alpha)
    return fn


def test_local_function_is_inlined_with_attribute_refs():
    call1 = helper.make_node("ScaleAdd", ["x", "b"], ["t"], domain="custom", alpha=3.0)
    call2 = helper.make_node("ScaleAdd", ["t", "b"], ["y"], domain="custom")
    model = model_of(
        [call1, call2],
        [vi("x", F32, [3]), vi("b", F32, [3])],
        [vi("y", F32, [3])],
        functions=[scale_add_function()],
        extra_opsets=[("custom", 1)],
    )
    feeds = {"x": np.array([1, 2, 3], np.float32), "b": np.array([1, 0, -1], np.float32)}
    graph = compare_with_ort(model, feeds)
    assert all(n.op != "custom.ScaleAdd" for n in graph.walk())
    np.testing.assert_allclose(interpret(graph, feeds)["y"], (feeds["x"] * 3 + feeds["b"]) * 2 + feeds["b"])


def test_function_calling_function():
    outer_nodes = [
        helper.make_node("ScaleAdd", ["x", "x"], ["y0"], domain="custom", alpha=0.5),
        helper.make_node("Relu", ["y0"], ["y"]),
    ]
    outer = helper.make_function(
        "custom", "Outer", ["x"], ["y"], outer_nodes, [helper.make_opsetid("", 17), helper.make_opsetid("custom", 1)]
    )
    model = model_of(
        [helper.make_node("Outer", ["x"], ["y"], domain="custom")],
        [vi("x", F32, [4])],
        [vi("y", F32, [4])],
        functions=[scale_add_function(), outer],
        extra_opsets=[("custom", 1)],
    )
    compare_with_ort(model, {"x": np.array([-2, -1, 1, 2], np.float32)})


# ------------------------------------------------------------------ order, outputs, external data


def test_unsorted_nodes_are_sorted():
    nodes = [helper.make_node("Relu", ["a"], ["y"]), helper.make_node("Neg", ["x"], ["a"])]
    graph = compare_with_ort(
        model_of(nodes, [vi("x", F32, [3])], [vi("y", F32, [3])]), {"x": np.array([1, -2, 3], np.float32)}
    )
    assert [n.op for n in graph.nodes] == ["Neg", "Relu"]


def test_input_passed_through_and_output_listed_twice():
    nodes = [helper.make_node("Relu", ["x"], ["r"])]
    model = model_of(nodes, [vi("x", F32, [2])], [vi("x", F32, [2]), vi("r", F32, [2])])
    graph = import_model(model)
    verify(graph)
    assert [v.name for v in graph.outputs] == ["x", "r"]
    out = interpret(graph, {"x": np.array([-1, 1], np.float32)})
    np.testing.assert_array_equal(out["r"], [0, 1])


def test_external_data_is_memory_mapped(tmp_path):
    w = np.arange(64, dtype=np.float32).reshape(8, 8)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
    model = model_of(
        nodes, [vi("x", F32, [2, 8])], [vi("y", F32, [2, 8])], initializers=[numpy_helper.from_array(w, "w")]
    )
    path = tmp_path / "m.onnx"
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    graph = import_model(str(path))
    verify(graph)
    const = graph.find("w").const_value
    assert isinstance(const, np.memmap) or isinstance(getattr(const, "base", None), np.memmap)
    np.testing.assert_array_equal(const, w)
    x = np.ones((2, 8), np.float32)
    np.testing.assert_allclose(interpret(graph, {"x": x})["y"], x @ w)


def test_version_independent_ops_keep_attributes():
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], strides=[2, 2])
    w = numpy_helper.from_array(np.random.default_rng(3).standard_normal((4, 2, 3, 3)).astype(np.float32), "w")
    model = model_of([node], [vi("x", F32, [1, 2, 6, 6])], [vi("y", F32, None)], 7, [w])
    x = np.random.default_rng(4).standard_normal((1, 2, 6, 6)).astype(np.float32)
    graph = compare_with_ort(model, {"x": x})
    conv = next(n for n in graph.nodes if n.op == "Conv")
    assert conv.attrs["strides"] == [2, 2] and isinstance(conv.results[0].type, TensorType)


@pytest.mark.parametrize("opset", [7, 11, 13, 18])
def test_every_supported_opset_imports(opset):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "x"], ["y"])]
    compare_with_ort(
        model_of(nodes, [vi("x", F32, [3])], [vi("y", F32, [3])], opset), {"x": np.array([-1, 0, 2], np.float32)}
    )


def test_model_with_weights_over_2gb_is_memory_mapped(tmp_path):
    """A 2.5 GB external tensor (a sparse file) imports without being read into memory."""
    count = 640 * 1024 * 1024  # float32 elements: 2.5 GiB
    probe = 600_000_000
    data = tmp_path / "big.bin"
    with open(data, "wb") as f:
        f.truncate(count * 4)
        f.seek(probe * 4)
        f.write(np.array([1.5], np.float32).tobytes())
    big = onnx.TensorProto(name="w", data_type=F32, dims=[count], data_location=TensorProto.EXTERNAL)
    for key, value in (("location", "big.bin"), ("offset", "0"), ("length", str(count * 4))):
        entry = big.external_data.add()
        entry.key, entry.value = key, value
    nodes = [helper.make_node("Gather", ["w", "idx"], ["y"])]
    model = model_of(nodes, [vi("idx", I64, [2])], [vi("y", F32, [2])], initializers=[big])
    path = tmp_path / "big.onnx"
    path.write_bytes(model.SerializeToString())
    graph = import_model(str(path))
    verify(graph)
    weights = graph.find("w").const_value
    assert weights.shape == (count,) and isinstance(weights, np.memmap)
    out = interpret(graph, {"idx": np.array([probe, 7], np.int64)})["y"]
    np.testing.assert_array_equal(out, [1.5, 0.0])


@pytest.mark.parametrize("op", ["LayerNormalization", "Gelu"])
def test_schema_function_expands_when_ember_lacks_the_op(monkeypatch, op):
    """Ops Ember has no definition of are expanded through onnx's (context-dependent) function body."""
    import frontends.onnx.importer as importer

    real = importer.get_op
    monkeypatch.setattr(importer, "get_op", lambda name: None if name == op else real(name))
    rng = np.random.default_rng(7)
    inits, inputs = [], ["x"]
    if op == "LayerNormalization":
        inits = [numpy_helper.from_array(rng.random(4).astype(np.float32), n) for n in ("s", "b")]
        inputs = ["x", "s", "b"]
    model = model_of([helper.make_node(op, inputs, ["y"])], [vi("x", F32, [2, 4])], [vi("y", F32, [2, 4])], 20, inits)
    graph = compare_with_ort(model, {"x": rng.standard_normal((2, 4)).astype(np.float32)})
    assert op not in [n.op for n in graph.walk()] and len(graph) > 3


def test_pinned_symbol_applies_to_every_input_and_declared_type():
    nodes = [helper.make_node("Add", ["x", "y"], ["s"]), helper.make_node("Relu", ["s"], ["r"])]
    model = model_of(nodes, [vi("x", F32, ["batch", 3]), vi("y", F32, ["batch", 3])], [vi("r", F32, ["batch", 3])])
    model.graph.value_info.append(vi("s", F32, ["batch", 3]))
    graph = import_model(model, input_shapes={"x": [2, 3]})
    verify(graph)
    assert [p.type.shape for p in graph.params] == [(2, 3), (2, 3)]
    assert graph.outputs[0].type.shape == (2, 3)


def test_initializer_inputs_can_be_real_inputs():
    nodes = [helper.make_node("Add", ["x", "bias"], ["y"])]
    bias = numpy_helper.from_array(np.ones(3, np.float32), "bias")
    model = model_of(nodes, [vi("x", F32, [3]), vi("bias", F32, [3])], [vi("y", F32, [3])], initializers=[bias])
    as_constant = import_model(model)
    assert [p.name for p in as_constant.params] == ["x"]
    as_param = import_model(model, initializer_inputs="param")
    verify(as_param)
    assert [p.name for p in as_param.params] == ["x", "bias"]
    assert all(n.op != "Constant" for n in as_param.nodes)
    out = interpret(as_param, {"x": np.zeros(3, np.float32), "bias": np.full(3, 2, np.float32)})["y"]
    np.testing.assert_array_equal(out, [2, 2, 2])


def test_node_whose_subgraph_captures_a_later_value_is_sorted_after_it():
    then_g = helper.make_graph([helper.make_node("Neg", ["late"], ["t"])], "then", [], [vi("t", F32, [2])])
    nodes = [
        helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=then_g),
        helper.make_node("Relu", ["x"], ["late"]),
    ]
    model = model_of(nodes, [vi("c", TensorProto.BOOL, []), vi("x", F32, [2])], [vi("y", F32, [2])])
    graph = compare_with_ort(model, {"c": np.array(True), "x": np.array([-1, 2], np.float32)})
    assert [n.op for n in graph.nodes] == ["Relu", "If"]


def test_loop_carried_value_that_grows():
    """An untyped body input takes the carried value's dtype and rank only: its shape changes per iteration."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Concat", ["acc_in", "row"], ["acc_out"], axis=0),
        ],
        "body",
        [vi("i", I64, []), vi("cond_in", BOOL, []), helper.make_empty_tensor_value_info("acc_in")],
        [vi("cond_out", BOOL, []), helper.make_tensor_value_info("acc_out", F32, None)],
    )
    trip = numpy_helper.from_array(np.array(3, np.int64), "trip")
    cond = numpy_helper.from_array(np.array(True), "cond")
    init = numpy_helper.from_array(np.zeros((0, 2), np.float32), "init")
    node = helper.make_node("Loop", ["trip", "cond", "init"], ["stacked"], body=body)
    model = model_of(
        [node],
        [vi("row", F32, [1, 2])],
        [helper.make_tensor_value_info("stacked", F32, None)],
        initializers=[trip, cond, init],
    )
    compare_with_ort(model, {"row": np.array([[1, 2]], np.float32)})


def test_function_with_subgraph_called_twice():
    """An If inside a function body reads the function's formal input; each call gets its own copy."""
    then_g = helper.make_graph([helper.make_node("Neg", ["a"], ["t"])], "then", [], [vi("t", F32, [2])])
    else_g = helper.make_graph([helper.make_node("Abs", ["a"], ["e"])], "else", [], [vi("e", F32, [2])])
    fn = helper.make_function(
        "custom",
        "NegOrAbs",
        ["a", "flag"],
        ["r"],
        [helper.make_node("If", ["flag"], ["r"], then_branch=then_g, else_branch=else_g)],
        [helper.make_opsetid("", 17)],
    )
    nodes = [
        helper.make_node("NegOrAbs", ["x", "c"], ["y1"], domain="custom"),
        helper.make_node("NegOrAbs", ["y1", "d"], ["y"], domain="custom"),
    ]
    model = model_of(
        nodes,
        [vi("x", F32, [2]), vi("c", BOOL, []), vi("d", BOOL, [])],
        [vi("y", F32, [2])],
        functions=[fn],
        extra_opsets=[("custom", 1)],
    )
    x = np.array([1, -2], np.float32)
    for c, d in ((True, True), (True, False), (False, True)):
        graph = compare_with_ort(model, {"x": x, "c": np.array(c), "d": np.array(d)})
    assert [n.op for n in graph.nodes] == ["If", "If"]


def test_sparse_initializer_and_sparse_constant_become_dense():
    values = numpy_helper.from_array(np.array([5.0, 7.0], np.float32), "sp")
    indices = numpy_helper.from_array(np.array([1, 4], np.int64), "sp_idx")
    sparse = helper.make_sparse_tensor(values, indices, [6])
    const = helper.make_node("Constant", [], ["c"], sparse_value=sparse)
    nodes = [const, helper.make_node("Add", ["x", "sp"], ["s"]), helper.make_node("Add", ["s", "c"], ["y"])]
    graph_proto = helper.make_graph(nodes, "g", [vi("x", F32, [6])], [vi("y", F32, [6])], sparse_initializer=[sparse])
    model = helper.make_model(graph_proto, opset_imports=[helper.make_opsetid("", 17)])
    graph = import_model(model)
    verify(graph)
    out = interpret(graph, {"x": np.zeros(6, np.float32)})["y"]
    np.testing.assert_array_equal(out, [0, 10, 0, 0, 14, 0])
