"""Seeded random Caffe nets, Ember vs OpenCV: chains of convolutions, pools, activations,
BatchNorm+Scale, Eltwise and Concat joins on odd spatial sizes, ending in an InnerProduct.

Each net's seed is in the test id; rerun one with ``-k seed7``.
"""

from __future__ import annotations

import cv2  # noqa: F401  (the OpenCV reference these tests compare with; a test dependency)
import numpy as np
import pytest
from caffe_harness import check_against_opencv

from frontends.caffe.layers.conv import caffe_pooled_size, has_empty_window
from frontends.caffe.writer import NetSpec


class RandomNet:
    """Builds a net layer by layer, tracking each blob's shape."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        size = int(self.rng.integers(9, 20))
        self.net = NetSpec(f"random{seed}", inputs={"data": (1, 3, size, size + 1)})
        self.shapes = {"data": (1, 3, size, size + 1)}
        self.top = "data"
        self.count = 0

    def normal(self, *shape, scale=1.0):
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def name(self, kind: str) -> str:
        self.count += 1
        return f"{kind}{self.count}"

    def add(self, kind: str, type_: str, bottoms, shape, in_place=False, **kw) -> str:
        name = self.name(kind)
        top = bottoms[0] if in_place else name
        self.net.layer(name, type_, bottoms, [top], **kw)
        self.shapes[top] = shape
        self.top = top
        return top

    # layer makers ---------------------------------------------------------------
    def conv(self):
        n, c, h, w = self.shapes[self.top]
        k = int(self.rng.choice([1, 3, 5]))
        pad, stride = int(self.rng.integers(0, k // 2 + 1)), int(self.rng.integers(1, 3))
        if (h + 2 * pad - k) < 0 or (w + 2 * pad - k) < 0:
            return
        group = int(self.rng.choice([g for g in (1, 2, 3) if c % g == 0]))
        out = group * int(self.rng.integers(1, 4))
        shape = (n, out, (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1)
        self.add(
            "conv",
            "Convolution",
            [self.top],
            shape,
            blobs=[self.normal(out, c // group, k, k, scale=1 / np.sqrt(c * k * k)), self.normal(out)],
            convolution_param={"num_output": out, "kernel_size": [k], "pad": [pad], "stride": [stride], "group": group},
        )

    def pool(self):
        n, c, h, w = self.shapes[self.top]
        k = int(self.rng.integers(2, 4))
        stride, pad = int(self.rng.integers(1, 3)), int(self.rng.integers(0, k))
        method = str(self.rng.choice(["MAX", "AVE"]))
        sizes = [caffe_pooled_size(s, k, stride, pad) for s in (h, w)]
        if min(h, w) < k or (
            method == "MAX" and any(has_empty_window(s, k, stride, pad, o) for s, o in zip((h, w), sizes))
        ):
            return
        self.add(
            "pool",
            "Pooling",
            [self.top],
            (n, c, *sizes),
            pooling_param={"pool": method, "kernel_size": k, "stride": stride, "pad": pad},
        )

    def activation(self):
        kind = str(self.rng.choice(["ReLU", "TanH", "Sigmoid", "ELU", "AbsVal", "leaky"]))
        params = {"relu_param": {"negative_slope": 0.2}} if kind == "leaky" else {}
        self.add(
            "act",
            "ReLU" if kind == "leaky" else kind,
            [self.top],
            self.shapes[self.top],
            in_place=bool(self.rng.integers(0, 2)),
            **params,
        )

    def batch_norm_scale(self):
        c = self.shapes[self.top][1]
        factor = np.array([self.rng.uniform(0.5, 2)], np.float32)
        self.add(
            "bn",
            "BatchNorm",
            [self.top],
            self.shapes[self.top],
            in_place=True,
            blobs=[self.normal(c) * factor, (np.abs(self.normal(c)) + 0.5) * factor, factor],
        )
        self.add(
            "scale",
            "Scale",
            [self.top],
            self.shapes[self.top],
            in_place=True,
            blobs=[self.normal(c), self.normal(c)],
            scale_param={"bias_term": True},
        )

    def branch_join(self):
        """Two 1x1/3x3 branches from the current blob, joined by Eltwise or Concat."""
        source, (n, c, h, w) = self.top, self.shapes[self.top]
        outs = []
        for k in (1, 3):
            self.top = source
            self.add(
                "br",
                "Convolution",
                [source],
                (n, 4, h, w),
                blobs=[self.normal(4, c, k, k, scale=1 / np.sqrt(c * k * k)), self.normal(4)],
                convolution_param={"num_output": 4, "kernel_size": [k], "pad": [k // 2]},
            )
            outs.append(self.top)
        if self.rng.integers(0, 2):
            op = str(self.rng.choice(["SUM", "PROD", "MAX"]))
            self.add("join", "Eltwise", outs, (n, 4, h, w), eltwise_param={"operation": op})
        else:
            self.add("join", "Concat", outs, (n, 8, h, w))

    def build(self) -> NetSpec:
        makers = [self.conv, self.pool, self.activation, self.batch_norm_scale, self.branch_join]
        for _ in range(int(self.rng.integers(3, 7))):
            makers[int(self.rng.integers(0, len(makers)))]()
        n, c, h, w = self.shapes[self.top]
        self.add(
            "fc",
            "InnerProduct",
            [self.top],
            (n, 6),
            blobs=[self.normal(6, c * h * w, scale=0.1), self.normal(6)],
            inner_product_param={"num_output": 6},
        )
        return self.net


@pytest.mark.parametrize("seed", range(12), ids=lambda s: f"seed{s}")
def test_random_net(seed):
    net = RandomNet(seed).build()
    x = np.random.default_rng(seed + 1000).standard_normal(net.inputs["data"]).astype(np.float32)
    assert len(net.layers) >= 3
    check_against_opencv(net, {"data": x}, rtol=1e-4, atol=1e-4)
