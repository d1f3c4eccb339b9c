"""Prototxt text as people wrote it (comments, fillers, ``param``/``blobs_lr``, engines, both
layer forms), weights written separately by layer name, compared with OpenCV."""

from __future__ import annotations

import cv2  # noqa: F401  (the OpenCV reference these tests compare with; a test dependency)
import numpy as np
import pytest
from caffe_harness import randn, run_ember, run_opencv

from frontends.caffe.writer import NetSpec

V1_DEPLOY = """
name: "CaffeNetStyle"   # old-style deploy file
input: "data"
input_dim: 1 input_dim: 3 input_dim: 17 input_dim: 17
layers {
  name: "conv1"  type: CONVOLUTION  bottom: "data"  top: "conv1"
  blobs_lr: 1  blobs_lr: 2  weight_decay: 1  weight_decay: 0
  convolution_param {
    num_output: 6 kernel_size: 3 stride: 2
    weight_filler { type: "gaussian" std: 0.01 }
    bias_filler { type: "constant" value: 0 }
  }
}
layers { name: "relu1" type: RELU bottom: "conv1" top: "conv1" }
layers {
  name: "pool1" type: POOLING bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 }
}
layers {
  name: "norm1" type: LRN bottom: "pool1" top: "norm1"
  lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 }
}
layers {
  name: "fc" type: INNER_PRODUCT bottom: "norm1" top: "fc"
  inner_product_param { num_output: 5 }
}
layers { name: "prob" type: SOFTMAX bottom: "fc" top: "prob" }
"""

V2_DEPLOY = """
name: "ModernStyle"
layer {
  name: "data" type: "Input" top: "data"
  input_param { shape: { dim: 1 dim: 3 dim: 17 dim: 17 } }
}
layer {
  name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param { lr_mult: 1 decay_mult: 1 }
  param { lr_mult: 2 decay_mult: 0 }
  convolution_param {
    num_output: 6 pad: 1 kernel_size: 3 stride: 2 engine: CAFFE
    weight_filler { type: "msra" variance_norm: FAN_OUT }
  }
}
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1"
        batch_norm_param { use_global_stats: true } }
layer { name: "scale1" type: "Scale" bottom: "conv1" top: "conv1" scale_param { bias_term: true } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" relu_param { engine: CAFFE } }
layer {
  name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 }
}
layer { name: "flat" type: "Flatten" bottom: "pool1" top: "flat" }
layer {
  name: "fc" type: "InnerProduct" bottom: "flat" top: "fc"
  inner_product_param { num_output: 5 }
}
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def weights_v1() -> NetSpec:
    net = NetSpec("w")
    net.layer("conv1", "Convolution", blobs=[randn(6, 3, 3, 3), randn(6)])
    net.layer("fc", "InnerProduct", blobs=[randn(5, 6 * 4 * 4) * 0.1, randn(5)])
    return net


def weights_v2() -> NetSpec:
    net = NetSpec("w")
    net.layer("conv1", "Convolution", blobs=[randn(6, 3, 3, 3), randn(6)])
    net.layer("bn1", "BatchNorm", blobs=[randn(6), np.abs(randn(6)) + 0.5, np.ones(1, np.float32)])
    net.layer("scale1", "Scale", blobs=[randn(6), randn(6)])
    net.layer("fc", "InnerProduct", blobs=[randn(5, 6 * 5 * 5) * 0.1, randn(5)])
    return net


@pytest.mark.parametrize(
    "text,weights,legacy", [(V1_DEPLOY, weights_v1, True), (V2_DEPLOY, weights_v2, False)], ids=["v1", "v2"]
)
def test_handwritten_deploy_file(tmp_path, text, weights, legacy):
    proto, model = tmp_path / "deploy.prototxt", tmp_path / "w.caffemodel"
    proto.write_text(text)
    with open(model, "wb") as f:
        f.write(weights().to_proto(with_blobs=True, legacy=legacy).SerializeToString())
    x = randn(1, 3, 17, 17)
    ours = run_ember(str(proto), str(model), {"data": x})
    assert list(ours) == ["prob"]
    theirs = run_opencv(str(proto), str(model), {"data": x}, "prob")
    np.testing.assert_allclose(ours["prob"], theirs, rtol=1e-4, atol=1e-5)
