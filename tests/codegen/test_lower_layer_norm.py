"""float32 LayerNormalization over the last axis, compiled by rows (``lower/nn/normalization.py``
``_layer_norm_rows``, the ``layer_norm`` schedule): vector partial sums of the row and of its squared
deviations, the normalised row in whole vectors. Compared with the interpreter with and without a
bias, with a Transpose fused before it (ConvNeXt's NCHW -> NHWC) and an epilogue after it, at every
vector width; rows that are not whole 16-lane runs, and LayerNormalizations asked for their mean,
keep the generic form."""

from __future__ import annotations

import numpy as np
import pytest
from compiled_checks import check_against_interpreter, only_kernel
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT


def _schedule_used(model, target=None) -> str:
    from codegen.tvm.kernel import build_kernel_module

    spec, tgt = only_kernel(model, target) if target else only_kernel(model)
    return build_kernel_module(spec, "k", tgt.to_tvm(), tgt.schedule_params())[1]


def _layer_norm_model(shape, bias: bool, rng, outputs=1):
    k = shape[-1]
    inits = [numpy_helper.from_array(rng.standard_normal(k).astype(np.float32), "g")]
    inputs = ["x", "g"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(k).astype(np.float32), "b"))
        inputs.append("b")
    names = ["y", "mean", "invstd"][:outputs]
    node = helper.make_node("LayerNormalization", inputs, names, axis=-1, epsilon=1e-5)
    graph = helper.make_graph(
        [node],
        "ln",
        [helper.make_tensor_value_info("x", F, list(shape))],
        [helper.make_tensor_value_info(n, F, None) for n in names],
        initializer=inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("shape,bias", [((3, 32), True), ((2, 7, 768), True), ((5, 48), False), ((1, 2, 3, 64), True)])
def test_layer_norm_rows_match_the_interpreter(shape, bias):
    rng = np.random.default_rng(len(shape))
    model = _layer_norm_model(shape, bias, rng)
    assert _schedule_used(model) == "layer_norm"
    x = (rng.standard_normal(shape) * 3 + 1.5).astype(np.float32)
    check_against_interpreter(model, {"x": x}, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("target", ["x86-64:vector_bits=256", "x86-64:vector_bits=512", "aarch64"])
def test_layer_norm_rows_schedule_at_every_vector_width(target):
    """The partial sums are 16 lanes wide whatever the vector (2 AVX2, 4 NEON vectors)."""
    model = _layer_norm_model((4, 96), True, np.random.default_rng(1))
    assert _schedule_used(model, target) == "layer_norm"


def test_transposed_layer_norm_with_an_epilogue():
    """ConvNeXt's block: NCHW -> NHWC Transpose, LayerNormalization over the channels, then a
    scale: one kernel, the Transpose read in its loads and the Mul in its write-back."""
    rng = np.random.default_rng(7)
    c = 48
    inits = [
        numpy_helper.from_array(rng.standard_normal(c).astype(np.float32), "g"),
        numpy_helper.from_array(rng.standard_normal(c).astype(np.float32), "b"),
        numpy_helper.from_array(np.array(0.5, np.float32), "s"),
    ]
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
        helper.make_node("LayerNormalization", ["t", "g", "b"], ["n"], axis=-1, epsilon=1e-6),
        helper.make_node("Mul", ["n", "s"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "convnext",
        [helper.make_tensor_value_info("x", F, [1, c, 5, 6])],
        [helper.make_tensor_value_info("y", F, None)],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert _schedule_used(model) == "layer_norm"
    x = rng.standard_normal((1, c, 5, 6)).astype(np.float32)
    check_against_interpreter(model, {"x": x}, rtol=1e-4, atol=1e-5)


def test_layer_norm_whose_input_is_an_output_too():
    """ViT's first block: the embeddings plus the position table feed the LayerNormalization and
    the residual Add after the attention, so the sum is an output of the kernel as well; each of
    its rows is computed inside the normalisation's row loop."""
    rng = np.random.default_rng(8)
    k = 64
    inits = [
        numpy_helper.from_array(rng.standard_normal((1, 5, k)).astype(np.float32), "pos"),
        numpy_helper.from_array(rng.standard_normal(k).astype(np.float32), "g"),
        numpy_helper.from_array(rng.standard_normal(k).astype(np.float32), "b"),
    ]
    nodes = [
        helper.make_node("Add", ["x", "pos"], ["e"]),
        helper.make_node("LayerNormalization", ["e", "g", "b"], ["n"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "vit",
        [helper.make_tensor_value_info("x", F, [1, 5, k])],
        [helper.make_tensor_value_info("n", F, None), helper.make_tensor_value_info("e", F, None)],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert _schedule_used(model) == "layer_norm"
    x = rng.standard_normal((1, 5, k)).astype(np.float32)
    check_against_interpreter(model, {"x": x}, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape,outputs", [((3, 40), 1), ((2, 64), 3)])
def test_other_layer_norms_keep_the_generic_form(shape, outputs):
    """A 40-wide row (not whole 16-lane runs), and a LayerNormalization whose mean and inverse
    deviation are outputs too, take the generic schedule, and still match."""
    rng = np.random.default_rng(3)
    model = _layer_norm_model(shape, True, rng, outputs)
    assert _schedule_used(model) == "generic"
    x = rng.standard_normal(shape).astype(np.float32)
    check_against_interpreter(model, {"x": x}, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape", [(3, 64), (2, 5, 32)])
def test_rms_norm_rows_match_the_interpreter(shape):
    """RMSNormalization (opset 23) takes the same rows, without the mean."""
    from compiled_checks import node_model

    rng = np.random.default_rng(6)
    scale = numpy_helper.from_array(rng.standard_normal(shape[-1]).astype(np.float32), "s")
    model = node_model(
        "RMSNormalization",
        [("x", F, list(shape)), ("s", F, [shape[-1]])],
        [("y", F, list(shape))],
        opset=23,
        initializers=[scale],
        axis=-1,
    )
    assert _schedule_used(model) == "layer_norm"
    x = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
    check_against_interpreter(model, {"x": x}, rtol=1e-4, atol=1e-5)


def test_a_nan_makes_its_row_nan():
    """A NaN or an infinity in a row makes that row NaN (as the reference's mean does), no other."""
    x = np.random.default_rng(4).standard_normal((3, 32)).astype(np.float32)
    x[0, 5], x[1, 30] = np.nan, np.inf
    model = _layer_norm_model((3, 32), True, np.random.default_rng(5))
    rep = check_against_interpreter(model, {"x": x}, rtol=1e-4, atol=1e-5)
    y = rep.run({"x": x})[0]
    assert np.isnan(y[0]).all() and np.isnan(y[1]).all() and np.isfinite(y[2]).all()
