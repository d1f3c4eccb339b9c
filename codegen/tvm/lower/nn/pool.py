"""Lowerings of pooling: MaxPool (with indices), AveragePool, LpPool, the global pools and MaxUnpool.

    MaxUnpool(x, indices, output_shape?)    zeros with y.flat[indices] = x (the unpooled shape's
                                            flat positions, placed in the top-left of a larger output)

A run-time ``output_shape`` is checked against the compiled shape, and an index out of range fails
the run with a message.
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx, topi
from tvm.script.ir_builder import tirx as T

from ...registry import lowering
from ...schedule import POOL_INTERIOR_KEY
from ...te_util import (
    HALF_TYPES,
    INT32_MAX,
    MATERIALISED,
    extreme_reducer,
    float_const,
    ints,
    nan_bits,
    read_if,
    require_values,
    rounded_to_half,
    size_of,
)
from ...tir_util import Local, check, extern, grid, unravel
from .conv import attr_ints, conv_params


def _pool_args(ctx):
    x_shape = ctx.in_types[0][0]
    nd = len(x_shape) - 2
    kernel = [int(k) for k in ctx.attr("kernel_shape")]
    strides = attr_ints(ctx.attr("strides"), nd, 1)
    dilations = attr_ints(ctx.attr("dilations"), nd, 1)
    _, _, _, pads = conv_params(ctx, kernel)
    return nd, kernel, strides, dilations, pads


def _lp_pool(ctx, x, kernel, strides, dilations, pads):
    """(sum over the window of |x|^p)^(1/p), zero padding."""
    p = float(ctx.attr("p", 2))
    nd = len(kernel)
    data = topi.nn.pad(x, [0, 0, *pads[:nd]], [0, 0, *pads[nd:]], name="lp_pad") if any(pads) else x
    red = [te.reduce_axis((0, k), f"r{d}") for d, k in enumerate(kernel)]
    c = lambda v: tirx.const(v, x.dtype)  # noqa: E731
    acc = te.compute(
        ctx.out_shape(),
        lambda n, ch, *o: te.sum(
            te.power(te.abs(data(n, ch, *[o[d] * strides[d] + red[d] * dilations[d] for d in range(nd)])), c(p)),
            axis=red,
        ),
        name="lp_sum",
    )
    return te.compute(acc.shape, lambda *i: te.power(acc(*i), c(1.0 / p)), name="lp_pool")


@lowering("MaxPool", "AveragePool", "LpPool", kind="pool")
def _pool(ctx, x):
    nd, kernel, strides, dilations, pads = _pool_args(ctx)
    if ctx.op == "LpPool":
        return _lp_pool(ctx, x, kernel, strides, dilations, pads)
    if ctx.op == "MaxPool":
        pooled = _max_pool(ctx, x, kernel, strides, dilations, pads)
        if len(ctx.out_types) > 1:
            return [pooled, _max_pool_indices(ctx, x, pooled, kernel, strides, dilations, pads)]
        return pooled
    include_pad = bool(ctx.attr("count_include_pad", 0))
    if nd == 2 and dilations == [1, 1] and str(x.dtype) == "float32" and ctx.schedule is not None:
        pooled = _avg_pool_2d(ctx, x, kernel, strides, pads, include_pad)
        if pooled is not None:
            return pooled
    kind = "avg"
    layout = {1: "NCW", 2: "NCHW", 3: "NCDHW"}[nd]
    fn = {1: topi.nn.pool1d, 2: topi.nn.pool2d, 3: topi.nn.pool3d}[nd]
    pooled = fn(
        x,
        kernel,
        strides,
        dilations,
        pads,
        kind,
        bool(ctx.attr("ceil_mode", 0)),
        layout,
        bool(ctx.attr("count_include_pad", 0)),
    )
    return pooled


def _max_pool(ctx, x, kernel, strides, dilations, pads):
    """The window maximum, padding and the ceil-mode overhang excluded; a NaN in a window gives NaN
    (NumPy's and the interpreter's answer: topi's pool, through maxnum, returned the window's other
    values in an order-dependent way, and so does onnxruntime).

    A CPU build's 2-D pool is two vectorised passes (``_max_pool_2d``); a GPU build (no
    ``ctx.schedule``), like every other, is one reduction over each window, which the CUDA schedule
    gives a thread per output. The GPU schedule inlines the passes' ``pool_rows`` into
    ``max_pool``, and with their window maxima as expressions that copied each input read 169 times
    into a 3x3 window's output: TVM's simplifiers took 3 s over each such kernel (timed once with
    TVM's ``PassTimingInstrument``)."""
    nd = len(kernel)
    spatial = [int(d) for d in x.shape[2:]]
    reducer = extreme_reducer(str(x.dtype), True)
    if nd == 2 and ctx.schedule is not None:
        return _max_pool_2d(ctx, x, kernel, strides, dilations, pads, reducer)
    red = [te.reduce_axis((0, k), f"r{d}") for d, k in enumerate(kernel)]

    def body(n, c, *o):
        at, inside = [], tirx.const(True, "bool")
        for d in range(nd):
            p = o[d] * strides[d] + red[d] * dilations[d] - pads[d]
            inside = tirx.And(inside, tirx.And(p >= 0, p < spatial[d]))
            at.append(tirx.max(0, tirx.min(p, spatial[d] - 1)))
        return reducer(read_if(inside, x(n, c, *at), _lowest(str(x.dtype))), axis=red)

    return te.compute(ctx.out_shape(), body, name="max_pool")


# the 2-D MaxPool's passes take each window's maximum as one expression up to this many positions
# along an axis (a vector block TVM vectorises), above it a reduction
MAX_POOL_UNROLLED = 16


def _window_max(values: list, dtype: str):
    """The maximum of ``values``, NaN if any is NaN (as ``nan_max``): a chain of compare-selects that
    x86 makes one ``vmaxps`` each, then one NaN test over all of them (on the bits, ``nan_bits``,
    which TVM's vectoriser keeps a vector), rather than a compare, a NaN test and a select per
    value."""
    best = values[0]
    for value in values[1:]:
        best = tirx.Select(value > best, value, best)
    if "float" not in dtype or len(values) == 1:
        return best
    nan = nan_bits(values[0])
    for value in values[1:]:
        nan = tirx.Or(nan, nan_bits(value))
    return tirx.Select(nan, float_const(float("nan"), dtype), best)


def _max_pool_2d(ctx, x, kernel, strides, dilations, pads, reducer):
    """2-D window maximum in two passes, as a maximum over a rectangle splits: ``pool_rows``, each
    output row's window rows' maximum at every column, then ``max_pool``, the maximum of those over
    each window's columns.

    Windows of up to ``MAX_POOL_UNROLLED`` positions along an axis are one expression
    (``_window_max``). ``pool_rows`` then covers the input's columns only, a loop with no bounds
    test that TVM vectorises in pieces (``schedule.vectorize_in_pieces``), and ``max_pool`` reads
    it guarded, its column loop cut where the windows stop overhanging the padding
    (``POOL_INTERIOR_KEY``: the output columns between), which are vectorised the same way with no
    test (strided reads as wide loads and shuffles). Larger windows are reductions over a padded row (the left
    and right padding included as the lowest value), whose loop the schedule cuts where the
    padding starts and ends."""
    n, c, h, w = (int(d) for d in x.shape)
    out = ctx.out_shape()
    dtype = str(x.dtype)
    lowest = _lowest(dtype)
    edge_rows = _edges_in_windows(out[2], kernel[0], strides[0], dilations[0], pads[0], h)

    def row_read(b, ch, y, col, r0):
        i = y * strides[0] + r0 * dilations[0] - pads[0]
        return _window_read(i, h, edge_rows, lambda at: x(b, ch, at, col), lowest)

    if max(kernel) <= MAX_POOL_UNROLLED:
        rows = te.compute(
            (n, c, out[2], w),
            lambda b, ch, y, j: _window_max([row_read(b, ch, y, j, r) for r in range(kernel[0])], dtype),
            name="pool_rows",
            attrs=MATERIALISED,
        )
        span = (kernel[1] - 1) * dilations[1]
        first = min(-(-pads[1] // strides[1]), out[3])  # the first output column whose windows start in the input
        end = max(first, min(out[3], (w - 1 + pads[1] - span) // strides[1] + 1))  # past the last inside it

        def column(b, ch, y, xx, r):
            col = xx * strides[1] + r * dilations[1] - pads[1]
            return read_if(tirx.And(col >= 0, col < w), rows(b, ch, y, tirx.max(0, tirx.min(col, w - 1))), lowest)

        return te.compute(
            out,
            lambda b, ch, y, xx: _window_max([column(b, ch, y, xx, r) for r in range(kernel[1])], dtype),
            name="max_pool",
            attrs={POOL_INTERIOR_KEY: [first, end]},
        )
    left = pads[1]  # the padded row: ``left`` columns of padding, the input's, any right padding
    width = (out[3] - 1) * strides[1] + (kernel[1] - 1) * dilations[1] + 1  # the columns the windows read
    r0, r1 = te.reduce_axis((0, kernel[0]), "r0"), te.reduce_axis((0, kernel[1]), "r1")

    def rows_max(b, ch, y, j):
        col = j - left
        value = row_read(b, ch, y, tirx.max(0, tirx.min(col, w - 1)), r0)
        if left or width > left + w:
            value = read_if(tirx.And(col >= 0, col < w), value, lowest)
        return reducer(value, axis=r0)

    rows = te.compute((n, c, out[2], width), rows_max, name="pool_rows")

    def cols_max(b, ch, y, xx):
        return reducer(rows(b, ch, y, xx * strides[1] + r1 * dilations[1]), axis=r1)

    return te.compute(out, cols_max, name="max_pool")


# an AveragePool with more windows than this whose count differs from the interior's is topi's: each
# such window is a select in the column pass
AVG_POOL_EDGES = 8


def _window_counts(count: int, k: int, stride: int, pad_begin: int, pad_end: int, size: int, include_pad: bool):
    """How many of each of ``count`` windows' ``k`` positions along an axis an average divides by:
    those inside the input, or with ``include_pad`` inside the padded input (a ceil-mode window's
    overhang past the end padding never counts, as ONNX's reference has it)."""
    lo, hi = (-pad_begin, size + pad_end) if include_pad else (0, size)
    return [max(0, min(o * stride - pad_begin + k, hi) - max(o * stride - pad_begin, lo)) for o in range(count)]


def _avg_pool_2d(ctx, x, kernel, strides, pads, include_pad: bool):
    """2-D float32 AveragePool (dilation 1) in two passes, as MaxPool's (``_max_pool_2d``, and its
    schedule), or None where topi's pool serves (an empty window, more than ``AVG_POOL_EDGES``
    windows whose count is not the interior's): ``pool_rows`` sums each output row's window rows at
    every column the windows read (padding as 0), ``avg_pool`` sums those over each window's
    columns and scales by the window's count, a row count times a column count (``_window_counts``),
    a constant where every window has the same. topi's pool took 3.7x onnxruntime's time in
    DenseNet-121 (2 x 2 at stride 2, one output at a time)."""
    n, c, h, w = (int(d) for d in x.shape)
    out = ctx.out_shape()
    zero = tirx.const(0.0, "float32")
    r0, r1 = te.reduce_axis((0, kernel[0]), "r0"), te.reduce_axis((0, kernel[1]), "r1")
    left = pads[1]
    width = (out[3] - 1) * strides[1] + kernel[1]  # the padded columns the windows read

    def rows_sum(b, ch, y, j):
        i, col = y * strides[0] + r0 - pads[0], j - left
        inside = tirx.And(tirx.And(i >= 0, i < h), tirx.And(col >= 0, col < w))
        clamped = x(b, ch, tirx.max(0, tirx.min(i, h - 1)), tirx.max(0, tirx.min(col, w - 1)))
        return te.sum(read_if(inside, clamped, zero), axis=r0)

    rows = te.compute((n, c, out[2], width), rows_sum, name="pool_rows")
    heights = _window_counts(out[2], kernel[0], strides[0], pads[0], pads[2], h, include_pad)
    widths = _window_counts(out[3], kernel[1], strides[1], pads[1], pads[3], w, include_pad)
    interior = [max(set(counts), key=counts.count) for counts in (heights, widths)]
    edges = sum(len(counts) - counts.count(most) for counts, most in zip((heights, widths), interior))
    if 0 in heights + widths or edges > AVG_POOL_EDGES:
        return None  # an empty window (ONNX's reference divides by 0), or many different ones

    def reciprocal(counts, most, o):  # 1 / the window's count along one axis: the interior's, the edges' selected
        value = tirx.const(1.0 / most, "float32")
        for at, count in enumerate(counts):
            if count != most:
                value = tirx.Select(o == at, tirx.const(1.0 / count, "float32"), value)
        return value

    def cols_sum(b, ch, y, xx):
        scale = reciprocal(heights, interior[0], y) * reciprocal(widths, interior[1], xx)
        return te.sum(rows(b, ch, y, xx * strides[1] + r1) * scale, axis=r1)

    return te.compute(out, cols_sum, name="avg_pool")


def _edges_in_windows(count: int, k: int, stride: int, dilation: int, pad: int, size: int) -> bool:
    """Whether every one of the ``count`` windows along an axis of ``size`` holds a position in
    range, and so, when it overhangs an edge, the edge itself: true for dilation 1 and ONNX's
    pads (each below the kernel), unless a ceil-mode window lies wholly in the end padding."""
    if dilation != 1:
        return False
    return all(o * stride - pad + k - 1 >= 0 and o * stride - pad < size for o in range(count))


def _window_read(at, size: int, edges_inside: bool, read, lowest):
    """A max window's value at position ``at`` along an axis of ``size``, padding excluded.

    Where each window holds the edge it overhangs, a padding position reads the edge (the window
    holds it already, so the maximum, NaN included, is unchanged): a clamp with no condition
    around it, which TVM keeps, so the read is in bounds and stays one unguarded vector load. Else
    a guarded read (``read_if``: a Select would lose the clamp and read outside ``x``)."""
    clamped = tirx.max(0, tirx.min(at, size - 1))
    if edges_inside:
        return read(clamped)
    return read_if(tirx.And(at >= 0, at < size), read(clamped), lowest)


def _lowest(dtype: str):
    """-inf, or an integer type's lowest value: what padding contributes to a window maximum."""
    if "float" in dtype:
        return float_const(float("-inf"), dtype)
    return tirx.const(int(np.iinfo(np.dtype(dtype)).min), dtype)


def _max_pool_indices(ctx, x, pooled, kernel, strides, dilations, pads):
    """MaxPool's Indices: the flat position in ``x`` of each window's first maximum (scan order).

    The first maximum in the window's row-major scan has the lowest row-major flat index, so it is a
    min-reduction over the window's positions holding the pooled value (padding excluded).
    ``storage_order=1`` then renumbers that position column-major within its (n, c) plane.
    """
    nd = len(kernel)
    dims = [int(d) for d in x.shape]
    spatial = dims[2:]
    plane = int(np.prod(spatial))
    red = [te.reduce_axis((0, k), f"w{d}") for d, k in enumerate(kernel)]
    big = tirx.const(np.iinfo(np.int64).max, "int64")

    def first_max(n, c, *o):
        at, inside = [], tirx.const(True, "bool")
        for d in range(nd):
            p = o[d] * strides[d] + red[d] * dilations[d] - pads[d]
            inside = tirx.And(inside, tirx.And(p >= 0, p < spatial[d]))
            at.append(tirx.max(0, tirx.min(p, spatial[d] - 1)))
        flat = tirx.const(0, "int64")
        for d in range(nd):
            flat = flat * spatial[d] + at[d].astype("int64")
        hit = tirx.And(inside, x(n, c, *at) == pooled(n, c, *o))
        return te.min(tirx.Select(hit, flat, big), axis=red)

    within = te.compute(pooled.shape, first_max, name="max_pool_argmax")
    column_major = bool(int(ctx.attr("storage_order", 0)))

    def number(n, c, *o):
        f = within(n, c, *o)
        if column_major:  # row-major (i0, i1, ...) -> sum i_d * prod(spatial[:d])
            stride_list = [int(np.prod(spatial[:d])) for d in range(nd)]
            column = tirx.const(0, "int64")
            for d in range(nd):
                size = int(np.prod(spatial[d + 1 :]))
                column = column + tirx.floormod(tirx.floordiv(f, size), spatial[d]) * stride_list[d]
            f = column
        return (n.astype("int64") * dims[1] + c.astype("int64")) * plane + f

    return te.compute(pooled.shape, number, name="max_pool_indices")


@lowering("GlobalMaxPool", kind="reduce")
def _global_max_pool(ctx, x):
    axes = list(range(2, len(x.shape)))  # NaN kept, as in ReduceMax
    red = [te.reduce_axis((0, int(x.shape[a])), f"r{a}") for a in axes]
    reducer = extreme_reducer(str(x.dtype), True)
    return te.compute(
        [*x.shape[:2], *[1] * len(axes)], lambda n, c, *_: reducer(x(n, c, *red), axis=red), name="global_max"
    )


@lowering("GlobalAveragePool", kind="global_pool")
def _global_average_pool(ctx, x):
    """Each channel's plane summed a vector at a time: ``gap_lanes[n, c, l]`` adds the plane's
    ``l``-th value of every whole vector (one vector accumulator, schedule ``global_pool``), then
    ``gap_sum`` the lanes and the plane's last partial vector, and the division by its size."""
    axes = list(range(2, len(x.shape)))
    spatial = [int(x.shape[a]) for a in axes]
    count = int(np.prod(spatial))
    lanes = 16 if ctx.schedule is None else ctx.schedule.lanes
    chunks = count // lanes
    if str(x.dtype) in HALF_TYPES:  # widened, summed in float32 and rounded once, as a half Conv
        # (a 7 x 7 plane of values near 3,000, ResNet-50's last block, sums past fp16's 65,504)
        wide = topi.cast(x, "float32")
        mean = topi.divide(topi.sum(wide, axis=axes, keepdims=True), tirx.const(count, "float32"))
        return rounded_to_half(mean, x.dtype)
    # one stage on GPUs (no CPU schedule), and for a plane past int32 (its flat index, below, is int32)
    if chunks < 2 or str(x.dtype) != "float32" or ctx.schedule is None or count > INT32_MAX:
        return topi.divide(topi.sum(x, axis=axes, keepdims=True), tirx.const(count, x.dtype))
    n, c = (int(d) for d in x.shape[:2])

    def flat(b, ch, p):
        index = []
        for size in reversed(spatial):
            index.append(p % size)
            p = p // size
        return x(b, ch, *reversed(index))

    rp = te.reduce_axis((0, chunks), "rp")
    part = te.compute(
        (n, c, lanes), lambda b, ch, lane: te.sum(flat(b, ch, rp * lanes + lane), axis=rp), name="gap_lanes"
    )
    tail = count - chunks * lanes
    rl = te.reduce_axis((0, lanes + tail), "rl")

    def lane_or_tail(b, ch, i):  # the lanes, then the partial vector's values (each read where it is in bounds)
        return read_if(i < lanes, part[b, ch, tirx.min(i, lanes - 1)], flat(b, ch, (chunks - 1) * lanes + i))

    total = te.compute((n, c), lambda b, ch: te.sum(lane_or_tail(b, ch, rl), axis=rl), name="gap_sum")
    size = tirx.const(count, x.dtype)
    return te.compute((n, c, *[1] * len(axes)), lambda b, ch, *_: total[b, ch] / size, name="gap_mean")


# MaxUnpool -------------------------------------------------------------------------------------------


@lowering("MaxUnpool", kind="extern", static=(2,), runtime=(2,))
def _max_unpool(ctx, x, indices, output_shape=None):
    dims = [int(d) for d in x.shape]
    nd = len(dims) - 2
    kernel = ints(ctx.attr("kernel_shape"))
    strides = ints(ctx.attr("strides") or [1] * nd)
    pads = ints(ctx.attr("pads") or [0] * (2 * nd))
    unpooled = dims[:2] + [(dims[2 + d] - 1) * strides[d] - pads[d] - pads[nd + d] + kernel[d] for d in range(nd)]
    out = list(ctx.out_shape())
    if len(out) != len(dims) or any(o < u for o, u in zip(out, unpooled)):
        raise ctx.fail(f"the result shape {out} is smaller than the unpooled shape {unpooled}")
    if output_shape is not None or ctx.static(2) is not None:
        require_values(ctx, 2, output_shape, out, "output_shape")
    total = size_of(unpooled)
    message = f"{ctx.op}: an index is outside the unpooled tensor ({total} elements)"

    def body(ins, outs):
        data, where, result = ins[0], ins[1], outs[0]
        with grid(out) as o:
            T.buffer_store(result, tirx.const(0, str(x.dtype)), o)
        with grid(dims) as i:
            flat = Local(where[tuple(i)])
            check(tirx.And(flat.value >= 0, flat.value < total), message)
            T.buffer_store(result, data[tuple(i)], unravel(flat.value, unpooled))

    return extern(ctx, [x, indices], body, "max_unpool")[0]
