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


def _reduction_loops_vectorised(model) -> bool:
    """Whether a reduction block of ``model``'s one kernel sits inside a vectorised loop."""
    import tvm
    from tvm import te

    from codegen.tvm.kernel import spec_to_te
    from codegen.tvm.schedule import apply_schedule

    spec, target = only_kernel(model)
    params = target.schedule_params()
    placeholders, outputs = spec_to_te(spec, [], params)
    mod = tvm.IRModule({"main": te.create_prim_func(placeholders + outputs)})
    scheduled, _ = apply_schedule(mod, "reduce", params)
    script = scheduled.script()
    return "T.vectorized" in script and "_update" in script


@pytest.mark.parametrize(
    "op,shape,attrs,vectorised",
    [
        ("ReduceSum", [2, 16, 5, 48], dict(keepdims=1), True),
        ("ReduceMax", [2, 3, 4, 64], dict(keepdims=0), True),
        ("ReduceMean", [1, 7, 3, 40], dict(keepdims=1), False),  # 40 columns: not whole vectors
    ],
)
def test_reductions_across_rows_are_vector_columns(op, shape, attrs, vectorised):
    """Whole vectors of columns take the vector form; a row of 40 (two vectors and a partial one,
    whose predicate TVM would put on every lane) keeps the generic form. Both match."""
    axes = [1] if op != "ReduceMax" else [1, 2]
    model = node_model(
        op, [("x", F, shape), ("axes", TensorProto.INT64, [len(axes)])], [("y", F, None)], opset=18, **attrs
    )
    from onnx import numpy_helper

    model.graph.initializer.append(numpy_helper.from_array(np.array(axes, np.int64), "axes"))
    del model.graph.input[1]
    assert _reduction_loops_vectorised(model) == vectorised
    x = np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32)
    check_against_interpreter(model, {"x": x}, rtol=1e-5, atol=1e-5)


def test_softmax_over_channels_matches_the_interpreter():
    """A Softmax over axis 1 (YOLOv8's DFL head: 16 bins of 4 x 8400) takes the non-row form, whose
    maximum and sum reduce across rows."""
    shape = [1, 16, 4, 80]
    model = node_model("Softmax", [("x", F, shape)], [("y", F, shape)], axis=1)
    x = (np.random.default_rng(2).standard_normal(shape) * 5).astype(np.float32)
    x[0, 3, 1, 7] = np.nan
    check_against_interpreter(model, {"x": x}, rtol=1e-5, atol=1e-6)


def test_last_axis_reductions_stay_rows():
    """A reduction over the innermost axis reads each row contiguously as it is: not vectorised
    across rows (which would read each lane's row with a stride)."""
    model = node_model("ReduceL2", [("x", F, [64, 48])], [("y", F, None)], opset=13, axes=[1], keepdims=1)
    assert not _reduction_loops_vectorised(model)


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
