"""onnxruntime ``com.microsoft`` fusions that optimized models carry, rewritten to standard ops.

- Gelu(x) -> Gelu(x)
- BiasGelu(a, b) -> Gelu(a + b)
- FastGelu(x, bias?) -> Gelu(x + bias){approximate="tanh"}
- QuickGelu(x){alpha} -> x * Sigmoid(alpha * x)
- FusedMatMul(a, b){alpha, transA, transB} -> alpha * MatMul(a', b')  (last two dims transposed)
- SimplifiedLayerNormalization (which onnxruntime registers in the default domain) ->
  com.microsoft.SimplifiedLayerNormalization (``decompose-contrib`` rewrites it for codegen)
- SkipLayerNormalization(x, skip, gamma, beta?, bias?){epsilon} ->
  LayerNormalization(x + skip + bias, gamma, beta){axis=-1}; the optional 4th output is the sum
"""

from __future__ import annotations

import numpy as np

from compiler.ir.types import TensorType

from . import converter, optional_input

MS = "com.microsoft"


def _scalar(ctx, value, like):
    dtype = like.type.dtype.np if isinstance(like.type, TensorType) else np.float32
    return ctx.const(np.array(value, dtype=dtype))


def _swap_last_two(ctx, v):
    rank = v.type.rank if isinstance(v.type, TensorType) else None
    if rank is None or rank < 2:
        raise ctx.fail("FusedMatMul with a transpose needs operands of known rank >= 2")
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    (out,) = ctx.emit("Transpose", [v], {"perm": perm})
    return out


@converter("Gelu", domain=MS)
def gelu(ctx):
    return ctx.emit("Gelu", ctx.inputs[:1], final=True)


@converter("BiasGelu", domain=MS)
def bias_gelu(ctx):
    (total,) = ctx.emit("Add", ctx.inputs[:2])
    return ctx.emit("Gelu", [total], final=True)


@converter("FastGelu", domain=MS)
def fast_gelu(ctx):
    x, bias = ctx.inputs[0], optional_input(ctx, 1)
    if bias is not None:
        (x,) = ctx.emit("Add", [x, bias])
    return ctx.emit("Gelu", [x], {"approximate": "tanh"}, final=True)


@converter("QuickGelu", domain=MS)
def quick_gelu(ctx):
    x = ctx.inputs[0]
    (scaled,) = ctx.emit("Mul", [x, _scalar(ctx, ctx.attrs.get("alpha", 1.702), x)])
    (gate,) = ctx.emit("Sigmoid", [scaled])
    return ctx.emit("Mul", [x, gate], final=True)


@converter("FusedMatMul", domain=MS)
def fused_matmul(ctx):
    if ctx.attrs.get("transBatchA", 0) or ctx.attrs.get("transBatchB", 0):
        raise ctx.fail("FusedMatMul with transBatchA/transBatchB is not supported")
    a, b = ctx.inputs[:2]
    if ctx.attrs.get("transA", 0):
        a = _swap_last_two(ctx, a)
    if ctx.attrs.get("transB", 0):
        b = _swap_last_two(ctx, b)
    alpha = float(ctx.attrs.get("alpha", 1.0))
    if alpha == 1.0:
        return ctx.emit("MatMul", [a, b], final=True)
    (product,) = ctx.emit("MatMul", [a, b])
    return ctx.emit("Mul", [product, _scalar(ctx, alpha, a)], final=True)


@converter("SkipLayerNormalization", domain=MS)
def skip_layer_norm(ctx):
    names = ctx.output_names
    if any(names[1:3]):  # the statistics: kept as the contrib op (decompose-contrib rewrites it for codegen)
        return ctx.emit(f"{MS}.SkipLayerNormalization", ctx.inputs, ctx.attrs, final=True)
    x, skip, gamma = ctx.inputs[:3]
    beta, bias = optional_input(ctx, 3), optional_input(ctx, 4)
    (total,) = ctx.emit("Add", [x, skip])
    if bias is not None:
        (total,) = ctx.emit("Add", [total, bias])
    attrs = {"axis": -1, "epsilon": float(ctx.attrs.get("epsilon", 1e-12))}
    (y,) = ctx.emit("LayerNormalization", [total, gamma, beta], attrs, num_results=1, final=True)
    results = [y, None, None]
    if len(names) > 3 and names[3]:
        total.name = names[3]
        results.append(total)
    return results


@converter("SimplifiedLayerNormalization")
def simplified_layer_norm(ctx):
    return ctx.emit(f"{MS}.SimplifiedLayerNormalization", ctx.inputs, ctx.attrs, final=True)
