"""``lower-tfidf``: ``TfIdfVectorizer`` over integer tokens becomes n-gram counting plus weighting.

    TfIdfVectorizer(X){pool_int64s, ngram_counts, ngram_indexes, min/max_gram_length,
                       max_skip_count, mode, weights}
    ->  counts = ember.NgramCounts(X, grams[G, L], lengths[G], columns[G]){size, max_skip_count}
        TF:    counts
        IDF:   Where(counts > 0, weights or 1, 0)
        TFIDF: counts * weights (or counts)

where ``compiler.ops.ngrams.ngram_tables`` lists the counted n-grams (the interpreter counts with
the same tables).  The tables are ordinary constant operands, so they reach the kernel as weights
whatever the pool's size.  String pools are not rewritten (the planner names the op as unsupported).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.ir.core import Graph, Node
from compiler.ir.types import TensorType
from compiler.ops.ngrams import ngram_tables
from compiler.passes import Pass, PassResult
from compiler.rewrite import Rewriter


def lower_tfidf(rw: Rewriter, node: Node) -> None:
    """Rewrite one integer ``TfIdfVectorizer`` as above."""
    attrs = node.attrs
    grams, lengths, columns, size = ngram_tables(attrs)
    rw.set_insertion_point_before(node)
    b = rw
    counts = b.op(
        "ember.NgramCounts",
        [node.operands[0], b.constant(grams), b.constant(lengths), b.constant(columns)],
        {"size": int(size), "max_skip_count": int(attrs.get("max_skip_count", 0))},
    )
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
    rw.replace_node(node, [result])


@dataclass(frozen=True)
class LowerTfIdfPass(Pass):
    """Lower every top-level integer ``TfIdfVectorizer`` (see the module docstring)."""

    name = "lower-tfidf"

    def run(self, graph: Graph) -> PassResult:
        rw = Rewriter(graph, rule_name=self.name)
        count = 0
        for node in [n for n in graph.nodes if n.op == "TfIdfVectorizer"]:
            if not node.attrs.get("pool_int64s") or not isinstance(node.operands[0].type, TensorType):
                continue
            lower_tfidf(rw, node)
            count += 1
        return PassResult(count > 0, {"lowered": count})
