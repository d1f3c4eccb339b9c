"""Guarded kernels, continued: an integer divisor in a fused kernel, Scatter max/min reductions
over NaN, and Clip with an absent bound, each against onnxruntime (the interpreter and the
compiled library agree with it).

- An integer Div/Mod after an integer MatMul or ConvInteger fails the run on a zero divisor, as
  the unfused kernel does; a divisor computed inside the same kernel (which the fuse pass never
  makes) is refused when compiling instead of dividing by one.
- ScatterElements/ScatterND with ``reduction`` max or min apply the updates in order as
  onnxruntime does (``max``: ``a = u < a ? a : u``): a NaN update replaces the value, and a later
  update replaces a NaN.
- Clip's absent bound is the type's finite limit (the spec's numeric_limits::lowest()/max()), so
  +-inf clip to +-FLT_MAX, as onnxruntime gives.
"""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
import pytest
from compiled_checks import compiled_and_reference, refused
from onnx import TensorProto, helper, numpy_helper

from codegen.errors import CodegenError
from compiler import Builder, DType, Graph, TensorType
from compiler.driver import compile_model

F, I32, I64, U8 = TensorProto.FLOAT, TensorProto.INT32, TensorProto.INT64, TensorProto.UINT8
NAN, INF = np.nan, np.inf


def ort_run(model, feeds: dict):
    options = ort.SessionOptions()
    options.log_severity_level = 4
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def model_of(nodes, inputs, outputs, initializers=(), opset=18):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
        initializer=[numpy_helper.from_array(v, n) for n, v in initializers],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


# ---------------------------------------------------------------- integer division after an anchor


def matmul_then(op):
    w = np.arange(-6, 6, dtype=np.int32).reshape(4, 3)
    nodes = [
        helper.make_node("MatMul", ["a", "w"], ["m"], name="mm"),
        helper.make_node(op, ["m", "d"], ["y"], name=f"node_{op.lower()}"),
    ]
    return model_of(nodes, [("a", I32, [2, 4]), ("d", I32, [2, 3])], [("y", I32, [2, 3])], [("w", w)])


def conv_integer_then(op):
    w = (np.arange(2 * 2 * 2 * 2) % 5).astype(np.uint8).reshape(2, 2, 2, 2)
    nodes = [
        helper.make_node("ConvInteger", ["x", "w"], ["c"], name="conv"),
        helper.make_node(op, ["c", "d"], ["y"], name=f"node_{op.lower()}"),
    ]
    return model_of(nodes, [("x", U8, [1, 2, 3, 3]), ("d", I32, [1, 2, 2, 2])], [("y", I32, [1, 2, 2, 2])], [("w", w)])


@pytest.mark.parametrize("op", ["Div", "Mod"])
@pytest.mark.parametrize("anchor", ["MatMul", "ConvInteger"])
def test_integer_division_after_an_anchor_checks_its_divisor(anchor, op):
    if anchor == "MatMul":
        model, x = matmul_then(op), np.arange(8, dtype=np.int32).reshape(2, 4) - 3
    else:
        model, x = conv_integer_then(op), (np.arange(18) * 7 % 11).astype(np.uint8).reshape(1, 2, 3, 3)
    shape = [d.dim_value for d in model.graph.input[1].type.tensor_type.shape.dim]
    divisor = np.resize(np.array([3, -2, 5, 7], np.int32), shape)
    rep, ref = compiled_and_reference(model)
    want = ort_run(model, {"a" if anchor == "MatMul" else "x": x, "d": divisor})[0]
    np.testing.assert_array_equal(rep.run([x, divisor])[0], want)
    np.testing.assert_array_equal(ref.run([x, divisor])[0], want)
    zero = divisor.copy()
    zero.reshape(-1)[-1] = 0
    refused(rep, [x, zero], [op, f"node_{op.lower()}", "by zero"])


def test_a_divisor_computed_in_the_same_kernel_is_refused_not_divided_by_one(tmp_path):
    """A hand-made group Abs(d) -> Div(a, .): the zero check cannot read Abs's result when the
    kernel starts, so compiling fails (the fuse pass keeps integer divisors kernel inputs)."""
    i32 = DType.INT32
    body = Graph("body")
    bb = Builder(body)
    pa, pd = bb.param("pa", TensorType(i32, (8,))), bb.param("pd", TensorType(i32, (8,)))
    body.outputs = [bb.op("Div", [pa, bb.op("Abs", [pd])])]
    g = Graph("g")
    b = Builder(g)
    a, d = b.param("a", TensorType(i32, (8,))), b.param("d", TensorType(i32, (8,)))
    g.outputs = [b.op("ember.Fused", [a, d], {"body": body}, names=["y"])]
    with pytest.raises(CodegenError, match="divisor computed inside the same kernel"):
        compile_model(g, os.path.join(tmp_path, "m.so"), pipeline="O1")


# ---------------------------------------------------------------- scatter reductions over NaN


SCATTER_DATA = np.array([1, NAN, 3, 4, NAN, 1, -INF, 0], np.float32)
SCATTER_CASES = {
    "ScatterElements": (
        np.array([0, 1, 2, 0, 1, 5, 5, 5, 6, 7, 7], np.int64),
        np.array([NAN, 5, NAN, 2, NAN, NAN, 5, 2, NAN, 1, NAN], np.float32),
    ),
    "ScatterND": (
        np.array([[0], [1], [2], [0], [5], [5], [5], [-2], [-1], [-1]], np.int64),
        np.array([NAN, 5, NAN, 2, NAN, 7, 3, 1, NAN, -1], np.float32),
    ),
}


@pytest.mark.parametrize("reduction", ["max", "min"])
@pytest.mark.parametrize("op", sorted(SCATTER_CASES))
def test_scatter_reductions_over_nan_like_onnxruntime(op, reduction):
    indices, updates = SCATTER_CASES[op]
    node = helper.make_node(op, ["d", "i", "u"], ["y"], name="scatter", reduction=reduction)
    model = model_of(
        [node],
        [("d", F, [8]), ("i", I64, list(indices.shape)), ("u", F, list(updates.shape))],
        [("y", F, [8])],
    )
    want = ort_run(model, {"d": SCATTER_DATA, "i": indices, "u": updates})[0]
    assert np.isnan(want).any() and not np.isnan(want).all()
    rep, ref = compiled_and_reference(model)
    for run in (ref, rep):
        np.testing.assert_array_equal(run.run([SCATTER_DATA, indices, updates])[0], want)


def test_scatter_elements_max_along_an_axis_of_a_matrix():
    data = np.array([[1, NAN, 3], [4, 5, NAN]], np.float32)
    indices = np.array([[1, 0, 0], [0, 0, 1], [1, 1, 0]], np.int64)
    updates = np.array([[NAN, 2, 7], [9, NAN, 1], [0, 8, NAN]], np.float32)
    node = helper.make_node("ScatterElements", ["d", "i", "u"], ["y"], name="scatter", axis=0, reduction="max")
    model = model_of([node], [("d", F, [2, 3]), ("i", I64, [3, 3]), ("u", F, [3, 3])], [("y", F, [2, 3])])
    want = ort_run(model, {"d": data, "i": indices, "u": updates})[0]
    rep, ref = compiled_and_reference(model)
    for run in (ref, rep):
        np.testing.assert_array_equal(run.run([data, indices, updates])[0], want)


# ---------------------------------------------------------------- Clip with an absent bound


CLIP_X = np.array([INF, -INF, NAN, 1, -5, 3.4028235e38, -3.4028235e38, 0.5], np.float32)


@pytest.mark.parametrize(
    "operands, bounds, opset, attrs",
    [
        (["x", "lo"], {"lo": 0.0}, 18, {}),
        (["x", "", "hi"], {"hi": 0.0}, 18, {}),
        (["x"], {}, 18, {}),
        (["x"], {}, 6, {"min": 0.0}),
    ],
    ids=["min-only", "max-only", "no-bounds", "clip6-min-attribute"],
)
def test_clip_with_an_absent_bound_clips_infinities_to_the_type_limit(operands, bounds, opset, attrs):
    node = helper.make_node("Clip", operands, ["y"], name="clip", **attrs)
    consts = [(n, np.array(v, np.float32)) for n, v in bounds.items()]
    model = model_of([node], [("x", F, [8])], [("y", F, [8])], consts, opset=opset)
    want = ort_run(model, {"x": CLIP_X})[0]
    assert np.isfinite(want[:2]).all()  # onnxruntime's answer: +-inf become +-FLT_MAX where unbounded
    rep, ref = compiled_and_reference(model)
    for run in (ref, rep):
        np.testing.assert_array_equal(run.run([CLIP_X])[0], want)


def test_integer_clip_with_an_absent_bound_is_unchanged():
    x = np.array([np.iinfo(np.int32).min, -3, 0, 9, np.iinfo(np.int32).max], np.int32)
    node = helper.make_node("Clip", ["x", "lo"], ["y"], name="clip")
    model = model_of([node], [("x", I32, [5])], [("y", I32, [5])], [("lo", np.array(-3, np.int32))])
    want = ort_run(model, {"x": x})[0]
    rep, ref = compiled_and_reference(model)
    for run in (ref, rep):
        np.testing.assert_array_equal(run.run([x])[0], want)
