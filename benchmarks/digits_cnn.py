"""Train a small CNN on scikit-learn's bundled handwritten digits in NumPy (about a minute of CPU); write it as
ONNX with its test split and a calibration set drawn from the training images only.

    python benchmarks/digits_cnn.py            # writes tests/data/digits/{digits_cnn.onnx,digits.npz}

The split is fixed (``train_test_split(test_size=0.25, random_state=0, stratify=y)``), as is the
seed, so the files are reproducible.  The tests (``tests/passes/test_compression_accuracy.py``) read
the committed files and need neither scikit-learn nor this script.

Network: x[N,1,8,8] / 16 -> Conv 3x3 (16) -> Relu -> Conv 3x3 stride 2 (32) -> Relu -> Flatten
-> Gemm (10) -> Softmax.  Trained with Adam on cross-entropy, full batch.
"""

from __future__ import annotations

import pathlib

import numpy as np

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "digits"


def im2col(x: np.ndarray, k: int, stride: int, pad: int) -> np.ndarray:
    """[N, C, H, W] -> [N, OH, OW, C*k*k] patches."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    cols = np.empty((n, c, k, k, oh, ow), dtype=x.dtype)
    for i in range(k):
        for j in range(k):
            cols[:, :, i, j] = xp[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride]
    return cols.transpose(0, 4, 5, 1, 2, 3).reshape(n, oh, ow, c * k * k)


def col2im(dcols: np.ndarray, shape, k: int, stride: int, pad: int) -> np.ndarray:
    n, c, h, w = shape
    oh, ow = dcols.shape[1:3]
    d = dcols.reshape(n, oh, ow, c, k, k).transpose(0, 3, 4, 5, 1, 2)
    dxp = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=dcols.dtype)
    for i in range(k):
        for j in range(k):
            dxp[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride] += d[:, :, i, j]
    return dxp[:, :, pad : pad + h, pad : pad + w]


LAYERS = [(1, 16, 1), (16, 32, 2)]  # (in, out, stride) of the 3x3 convolutions


def forward(params, x):
    cache, h = [], x
    for (_, cout, stride), (w, b) in zip(LAYERS, params["conv"]):
        cols = im2col(h, 3, stride, 1)
        y = cols @ w.reshape(cout, -1).T + b  # [N, OH, OW, cout]
        cache.append((h.shape, cols, y))
        h = np.maximum(y, 0).transpose(0, 3, 1, 2)
    flat = h.reshape(len(x), -1)
    logits = flat @ params["fc_w"].T + params["fc_b"]
    return logits, cache, flat


def gradients(params, x, labels):
    logits, cache, flat = forward(params, x)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    loss = -np.log(p[np.arange(len(x)), labels] + 1e-12).mean()
    dlogits = p
    dlogits[np.arange(len(x)), labels] -= 1
    dlogits /= len(x)
    grads = {"fc_w": dlogits.T @ flat, "fc_b": dlogits.sum(0), "conv": [None] * len(LAYERS)}
    dh = (dlogits @ params["fc_w"]).reshape(len(x), *cache[-1][2].shape[3:], *cache[-1][2].shape[1:3])
    for li in reversed(range(len(LAYERS))):
        cin, cout, stride = LAYERS[li]
        shape, cols, y = cache[li]
        dy = dh.transpose(0, 2, 3, 1) * (y > 0)
        w = params["conv"][li][0]
        grads["conv"][li] = (
            (dy.reshape(-1, cout).T @ cols.reshape(-1, cols.shape[-1])).reshape(w.shape),
            dy.sum((0, 1, 2)),
        )
        dh = col2im(dy @ w.reshape(cout, -1), shape, 3, stride, 1)
    return loss, grads


def train(x, labels, epochs: int = 150, lr: float = 0.01, seed: int = 0):
    rng = np.random.default_rng(seed)
    params = {
        "conv": [(rng.normal(0, (2 / (cin * 9)) ** 0.5, (cout, cin, 3, 3)), np.zeros(cout)) for cin, cout, _ in LAYERS],
        "fc_w": rng.normal(0, (1 / 512) ** 0.5, (10, 32 * 4 * 4)),
        "fc_b": np.zeros(10),
    }
    flat = lambda t: [t["fc_w"], t["fc_b"]] + [a for pair in t["conv"] for a in pair]  # noqa: E731
    moments = [(np.zeros_like(a), np.zeros_like(a)) for a in flat(params)]
    for step in range(1, epochs + 1):
        loss, grads = gradients(params, x, labels)
        for i, (a, g) in enumerate(zip(flat(params), flat(grads))):
            m, v = moments[i]
            m[:] = 0.9 * m + 0.1 * g
            v[:] = 0.999 * v + 0.001 * g * g
            a -= lr * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
        if step % 25 == 0:
            print(f"epoch {step}: loss {loss:.4f}")
    return params


def to_onnx(params):
    from onnx import TensorProto, helper, numpy_helper

    f32 = lambda a, name: numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)  # noqa: E731
    inits, nodes, h = [], [], "x"
    for i, ((_, _, stride), (w, b)) in enumerate(zip(LAYERS, params["conv"])):
        inits += [f32(w, f"conv{i}_w"), f32(b, f"conv{i}_b")]
        nodes.append(
            helper.make_node(
                "Conv",
                [h, f"conv{i}_w", f"conv{i}_b"],
                [f"conv{i}"],
                pads=[1] * 4,
                strides=[stride] * 2,
                name=f"conv{i}",
            )
        )
        nodes.append(helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"], name=f"relu{i}"))
        h = f"relu{i}"
    inits += [f32(params["fc_w"], "fc_w"), f32(params["fc_b"], "fc_b")]
    nodes += [
        helper.make_node("Flatten", [h], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1, name="fc"),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1, name="softmax"),
    ]
    graph = helper.make_graph(
        nodes,
        "digits_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def main() -> None:
    import onnx
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.uint8)  # 0..16
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
    scale = lambda a: a[:, None].astype(np.float64) / 16.0  # noqa: E731
    params = train(scale(x_train), y_train)
    logits, _, _ = forward(params, scale(x_test))
    print(f"test accuracy (NumPy, float64): {(logits.argmax(1) == y_test).mean():.4f}")
    OUT.mkdir(parents=True, exist_ok=True)
    onnx.save(to_onnx(params), OUT / "digits_cnn.onnx")
    rng = np.random.default_rng(0)
    calibration = x_train[rng.choice(len(x_train), 128, replace=False)]
    np.savez_compressed(OUT / "digits.npz", x_test=x_test, y_test=y_test, calibration=calibration)
    print(f"wrote {OUT / 'digits_cnn.onnx'} and {OUT / 'digits.npz'}")


if __name__ == "__main__":
    main()
