"""``export_model``: checker-clean models that onnxruntime runs with the interpreter's outputs.

Graphs are built with the Builder (plain ops, If/Loop bodies that read outer
values, duplicate names, odd outputs, internal ops); each export must pass
``onnx.checker.check_model(full_check=True)`` and, where onnxruntime can run
it, give the same outputs as Ember's interpreter on the original graph.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from compiler import Builder, DType, EmberError, Graph, SequenceType, TensorType, interpret, verify
from frontends.onnx import export_model, import_model
from frontends.onnx.exporter import ort_session, split_op_name

F32 = DType.FLOAT32
RNG = np.random.default_rng(7)


def _check_against_interpreter(graph: Graph, feeds: dict[str, np.ndarray]) -> onnx.ModelProto:
    """Export, run the checker, run onnxruntime; assert ORT == interpreter; return the model."""
    model = export_model(graph)
    onnx.checker.check_model(model, full_check=True)
    expected = list(interpret(graph, feeds).values())
    actual = ort_session(model).run(None, feeds)
    assert len(actual) == len(expected)
    for e, a in zip(expected, actual):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)
    return model


def _mlp() -> Graph:
    g = Graph("mlp")
    b = Builder(g)
    x = b.param("x", TensorType(F32, ("batch", 8)))
    w1 = b.constant(RNG.standard_normal((8, 16)).astype(np.float32), name="w1")
    b1 = b.constant(RNG.standard_normal(16).astype(np.float32), name="b1")
    h = b.op("Relu", [b.op("Add", [b.op("MatMul", [x, w1]), b1])])
    w2 = b.constant(RNG.standard_normal((16, 4)).astype(np.float32), name="w2")
    y = b.op("Softmax", [b.op("MatMul", [h, w2])], {"axis": -1})
    y.name = "probs"
    g.outputs = [y]
    verify(g)
    return g


def test_mlp_constants_become_initializers_and_ort_matches():
    g = _mlp()
    model = _check_against_interpreter(g, {"x": RNG.standard_normal((3, 8)).astype(np.float32)})
    assert {t.name for t in model.graph.initializer} == {"w1", "b1", "w2"}
    assert all(n.op_type != "Constant" for n in model.graph.node)
    assert [i.name for i in model.graph.input] == ["x"]
    assert [o.name for o in model.graph.output] == ["probs"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and dims[1].dim_value == 8


def test_opset_is_the_newest_version_of_the_ops_used():
    model = export_model(_mlp())
    newest = max(
        onnx.defs.get_schema(op, onnx.defs.onnx_opset_version(), "").since_version
        for op in ("Relu", "Add", "MatMul", "Softmax")
    )
    assert model.opset_import[0].version == newest
    with pytest.raises(EmberError, match=f"opset 7 is too old.*opset {newest}"):
        export_model(_mlp(), opset=7)


def test_type_only_version_bumps_do_not_raise_the_opset():
    from frontends.onnx.exporter import SEMANTIC_FLOOR, _signature

    g = Graph("cast")
    b = Builder(g)
    x = b.param("x", TensorType(F32, (4,)))
    g.outputs = [b.op("Cast", [x], {"to": onnx.TensorProto.INT64})]
    model = _check_against_interpreter(g, {"x": np.array([-2.5, -1.0, 0.0, 3.7], np.float32)})
    version = model.opset_import[0].version
    newest = onnx.defs.get_schema("Cast", onnx.defs.onnx_opset_version(), "")
    assert SEMANTIC_FLOOR <= version <= newest.since_version
    assert _signature(onnx.defs.get_schema("Cast", version, "")) == _signature(newest)


def test_opset_rises_for_types_only_newer_versions_accept():
    g = Graph("int_relu")
    b = Builder(g)
    x = b.param("x", TensorType(DType.INT32, (4,)))
    g.outputs = [b.op("Relu", [x])]
    model = _check_against_interpreter(g, {"x": np.array([-2, -1, 0, 3], np.int32)})
    assert model.opset_import[0].version == 14  # Relu admits int32 from opset 14


def _if_graph() -> Graph:
    """y = If(c) then x + 1 else x * y0, both branches reading outer values."""
    g = Graph("branchy")
    b = Builder(g)
    c = b.param("c", TensorType(DType.BOOL, ()))
    x = b.param("x", TensorType(F32, (2, 3)))
    y0 = b.param("y0", TensorType(F32, (2, 3)))
    then_g = Graph("then")
    tb = Builder(then_g)
    then_g.outputs = [tb.op("Add", [x, tb.constant(np.float32(1.0), name="one")])]
    else_g = Graph("else")
    eb = Builder(else_g)
    else_g.outputs = [eb.op("Mul", [x, y0])]
    out = b.op("If", [c], {"then_branch": then_g, "else_branch": else_g})
    out.name = "out"
    g.outputs = [out]
    verify(g)
    return g


@pytest.mark.parametrize("cond", [True, False])
def test_if_branches_capture_outer_values_by_name(cond):
    g = _if_graph()
    feeds = {
        "c": np.array(cond),
        "x": RNG.standard_normal((2, 3)).astype(np.float32),
        "y0": RNG.standard_normal((2, 3)).astype(np.float32),
    }
    model = _check_against_interpreter(g, feeds)
    if_node = next(n for n in model.graph.node if n.op_type == "If")
    then_proto = next(a.g for a in if_node.attribute if a.name == "then_branch")
    assert len(then_proto.input) == 0
    assert any("x" in n.input for n in then_proto.node)  # the outer 'x', read by name
    assert any(n.op_type == "Constant" for n in then_proto.node)  # nested constants stay nodes


def test_loop_body_reads_outer_value_and_scans():
    g = Graph("looping")
    b = Builder(g)
    x = b.param("x", TensorType(F32, (3,)))
    trip = b.constant(np.array(4, dtype=np.int64), name="trip")
    body = Graph("body")
    bb = Builder(body)
    bb.param("i", TensorType(DType.INT64, ()))
    cond = bb.param("cond", TensorType(DType.BOOL, ()))
    acc = bb.param("acc", TensorType(F32, (3,)))
    new_acc = bb.op("Add", [acc, x])
    body.outputs = [bb.op("Identity", [cond]), new_acc, bb.op("Identity", [new_acc])]
    final, scanned = b.op("Loop", [trip, None, x], {"body": body}, num_results=2)
    g.outputs = [final, scanned]
    verify(g)
    _check_against_interpreter(g, {"x": np.arange(3, dtype=np.float32)})


def test_loop_body_if_reads_a_value_two_graphs_out():
    """Loop body -> If branch -> reads the top graph's 'scale': a capture across two levels."""
    g = Graph("nested")
    b = Builder(g)
    x = b.param("x", TensorType(F32, (2,)))
    scale = b.param("scale", TensorType(F32, (2,)))
    trip = b.constant(np.array(3, dtype=np.int64), name="trip")
    body = Graph("body")
    bb = Builder(body)
    i = bb.param("i", TensorType(DType.INT64, ()))
    cond = bb.param("cond", TensorType(DType.BOOL, ()))
    acc = bb.param("acc", TensorType(F32, (2,)))
    is_even = bb.op(
        "Equal", [bb.op("Mod", [i, bb.constant(np.array(2, np.int64))]), bb.constant(np.array(0, np.int64))]
    )
    then_g, else_g = Graph("then"), Graph("else")
    then_g.outputs = [Builder(then_g).op("Mul", [acc, scale])]
    else_g.outputs = [Builder(else_g).op("Add", [acc, scale])]
    stepped = bb.op("If", [is_even], {"then_branch": then_g, "else_branch": else_g})
    body.outputs = [bb.op("Identity", [cond]), stepped]
    g.outputs = [b.op("Loop", [trip, None, x], {"body": body})]
    verify(g)
    _check_against_interpreter(g, {"x": np.array([1.0, 2.0], np.float32), "scale": np.array([3.0, -1.0], np.float32)})


def test_untyped_nested_inputs_are_allowed_untyped_top_inputs_are_not():
    from frontends.onnx.exporter import _Exporter

    body = Graph("body")
    body.outputs = [body.add_param(None, "free")]
    proto = _Exporter(False, True).export_graph(body)  # as a nested graph
    assert proto.input[0].name == "free" and proto.input[0].type.WhichOneof("value") is None
    with pytest.raises(EmberError, match="graph input 'free' has no type"):
        export_model(body)


def test_names_are_unique_across_nested_graphs():
    g = _if_graph()
    for node in g.walk():
        for r in node.results:
            r.name = "t"  # every value named alike
    model = export_model(g)
    onnx.checker.check_model(model, full_check=True)
    names = [o for n in model.graph.node for o in n.output]
    for n in model.graph.node:
        for a in n.attribute:
            if a.g.node:
                names += [o for sub in a.g.node for o in sub.output]
    assert len(names) == len(set(names))


def test_outputs_that_are_inputs_constants_or_repeated():
    g = Graph("odd_outputs")
    b = Builder(g)
    x = b.param("x", TensorType(F32, (2,)))
    k = b.constant(np.array([5.0, 6.0], np.float32), name="k")
    s = b.op("Add", [x, k])
    g.outputs = [x, k, s, s]
    model = _check_against_interpreter(g, {"x": np.array([1.0, 2.0], np.float32)})
    names = [o.name for o in model.graph.output]
    assert len(set(names)) == 4


def test_sequence_values_export_with_sequence_types():
    g = Graph("seq")
    b = Builder(g)
    x = b.param("x", TensorType(F32, (2, 2)))
    y = b.param("y", TensorType(F32, (2, 2)))
    seq = b.op("SequenceConstruct", [x, y])
    assert isinstance(seq.type, SequenceType)
    g.outputs = [b.op("ConcatFromSequence", [seq], {"axis": 0})]
    verify(g)
    model = _check_against_interpreter(g, {"x": np.ones((2, 2), np.float32), "y": np.zeros((2, 2), np.float32)})
    infos = {vi.name: vi for vi in model.graph.value_info}
    assert any(vi.type.HasField("sequence_type") for vi in infos.values())


def test_internal_ops_keep_their_domain_or_are_refused():
    g = Graph("custom")
    b = Builder(g)
    src = b.node("test.source", [], result_types=[TensorType(F32, (2,))], name="src").result
    g.outputs = [b.op("Relu", [src])]
    model = export_model(g)
    onnx.checker.check_model(model, full_check=True)
    node = next(n for n in model.graph.node if n.op_type == "source")
    assert node.domain == "test"
    assert {o.domain for o in model.opset_import} == {"", "test"}
    with pytest.raises(EmberError, match=r"node 'src'.*op test.source.*no ONNX equivalent"):
        export_model(g, custom_ops="error")


def test_untyped_input_is_refused_with_its_name():
    g = Graph("untyped")
    x = g.add_param(None, "mystery")
    g.outputs = [x]
    with pytest.raises(EmberError, match="graph input 'mystery' has no type"):
        export_model(g)


def test_split_op_name():
    assert split_op_name("Conv") == ("", "Conv")
    assert split_op_name("caffe.PriorBox") == ("caffe", "PriorBox")
    assert split_op_name("ember.fused.conv") == ("ember.fused", "conv")


def test_export_then_import_preserves_semantics():
    g = _if_graph()
    back = import_model(export_model(g))
    verify(back)
    feeds = {
        "c": np.array(False),
        "x": RNG.standard_normal((2, 3)).astype(np.float32),
        "y0": RNG.standard_normal((2, 3)).astype(np.float32),
    }
    expected = list(interpret(g, feeds).values())
    actual = list(interpret(back, feeds).values())
    np.testing.assert_allclose(actual[0], expected[0], rtol=1e-6)


@pytest.mark.parametrize("external", [False, True])
def test_save_model_writes_a_loadable_file(tmp_path, external):
    from frontends.onnx.exporter import save_model

    g = _mlp()
    path = str(tmp_path / "mlp.onnx")
    save_model(g, path, external_data=external)
    assert (tmp_path / "mlp.onnx.data").exists() == external
    onnx.checker.check_model(path, full_check=True)
    back = import_model(path)
    x = RNG.standard_normal((2, 8)).astype(np.float32)
    np.testing.assert_allclose(
        list(interpret(back, {"x": x}).values())[0], list(interpret(g, {"x": x}).values())[0], rtol=1e-6
    )


def test_unexportable_attribute_names_node_and_op():
    g = Graph("bad_attr")
    b = Builder(g)
    x = b.param("x", TensorType(F32, (2,)))
    y = b.node("Relu", [x], name="act").result
    y.producer.attrs["note"] = object()  # no ONNX attribute kind holds this
    g.outputs = [y]
    with pytest.raises(EmberError, match=r"node 'act'.*op Relu.*cannot export attribute 'note'"):
        export_model(g)
