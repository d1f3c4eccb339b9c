"""The generic schedule's reductions (``schedule.schedule_generic``): across rows (over an axis
outside the reads' innermost, each vector lane its own column) and along rows (over the innermost
axes, into per-lane partial results), else parallel over the spatial loops."""

from __future__ import annotations

import math

from .schedule_util import PARALLEL_MIN_WORK, loop_extent
from .schedule_util import parallel as _parallel

# a reduction's per-lane partial results over rows (``lower/reduction.py``): the lanes are vectorised
ROW_PARTIALS_KEY = "ember.row_partials"


def row_partials(extent: int, lanes: int) -> int:
    """Partial results per row of ``extent`` elements: 4, 2 or 1 times ``lanes``, or a half or a
    quarter of it, whichever first divides the row into two or more; 0 where none does."""
    widths = (4 * lanes, 2 * lanes, lanes, lanes // 2, lanes // 4)
    return next((v for v in widths if v > 1 and extent % v == 0 and extent >= 2 * v), 0)


def _parallel_rows(sch, rows: list, nest: list):
    """The ``rows`` loops fused into one (returned), parallel where it has more than one iteration
    and the whole ``nest`` of loops at least ``PARALLEL_MIN_WORK``."""
    work = math.prod(loop_extent(sch, lp) for lp in nest)
    fused = sch.fuse(*rows) if len(rows) > 1 else rows[0]
    if loop_extent(sch, fused) > 1 and work >= PARALLEL_MIN_WORK:
        _parallel(sch, fused)
    return fused


def _lanes_inside(sch, block, reduce: list, lane) -> None:
    """The ``reduce`` loops moved outside the ``lane`` loop, which is vectorised, and the
    reduction's initialisation split off and vectorised too."""
    sch.reorder(*reduce, lane)
    sch.vectorize(lane)  # before decompose_reduction: TVM refuses it over the split update block
    init = sch.decompose_reduction(block, reduce[0])
    sch.vectorize(sch.get_loops(init)[-1])


def _reduces_across_rows(sch, block, lanes: int) -> bool:
    """Whether ``block`` reduces over an axis outside its reads' innermost one (a Softmax or a
    ReduceMean over axis 1 of an NCHW tensor): every multi-dimensional read's last index is the
    innermost spatial variable, with no reduction variable in it, and that loop at least 2 long;
    one result (not ArgMax's pair). Such a reduction vectorises over that spatial axis, each lane
    its own sum."""
    iters = sch.get(block).iter_vars
    spatial = [iv for iv in iters if int(iv.iter_type) == 0]
    reduce = [iv.var.name for iv in iters if int(iv.iter_type) != 0]
    if not spatial or not reduce or int(iters[-1].iter_type) == 0 or len(sch.get(block).writes) != 1:
        return False  # (a tuple reduction, ArgMax's value and index, came out wrong vectorised)
    if int(spatial[-1].dom.extent) < 2:
        return False
    inner = spatial[-1].var.name
    reads = [r for r in sch.get(block).reads if len(r.region) >= 2]
    last = [str(r.region[-1].min) for r in reads]
    return bool(reads) and all(index == inner for index in last)


def _schedule_reduction_across_rows(sch, block, lanes: int) -> None:
    """``_reduces_across_rows``: the reduction loops moved outside the innermost spatial loop, which
    is cut into vectors (each lane accumulating its own column); the outer spatial loops and the
    vectors' loop parallel. The generic form had reduced one column at a time, a strided scalar
    loop: YOLOv8's DFL Softmax over 16 bins of 4 x 8400 took 1.9 ms. A row that is not whole vectors
    is cut first (``loop_partition``) into its whole vectors and the rest, one shorter vector (a
    split's predicate would make every lane of every vector a scalar load under a bounds test): a
    Softmax over the first axis of 1000 x 1000 took 4.4 ms against onnxruntime's 1.2, a ReduceMax
    over the 64 channels of 55 x 55 planes 0.67 against 0.086 (with a busy second core)."""
    loops = sch.get_loops(block)
    kinds = [int(iv.iter_type) for iv in sch.get(block).iter_vars]
    n_reduce = sum(1 for k in kinds if k != 0)
    spatial = [lp for lp, k in zip(loops, kinds) if k == 0]
    extent = loop_extent(sch, spatial[-1])
    whole = extent // lanes * lanes
    if whole == extent:
        return _vector_columns(sch, block, n_reduce, lanes, True)
    if len(spatial) > 1:
        _parallel_rows(sch, spatial[:-1], loops)
    columns = sch.get_loops(block)[-1 - n_reduce]
    parts = sch.loop_partition(columns, [whole, None]) if whole else [columns]
    for part, is_whole in zip(parts, [bool(whole), False]):
        (inner,) = sch.get_child_blocks(part)
        if is_whole:
            _vector_columns(sch, inner, n_reduce, lanes, len(spatial) == 1)
        else:
            inner_loops = sch.get_loops(inner)
            _lanes_inside(sch, inner, inner_loops[-n_reduce:], inner_loops[-1 - n_reduce])


def _vector_columns(sch, block, n_reduce: int, lanes: int, parallel: bool) -> None:
    """``_schedule_reduction_across_rows`` on ``block`` whose innermost spatial loop (the one
    before its ``n_reduce`` reduction loops) is whole vectors: split into them, the reductions
    moved outside the lanes; with ``parallel``, the spatial loops and the vectors' fused parallel."""
    loops = sch.get_loops(block)
    reduce, spatial = loops[-n_reduce:], loops[:-n_reduce]
    vectors, lane = sch.split(spatial[-1], [None, lanes])
    if parallel:  # before the reorder: TVM refuses a parallel loop over the reordered block
        _parallel_rows(sch, [*spatial[:-1], vectors], sch.get_loops(block))
    _lanes_inside(sch, block, reduce, lane)


def _lanes_along_rows(sch, block, lanes: int) -> tuple[int, int]:
    """(partial results per row, trailing reduction loops they span) of a reduction along its
    reads' innermost axes (a ReduceMax, ReduceMean or ReduceSum over the last axis, or the last two
    of NCHW): the block's trailing loops are reductions indexing, in order, every multi-dimensional
    read's last dimensions (contiguous, so fused into one row), at least two vectors of them; one
    result (not ArgMax's pair); a combiner TVM's ``rfactor`` knows (the NaN-keeping maximum's the
    lowering splits itself); the partial results ``row_partials``'. (0, 0) where there is none."""
    iters = sch.get(block).iter_vars
    if not iters or int(iters[0].iter_type) != 0 or len(sch.get(block).writes) != 1:
        return 0, 0
    kinds = [int(iv.iter_type) for iv in iters]
    trailing = len(kinds) - next(i for i in range(len(kinds), 0, -1) if kinds[i - 1] == 0)
    if trailing == 0 or any(kinds[: len(kinds) - trailing]):  # spatial, then reductions
        return 0, 0
    names = [iv.var.name for iv in iters[len(iters) - trailing :]]
    reads = [r for r in sch.get(block).reads if len(r.region) >= 2]
    if not reads or "Select" in str(sch.get(block).body):
        return 0, 0
    for read in reads:
        if len(read.region) < trailing or [str(r.min) for r in read.region[-trailing:]] != names:
            return 0, 0
        buffer_shape = [int(d) for d in read.source.shape[-trailing:]]
        if buffer_shape != [int(iv.dom.extent) for iv in iters[len(iters) - trailing :]]:
            return 0, 0  # a slice of the rows: not one contiguous run
    vector = row_partials(math.prod(int(iv.dom.extent) for iv in iters[len(iters) - trailing :]), lanes)
    return (vector, trailing) if vector else (0, 0)


def _schedule_reduction_along_rows(sch, block, vector: int, trailing: int) -> None:
    """``_lanes_along_rows``: the row (the trailing reduction loops fused) split into vectors and
    factored (``rfactor``) into ``vector`` partial results per row, each lane accumulating its own,
    then those lanes reduced, both passes parallel over rows. The generic form reduced one element
    at a time in order (LLVM does not reassociate a float sum): a ReduceSum over the last axis of
    256 x 1024 took 0.238 ms against onnxruntime's 0.031, a ReduceMean over 56 x 56 planes 0.195
    against 0.029. (Computing the partial results inside the row loop, ``compute_at``, corrupted
    TVM 0.27's heap.)"""
    loops = sch.get_loops(block)
    n_spatial = len(loops) - trailing
    row = sch.fuse(*loops[n_spatial:]) if trailing > 1 else loops[-1]
    _, lane = sch.split(row, [None, vector])
    partial = sch.rfactor(lane, factor_axis=n_spatial)
    for part in (partial, block):
        part_loops = sch.get_loops(part)
        _parallel_rows(sch, part_loops[:n_spatial], part_loops)
    _, *reduce, lane = sch.get_loops(partial)  # the rows fused into one loop
    _lanes_inside(sch, partial, reduce, lane)


def _schedule_row_partials(sch, block) -> None:
    """A reduction's per-lane partial results (``ROW_PARTIALS_KEY``, split by the lowering): the
    reduction loops moved outside the lanes, which are one vector; parallel over rows."""
    loops = sch.get_loops(block)
    kinds = [int(iv.iter_type) for iv in sch.get(block).iter_vars]
    spatial = [lp for lp, k in zip(loops, kinds) if k == 0]
    reduce = [lp for lp, k in zip(loops, kinds) if k != 0]
    *rows, lane = spatial
    if rows:
        _parallel_rows(sch, rows, loops)
    _lanes_inside(sch, block, reduce, lane)


def schedule_reduction(sch, block, lanes: int) -> None:
    """Parallelise the fused spatial loops of a reduction block; a reduction across rows
    (``_reduces_across_rows``) vectorises over its innermost spatial axis, one along rows
    (``_lanes_along_rows``) over its innermost reduction axis."""
    if _reduces_across_rows(sch, block, lanes):
        return _schedule_reduction_across_rows(sch, block, lanes)
    if ROW_PARTIALS_KEY in sch.get(block).annotations:
        return _schedule_row_partials(sch, block)
    vector, trailing = _lanes_along_rows(sch, block, lanes)
    if vector:
        return _schedule_reduction_along_rows(sch, block, vector, trailing)
    loops = sch.get_loops(block)
    kinds = [int(iv.iter_type) for iv in sch.get(block).iter_vars]
    n_spatial = sum(1 for k in kinds if k == 0)
    spatial = loops[:n_spatial]
    if not spatial:
        return
    _parallel_rows(sch, spatial, loops)
