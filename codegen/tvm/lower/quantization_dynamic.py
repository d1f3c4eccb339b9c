"""DynamicQuantizeLinear as one kernel: a vectorised min/max reduction, then the uint8 quantization.

    lo, hi = min(0, min x), max(0, max x)
    scale  = (hi == lo ? 1 : hi - lo) / 255
    zero   = round_half_even(clip(0 - lo / scale, 0, 255))
    y      = saturate(round_half_even(x / scale) + zero)

(onnx's reference, and onnxruntime's kernel.)  The reduction reads ``x`` as one run of vectors of
``lanes`` elements (the largest of 16, 8, 4, 2, 1 that divides its size), in up to 8 parallel
chunks, each keeping ``lanes`` partial maxima of ``x`` and of ``-x`` (its minima, negated) from one
load per step; the partials are then reduced to the two scalars, and the scale and zero point are
computed once (they are outputs, never inlined into ``y``).  Without this lowering
``expand-functions`` wrote the op out as its ONNX function body: two whole-tensor reductions with
no vector loop and a QuantizeLinear, 0.58 ms per BERT-base activation on average (1 thread), where
this kernel takes 11 us (128 x 768) to 55 us (128 x 3072).
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx

from ..registry import lowering
from ..te_util import INT32_MAX, size_of
from ..tir_util import I64

LANE_CHOICES = (16, 8, 4, 2, 1)


def round_half_even(ctx, value):
    """``value`` rounded half to even.  On CPU targets (the lowering gets the target's schedule
    parameters) as ``llvm.roundeven``, which stays one vector instruction in a vectorised loop:
    TVM 0.27 scalarises ``tirx.nearbyint`` there and LLVM then re-vectorises the loop around it
    with gathers and byte-wise stores (a 98,304-element quantize took 110 us instead of 4).  Else
    (CUDA) ``tirx.nearbyint``."""
    if ctx.schedule is None:
        return tirx.nearbyint(value)
    return tirx.call_llvm_pure_intrin(str(value.ty), "llvm.roundeven", value)


def saturated(ctx, value, zero, dtype: str):
    """``saturate(round_half_even(value) + zero)`` as the integer ``dtype`` of at most 16 bits:
    ``value`` a float32 expression, ``zero`` the zero point's value (an expression of any type) or
    None.  On CPU targets ``value`` is clamped above in float32 and converted by ``llvm.lrint``
    (rounding to nearest even, as the default floating-point environment does: one ``vcvtps2dq``),
    then clamped below and offset by the zero point in int32: exactly the float32 round, clamp, add
    and truncating conversion it replaces, with ``vrndscaleps`` and two float ops fewer per 16
    outputs (``benchmarks/requantize_epilogue.c``: 0.73x the time on a Zen 4; the int8 ResNet-50,
    whose 1x1 convs at 56 x 56 spend as long in their epilogue as in their dot loop, 0.983x).  The
    clamp above comes first, so a value past int32's range (``lrint`` gives INT_MIN there)
    saturates as it should; NaN gives the type's maximum."""
    info = np.iinfo(dtype)
    f32, i32 = "float32", "int32"
    if ctx.schedule is None:
        z = tirx.const(0.0, f32) if zero is None else zero.astype(f32)
        q = round_half_even(ctx, value) + z
        return tirx.max(tirx.const(float(info.min), f32), tirx.min(q, tirx.const(float(info.max), f32))).astype(dtype)
    z = tirx.const(0, i32) if zero is None else zero.astype(i32)
    top = tirx.const(float(info.max), f32) - z.astype(f32)
    q = tirx.call_llvm_pure_intrin(i32, "llvm.lrint", tirx.min(value, top))
    return (tirx.max(q, tirx.const(int(info.min), i32) - z) + z).astype(dtype)


# attribute of a compute that narrows a float32 stage to an integer type (``narrowed``)
NARROWED_FROM_FLOAT = "ember.narrowed_from_float"


def narrowed(ctx, scaled, zero, dtype: str, name: str):
    """``saturate(round_half_even(scaled) + zero)`` as ``dtype`` (``saturated``): ``scaled`` a float32
    tensor (a requantization's value before rounding), ``zero`` a one-element zero-point tensor (or
    None).  Marked so that a DequantizeLinear reading it in the same kernel takes the whole number
    it stands for from ``scaled`` in float32 (``float_source``, ``centred``), exactly (whole numbers
    below 2**24), instead of narrowing it, widening it and subtracting the zero point again: a
    quantized residual block's conv -> DequantizeLinear spent 6 of its epilogue's 22 vector ops per
    16 outputs on that round trip."""
    return te.compute(
        scaled.shape,
        lambda *i: saturated(ctx, scaled(*i), _zero_value(zero), dtype),
        name=name,
        attrs={NARROWED_FROM_FLOAT: 1},
    )


def centred(ctx, scaled, zero, dtype: str):
    """The output of ``narrowed(ctx, scaled, zero, dtype, ...)`` less its zero point, in float32:
    ``round_half_even(scaled)`` clamped to ``dtype``'s range less the zero point (a function of the
    output's index)."""
    info = np.iinfo(dtype)
    f32 = "float32"
    z = zero_as_float(zero)
    lo, hi = tirx.const(float(info.min), f32) - z, tirx.const(float(info.max), f32) - z
    return lambda *i: tirx.max(lo, tirx.min(round_half_even(ctx, scaled(*i)), hi))


def _zero_value(zero):
    """A one-element zero-point tensor's value (None for None)."""
    return None if zero is None else zero(*([0] * len(zero.shape)))


def zero_as_float(zero):
    """A one-element zero-point tensor's value as float32 (0 for None)."""
    return tirx.const(0.0, "float32") if zero is None else _zero_value(zero).astype("float32")


def float_source(x):
    """(scaled, zero) of a tensor made by ``narrowed``, else None."""
    op = x.op
    if not isinstance(op, te.ComputeOp) or NARROWED_FROM_FLOAT not in op.attrs:
        return None
    shape = [int(d) for d in x.shape]
    scaled = [t for t in op.input_tensors if str(t.dtype) == "float32" and [int(d) for d in t.shape] == shape]
    others = [t for t in op.input_tensors if not any(t.same_as(c) for c in scaled)]
    if len(scaled) != 1 or len(others) > 1:
        return None
    return scaled[0], (others[0] if others else None)


def _lanes(last: int) -> int:
    return next(lanes for lanes in LANE_CHOICES if last % lanes == 0)


CHUNK_CHOICES = (8, 4, 2)  # the min/max in this many parallel parts ...
CHUNK_MIN_VECTORS = 256  # ... of at least this many vectors each (one part below that)


def _chunks(vectors: int) -> int:
    return next((c for c in CHUNK_CHOICES if vectors % c == 0 and vectors // c >= CHUNK_MIN_VECTORS), 1)


@lowering("DynamicQuantizeLinear", kind="dynamic_quantize")
def _dynamic_quantize(ctx, x):
    shape = [int(d) for d in x.shape]
    size = size_of(shape)
    lanes = _lanes(size)
    f32 = "float32"

    def element(f):
        """Element f of x in C order, read as position f of x's last axis: the flattened buffer's
        offset is then f itself, so a step's lanes read one contiguous vector (``unravel``'s
        div/mod by a row width that is not a multiple of the lanes is not folded back by TVM: a
        144 x 56 x 56 reduction took 1.5 ms as scalars)."""
        return x(*([0] * (len(shape) - 1)), f) if shape else x()

    vectors = size // lanes
    chunks = _chunks(vectors)
    steps = vectors // chunks
    wide = size > INT32_MAX
    j = te.reduce_axis((0, steps) if not wide else (tirx.const(0, I64), tirx.const(steps, I64)), "j")

    def extreme(c, side, lane):  # side 0: the chunk's maxima; side 1: its maxima of -x (less its minima)
        v = element(((c.astype(I64) if wide else c) * steps + j) * lanes + lane).astype(f32)
        return te.max(tirx.Select(side == 0, v, -v), axis=j)

    part = te.compute((chunks, 2, lanes), extreme, name="dq_part")

    def overall(side, name):
        rc, rl = te.reduce_axis((0, chunks), f"{name}_c"), te.reduce_axis((0, lanes), f"{name}_l")
        return te.compute((), lambda: te.max(part[rc, side, rl], axis=[rc, rl]), name=name)

    hi, negative_lo = overall(0, "dq_max"), overall(1, "dq_neg_min")

    def lo():
        return -negative_lo()

    zero_f, top = tirx.const(0.0, f32), tirx.const(255.0, f32)

    def scale_of():
        low, high = tirx.min(lo(), zero_f), tirx.max(hi(), zero_f)
        return tirx.Select(high == low, tirx.const(1.0, f32), high - low) / top

    scale = te.compute((), scale_of, name="dq_scale")

    def zero_of():
        initial = zero_f - tirx.min(lo(), zero_f) / scale()
        return round_half_even(ctx, tirx.max(zero_f, tirx.min(top, initial))).astype("uint8")

    zero = te.compute((), zero_of, name="dq_zero")

    def quantized(*i):
        return saturated(ctx, x(*i).astype(f32) / scale(), zero(), "uint8")

    y = te.compute(ctx.out_shape(0), quantized, name="dq_y")
    return y, scale, zero


def schedule_dynamic_quantize(sch, params) -> None:
    """The min/max partials (``dq_part``: per chunk, the maxima of x and of -x in ``lanes`` lanes)
    with the steps outside and both sides' lanes unrolled inside, so each step loads one vector
    and takes two maxima of it (LLVM's SLP vectoriser joins the lanes), the chunks in parallel;
    the quantization as a parallel vector loop (``_schedule_quantize``)."""
    from ..schedule_util import parallel

    block = sch.get_sblock("dq_part")
    chunk, side, lane, step = sch.get_loops(block)
    sch.reorder(chunk, step, side, lane)
    if sch.get(chunk).extent.value > 1:
        parallel(sch, chunk)
    init = sch.decompose_reduction(block, step)
    sch.vectorize(sch.get_loops(init)[-1])
    sch.unroll(side)
    sch.unroll(lane)
    _schedule_quantize(sch, sch.get_sblock("dq_y"), params.lanes)


def _schedule_quantize(sch, block, lanes: int) -> None:
    """One parallel loop over every vector of ``y`` (no serial loop is left around the vector body:
    LLVM re-vectorised such a loop across vectors, with gathers and byte-wise stores)."""
    from ..schedule import PARALLEL_MIN_WORK, schedule_spatial

    loops = sch.get_loops(block)
    width = sch.get(loops[-1]).extent.value if loops else 1
    if width % lanes or width <= lanes:
        size = 1
        for loop in loops:
            size *= sch.get(loop).extent.value
        if width > lanes or size % lanes or size <= lanes:
            schedule_spatial(sch, block, lanes)
            return
        # rows narrower than a vector (a conv's 7 or 14 pixels): the whole tensor as one run of
        # vectors, whose indices TVM folds back into one contiguous offset
        loops = [sch.fuse(*loops)]
    *_, vec = sch.split(loops[-1], [None, lanes])
    fused = sch.fuse(*sch.get_loops(block)[:-1])
    sch.vectorize(vec)
    if sch.get(fused).extent.value * lanes >= PARALLEL_MIN_WORK:
        sch.parallel(fused)


def _register_schedule() -> None:
    from ..schedule import SCHEDULES

    SCHEDULES.setdefault("dynamic_quantize", schedule_dynamic_quantize)


_register_schedule()
