"""CPU schedules of the row-wise normalisations over a last axis (``lower/nn/normalization.py``),
which the families of ``schedule.py`` dispatch to by the lowering's kind:

* ``schedule_softmax`` - float32 Softmax: one parallel task per row, vector partial maxima and
  sums, exp once per element, the division in vectors plus a scalar tail;
* ``schedule_layer_norm`` - LayerNormalization and RMSNormalization: one parallel task per row,
  vector partial sums of the row and of its squared deviations, the row written in vectors.

Each raises where its lowering's row form is absent, and the caller falls back to the generic
schedule.
"""

from __future__ import annotations

from ..target import ScheduleParams
from .schedule_util import block_name, child_blocks, inline_injective, is_reduction, loop_extent, output_block


def schedule_softmax(sch, params: ScheduleParams) -> None:
    """Softmax over the last axis by rows (``lower/nn/normalization.py``): the row loop of the
    output, parallel, carries every stage of its row, so the row's exponentials stay in cache; the
    partial-maximum and partial-sum stages vectorise their lane loop under the loop over the row's
    vectors, exp runs in whole vectors over the padded row, and the division in whole vectors plus
    a scalar tail."""
    inline_injective(sch)
    out = output_block(sch)  # softmax_out, or the epilogue it was inlined into (a mask's Where)
    *rows, col = sch.get_loops(out)
    row = sch.fuse(*rows) if len(rows) > 1 else rows[0]
    for name in ("softmax_sum", "softmax_psum", "softmax_exp", "softmax_max", "softmax_pmax"):  # consumers first
        sch.compute_at(sch.get_sblock(name), row)
    if loop_extent(sch, row) > 1:
        sch.parallel(row)  # before decompose_reduction: TVM refuses it over split init/update blocks
    width, lanes = loop_extent(sch, col), params.lanes

    def whole_of(step: int) -> int:  # the row's whole runs of ``step``, when it has a partial one
        return width // step if width % step else 0

    for name in ("softmax_pmax", "softmax_psum"):
        partial, vectors = _vector_lanes(sch, name)
        if name == "softmax_pmax" and whole_of(partial):
            _whole_vectors_first(sch, vectors, whole_of(partial))
    exp = sch.get_sblock("softmax_exp")
    vectors, vec = sch.split(sch.get_loops(exp)[-1], [None, lanes])
    sch.vectorize(vec)
    if whole_of(lanes):
        _whole_vectors_first(sch, vectors, whole_of(lanes))
    if width >= lanes:  # whole vectors, then a scalar tail (197 columns: 12 vectors and 5)
        body = sch.loop_partition(col, [width - width % lanes, None])[0] if width % lanes else col
        sch.vectorize(sch.split(body, [None, lanes])[1])


def schedule_layer_norm(sch, params: ScheduleParams) -> None:
    """LayerNormalization and RMSNormalization over the last axis by rows (``lower/nn/normalization.py``,
    ``_layer_norm_rows``): the output's row loop, parallel, carries every stage of its row; the two
    partial-sum stages vectorise their lane loop under the loop over the row's vectors, and the
    normalised row is written in whole vectors (the generic schedule had summed each row one
    element at a time: BERT-base's 768-wide rows took 3.7x onnxruntime's time)."""
    inline_injective(sch)
    names = {block_name(sch, block) for block in child_blocks(sch)}
    if "ln_psq" not in names:
        raise ValueError("not the rows form: the generic schedule")
    out = sch.get_sblock("ln_out") if "ln_out" in names else output_block(sch)  # else inlined into an epilogue
    *rows, col = sch.get_loops(out)
    row = sch.fuse(*rows) if len(rows) > 1 else rows[0]
    stages = [name for name in ("ln_sqsum", "ln_psq", "ln_sum", "ln_psum") if name in names]  # RMS: no sum
    for name in stages:  # consumers first (the mean and the inverse deviation are inlined)
        sch.compute_at(sch.get_sblock(name), row)
    # a prologue that is an output of the kernel too (ViT's embeddings + position, read again by the
    # residual Add), not inlined: a parallel vector pass of its own. (Computed at the row loop, TVM
    # inferred every row of it for each row through the fused row index: ViT's 0.3 ms kernel took 19.)
    from .schedule import schedule_spatial  # the generic family's, which imports this module

    for block in child_blocks(sch):
        if block_name(sch, block) not in (*stages, block_name(sch, out)) and not is_reduction(sch, block):
            schedule_spatial(sch, block, params.lanes)
    if loop_extent(sch, row) > 1:
        sch.parallel(row)  # before decompose_reduction: TVM refuses it over split init/update blocks
    for name in ("ln_psum", "ln_psq"):
        if name in names:
            _vector_lanes(sch, name)
    sch.vectorize(sch.split(col, [None, params.lanes])[1])


def _vector_lanes(sch, name: str):
    """A partial-sum (or maximum) stage's lanes vectorised under its loop over the row's vectors,
    its initialisation split off and vectorised: (lanes, the vectors' loop)."""
    block = sch.get_sblock(name)
    lane, vectors = sch.get_loops(block)[-2:]
    lanes = loop_extent(sch, lane)  # the lowering's partial lanes (16: 2 AVX2 or 4 NEON vectors)
    sch.reorder(vectors, lane)
    sch.vectorize(lane)
    init = sch.decompose_reduction(block, vectors)
    sch.vectorize(sch.get_loops(init)[-1])
    return lanes, vectors


def _whole_vectors_first(sch, vectors, whole: int) -> None:
    """Cut a loop over a padded row's vectors after its ``whole`` vectors: there the padded read's
    guard (``te_util.read_if``, ``col < k``) is provably true and simplifies away, so those vectors
    load contiguously; only the last, partial vector keeps the guarded (scalar) loads."""
    sch.loop_partition(vectors, [whole, None])
