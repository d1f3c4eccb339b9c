"""Reductions over an axis outside the innermost (a Softmax over channels, a ReduceMean over axis
1 of NCHW) under the generic schedule: vectorised over the innermost spatial axis, each lane its
own column's sum (``schedule._schedule_reduction_across_rows``), where they had reduced one
column at a time; rows that are not whole vectors keep that form. Compared with the interpreter."""

from __future__ import annotations

import numpy as np
import pytest
from compiled_checks import check_against_interpreter, node_model, only_kernel
from onnx import TensorProto

F = TensorProto.FLOAT


def _scheduled_script(model) -> str:
    """The TVMScript of ``model``'s one kernel under the generic schedule (as a reduction)."""
    import tvm
    from tvm import te

    from codegen.tvm.kernel import spec_to_te
    from codegen.tvm.schedule import apply_schedule

    spec, target = only_kernel(model)
    params = target.schedule_params()
    placeholders, outputs = spec_to_te(spec, [], params)
    mod = tvm.IRModule({"main": te.create_prim_func(placeholders + outputs)})
    scheduled, used = apply_schedule(mod, "reduce", params)
    assert used == "generic"
    return scheduled.script()


def _reduction_loops_vectorised(model) -> bool:
    """Whether a reduction block of ``model``'s one kernel sits inside a vectorised loop."""
    script = _scheduled_script(model)
    return "T.vectorized" in script and "_update" in script


@pytest.mark.parametrize(
    "op,shape,attrs,vectorised",
    [
        ("ReduceSum", [2, 16, 5, 48], dict(keepdims=1), True),
        ("ReduceMax", [2, 3, 4, 64], dict(keepdims=0), True),
        ("ReduceMean", [1, 7, 3, 40], dict(keepdims=1), True),  # 40 columns: two vectors, then 8
        ("ReduceMax", [2, 6, 5, 7], dict(keepdims=0), True),  # 7 columns: one short vector
    ],
)
def test_reductions_across_rows_are_vector_columns(op, shape, attrs, vectorised):
    """Columns take the vector form: whole vectors of them, and a row that is not whole vectors
    cut into its whole vectors and one shorter vector (a split's predicate would put a bounds test
    on every lane). Both match, a NaN in a column included."""
    axes = [1] if op != "ReduceMax" else [1, 2]
    model = node_model(
        op, [("x", F, shape), ("axes", TensorProto.INT64, [len(axes)])], [("y", F, None)], opset=18, **attrs
    )
    from onnx import numpy_helper

    model.graph.initializer.append(numpy_helper.from_array(np.array(axes, np.int64), "axes"))
    del model.graph.input[1]
    assert _reduction_loops_vectorised(model) == vectorised
    x = np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32)
    if op == "ReduceMax":
        x[1, 2, 0, -1] = np.nan
    check_against_interpreter(model, {"x": x}, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_over_the_first_axis_matches_the_interpreter(op):
    """A Softmax over axis 0 of a 2-D tensor whose rows are not whole vectors (100 columns: six
    vectors and 4) reduces across rows in vector columns."""
    shape = [37, 100]
    model = node_model(op, [("x", F, shape)], [("y", F, shape)], axis=0)
    assert _reduction_loops_vectorised(model)
    x = (np.random.default_rng(3).standard_normal(shape) * 4).astype(np.float32)
    check_against_interpreter(model, {"x": x}, rtol=1e-5, atol=1e-6)


def test_softmax_over_channels_matches_the_interpreter():
    """A Softmax over axis 1 (YOLOv8's DFL head: 16 bins of 4 x 8400) takes the non-row form, whose
    maximum and sum reduce across rows."""
    shape = [1, 16, 4, 80]
    model = node_model("Softmax", [("x", F, shape)], [("y", F, shape)], axis=1)
    x = (np.random.default_rng(2).standard_normal(shape) * 5).astype(np.float32)
    x[0, 3, 1, 7] = np.nan
    check_against_interpreter(model, {"x": x}, rtol=1e-5, atol=1e-6)


def test_last_axis_reductions_are_vectors_along_each_row():
    """A reduction over the innermost axis reads each row contiguously: not vectorised across rows
    (which would read each lane's row with a stride) but along it, into per-lane partial results."""
    model = node_model("ReduceL2", [("x", F, [64, 48])], [("y", F, None)], opset=13, axes=[1], keepdims=1)
    script = _scheduled_script(model)
    assert "_rf" in script and "T.vectorized" in script, script


@pytest.mark.parametrize(
    "op,shape,axes,keepdims,dtype",
    [
        ("ReduceSum", [6, 1024], [1], 0, F),
        ("ReduceMean", [2, 8, 14, 16], [2, 3], 1, F),  # two trailing axes: one row of 224
        ("ReduceMax", [5, 96], [1], 1, F),
        ("ReduceMin", [3, 4, 40], [1, 2], 0, F),  # the lowering's partials over the last axis, axis 1 outside
        ("ReduceMax", [4, 64], [1], 0, TensorProto.INT32),
        ("ReduceSumSquare", [7, 30], [1], 1, F),  # 30: two vectors of 8 do not divide it, 15 partials of 2
        ("ReduceProd", [3, 64], [1], 0, F),
        ("ReduceMean", [3, 5, 7], [2], 1, F),  # a row of 7: no vector
    ],
)
def test_reductions_along_rows_match_the_interpreter(op, shape, axes, keepdims, dtype):
    """Reductions over the innermost axes, split into per-lane partial results (``rfactor`` for
    TVM's own combiners, the lowering's two stages for the NaN-keeping maximum and minimum), match
    the interpreter; a NaN in a row gives NaN for ReduceMax and ReduceMin."""
    from onnx import numpy_helper

    model = node_model(
        op,
        [("x", dtype, shape), ("axes", TensorProto.INT64, [len(axes)])],
        [("y", dtype, None)],
        opset=18,
        keepdims=keepdims,
    )
    model.graph.initializer.append(numpy_helper.from_array(np.array(axes, np.int64), "axes"))
    del model.graph.input[1]
    rng = np.random.default_rng(sum(shape))
    if dtype == F:
        x = rng.standard_normal(shape).astype(np.float32)
        if op == "ReduceProd":
            x = (1 + 0.01 * x).astype(np.float32)
        if op in ("ReduceMax", "ReduceMin"):
            x.reshape(-1)[rng.choice(x.size, 2, replace=False)] = np.nan
    else:
        x = rng.integers(-1000, 1000, shape).astype(np.int32)
    check_against_interpreter(model, {"x": x}, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("last", [0, 1])
def test_arg_max_across_rows_keeps_the_generic_form(last):
    """ArgMax over an outer axis reduces a (value, index) pair: vectorised as a column it gave wrong
    indices (found on aarch64, where 4 columns are a whole vector), so it keeps the generic form."""
    shape = [2, 5, 32]
    model = node_model(
        "ArgMax",
        [("x", F, shape)],
        [("y", TensorProto.INT64, None)],
        opset=13,
        axis=1,
        keepdims=1,
        select_last_index=last,
    )
    assert not _reduction_loops_vectorised(model)
    x = np.random.default_rng(9).integers(0, 3, shape).astype(np.float32)  # ties: first or last index
    check_against_interpreter(model, {"x": x}, rtol=0, atol=0)
