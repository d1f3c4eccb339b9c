"""Hand cases for the blocked-layout ops of ``compiler/ops/ember_layout.py``, checked against plain NumPy.

``LAYOUT_CASES`` (op -> check) joins ``hand_cases.HAND_CASES``.
"""

from __future__ import annotations

import numpy as np

from compiler import Builder, DType, Graph, TensorType, interpret, verify

F32 = DType.FLOAT32


def _run(graph: Graph, inputs: dict) -> list:
    verify(graph)
    out = interpret(graph, inputs)
    return [out[v.name] for v in graph.outputs]


def layout_transform():
    """NCHW -> NCHW16c puts channel 16*j + i at block j, lane i; the transform back restores x."""
    g = Graph("blocking")
    b = Builder(g)
    x = b.param("x", TensorType(F32, (1, 32, 2, 3)))
    blocked = b.op("ember.LayoutTransform", [x], {"src": "NCHW", "dst": "NCHW16c"}, names=["blocked"])
    back = b.op("ember.LayoutTransform", [blocked], {"src": "NCHW16c", "dst": "NCHW"}, names=["back"])
    assert blocked.type == TensorType(F32, (1, 2, 2, 3, 16))
    g.outputs = [blocked, back]
    data = np.arange(32 * 6, dtype=np.float32).reshape(1, 32, 2, 3)
    got_blocked, got_back = _run(g, {"x": data})
    assert got_blocked[0, 1, 1, 2, 5] == data[0, 21, 1, 2]
    np.testing.assert_array_equal(got_back, data)


def _direct_conv(x, w, bias, stride, pad, group):
    """A plain NCHW convolution by loops over the taps (no library kernel)."""
    n, c, h, wd = x.shape
    k, cg, r, s = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - r) // stride + 1, (wd + 2 * pad - s) // stride + 1
    out = np.zeros((n, k, oh, ow), np.float64)
    per_group = k // group
    for o in range(k):
        g = o // per_group
        for i in range(r):
            for j in range(s):
                patch = xp[:, g * cg : (g + 1) * cg, i : i + stride * oh : stride, j : j + stride * ow : stride]
                out[:, o] += np.einsum("nchw,c->nhw", patch, w[o, :, i, j])
    return out + bias.reshape(1, k, 1, 1)


def conv_blocked():
    """Dense (stride 2) and depthwise blocked convolutions equal a direct NCHW convolution."""
    rng = np.random.default_rng(0)
    for group, w_shape, stride in ((1, (16, 8, 3, 3), 2), (8, (8, 1, 3, 3), 1)):
        g = Graph("blocked_conv")
        b = Builder(g)
        x = b.param("x", TensorType(F32, (1, 1, 5, 5, 8)))
        w = rng.standard_normal(w_shape).astype(np.float32)
        bias = rng.standard_normal(w_shape[0]).astype(np.float32)
        attrs = {"layout": "NCHW8c", "strides": [stride, stride], "pads": [1, 1, 1, 1], "dilations": [1, 1]}
        y = b.op("ember.ConvBlocked", [x, b.constant(w), b.constant(bias)], {**attrs, "group": group}, names=["y"])
        oh = (5 + 2 - 3) // stride + 1
        assert y.type == TensorType(F32, (1, w_shape[0] // 8, oh, oh, 8))
        g.outputs = [y]
        data = rng.standard_normal((1, 8, 5, 5)).astype(np.float32)
        blocked = data.reshape(1, 1, 8, 5, 5).transpose(0, 1, 3, 4, 2)
        (got,) = _run(g, {"x": np.ascontiguousarray(blocked)})
        plain = got.transpose(0, 1, 4, 2, 3).reshape(1, w_shape[0], oh, oh)
        np.testing.assert_allclose(plain, _direct_conv(data, w, bias, stride, 1, group), rtol=1e-4, atol=1e-4)


LAYOUT_CASES = {"ember.LayoutTransform": layout_transform, "ember.ConvBlocked": conv_blocked}
