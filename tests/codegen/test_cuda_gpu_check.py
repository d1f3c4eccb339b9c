"""scripts/cuda_gpu_check.py's portable artefacts: sign weights, the reference file, the compressed
library. (Its GPU step needs a GPU; here it is checked up to loading.)"""

from __future__ import annotations

import lzma
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import cuda_gpu_check  # noqa: E402


def _model() -> onnx.ModelProto:
    rng = np.random.default_rng(3)
    big = numpy_helper.from_array((0.1 * rng.standard_normal((64, 128))).astype(np.float32), "w")
    small = numpy_helper.from_array(rng.standard_normal(128).astype(np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Add", ["y", "b"], ["z"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 64])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, 128])],
        [big, small],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_sign_weights_keep_scale_and_small_tensors():
    model = _model()
    out = cuda_gpu_check.sign_weights(model)
    before = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    after = {i.name: numpy_helper.to_array(i) for i in out.graph.initializer}
    np.testing.assert_array_equal(after["b"], before["b"])  # under min_size: unchanged
    w, std = after["w"], before["w"].std()
    assert w.shape == before["w"].shape and w.dtype == np.float32
    np.testing.assert_allclose(np.unique(w), [-std, std], rtol=1e-6)
    assert 0.4 < (w > 0).mean() < 0.6
    # deterministic, so that a library compiled twice embeds the same weights
    again = {i.name: numpy_helper.to_array(i) for i in cuda_gpu_check.sign_weights(model).graph.initializer}
    np.testing.assert_array_equal(again["w"], w)
    # and they compress: a 64x128 fp32 tensor to a small fraction
    assert len(lzma.compress(w.tobytes(), preset=1)) < w.nbytes / 8


def test_reference_and_compressed_library_round_trip(tmp_path):
    feeds = {"x": np.arange(6, dtype=np.float32).reshape(2, 3)}
    expected = {"z": np.ones((2, 2), np.float32)}
    np.savez(
        tmp_path / "m.npz", **{f"in:{k}": v for k, v in feeds.items()}, **{f"out:{k}": v for k, v in expected.items()}
    )
    got_feeds, got_expected = cuda_gpu_check._reference(str(tmp_path), "m")
    np.testing.assert_array_equal(got_feeds["x"], feeds["x"])
    np.testing.assert_array_equal(got_expected["z"], expected["z"])
    payload = os.urandom(1000)
    with lzma.open(tmp_path / "m.so.xz", "wb") as f:
        f.write(payload)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    path = cuda_gpu_check._library(str(tmp_path), "m", str(scratch))
    assert path == str(scratch / "m.so") and open(path, "rb").read() == payload
