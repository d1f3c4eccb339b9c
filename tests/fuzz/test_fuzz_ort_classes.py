"""``benchmarks/fuzz.py --ort`` sorts onnxruntime's refusals of models Ember accepts into classes:
the ones Ember accepts on purpose (documented in docs/robustness.md) apart from the rest.

The reasons are onnxruntime 1.32's messages for the classes mutation fuzzing found."""

from __future__ import annotations

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fuzz_script():
    spec = importlib.util.spec_from_file_location("fuzz_script", os.path.join(ROOT, "benchmarks", "fuzz.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FUZZ = fuzz_script()
LOAD = "Fail: [ONNXRuntimeError] : 1 : FAIL : Load model from /tmp/ember_fuzz_ab12/fuzz.onnx failed:"


@pytest.mark.parametrize(
    "reason, name, documented",
    [
        (
            LOAD + "/onnxruntime_src/onnxruntime/core/graph/graph.cc:1571 void onnxruntime::Graph::"
            "InitializeStateFromModelFileGraphProto() initializer_arg was false. Graph ctor should have "
            "created NodeArg for initializer. Missing: one",
            "IR < 4 initializer not listed as a graph input",
            True,
        ),
        (
            LOAD + "Node (resize) Op (Resize) [ShapeInferenceError] Cannot parse data from external tensors.",
            "onnxruntime's shape inference cannot read external data",
            True,
        ),
        (
            "Fail: [ONNXRuntimeError] : 1 : FAIL : Exception during initialization: upsamplebase.h:370 "
            "onnxruntime::UpsampleMode onnxruntime::UpsampleBase::StringToUpsampleMode(const std::string&) "
            "mode attribute is bogus.",
            "attribute outside its enum",
            False,
        ),
        (
            LOAD + "Node (loop) Op (Loop) [TypeInferenceError] Graph attribute inferencing failed: Node:loop "
            "Tensor element type mismatch. 7 != 1",
            "Loop body types",
            False,
        ),
        (
            LOAD + "Node (gemm) Op (Gemm) [ShapeInferenceError] Dimension mismatch in unification between 27 and -252",
            "negative or overflowing inferred dims",
            False,
        ),
    ],
)
def test_onnxruntime_refusals_are_classed(reason, name, documented):
    got, why = FUZZ.ort_class(reason)
    assert got == name
    assert bool(why) == documented


def test_an_unknown_reason_is_its_own_undocumented_class():
    got, why = FUZZ.ort_class(LOAD + "Node (x) Op (Foo) something new at line 12 of 3456")
    assert got.startswith("other: ") and "something new at line N of N" in got and why is None
