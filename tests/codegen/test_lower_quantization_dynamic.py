"""DynamicQuantizeLinear compiled as one kernel (codegen/tvm/lower/quantization_dynamic.py): the uint8
result, scale and zero point equal the interpreter's (onnx's reference) for tensors whose size takes
16, 4 or 1 reduction lanes and 1, 4 or 8 parallel chunks, conv activations whose rows are narrower
than a vector or not a multiple of one, for all-positive, all-negative and all-zero inputs; and the reduction of a conv
activation of 7-wide rows runs on whole vectors."""

from __future__ import annotations

import numpy as np
import pytest
from compiled_checks import check_against_interpreter, node_model
from onnx import TensorProto

F, U8 = TensorProto.FLOAT, TensorProto.UINT8


def _model(shape):
    return node_model(
        "DynamicQuantizeLinear",
        [("x", F, list(shape))],
        [("y", U8, list(shape)), ("scale", F, []), ("zero", U8, [])],
        opset=11,
    )


@pytest.mark.parametrize(
    "shape, offset, spread",
    [
        ((2, 8, 48), 0.3, 2.0),  # 16 lanes, mixed signs
        ((3, 20), 5.0, 1.0),  # 4 lanes, all positive: zero point 0
        ((7,), -4.0, 1.5),  # 1 lane, all negative: zero point 255
        ((1, 128, 96), -0.7, 0.01),  # small range: large quotients
        ((1, 24, 7, 7), 0.5, 1.0),  # a conv activation of 7-wide rows: one run of vectors
        ((1, 8, 14, 14), -0.2, 3.0),
        ((2, 4, 6, 56), 0.0, 1.0),  # rows of 56: 3.5 vectors each
        ((), 1.25, 0.0),  # a scalar
        ((1, 64, 28, 28), -0.3, 2.0),  # 8 parallel chunks of the min/max
        ((1, 6, 56, 56), 4.0, 1.0),  # 4 chunks, all positive
    ],
)
def test_dynamic_quantize_linear_matches_interpreter(shape, offset, spread):
    x = (offset + spread * np.random.default_rng(len(shape)).standard_normal(shape)).astype(np.float32)
    rep = check_against_interpreter(_model(shape), {"x": x}, rtol=0, atol=0)
    _, scale, zero = rep.run({"x": x})
    lo, hi = min(0.0, float(x.min())), max(0.0, float(x.max()))
    assert scale == pytest.approx((hi - lo) / 255, rel=1e-6)
    assert (int(zero) == 0) == (lo == 0.0) and (int(zero) == 255) == (hi == 0.0)


def test_dynamic_quantize_linear_of_zeros_has_unit_range():
    rep = check_against_interpreter(_model((4, 16)), {"x": np.zeros((4, 16), np.float32)}, rtol=0, atol=0)
    y, scale, zero = rep.run({"x": np.zeros((4, 16), np.float32)})
    assert not y.any() and scale == pytest.approx(1 / 255) and int(zero) == 0


def test_dynamic_quantize_linear_is_not_expanded_into_its_function_body():
    """It keeps its own lowering, so ``expand-functions`` leaves the node (and its kernel) alone."""
    from frontends.onnx.importer import import_model  # noqa: PLC0415
    from passes.expand_functions import needs_expansion  # noqa: PLC0415

    graph = import_model(_model((2, 16)))
    (node,) = [n for n in graph.nodes if n.op == "DynamicQuantizeLinear"]
    assert not needs_expansion(node)


def test_dynamic_quantize_schedule_applies_and_keeps_whole_vectors():
    """Its own schedule applies (``apply_schedule`` would fall back to the generic one silently), and on
    an x86 target the quantize loop stays in vectors: no gathers, which TVM's scalarised
    ``nearbyint`` used to cause."""
    import tvm
    from tvm import te

    import codegen.tvm.lowering  # noqa: F401  (every lowering registered)
    from codegen.target import ScheduleParams
    from codegen.tvm.registry import LowerContext, get_lowering
    from codegen.tvm.schedule import apply_schedule

    shape, f32, u8 = (4, 256), np.dtype("float32"), np.dtype("uint8")
    ctx = LowerContext("DynamicQuantizeLinear", {}, [(shape, f32)], [(shape, u8), ((), f32), ((), u8)])
    ctx.schedule = ScheduleParams(16)
    x = te.placeholder(shape, "float32")
    outs = get_lowering("DynamicQuantizeLinear").build(ctx, x)
    mod = tvm.IRModule({"main": te.create_prim_func([x, *outs])})
    scheduled, used = apply_schedule(mod, "dynamic_quantize", ScheduleParams(16))
    assert used == "dynamic_quantize"
    target = tvm.target.Target({"kind": "llvm", "mcpu": "znver4"})
    asm = tvm.tirx.build(scheduled, target).inspect_source("asm")
    assert "vcvtps2dq\t%zmm" in asm and "gather" not in asm  # rounded and converted in one vector op


def test_reduction_over_narrow_rows_reads_whole_vectors():
    """A conv activation's rows of 7 pixels: the min/max runs over the tensor as one run of 16-lane
    vectors (before, the lanes had to divide a row: one lane, scalar code, 8x the time), a max of
    ``x`` and one of ``-x`` per step."""
    import tvm
    from tvm import te

    import codegen.tvm.lowering  # noqa: F401  (every lowering registered)
    from codegen.target import ScheduleParams
    from codegen.tvm.registry import LowerContext, get_lowering
    from codegen.tvm.schedule import apply_schedule

    shape, f32, u8 = (1, 32, 7, 7), np.dtype("float32"), np.dtype("uint8")
    ctx = LowerContext("DynamicQuantizeLinear", {}, [(shape, f32)], [(shape, u8), ((), f32), ((), u8)])
    ctx.schedule = ScheduleParams(16)
    x = te.placeholder(shape, "float32")
    outs = get_lowering("DynamicQuantizeLinear").build(ctx, x)
    stages, seen = {}, [outs[1]]
    while seen:  # every stage the scale is computed from, by name
        t = seen.pop()
        stages[t.op.name] = t
        seen += list(getattr(t.op, "input_tensors", []))
    assert [int(d) for d in stages["dq_part"].shape][-1] == 16
    scheduled, used = apply_schedule(tvm.IRModule({"main": te.create_prim_func([x, *outs])}), "dynamic_quantize", 16)
    assert used == "dynamic_quantize"
    asm = tvm.tirx.build(scheduled, tvm.target.Target({"kind": "llvm", "mcpu": "znver4"})).inspect_source("asm")
    assert "vmaxps\t%zmm" in asm or "vmaxps\t(" in asm, "no 16-lane max in the reduction"
