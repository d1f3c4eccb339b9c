"""Neural-network ops whose semantics changed across opsets.

- BatchNormalization-7/9: drop ``spatial`` (``spatial=0`` only on 2-D input),
  ``is_test``, ``consumed_inputs``; the training outputs (running and saved
  mean/variance) read the mean/variance inputs, as in inference
- Dropout-7/10 ``ratio`` attr -> input (inference mode: the identity)
- Softmax/LogSoftmax/Hardmax before 13 (coerce to 2-D at ``axis``, default 1)
  -> Reshape(op(Flatten(x, axis), axis=-1), Shape(x)) unless ``axis`` is the last dim
- Clip-6 ``min/max`` attrs -> inputs
- GroupNormalization-18 per-group scale/bias -> per-channel (GroupNormalization-21)
"""

from __future__ import annotations

import numpy as np

from compiler.ir.types import TensorType

from . import converter, i64


def _dtype_of(value, default=np.float32):
    t = value.type if value is not None else None
    return t.dtype.np if isinstance(t, TensorType) else np.dtype(default)


@converter("BatchNormalization", 1, 14)
def batchnorm_v7(ctx):
    """Old BatchNormalization: inference form plus pass-through statistics."""
    attrs = {k: v for k, v in ctx.attrs.items() if k in ("epsilon", "momentum")}
    spatial = ctx.attrs.get("spatial", 1)
    x = ctx.inputs[0]
    rank = x.type.rank if isinstance(x.type, TensorType) else None
    if spatial == 0 and rank != 2:
        raise ctx.fail("BatchNormalization with spatial=0 is only supported on 2-D input")
    if len(ctx.inputs) != 5 or any(v is None for v in ctx.inputs):
        raise ctx.fail(f"BatchNormalization needs 5 inputs, has {len(ctx.inputs)}")
    (y,) = ctx.emit("BatchNormalization", ctx.inputs, attrs, num_results=1, final=True)
    mean, var = ctx.inputs[3], ctx.inputs[4]
    extra = [mean, var, mean, var]
    return [y] + [extra[i] if name else None for i, name in enumerate(ctx.output_names[1:5])]


@converter("Dropout", 1, 12)
def dropout_v7(ctx):
    """Old Dropout carried ``ratio`` as an attribute; before 10 its mask had the input's dtype."""
    ratio = float(ctx.attrs.get("ratio", 0.5))
    x = ctx.inputs[0]
    operands = [x, ctx.const(np.array(ratio, dtype=_dtype_of(x)))]
    wants_mask = len(ctx.output_names) > 1 and bool(ctx.output_names[1])
    if ctx.version >= 10 or not wants_mask:
        return ctx.emit("Dropout", operands, {}, num_results=len(ctx.output_names), final=True)
    (y,) = ctx.emit("Dropout", operands, {}, num_results=1, final=True)
    (shape,) = ctx.emit("Shape", [x])
    (mask,) = ctx.emit("ConstantOfShape", [shape], {"value": np.ones(1, dtype=_dtype_of(x))})
    mask.name = ctx.output_names[1]  # inference mode keeps everything: an all-ones mask
    return [y, mask]


def _coerced_2d(op: str):
    def convert(ctx):
        x = ctx.inputs[0]
        axis = int(ctx.attrs.get("axis", 1))
        rank = x.type.rank if isinstance(x.type, TensorType) else None
        if rank is not None and (axis % max(rank, 1)) == rank - 1:
            return ctx.emit(op, [x], {"axis": -1}, final=True)
        if rank is not None and rank > 0:
            axis %= rank
        (flat,) = ctx.emit("Flatten", [x], {"axis": axis})
        (y,) = ctx.emit(op, [flat], {"axis": 1})
        if isinstance(x.type, TensorType) and x.type.is_static:
            shape = ctx.const(i64(x.type.shape))
        else:
            (shape,) = ctx.emit("Shape", [x])
        return ctx.emit("Reshape", [y, shape], final=True)

    convert.__doc__ = f"{op} before 13 normalised over all dims from ``axis`` on (a 2-D coercion)."
    return convert


for _op in ("Softmax", "LogSoftmax", "Hardmax"):
    converter(_op, 1, 13)(_coerced_2d(_op))


@converter("Clip", 1, 11)
def clip_v6(ctx):
    """Clip-6 carried ``min``/``max`` as attributes."""
    x = ctx.inputs[0]
    dtype = _dtype_of(x)
    lo, hi = ctx.attrs.get("min"), ctx.attrs.get("max")
    operands = [
        x,
        None if lo is None else ctx.const(np.array(lo, dtype=dtype)),
        None if hi is None else ctx.const(np.array(hi, dtype=dtype)),
    ]
    while operands[-1] is None:
        operands.pop()
    return ctx.emit("Clip", operands, {}, final=True)


@converter("GroupNormalization", 18, 21)
def group_norm_v18(ctx):
    """GroupNormalization-18 took per-group scale/bias; 21 takes per-channel ones."""
    x, scale, bias = ctx.inputs[:3]
    groups = int(ctx.attrs["num_groups"])
    shape = x.type.shape if isinstance(x.type, TensorType) else None
    channels = shape[1] if shape is not None and len(shape) > 1 else None
    if not isinstance(channels, int) or channels % groups:
        raise ctx.fail("GroupNormalization-18 needs a static channel count divisible by num_groups")
    per_group = channels // groups

    def per_channel(v):
        if v.const_value is not None:
            return ctx.const(np.repeat(np.asarray(v.const_value), per_group))
        (col,) = ctx.emit("Unsqueeze", [v, ctx.const(i64([1]))])
        (wide,) = ctx.emit("Expand", [col, ctx.const(i64([groups, per_group]))])
        (out,) = ctx.emit("Reshape", [wide, ctx.const(i64([channels]))])
        return out

    return ctx.emit("GroupNormalization", [x, per_channel(scale), per_channel(bias)], ctx.attrs, final=True)
