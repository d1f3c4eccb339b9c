"""Hypothesis-driven mutation of serialized ONNX and of prototxt text (bounded: seconds in CI).

Each case mutates a small seed model (``mutations.py``) and imports it: only Ember's error
types may come out (EmberError, naming the file, and the op wherever a node is named); no
other exception, no hang (a per-case time limit).  ``benchmarks/fuzz.py`` runs the long version.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutations import (
    FIELD_MUTATORS,
    mutate_bytes,
    mutate_onnx,
    mutate_prototxt,
    onnx_seeds,
    prototxt_seeds,
    run_case,
)

ONNX_SEEDS = onnx_seeds()
PROTOTXT_SEEDS = prototxt_seeds()
CASE_SECONDS = 10.0
FUZZ = settings(
    deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


def assert_clean(outcome, what):
    assert outcome.kind in ("accepted", "refused"), f"{what}: {outcome.kind}: {outcome.detail}"


@pytest.mark.parametrize("name", sorted(ONNX_SEEDS))
def test_onnx_seeds_import(tmp_path, name):
    assert run_case("onnx", ONNX_SEEDS[name], str(tmp_path), interpret=True).kind == "accepted"


@pytest.mark.parametrize("name", sorted(PROTOTXT_SEEDS))
def test_prototxt_seeds_import(tmp_path, name):
    assert run_case("prototxt", PROTOTXT_SEEDS[name], str(tmp_path), interpret=True).kind == "accepted"


@settings(FUZZ, max_examples=200)
@given(name=st.sampled_from(sorted(ONNX_SEEDS)), rnd=st.randoms(use_true_random=False))
def test_mutated_onnx_gives_only_ember_errors(tmp_path, name, rnd):
    data, applied = mutate_onnx(ONNX_SEEDS[name], rnd)
    assert_clean(run_case("onnx", data, str(tmp_path), seconds=CASE_SECONDS), f"{name} {applied}")


@settings(FUZZ, max_examples=60)
@given(
    name=st.sampled_from(sorted(ONNX_SEEDS)),
    mutator=st.sampled_from(sorted(FIELD_MUTATORS)),
    rnd=st.randoms(use_true_random=False),
)
def test_each_field_mutator_gives_only_ember_errors(tmp_path, name, mutator, rnd):
    import onnx

    model = onnx.ModelProto.FromString(ONNX_SEEDS[name])
    FIELD_MUTATORS[mutator](model, rnd)
    outcome = run_case("onnx", model.SerializeToString(), str(tmp_path), seconds=CASE_SECONDS)
    assert_clean(outcome, f"{name} {mutator}")


@settings(FUZZ, max_examples=60)
@given(name=st.sampled_from(sorted(ONNX_SEEDS)), rnd=st.randoms(use_true_random=False))
def test_byte_flipped_onnx_gives_only_ember_errors(tmp_path, name, rnd):
    data = mutate_bytes(ONNX_SEEDS[name], rnd)
    assert_clean(run_case("onnx", data, str(tmp_path), seconds=CASE_SECONDS), f"{name} bytes")


@settings(FUZZ, max_examples=150)
@given(name=st.sampled_from(sorted(PROTOTXT_SEEDS)), rnd=st.randoms(use_true_random=False))
def test_mutated_prototxt_gives_only_ember_errors(tmp_path, name, rnd):
    text, applied = mutate_prototxt(PROTOTXT_SEEDS[name], rnd)
    assert_clean(run_case("prototxt", text, str(tmp_path), seconds=CASE_SECONDS), f"{name} {applied}")


def test_the_runner_reports_raw_tracebacks_and_hangs(tmp_path, monkeypatch):
    """The classifier itself: a non-Ember exception is a traceback, a slow import a hang."""
    import time

    import frontends.onnx

    monkeypatch.setattr(frontends.onnx, "import_model", lambda path: {}["missing"])
    assert run_case("onnx", b"", str(tmp_path)).kind == "traceback"
    monkeypatch.setattr(frontends.onnx, "import_model", lambda path: time.sleep(5))
    assert run_case("onnx", b"", str(tmp_path), seconds=0.2).kind == "hang"
    rnd = random.Random(0)
    assert mutate_onnx(ONNX_SEEDS["convnet"], rnd)[0] != ONNX_SEEDS["convnet"]
