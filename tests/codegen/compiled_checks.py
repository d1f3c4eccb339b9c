"""Checks shared by the codegen tests: a compiled library against the interpreter on the same model."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

from compiler.runtime import RuntimeLoadError
from frontends.onnx.backend import EmberBackend

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def conformance_runner(module_name="onnx_conformance_compiled"):
    """A fresh copy of scripts/onnx_conformance_compiled.py as a module (scripts/ is not a package)."""
    path = os.path.join(ROOT, "scripts", "onnx_conformance_compiled.py")
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compiled_and_reference(onnx_model):
    """The model through ``prepare(compile=True)`` (a shared library) and through the interpreter."""
    return EmberBackend.prepare(onnx_model, compile=True), EmberBackend.prepare(onnx_model)


def check(rep, ref, feeds, tol=1e-6):
    """Both runs give the same outputs (count, shapes, values within ``tol``); returns the compiled ones."""
    got, want = rep.run(feeds), ref.run(feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)
    return got


def refused(rep, feeds, words):
    """The compiled run fails with a load/run error whose message holds every one of ``words``."""
    with pytest.raises(RuntimeLoadError) as info:
        rep.run(feeds)
    for word in words:
        assert word in str(info.value)
