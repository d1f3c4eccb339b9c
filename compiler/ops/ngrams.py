"""TfIdfVectorizer's n-gram tables and counting, shared by the interpreter and codegen.

The pool's n-grams whose length is in [min_gram_length, max_gram_length] are counted; each has
the output column ``ngram_indexes`` gives its id (ids run over the whole pool in order, so grams of
other lengths still use one). A repeated n-gram keeps its last column, as the reference's trie does.
Per row, an n-gram of length n matches at every start with items ``gap`` apart, for gaps
1..max_skip_count+1; a unigram is counted once.
"""

from __future__ import annotations

import numpy as np


def ngram_tables(attrs: dict):
    """(grams [G, L], lengths [G] int64, columns [G] int64, output size) of the counted n-grams.

    ``grams`` is int64 for ``pool_int64s`` and an object array for ``pool_strings``; rows are padded
    (with 0 or "") past their length."""
    strings = not attrs.get("pool_int64s")
    pool = [
        p.decode() if isinstance(p, bytes) else p
        for p in (attrs.get("pool_strings") if strings else attrs.get("pool_int64s")) or []
    ]
    starts = list(attrs.get("ngram_counts") or [])
    indexes = list(attrs.get("ngram_indexes") or [])
    low, high = int(attrs.get("min_gram_length", 1)), int(attrs.get("max_gram_length", 1))
    column_of: dict[tuple, int] = {}
    ngram_id = 0
    for size, start in enumerate(starts, 1):
        stop = starts[size] if size < len(starts) else len(pool)
        for at in range(start, stop - size + 1, size):
            if low <= size <= high:
                column_of[tuple(pool[at : at + size])] = int(indexes[ngram_id])
            ngram_id += 1
    longest = max((len(g) for g in column_of), default=1)
    grams = np.full((max(len(column_of), 1), longest), "" if strings else 0, object if strings else np.int64)
    lengths = np.zeros(len(grams), np.int64)  # a length-0 row (nothing counted) never matches
    columns = np.zeros(len(grams), np.int64)
    for row, (gram, column) in enumerate(column_of.items()):
        grams[row, : len(gram)], lengths[row], columns[row] = gram, len(gram), column
    return grams, lengths, columns, max(indexes) + 1


def ngram_counts(x, grams, lengths, columns, size: int, max_skip_count: int) -> np.ndarray:
    """float32 [..., size]: per row of ``x`` (its last axis), the matches of each gram in its column."""
    x = np.asarray(x)
    rows = x.reshape(-1, x.shape[-1]) if x.ndim else x.reshape(1, -1)
    out = np.zeros((rows.shape[0], size), np.float32)
    for gram, n, column in zip(grams, lengths, columns):
        n = int(n)
        for gap in range(1, (max_skip_count if n > 1 else 0) + 2) if n else ():
            span = (n - 1) * gap
            for start in range(rows.shape[1] - span):
                out[:, column] += np.all(rows[:, start : start + span + 1 : gap] == gram[:n], axis=1)
    return out.reshape(x.shape[:-1] + (size,))


def tfidf_weighting(counts: np.ndarray, mode: str, weights) -> np.ndarray:
    """TF: the counts; IDF: weights (or 1) where a count is positive; TFIDF: counts times weights."""
    w = None if weights is None or len(weights) == 0 else np.asarray(weights, np.float32)
    if mode == "IDF":
        return np.where(counts > 0, np.float32(1) if w is None else w, np.float32(0)).astype(np.float32)
    if mode == "TFIDF" and w is not None:
        return (counts * w).astype(np.float32)
    return counts
