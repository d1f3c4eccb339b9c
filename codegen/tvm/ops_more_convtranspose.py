"""Lowering of ``ConvTranspose`` (1-D to 3-D, groups, strides, dilations, pads, output_shape).

Written in gather form, so each output element is one reduction:

    y[n, g*M + m, o...] = b[g*M + m] + sum_{c < C/G, k...} x[n, g*C/G + c, i...] * w[g*C/G + c, m, k...]
    where i_d = (o_d + pad_begin_d - k_d * dilation_d) / stride_d is an integer in [0, in_d)

The output shape comes from the graph's types (shape inference already applied ``output_shape``,
``output_padding`` and ``auto_pad``); the begin pads are the ``pads`` attribute, or, when pads are
implicit, derived from the total padding ``stride (in - 1) + output_padding + dilation (k - 1) + 1 - out``
split like the ONNX reference (``SAME_UPPER`` puts the smaller half first).
"""

from __future__ import annotations

from tvm import te, tirx

from .ops_more_common import ints, lowering_if_missing


def _begin_pads(ctx, in_dims, kernel, strides, dilations, out_dims) -> list[int]:
    nd = len(in_dims)
    pads = ctx.attr("pads")
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    if pads is not None and auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        return ints(pads)[:nd]
    out_pad = ints(ctx.attr("output_padding") or [0] * nd)
    begin = []
    for d in range(nd):
        total = strides[d] * (in_dims[d] - 1) + out_pad[d] + (kernel[d] - 1) * dilations[d] + 1 - out_dims[d]
        if pads is None and auto_pad not in ("SAME_UPPER", "SAME_LOWER") and ctx.attr("output_shape") is None:
            begin.append(0)
        elif auto_pad == "SAME_UPPER":
            begin.append(total // 2)
        else:
            begin.append(total - total // 2)
    return begin


@lowering_if_missing("ConvTranspose", kind="injective")
def _conv_transpose(ctx, x, w, bias=None):
    in_dims = [int(d) for d in x.shape[2:]]
    nd = len(in_dims)
    kernel = [int(d) for d in w.shape[2:]]
    strides = ints(ctx.attr("strides") or [1] * nd)
    dilations = ints(ctx.attr("dilations") or [1] * nd)
    out_shape = ctx.out_shape()
    out_dims = list(out_shape[2:])
    begin = _begin_pads(ctx, in_dims, kernel, strides, dilations, out_dims)
    groups = int(ctx.attr("group", 1))
    c_per_group = int(x.shape[1]) // groups
    m_per_group = int(w.shape[1])
    rc = te.reduce_axis((0, c_per_group), name="rc")
    rk = [te.reduce_axis((0, k), name=f"rk{d}") for d, k in enumerate(kernel)]
    acc = "float32" if ctx.out_dtype() in ("float16", "bfloat16") else ctx.out_dtype()

    def body(n, m, *o):
        g = tirx.indexdiv(m, m_per_group)
        ml = tirx.indexmod(m, m_per_group)
        c = g * c_per_group + rc
        conds, idx = [], []
        for d in range(nd):
            t = o[d] + begin[d] - rk[d] * dilations[d]
            conds += [t >= 0, tirx.indexmod(t, strides[d]) == 0, tirx.indexdiv(t, strides[d]) < in_dims[d]]
            idx.append(tirx.indexdiv(t, strides[d]))
        product = x(n, c, *idx).astype(acc) * w(c, ml, *rk).astype(acc)
        value = tirx.if_then_else(tirx.all(*conds), product, tirx.const(0, acc))
        return te.sum(value, axis=[rc, *rk])

    y = te.compute(out_shape, body, name="conv_transpose")
    if bias is not None:
        y = te.compute(out_shape, lambda n, m, *o: y(n, m, *o) + bias(m).astype(acc), name="conv_transpose_bias")
    if acc != ctx.out_dtype():
        y = te.compute(out_shape, lambda *i: y(*i).astype(ctx.out_dtype()), name="conv_transpose_cast")
    return y
