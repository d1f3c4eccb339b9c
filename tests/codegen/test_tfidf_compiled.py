"""TfIdfVectorizer over integer tokens through the compiled path (``lower-tfidf`` in codegen-prepare,
then the ember.NgramCounts kernel).

Random pools, gram lengths, skips, modes and weights: the library's output equals onnxruntime's and
the interpreter's (onnx.reference's kernel) exactly; counts are small integers.
"""

from __future__ import annotations

import numpy as np
import pytest
import tvm  # noqa: F401  (a hard dependency: a broken install fails here)
from compiled_checks import check, compiled_and_reference  # noqa: E402
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper


def tfidf_model(x_shape, pool_by_size, mode, min_len, max_len, skips, weights, elem=TensorProto.INT64):
    """``pool_by_size[n-1]`` lists the n-grams of length n (each a tuple); columns in pool order."""
    pool, counts = [], []
    for grams in pool_by_size:
        counts.append(len(pool))
        for gram in grams:
            pool.extend(gram)
    n_grams = sum(len(grams) for grams in pool_by_size)
    indexes = list(range(n_grams))
    attrs = dict(
        mode=mode,
        min_gram_length=min_len,
        max_gram_length=max_len,
        max_skip_count=skips,
        ngram_counts=counts,
        ngram_indexes=indexes,
        pool_int64s=pool,
    )
    if weights:
        attrs["weights"] = [0.5 + 0.25 * i for i in range(n_grams)]
    node = helper.make_node("TfIdfVectorizer", ["x"], ["y"], **attrs)
    out_shape = list(x_shape[:-1]) + [n_grams]
    graph = helper.make_graph(
        [node],
        "tfidf",
        [helper.make_tensor_value_info("x", elem, list(x_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])


def onnxruntime_run(model, x):
    import onnxruntime as ort

    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


grams_of = {n: st.lists(st.tuples(*[st.integers(1, 4)] * n), min_size=1, max_size=4, unique=True) for n in (1, 2, 3)}


@settings(max_examples=12, deadline=None)
@given(
    unigrams=grams_of[1],
    bigrams=grams_of[2],
    trigrams=grams_of[3],
    lengths=st.sampled_from([(1, 1), (1, 2), (2, 3), (1, 3)]),
    skips=st.integers(0, 2),
    mode=st.sampled_from(["TF", "IDF", "TFIDF"]),
    weights=st.booleans(),
    batch=st.sampled_from([None, 1, 3]),
    seed=st.integers(0, 2**16),
)
def test_tfidf_matches_onnxruntime(unigrams, bigrams, trigrams, lengths, skips, mode, weights, batch, seed):
    x_shape = (8,) if batch is None else (batch, 8)
    model = tfidf_model(x_shape, [unigrams, bigrams, trigrams], mode, *lengths, skips, weights)
    x = np.random.default_rng(seed).integers(1, 5, x_shape).astype(np.int64)
    rep, ref = compiled_and_reference(model)
    (got,) = check(rep, ref, [x], tol=0)
    np.testing.assert_array_equal(got, onnxruntime_run(model, x))


def test_int32_tokens_and_a_long_pool():
    """200 bigrams over 64 tokens of a 2-row int32 batch; the tables travel as constants."""
    rng = np.random.default_rng(3)
    bigrams = sorted({tuple(int(v) for v in rng.integers(0, 30, 2)) for _ in range(300)})[:200]
    model = tfidf_model((2, 64), [[], bigrams], "TF", 2, 2, 1, False, elem=TensorProto.INT32)
    x = rng.integers(0, 30, (2, 64)).astype(np.int32)
    rep, ref = compiled_and_reference(model)
    (got,) = check(rep, ref, [x], tol=0)
    np.testing.assert_array_equal(got, onnxruntime_run(model, x))
    assert got.sum() > 0


def test_string_pools_stay_unsupported():
    from compiler.diagnostics import EmberError
    from frontends.onnx.backend import EmberBackend

    node = helper.make_node(
        "TfIdfVectorizer",
        ["x"],
        ["y"],
        mode="TF",
        min_gram_length=1,
        max_gram_length=1,
        max_skip_count=0,
        ngram_counts=[0],
        ngram_indexes=[0],
        pool_strings=["a"],
    )
    graph = helper.make_graph(
        [node],
        "s",
        [helper.make_tensor_value_info("x", TensorProto.STRING, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    with pytest.raises(EmberError, match="no lowering for op.s. TfIdfVectorizer"):
        EmberBackend.prepare(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)]), compile=True)
