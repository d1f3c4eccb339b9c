"""The example graphs in tests/examples/: they parse, verify, print stably and compute the right values."""

import math
from pathlib import Path

import numpy as np
import pytest

from compiler import TensorType, interpret, load_ir, parse_ir, print_ir, verify

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NAMES = ["resnet_block", "transformer_layer", "loop"]


def load(name: str):
    g = load_ir(str(EXAMPLES / f"{name}.ir"))
    verify(g)
    return g


def consts(g) -> dict[str, np.ndarray]:
    return {n.results[0].name: n.attrs["value"] for n in g.walk() if n.op == "Constant"}


@pytest.mark.parametrize("name", NAMES)
def test_example_parses_verifies_and_round_trips(name):
    g = load(name)
    text = print_ir(g)
    assert print_ir(parse_ir(text)) == text
    source = (EXAMPLES / f"{name}.ir").read_text()
    body = "\n".join(line for line in source.splitlines() if not line.startswith("//")) + "\n"
    assert text == body  # the files are in printed form, apart from their header comments


# ----------------------------------------------------------------------------- ResNet block


def conv2d_same(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """3x3 convolution, stride 1, zero padding 1 (direct loops over the kernel)."""
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, w.shape[0], h, wd), np.float64)
    for i in range(3):
        for j in range(3):
            out += np.einsum("nchw,mc->nmhw", xp[:, :, i : i + h, j : j + wd], w[:, :, i, j])
    return out


def batch_norm(x, scale, bias, mean, var, eps=1e-5):
    shape = (1, -1, 1, 1)
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * scale.reshape(shape) + bias.reshape(shape)


@pytest.mark.parametrize("batch", [1, 3])
def test_resnet_block_matches_numpy(batch):
    g = load("resnet_block")
    assert g.params[0].type.shape == ("batch", 4, 8, 8)
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, 4, 8, 8)).astype(np.float32)
    w1, w2 = (rng.standard_normal((4, 4, 3, 3)).astype(np.float32) * 0.3 for _ in range(2))
    out = interpret(g, {"x": x, "w1": w1, "w2": w2})["out"]
    assert out.shape == (batch, 4, 8, 8) and out.dtype == np.float32
    c = consts(g)
    bn = [[c[f"bn{k}_{p}"] for p in ("scale", "bias", "mean", "var")] for k in (1, 2)]
    h = np.maximum(batch_norm(conv2d_same(x, w1), *bn[0]), 0)
    expected = np.maximum(batch_norm(conv2d_same(h, w2), *bn[1]) + x, 0)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- transformer layer


def layer_norm(x, scale, bias, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(x.var(-1, keepdims=True) + eps) * scale + bias


def gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def transformer_reference(x, w, c, heads=2):
    b, s, d = x.shape
    hd = d // heads

    def split(t):
        return t.reshape(b, s, heads, hd).transpose(0, 2, 1, 3)

    q, k, v = split(x @ w["wq"]), split(x @ w["wk"]), split(x @ w["wv"])
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    context = (probs @ v).transpose(0, 2, 1, 3).reshape(b, s, d)
    h = layer_norm(x + context @ w["wo"], c["ln1_scale"], c["ln1_bias"])
    return layer_norm(h + gelu(h @ w["w_up"]) @ w["w_down"], c["ln2_scale"], c["ln2_bias"])


@pytest.mark.parametrize("batch, seq", [(1, 1), (2, 5)])
def test_transformer_layer_matches_numpy(batch, seq):
    g = load("transformer_layer")
    assert g.params[0].type.shape == ("batch", "seq", 8)
    ops = {n.op for n in g.nodes}
    assert {"MatMul", "Softmax", "LayerNormalization", "Gelu", "Add"} <= ops
    rng = np.random.default_rng(seq)
    inputs = {
        p.name: (
            rng.standard_normal(tuple(batch if d == "batch" else seq if d == "seq" else d for d in p.type.shape)) * 0.5
        ).astype(np.float32)
        for p in g.params
    }
    out = interpret(g, inputs)["out"]
    assert out.shape == (batch, seq, 8)
    weights = {k: v.astype(np.float64) for k, v in inputs.items() if k != "x"}
    expected = transformer_reference(inputs["x"].astype(np.float64), weights, consts(g))
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- loop


def loop_reference(n, x):
    acc, history = x.copy(), []
    for i in range(n):
        acc = acc + x if i % 2 == 0 else acc * 0.5
        history.append(acc * i)
    history = np.stack(history) if history else np.zeros((0, 3), np.float32)
    return acc, (np.maximum(history, 0) if acc.sum() > 0 else -history)


@pytest.mark.parametrize("n, x", [(0, [1.0, 2.0, 3.0]), (3, [1.0, -2.0, 3.0]), (5, [-4.0, 1.0, 0.5])])
def test_loop_example_matches_python(n, x):
    g = load("loop")
    loop_node = g.outputs[0].producer
    assert loop_node.op == "Loop" and any(m.op == "If" for m in loop_node.attrs["body"].nodes)
    assert g.outputs[1].type == TensorType(g.params[1].type.dtype, (None, 3))
    x = np.array(x, np.float32)
    out = interpret(g, {"n": np.array(n, np.int64), "x": x})
    acc, history = loop_reference(n, x)
    assert out["out"].shape == (n, 3)
    np.testing.assert_allclose(out["acc"], acc, rtol=1e-6)
    np.testing.assert_allclose(out["out"], history, rtol=1e-6)
