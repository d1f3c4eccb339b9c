"""DynamicQuantizeLinear as one kernel: a vectorised min/max reduction, then the uint8 quantization.

    lo, hi = min(0, min x), max(0, max x)
    scale  = (hi == lo ? 1 : hi - lo) / 255
    zero   = round_half_even(clip(0 - lo / scale, 0, 255))
    y      = saturate(round_half_even(x / scale) + zero)

(onnx's reference, and onnxruntime's kernel.)  The reduction keeps ``lanes`` partial minima and
maxima (``x``'s last axis split into ``[last / lanes, lanes]``, lanes the largest of 16, 8, 4, 2, 1
that divides it) so the loop over ``x`` runs on whole vectors; the partials are then reduced to the
two scalars, and the scale and zero point are computed once (they are outputs, never inlined into
``y``).  Without this lowering ``expand-functions`` wrote the op out as its ONNX function body: two
whole-tensor reductions with no vector loop and a QuantizeLinear, 0.58 ms per BERT-base activation
on average (1 thread), where this kernel takes 11 us (128 x 768) to 55 us (128 x 3072).
"""

from __future__ import annotations

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


# attribute of a compute that narrows a whole-number float32 stage to an integer type (``narrowed``)
NARROWED_FROM_FLOAT = "ember.narrowed_from_float"


def narrowed(centred, zero, dtype: str, name: str):
    """``centred + zero`` as ``dtype``: ``centred`` a float32 tensor of whole numbers already clamped
    to ``dtype``'s range less the zero point, ``zero`` a one-element zero-point tensor (or None).
    Marked so that a DequantizeLinear reading it in the same kernel takes ``centred``
    (``float_source``), exactly (whole numbers below 2**24), instead of adding the zero point,
    narrowing, widening and subtracting it again: a quantized residual block's conv ->
    DequantizeLinear spent 6 of its epilogue's 22 vector ops per 16 outputs on that round trip."""
    return te.compute(
        centred.shape,
        lambda *i: (centred(*i) + zero_as_float(zero)).astype(dtype),
        name=name,
        attrs={NARROWED_FROM_FLOAT: 1},
    )


def zero_as_float(zero):
    """A one-element zero-point tensor's value as float32 (0 for None)."""
    return tirx.const(0.0, "float32") if zero is None else zero(*([0] * len(zero.shape))).astype("float32")


def float_source(x):
    """(centred, zero) of a tensor made by ``narrowed``, else None."""
    op = x.op
    if not isinstance(op, te.ComputeOp) or NARROWED_FROM_FLOAT not in op.attrs:
        return None
    shape = [int(d) for d in x.shape]
    centred = [t for t in op.input_tensors if str(t.dtype) == "float32" and [int(d) for d in t.shape] == shape]
    others = [t for t in op.input_tensors if not any(t.same_as(c) for c in centred)]
    if len(centred) != 1 or len(others) > 1:
        return None
    return centred[0], (others[0] if others else None)


def _lanes(last: int) -> int:
    return next(lanes for lanes in LANE_CHOICES if last % lanes == 0)


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

    def partial(reduce, name):
        steps = size // lanes
        j = te.reduce_axis((0, steps) if size <= INT32_MAX else (tirx.const(0, I64), tirx.const(steps, I64)), "j")
        return te.compute((lanes,), lambda lane: reduce(element(j * lanes + lane).astype(f32), axis=j), name=name)

    lo_part, hi_part = partial(te.min, "dq_lo"), partial(te.max, "dq_hi")
    lane = te.reduce_axis((0, lanes), "lane")
    lo = te.compute((), lambda: te.min(lo_part[lane], axis=lane), name="dq_min")
    lane2 = te.reduce_axis((0, lanes), "lane2")
    hi = te.compute((), lambda: te.max(hi_part[lane2], axis=lane2), name="dq_max")
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
        q = round_half_even(ctx, x(*i).astype(f32) / scale()) + zero().astype(f32)
        return tirx.max(zero_f, tirx.min(top, q)).astype("uint8")

    y = te.compute(ctx.out_shape(0), quantized, name="dq_y")
    return y, scale, zero


def schedule_dynamic_quantize(sch, params) -> None:
    """The partial min/max loops with the lanes innermost and vectorised, the quantization as a
    parallel vector loop (``schedule_spatial``)."""
    for name in ("dq_lo", "dq_hi"):
        block = sch.get_sblock(name)
        lane, *reduce = sch.get_loops(block)
        if len(reduce) > 1:
            reduce = [sch.fuse(*reduce)]
        sch.reorder(*reduce, lane)
        sch.vectorize(sch.get_loops(sch.decompose_reduction(block, reduce[0]))[-1])
        sch.unroll(lane)  # a vector min/max per step once LLVM's SLP vectoriser joins the lanes
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
