"""Lowering of Ember's ``ember.NgramCounts``, the counting half of ``TfIdfVectorizer``.

The ``lower-tfidf`` pass (passes/lower_tfidf.py) rewrites TfIdfVectorizer over integer tokens
into ``ember.NgramCounts`` and plain weighting ops, with the tables of
``compiler.ops.ngrams.ngram_tables``. The kernel counts per gram, then gathers the grams of each output column:

    per_gram[b, g] = sum over gap d in 1..max_skip_count+1 (1 only for unigrams), start s:
                     all_k X[b, s + k d] == grams[g, k]   (k < lengths[g], s + (lengths[g]-1) d < T)
    counts[b, c]   = sum over g with columns[g] == c of per_gram[b, g]
"""

from __future__ import annotations

from tvm import te, tirx

from ..registry import lowering


@lowering("ember.NgramCounts", kind="reduce")
def _ngram_counts(ctx, x, grams, lengths, columns):
    size, skips = int(ctx.attr("size")), int(ctx.attr("max_skip_count", 0))
    shape = tuple(int(d) for d in x.shape)
    steps = shape[-1]
    n_grams, longest = (int(d) for d in grams.shape)
    lead = shape[:-1]
    if steps == 0:  # no tokens: nothing to count
        return te.compute(lead + (size,), lambda *idx: tirx.const(0, "float32"), name="ngram_counts")
    s = te.reduce_axis((0, steps), "s")
    d = te.reduce_axis((0, skips + 1), "d")
    i64 = "int64"

    def per_gram_body(*idx):
        *row, g = idx
        n = lengths[g]
        gap = d.var.astype(i64) + 1
        fits = tirx.all(n > 0, s.var.astype(i64) + (n - 1) * gap < steps, tirx.Or(d.var == 0, n > 1))
        match = fits
        for k in range(longest):
            at = tirx.min(s.var.astype(i64) + k * gap, steps - 1)
            match = tirx.And(match, tirx.Or(n <= k, x(*row, at).astype(i64) == grams[g, k]))
        return te.sum(tirx.Select(match, tirx.const(1, "float32"), tirx.const(0, "float32")), axis=[d, s])

    per_gram = te.compute(lead + (n_grams,), per_gram_body, name="ngram_hits")
    g = te.reduce_axis((0, n_grams), "g")
    return te.compute(
        lead + (size,),
        lambda *idx: te.sum(
            tirx.Select(columns[g] == idx[-1], per_gram(*idx[:-1], g), tirx.const(0, "float32")), axis=g
        ),
        name="ngram_counts",
    )
