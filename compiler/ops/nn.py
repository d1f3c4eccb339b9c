"""Neural-network ops: convolutions, pooling, matrix products, attention, dropout.

Conv, MatMul and Gemm are fusion anchors (elementwise epilogues fuse into them)
and carry FLOP formulas.  The convolution contract (channels x group, weight
rank, bias length) is shared with the quantized convolutions
(``quantization.py``).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import contracts as c
from .declare import Family
from .reference_onnx import onnx_reference
from .registry import FlopContext, Fusion, InferContext, Trait

FAMILY = Family("nn")
onnx_op = FAMILY.onnx_op

LAYOUT = {Trait.LAYOUT_SENSITIVE}


# ---------------------------------------------------------------- contracts


def conv_contract_for(x: int = 0, w: int = 1, bias: int | None = 2, transpose: bool = False):
    """The contract of a convolution whose input, weight and bias are operands ``x``, ``w``, ``bias``.

    X is [N, C, D1...], W is [M, C / group, k1...] ([C, M / group, k1...] when ``transpose``):
    same rank; C = W's input channels x group; group divides the output channels; the bias has one
    entry per output channel.
    """

    def contract(ctx: InferContext) -> list[str]:
        xs, ws = c.shape(ctx, x), c.shape(ctx, w)
        found = []
        if xs is None or ws is None:
            return found
        if len(xs) != len(ws):
            found.append(f"W {c.show(ws)} has rank {len(ws)} but X {c.show(xs)} has rank {len(xs)}")
            return found
        if len(xs) < 3:
            found.append(f"X {c.show(xs)} needs rank 3 or more ([N, C, spatial...])")
            return found
        group = int(c.attr(ctx, "group") if c.attr(ctx, "group") is not None else 1)
        if group < 1:
            return [f"group {group} must be positive"]
        channels = xs[1]
        if transpose:
            in_per_group, out = ws[0], (ws[1] * group if c.static(ws[1]) else None)
            if c.static(channels) and c.static(in_per_group) and channels != in_per_group:
                found.append(f"W {c.show(ws)} expects {in_per_group} input channels but X {c.show(xs)} has {channels}")
            if c.static(channels) and channels % group:
                found.append(f"group {group} does not divide the {channels} input channels of X {c.show(xs)}")
        else:
            out = ws[0]
            if c.static(channels) and c.static(ws[1]) and channels != ws[1] * group:
                found.append(
                    f"W {c.show(ws)} expects {ws[1]} x group {group} = {ws[1] * group} input "
                    f"channels but X {c.show(xs)} has {channels}"
                )
            if c.static(out) and out % group:
                found.append(f"group {group} does not divide the {out} output channels of W {c.show(ws)}")
        if bias is not None:
            reason = c.length_problem("B", c.shape(ctx, bias), out, "one per output channel")
            if reason:
                found.append(reason)
        found.extend(window_problems(ctx, xs, tuple(ws[2:]), fits=not transpose))
        return found

    return contract


def window_problems(ctx: InferContext, xs: tuple, kernel: tuple | None, fits: bool = True) -> list[str]:
    """A sliding window's attributes against X [N, C, D1...] and the kernel (W's spatial dims, or
    None for a pool, whose kernel is the ``kernel_shape`` attribute).

    ``kernel_shape``, when given, has one entry per spatial dim and equals W's spatial dims; with
    explicit pads (``auto_pad`` NOTSET or VALID) and ``fits``, the dilated kernel fits in each
    padded spatial dim, so that every output dim is at least 1 (onnxruntime refuses the negative
    sizes otherwise).
    """
    spatial = xs[2:]
    shape_attr = ctx.attrs.get("kernel_shape")
    if shape_attr is not None:
        shape_attr = tuple(int(k) for k in shape_attr)
        if len(shape_attr) != len(spatial):
            count = f"{len(shape_attr)} entries for the {len(spatial)} spatial dims"
            return [f"kernel_shape {list(shape_attr)} has {count} of X {c.show(xs)}"]
        if kernel is not None and any(c.static(w) and w != k for w, k in zip(kernel, shape_attr)):
            return [f"kernel_shape {list(shape_attr)} differs from the spatial dims {c.show(kernel)} of the weight"]
    kernel = kernel if kernel is not None else shape_attr
    auto_pad = c.attr(ctx, "auto_pad")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad or "NOTSET"
    if not fits or kernel is None or auto_pad not in ("NOTSET", "VALID"):
        return []
    dilations = ctx.attrs.get("dilations") or [1] * len(spatial)
    pads = (ctx.attrs.get("pads") if auto_pad == "NOTSET" else None) or [0] * (2 * len(spatial))
    if len(dilations) != len(spatial) or len(pads) != 2 * len(spatial):
        return []
    found = []
    for axis, (size, k, d) in enumerate(zip(spatial, kernel, dilations)):
        if not (c.static(size) and c.static(k)):
            continue
        padded, window = int(size) + int(pads[axis]) + int(pads[axis + len(spatial)]), (int(k) - 1) * int(d) + 1
        if window > padded:
            found.append(
                f"the window of {window} (kernel {int(k)}, dilation {int(d)}) is wider than spatial dim "
                f"{axis} of X {c.show(xs)} with its pads ({padded})"
            )
    return found


def pool_contract(ctx: InferContext) -> list[str]:
    """``kernel_shape`` has one entry per spatial dim of X, and its window fits (``window_problems``)."""
    xs = c.shape(ctx, 0)
    if xs is None or len(xs) < 3:
        return []
    return window_problems(ctx, xs, None)


def gemm_contract(ctx: InferContext) -> list[str]:
    """A' [M, K] x B' [K, N] (A' = A^T under transA, B' = B^T under transB); C broadcasts to [M, N]."""
    a, b = c.shape(ctx, 0), c.shape(ctx, 1)
    if a is None or b is None or len(a) != 2 or len(b) != 2:
        return []
    (m, ka) = a[::-1] if c.attr(ctx, "transA") else a
    (kb, n) = b[::-1] if c.attr(ctx, "transB") else b
    found = []
    if c.static(ka) and c.static(kb) and ka != kb:
        found.append(
            f"inner dims differ: A {c.show(a)} (transA={int(c.attr(ctx, 'transA') or 0)}) gives K={ka}, "
            f"B {c.show(b)} (transB={int(c.attr(ctx, 'transB') or 0)}) gives K={kb}"
        )
    reason = c.unidirectional("C", c.shape(ctx, 2), (m, n), f"the [M, N] = {c.show((m, n))} of A'B'")
    if reason:
        found.append(reason)
    return found


def max_unpool_contract(ctx: InferContext) -> str | None:
    """The indices have X's shape (they come from the MaxPool that made X)."""
    x, indices = c.shape(ctx, 0), c.shape(ctx, 1)
    if x is None or indices is None:
        return None
    if len(x) != len(indices) or any(c.static(a) and c.static(b) and a != b for a, b in zip(x, indices)):
        return f"indices {c.show(indices)} and X {c.show(x)} differ in shape"
    return None


def einsum_contract(ctx: InferContext) -> list[str]:
    """One term per operand; a term without ``...`` has one letter per dim; a letter has one size."""
    equation = str(c.attr(ctx, "equation") or "").replace(" ", "")
    terms = equation.split("->")[0].split(",") if equation else []
    found = []
    if terms and len(terms) != len(ctx.input_types):
        return [f"equation '{equation}' has {len(terms)} operand terms for {len(ctx.input_types)} operands"]
    sizes: dict[str, tuple[int, int]] = {}  # letter -> (size, operand)
    for i, term in enumerate(terms):
        s = c.shape(ctx, i)
        if s is None or "..." in term:
            continue
        if len(term) != len(s):
            found.append(f"term '{term}' of '{equation}' names {len(term)} dims but operand {i} is {c.show(s)}")
            continue
        for letter, d in zip(term, s):
            if not c.static(d) or d == 1:
                continue
            if letter in sizes and sizes[letter][0] != d:
                size, j = sizes[letter]
                found.append(
                    f"'{letter}' of '{equation}' is {size} in operand {j} {c.show(c.shape(ctx, j))} "
                    f"but {d} in operand {i} {c.show(s)}"
                )
            sizes.setdefault(letter, (int(d), i))
    return found


# ---------------------------------------------------------------- FLOP counts


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _conv_flops(ctx: FlopContext) -> int:
    """2 x output elements x (input channels per group x kernel size)."""
    w = ctx.in_shapes[1]
    if w is None:
        return _numel(ctx.out_shapes[0])
    return 2 * _numel(ctx.out_shapes[0]) * _numel(w[1:])


def _conv_transpose_flops(ctx: FlopContext) -> int:
    """2 x input elements x (output channels per group x kernel size)."""
    x, w = ctx.in_shapes[0], ctx.in_shapes[1]
    if x is None or w is None:
        return _numel(ctx.out_shapes[0])
    return 2 * _numel(x) * _numel(w[1:])


def _matmul_flops(ctx: FlopContext) -> int:
    a = ctx.in_shapes[0]
    k = a[-1] if len(a) else 1
    return 2 * _numel(ctx.out_shapes[0]) * int(k)


def _gemm_flops(ctx: FlopContext) -> int:
    a = ctx.in_shapes[0]
    k = a[0] if ctx.attr("transA") else a[-1]
    return 2 * _numel(ctx.out_shapes[0]) * int(k)


# ---------------------------------------------------------------- reference kernels (fast 2-D paths)


def _conv2d_fast_path(x, w, attrs, ctx):
    auto_pad = ctx.attr("auto_pad")
    return x.ndim == 4 and auto_pad in (None, "NOTSET") and x.dtype in (np.float32, np.float64)


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
        wg = win[:, g * cg : (g + 1) * cg]  # n, cg, oh, ow, kh, kw
        cols = wg.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, cg * kh * kw)
        wk = w[g * mg : (g + 1) * mg].reshape(mg, -1)
        outs.append((cols @ wk.T).reshape(n, oh, ow, mg))
    y = np.concatenate(outs, axis=3).transpose(0, 3, 1, 2)
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1)
    return [np.ascontiguousarray(y.astype(x.dtype))]


def conv_transpose(inputs, attrs, ctx):
    """ConvTranspose; with ``group`` > 1 one group at a time (onnx.reference's kernel ignores
    ``group`` and fails on grouped weights): group g maps input channels [g*C/G, (g+1)*C/G) through
    weight rows of the same range to output channels [g*M/G, (g+1)*M/G)."""
    group = int(ctx.attr("group") or 1)
    if group == 1:
        return onnx_reference(inputs, attrs, ctx)
    x, w = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 else None
    c_group, m_group = x.shape[1] // group, w.shape[1]
    one_group = {**attrs, "group": 1}
    outs = []
    for g in range(group):
        part = [x[:, g * c_group : (g + 1) * c_group], w[g * c_group : (g + 1) * c_group]]
        if bias is not None:
            part.append(bias[g * m_group : (g + 1) * m_group])
        outs.append(onnx_reference(part, one_group, ctx)[0])
    return [np.ascontiguousarray(np.concatenate(outs, axis=1))]


def _pool_fast_path(x, attrs, ctx, ceil_ok: bool = False):
    return (
        x.ndim >= 3
        and ctx.attr("auto_pad") in (None, "NOTSET")
        and (ceil_ok or not ctx.attr("ceil_mode"))
        and (ctx.num_outputs == 1)
        and x.dtype in (np.float32, np.float64)
    )


def _pool_windows(x, ctx, pad_value, ceil: bool = False):
    """The pooling windows of ``x`` at any spatial rank: [N, C, *out, *kernel] (onnx.reference's
    MaxPool failed on padded 1-D and 3-D inputs with an IndexError).  ``ceil``: ``ceil_mode``'s
    last, partial window is kept (padded with ``pad_value`` past the end), unless it would start
    past the input and its begin padding, as ONNX's shape inference and onnxruntime count them
    (onnx.reference gave 10 rows for 7 rows with kernel 2, stride 1, pads 1 and ceil_mode, and an
    integer input made it fail on a NaN)."""
    nd = x.ndim - 2
    kernel = ctx.attr("kernel_shape")
    strides = ctx.attr("strides") or [1] * nd
    dilations = ctx.attr("dilations") or [1] * nd
    pads = ctx.attr("pads") or [0] * (2 * nd)
    extents = [(kernel[i] - 1) * dilations[i] + 1 for i in range(nd)]
    ends = list(pads[nd:])
    for i in range(nd if ceil else 0):
        span = x.shape[2 + i] + pads[i] + pads[i + nd]
        out = -(-(span - extents[i]) // strides[i]) + 1
        if (out - 1) * strides[i] >= x.shape[2 + i] + pads[i]:
            out -= 1
        ends[i] += max(0, (out - 1) * strides[i] + extents[i] - span)
    widths = ((0, 0), (0, 0), *((pads[i], ends[i]) for i in range(nd)))
    xp = np.pad(x, widths, constant_values=pad_value)
    windows = sliding_window_view(xp, extents, axis=tuple(range(2, 2 + nd)))
    steps = (*(slice(None, None, st) for st in strides), *(slice(None, None, dl) for dl in dilations))
    return windows[(slice(None), slice(None), *steps)]


def _window_axes(x) -> tuple[int, ...]:
    return tuple(range(x.ndim, 2 * x.ndim - 2))


# float types under 32 bits with an infinity (the padding): their windows' max keeps NaN, where
# onnx.reference's MaxPool, which they otherwise took, dropped it from most windows
_NARROW_FLOATS = ("float16", "bfloat16")


def max_pool(inputs, attrs, ctx):
    (x,) = inputs
    integer = x.dtype.kind in "iu"  # onnx's reference pads integers with NaN cast to the dtype
    narrow = str(x.dtype) in _NARROW_FLOATS
    probe = np.empty((0,) * x.ndim, np.float32) if integer or narrow else x
    if not _pool_fast_path(probe, attrs, ctx, ceil_ok=True) or ctx.attr("storage_order"):
        return onnx_reference(inputs, attrs, ctx)
    pad = np.iinfo(x.dtype).min if integer else -np.inf
    windows = _pool_windows(x, ctx, pad, ceil=bool(ctx.attr("ceil_mode")))
    return [np.ascontiguousarray(windows.max(axis=_window_axes(x)))]


def average_pool(inputs, attrs, ctx):
    (x,) = inputs
    if not _pool_fast_path(x, attrs, ctx) or any(d != 1 for d in ctx.attr("dilations") or []):
        return onnx_reference(inputs, attrs, ctx)
    total = _pool_windows(x, ctx, 0).sum(axis=_window_axes(x))
    if ctx.attr("count_include_pad"):
        return [(total / int(np.prod(ctx.attr("kernel_shape")))).astype(x.dtype)]
    ones = np.ones((1, 1) + x.shape[2:], dtype=x.dtype)
    count = _pool_windows(ones, ctx, 0).sum(axis=_window_axes(x))
    return [np.ascontiguousarray((total / count).astype(x.dtype))]


def global_lp_pool(inputs, attrs, ctx):
    (x,) = inputs
    p = ctx.attr("p")
    axes = tuple(range(2, x.ndim))
    y = np.power(np.sum(np.power(np.abs(x), p), axis=axes, keepdims=True), 1.0 / p)
    return [y.astype(x.dtype)]


def global_max_pool(inputs, attrs, ctx):
    """The max over every spatial dim, at any rank (onnx.reference's kernel assumes rank 4)."""
    (x,) = inputs
    return [np.max(x, axis=tuple(range(2, x.ndim)), keepdims=True)]


# ---------------------------------------------------------------- convolutions
onnx_op(
    "Conv",
    traits=LAYOUT,
    kernel=conv,
    contract=conv_contract_for(0, 1, 2),
    flops=_conv_flops,
    fusion=Fusion.ANCHOR,
    weight_axes=lambda attrs: {1: 0},
    bias_operand=2,
)
onnx_op(
    "ConvTranspose",
    traits=LAYOUT,
    kernel=conv_transpose,
    contract=conv_contract_for(0, 1, 2, transpose=True),
    flops=_conv_transpose_flops,
    fusion=Fusion.ANCHOR,  # its write-back takes an elementwise epilogue (BatchNormalization, Relu)
)
onnx_op("DeformConv", traits=LAYOUT, contract=conv_contract_for(0, 1, 3))
onnx_op("CausalConvWithState")
onnx_op("Col2Im", traits=LAYOUT)

# ---------------------------------------------------------------- pooling
onnx_op("AveragePool", traits=LAYOUT, contract=pool_contract, kernel=average_pool, channelwise=True)
onnx_op("MaxPool", traits=LAYOUT, contract=pool_contract, kernel=max_pool, channelwise=True)
onnx_op("LpPool", traits=LAYOUT, contract=pool_contract, channelwise=True)
onnx_op("GlobalAveragePool", traits=LAYOUT, fusion=Fusion.REDUCTION, channelwise=True)
onnx_op("GlobalMaxPool", traits=LAYOUT, kernel=global_max_pool, fusion=Fusion.REDUCTION, channelwise=True)
onnx_op("GlobalLpPool", traits=LAYOUT, kernel=global_lp_pool, channelwise=True)
onnx_op("MaxUnpool", traits=LAYOUT, contract=max_unpool_contract)

# ---------------------------------------------------------------- matrix products
onnx_op("MatMul", flops=_matmul_flops, fusion=Fusion.ANCHOR, weight_axes=lambda attrs: {1: -1})
onnx_op(
    "Gemm",
    contract=gemm_contract,
    flops=_gemm_flops,
    fusion=Fusion.ANCHOR,
    weight_axes=lambda attrs: {1: 0 if attrs.get("transB") else 1},
    bias_operand=2,
)
onnx_op("Einsum", contract=einsum_contract)
onnx_op("Det")

# ---------------------------------------------------------------- attention and transformer blocks
# attention holds a Softmax: convert-float16/bfloat16 keep it float32 (its products are small)
onnx_op("Attention", precision_sensitive=True)
onnx_op("LinearAttention")
onnx_op("RotaryEmbedding")
onnx_op("SwiGLU")

# ---------------------------------------------------------------- regularisation
onnx_op("Dropout", fusion=Fusion.INJECTIVE)
