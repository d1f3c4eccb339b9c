"""``TfIdfVectorizer`` over integer tokens: n-gram counting as a kernel, weighting as plain ops.

Graph preparation rewrites

    TfIdfVectorizer(X){pool_int64s, ngram_counts, ngram_indexes, min/max_gram_length,
                       max_skip_count, mode, weights}
    ->  counts = ember.NgramCounts(X, grams[G, L], lengths[G], columns[G]){size, max_skip_count}
        TF:    counts
        IDF:   Where(counts > 0, weights or 1, 0)
        TFIDF: counts * weights (or counts)

where ``compiler.ops.ngrams.ngram_tables`` lists the counted n-grams (the interpreter counts with
the same tables). The tables are ordinary constant operands, so they reach the kernel as weights
whatever the pool's size.

The kernel counts per gram, then gathers the grams of each output column:

    per_gram[b, g] = sum over gap d in 1..max_skip_count+1 (1 only for unigrams), start s:
                     all_k X[b, s + k d] == grams[g, k]   (k < lengths[g], s + (lengths[g]-1) d < T)
    counts[b, c]   = sum over g with columns[g] == c of per_gram[b, g]

String pools are not rewritten (the planner names the op as unsupported).
"""

from __future__ import annotations

import numpy as np

from compiler.ir.builder import Builder
from compiler.ir.core import Graph, Node
from compiler.ir.types import TensorType
from compiler.ops.ngrams import ngram_tables


def rewrite_tfidf(graph: Graph) -> int:
    """Rewrite each top-level integer ``TfIdfVectorizer`` as above; returns how many were."""
    count = 0
    for node in [n for n in graph.nodes if n.op == "TfIdfVectorizer"]:
        if not node.attrs.get("pool_int64s") or not isinstance(node.operands[0].type, TensorType):
            continue
        _rewrite(graph, node)
        count += 1
    return count


def _rewrite(graph: Graph, node: Node) -> None:
    attrs = node.attrs
    grams, lengths, columns, size = ngram_tables(attrs)
    b = Builder(graph, before=node)
    counts = b.op("ember.NgramCounts", [node.operands[0], b.constant(grams), b.constant(lengths),
                                        b.constant(columns)],
                  {"size": int(size), "max_skip_count": int(attrs.get("max_skip_count", 0))})
    mode = attrs.get("mode", "TF")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    weights = attrs.get("weights")
    weights = None if not weights else b.constant(np.asarray(weights, np.float32))
    if mode == "IDF":
        present = b.op("Greater", [counts, b.constant(np.array(0, np.float32))])
        one = b.constant(np.array(1, np.float32))
        result = b.op("Where", [present, one if weights is None else weights, b.constant(np.array(0, np.float32))])
    elif mode == "TFIDF" and weights is not None:
        result = b.op("Mul", [counts, weights])
    else:
        result = counts
    result.name = node.results[0].name
    node.results[0].replace_all_uses_with(result)
    node.erase()
