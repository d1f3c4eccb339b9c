"""Ember's own NumPy reference kernels for ONNX ops.

Two reasons to have one here instead of ``onnx.reference``'s: onnx has no
kernel for the op (function-bodied ops such as Gelu), or onnx's kernel is too
slow to interpret whole models (Conv, pooling) or has known pitfalls
(BatchNormalization in training mode).  Each kernel takes
``(inputs, attrs, ctx)`` and returns a list of outputs; cases outside the fast
path fall back to ``onnx_reference``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .reference_onnx import onnx_reference

KERNELS = {}


def kernel(name):
    def deco(fn):
        KERNELS[name] = fn
        return fn
    return deco


def _erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


@kernel("Gelu")
def gelu(inputs, attrs, ctx):
    (x,) = inputs
    xf = x.astype(np.float64)
    if ctx.attr("approximate") == "tanh":
        y = 0.5 * xf * (1 + np.tanh(np.sqrt(2 / np.pi) * (xf + 0.044715 * xf**3)))
    else:
        y = 0.5 * xf * (1 + _erf(xf / np.sqrt(2)))
    return [y.astype(x.dtype)]


@kernel("Mish")
def mish(inputs, attrs, ctx):
    (x,) = inputs
    xf = x.astype(np.float64)
    return [(xf * np.tanh(np.logaddexp(0, xf))).astype(x.dtype)]


@kernel("HardSwish")
def hard_swish(inputs, attrs, ctx):
    (x,) = inputs
    return [(x * np.clip(x / 6 + 0.5, 0, 1)).astype(x.dtype)]


@kernel("MeanVarianceNormalization")
def mean_variance_normalization(inputs, attrs, ctx):
    (x,) = inputs
    axes = tuple(ctx.attr("axes") or [0, 2, 3])
    mean = x.mean(axis=axes, keepdims=True)
    std = np.sqrt(((x - mean) ** 2).mean(axis=axes, keepdims=True))
    return [((x - mean) / (std + 1e-9)).astype(x.dtype)]


@kernel("GroupNormalization")
def group_normalization(inputs, attrs, ctx):
    x, scale, bias = inputs
    groups = ctx.attr("num_groups")
    eps = ctx.attr("epsilon")
    n, c = x.shape[:2]
    xg = x.reshape(n, groups, -1).astype(np.float64)
    mean = xg.mean(axis=2, keepdims=True)
    var = xg.var(axis=2, keepdims=True)
    y = ((xg - mean) / np.sqrt(var + eps)).reshape(x.shape)
    bshape = (1, c) + (1,) * (x.ndim - 2)
    return [(y * scale.reshape(bshape) + bias.reshape(bshape)).astype(x.dtype)]


@kernel("GlobalLpPool")
def global_lp_pool(inputs, attrs, ctx):
    (x,) = inputs
    p = ctx.attr("p")
    axes = tuple(range(2, x.ndim))
    y = np.power(np.sum(np.power(np.abs(x), p), axis=axes, keepdims=True), 1.0 / p)
    return [y.astype(x.dtype)]


@kernel("MaxRoiPool")
def max_roi_pool(inputs, attrs, ctx):
    x, rois = inputs
    ph, pw = ctx.attr("pooled_shape")
    scale = ctx.attr("spatial_scale")
    out = np.zeros((rois.shape[0], x.shape[1], ph, pw), dtype=x.dtype)
    h, w = x.shape[2:]
    for r, (b, x1, y1, x2, y2) in enumerate(rois):
        x1, y1, x2, y2 = (int(round(v * scale)) for v in (x1, y1, x2, y2))
        rh, rw = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        for i in range(ph):
            for j in range(pw):
                hs = min(max(y1 + int(np.floor(i * rh / ph)), 0), h)
                he = min(max(y1 + int(np.ceil((i + 1) * rh / ph)), 0), h)
                ws = min(max(x1 + int(np.floor(j * rw / pw)), 0), w)
                we = min(max(x1 + int(np.ceil((j + 1) * rw / pw)), 0), w)
                if he > hs and we > ws:
                    out[r, :, i, j] = x[int(b), :, hs:he, ws:we].max(axis=(1, 2))
    return [out]


@kernel("Multinomial")
def multinomial(inputs, attrs, ctx):
    (logits,) = inputs
    n = ctx.attr("sample_size")
    seed = attrs.get("seed")
    rng = np.random.default_rng(None if seed is None else int(seed))
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    out = np.stack([rng.choice(probs.shape[1], size=n, p=p) for p in probs])
    dtype = np.int32 if ctx.attr("dtype") == 6 else np.int64
    return [out.astype(dtype)]


@kernel("BatchNormalization")
def batch_normalization(inputs, attrs, ctx):
    if ctx.attr("training_mode"):
        return onnx_reference(inputs, attrs, ctx)
    x, scale, bias, mean, var = inputs
    shape = (1, -1) + (1,) * (x.ndim - 2)
    inv = scale / np.sqrt(var + np.asarray(ctx.attr("epsilon"), dtype=var.dtype))
    y = (x - mean.reshape(shape)) * inv.reshape(shape) + bias.reshape(shape)
    return [y.astype(x.dtype)]


def _conv2d_fast_path(x, w, attrs, ctx):
    auto_pad = ctx.attr("auto_pad")
    return x.ndim == 4 and auto_pad in (None, "NOTSET") and x.dtype in (np.float32, np.float64)


@kernel("Conv")
def conv(inputs, attrs, ctx):
    x, w = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 else None
    if not _conv2d_fast_path(x, w, attrs, ctx):
        return onnx_reference(inputs, attrs, ctx)
    group = ctx.attr("group")
    sh, sw = ctx.attr("strides") or [1, 1]
    dh, dw = ctx.attr("dilations") or [1, 1]
    pads = ctx.attr("pads") or [0, 0, 0, 0]
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    n, c, _, _ = xp.shape
    m, cg, kh, kw = w.shape
    ekh, ekw = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    win = sliding_window_view(xp, (ekh, ekw), axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]
    oh, ow = win.shape[2], win.shape[3]
    mg = m // group
    outs = []
    for g in range(group):
        wg = win[:, g * cg:(g + 1) * cg]  # n, cg, oh, ow, kh, kw
        cols = wg.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, cg * kh * kw)
        wk = w[g * mg:(g + 1) * mg].reshape(mg, -1)
        outs.append((cols @ wk.T).reshape(n, oh, ow, mg))
    y = np.concatenate(outs, axis=3).transpose(0, 3, 1, 2)
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1)
    return [np.ascontiguousarray(y.astype(x.dtype))]


def _pool_fast_path(x, attrs, ctx):
    return (x.ndim == 4 and ctx.attr("auto_pad") in (None, "NOTSET") and not ctx.attr("ceil_mode")
            and (ctx.num_outputs == 1) and x.dtype in (np.float32, np.float64))


def _pool_windows(x, ctx, pad_value):
    kh, kw = ctx.attr("kernel_shape")
    sh, sw = ctx.attr("strides") or [1, 1]
    dh, dw = ctx.attr("dilations") or [1, 1]
    pads = ctx.attr("pads") or [0, 0, 0, 0]
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])), constant_values=pad_value)
    ekh, ekw = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    return sliding_window_view(xp, (ekh, ekw), axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]


@kernel("MaxPool")
def max_pool(inputs, attrs, ctx):
    (x,) = inputs
    if not _pool_fast_path(x, attrs, ctx) or ctx.attr("storage_order"):
        return onnx_reference(inputs, attrs, ctx)
    return [np.ascontiguousarray(_pool_windows(x, ctx, -np.inf).max(axis=(4, 5)))]


@kernel("AveragePool")
def average_pool(inputs, attrs, ctx):
    (x,) = inputs
    if not _pool_fast_path(x, attrs, ctx) or (ctx.attr("dilations") or [1, 1]) != [1, 1]:
        return onnx_reference(inputs, attrs, ctx)
    total = _pool_windows(x, ctx, 0).sum(axis=(4, 5))
    if ctx.attr("count_include_pad"):
        kh, kw = ctx.attr("kernel_shape")
        return [(total / (kh * kw)).astype(x.dtype)]
    ones = np.ones((1, 1) + x.shape[2:], dtype=x.dtype)
    count = _pool_windows(ones, ctx, 0).sum(axis=(4, 5))
    return [np.ascontiguousarray((total / count).astype(x.dtype))]


@kernel("Constant")
def constant(inputs, attrs, ctx):
    if "value" in attrs:
        return [attrs["value"]]
    return onnx_reference(inputs, attrs, ctx)


@kernel("LRN")
def lrn(inputs, attrs, ctx):
    """Cross-channel LRN as the ONNX spec writes it (onnx.reference's kernel disagrees with it and ORT)."""
    (x,) = inputs
    size = int(ctx.attr("size"))
    alpha, beta, bias = float(ctx.attr("alpha")), float(ctx.attr("beta")), float(ctx.attr("bias"))
    channels = x.shape[1]
    squares = x.astype(np.float64) ** 2
    square_sum = np.zeros_like(squares)
    before, after = (size - 1) // 2, math.ceil((size - 1) / 2)
    for c in range(channels):
        square_sum[:, c] = squares[:, max(0, c - before):min(channels - 1, c + after) + 1].sum(axis=1)
    return [(x / (bias + alpha / size * square_sum) ** beta).astype(x.dtype)]


@kernel("Optional")
def optional(inputs, attrs, ctx):
    """An optional is its value, or None when empty (onnx.reference wraps it in a list instead)."""
    return [inputs[0] if inputs else None]


@kernel("ImageDecoder")
def image_decoder(inputs, attrs, ctx):
    """Decode an encoded image (uint8 bytes) to HWC uint8 with OpenCV; onnx.reference needs Pillow."""
    try:
        import cv2
    except ImportError:
        return onnx_reference(inputs, attrs, ctx)
    (data,) = inputs
    bgr = cv2.imdecode(np.ascontiguousarray(data, dtype=np.uint8).reshape(-1), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("ImageDecoder: the bytes are not an image format OpenCV can decode")
    fmt = ctx.attr("pixel_format")
    if fmt == "BGR":
        return [np.ascontiguousarray(bgr)]
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    if fmt == "Grayscale":  # ITU-R 601-2 luma with Pillow's fixed-point rounding
        r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
        return [((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)[..., None]]
    return [rgb]


@kernel("Pad")
def pad(inputs, attrs, ctx):
    """onnx.reference's Pad, plus negative pads (ONNX: they remove elements), which it refuses."""
    x, pads = inputs[0], inputs[1]
    if pads is None or (np.asarray(pads) >= 0).all():
        return onnx_reference(inputs, attrs, ctx)
    value = inputs[2] if len(inputs) > 2 and inputs[2] is not None and np.size(inputs[2]) else None
    axes = inputs[3] if len(inputs) > 3 and inputs[3] is not None else None
    rank = x.ndim
    axes = list(range(rank)) if axes is None else [int(a) % rank for a in np.asarray(axes).reshape(-1)]
    pads = [int(p) for p in np.asarray(pads).reshape(-1)]
    widths = [[0, 0] for _ in range(rank)]
    for j, a in enumerate(axes):
        widths[a] = [pads[j], pads[j + len(axes)]]
    grown = [[max(b, 0), max(e, 0)] for b, e in widths]
    mode = {"constant": "constant", "edge": "edge", "reflect": "reflect", "wrap": "wrap"}[ctx.attr("mode") or "constant"]
    extra = {"constant_values": np.asarray(value).reshape(-1)[0]} if mode == "constant" and value is not None else {}
    y = np.pad(x, grown, mode=mode, **extra)
    crop = tuple(slice(-min(b, 0), y.shape[d] + min(e, 0)) for d, (b, e) in enumerate(widths))
    return [np.ascontiguousarray(y[crop])]


@kernel("Unique")
def unique(inputs, attrs, ctx):
    """numpy.unique, in first-occurrence order when ``sorted=0``.

    onnx.reference's kernel takes the unsorted values along axis 0 whatever the axis (and from
    the unflattened input when there is none), and ignores ``sorted=0`` when only Y is asked for.
    """
    (x,) = inputs
    axis = ctx.attr("axis")
    data = x.reshape(-1) if axis is None else x
    axis = 0 if axis is None else int(axis) % x.ndim
    y, indices, inverse, counts = np.unique(data, return_index=True, return_inverse=True,
                                            return_counts=True, axis=axis)
    inverse = inverse.reshape(-1)
    if not (1 if ctx.attr("sorted") is None else ctx.attr("sorted")):
        order = np.argsort(indices, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        indices, counts, inverse = indices[order], counts[order], rank[inverse]
        y = np.take(data, indices, axis=axis)
    outs = [y, indices.astype(np.int64), inverse.astype(np.int64), counts.astype(np.int64)]
    return outs[:ctx.num_outputs]


@kernel("TfIdfVectorizer")
def tfidf_vectorizer(inputs, attrs, ctx):
    """Ember's counting (compiler/ops/ngrams.py); onnx.reference's kernel fails for IDF/TFIDF
    without weights."""
    from .ngrams import ngram_counts, ngram_tables, tfidf_weighting

    (x,) = inputs
    full = {name: ctx.attr(name) for name in ("pool_int64s", "pool_strings", "ngram_counts", "ngram_indexes",
                                              "min_gram_length", "max_gram_length")}
    grams, lengths, columns, size = ngram_tables(full)
    counts = ngram_counts(x, grams, lengths, columns, size, int(ctx.attr("max_skip_count") or 0))
    mode = ctx.attr("mode")
    return [tfidf_weighting(counts, mode.decode() if isinstance(mode, bytes) else mode, ctx.attr("weights"))]


from . import kernels_recurrent  # noqa: E402,F401  (RNN, GRU, LSTM register themselves here)
from . import kernels_trees  # noqa: E402,F401  (TreeEnsemble, TreeEnsembleRegressor)
