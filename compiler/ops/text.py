"""Text: n-gram counting (TfIdfVectorizer) and string ops.

TfIdfVectorizer counts with ``ngrams.py``, which codegen shares;
onnx.reference's kernel fails for IDF/TFIDF without weights.
"""

from __future__ import annotations

from .declare import Family
from .ngrams import ngram_counts, ngram_tables, tfidf_weighting

FAMILY = Family("text")
onnx_op = FAMILY.onnx_op


def tfidf_vectorizer(inputs, attrs, ctx):
    """Ember's counting (compiler/ops/ngrams.py)."""
    (x,) = inputs
    full = {
        name: ctx.attr(name)
        for name in (
            "pool_int64s",
            "pool_strings",
            "ngram_counts",
            "ngram_indexes",
            "min_gram_length",
            "max_gram_length",
        )
    }
    grams, lengths, columns, size = ngram_tables(full)
    counts = ngram_counts(x, grams, lengths, columns, size, int(ctx.attr("max_skip_count") or 0))
    mode = ctx.attr("mode")
    return [tfidf_weighting(counts, mode.decode() if isinstance(mode, bytes) else mode, ctx.attr("weights"))]


onnx_op("TfIdfVectorizer", kernel=tfidf_vectorizer)
onnx_op("StringConcat")
onnx_op("StringNormalizer")
onnx_op("StringSplit")
onnx_op("RegexFullMatch")
