"""A GPU build's grouped (not depthwise) 2-D convolution as one product per group.

CPU builds take the blocked conv (``conv_blocked``) or topi's; this form is for the GPU's matmul
rule (``codegen/cuda/schedule.py``), which needs the group as an axis of its own to see a batched
GEMM.
"""

from __future__ import annotations

from tvm import te, topi


def grouped_gemm_conv(ctx, x, w, bias, strides, dilations, pads, group: int):
    """A GPU build's grouped (not depthwise) 2-D conv as one product per group, the group an axis of
    its own (``group_conv`` [n, group, outputs per group, rows, columns]), so that the GPU's matmul
    rule sees a batched GEMM and tiles it through shared memory. topi's grouped conv, whose group
    is folded into the channel index, went to DLight's general reduction rule instead: ShuffleNet's
    grouped 1x1 convs kept 952 partial sums per thread in local memory (and spilled)."""
    n = int(x.shape[0])
    out = ctx.out_shape()
    k, in_per_group = out[1], int(w.shape[1])
    per_group = k // group
    kh, kw = int(w.shape[2]), int(w.shape[3])
    if any(pads):
        x = topi.nn.pad(x, [0, 0, pads[0], pads[1]], [0, 0, pads[2], pads[3]], name="group_conv_pad")
    rc = te.reduce_axis((0, in_per_group), "rc")
    ry, rx = te.reduce_axis((0, kh), "ry"), te.reduce_axis((0, kw), "rx")
    acc = ctx.out_dtype()
    grouped = te.compute(
        (n, group, per_group, out[2], out[3]),
        lambda b, g, o, y, xx: te.sum(
            x[b, g * in_per_group + rc, y * strides[0] + ry * dilations[0], xx * strides[1] + rx * dilations[1]].astype(
                acc
            )
            * w[g * per_group + o, rc, ry, rx].astype(acc),
            axis=[rc, ry, rx],
        ),
        name="group_conv",
    )

    def value(b, kk, y, xx):
        v = grouped[b, kk // per_group, kk % per_group, y, xx]
        return v + bias[kk] if bias is not None else v

    return te.compute(out, value, name="conv_bias" if bias is not None else "group_conv_out")
