"""Lowerings of view ops: Identity, Flatten, Reshape, Squeeze, Unsqueeze.

The planner turns a view into a buffer alias (``OpDef.view``), so these lowerings run only when a
shape operand arrives at run time: the kernel then checks it against the compiled result shape
(see ``operands``) and copies.
"""

from __future__ import annotations

from tvm import tirx, topi

from ...registry import lowering
from ...te_util import all_of, any_of
from ...tir_util import I64
from .operands import guard_get, norm_axis, operand_length, pick


@lowering("Identity", "Flatten")
def _view(ctx, x, *rest):  # never called: views become buffer aliases
    return x


@lowering("Reshape", static=(1,), runtime=(1,))
def _reshape(ctx, x, shape=None):
    """A run-time ``shape`` must resolve (0 = copy, -1 = infer) to the compiled result shape."""
    out, in_shape = ctx.out_shape(), ctx.in_types[0][0]
    if shape is not None and ctx.static(1) is None:
        allowzero = bool(ctx.attr("allowzero", 0))
        if operand_length(ctx, 1) != len(out):
            raise ctx.fail(f"shape has {operand_length(ctx, 1)} elements but the result has rank {len(out)}")

        def ok(read):
            get = guard_get(read)
            dims = [get(shape, i) for i in range(len(out))]
            each = [
                any_of(
                    [d == out[i], d == -1]
                    + ([d == 0] if not allowzero and i < len(in_shape) and in_shape[i] == out[i] else [])
                )
                for i, d in enumerate(dims)
            ]
            inferred = sum(
                (tirx.Select(d == -1, tirx.const(1, I64), tirx.const(0, I64)) for d in dims), tirx.const(0, I64)
            )
            return all_of(each + [inferred <= 1])

        ctx.require(ok, f"the run-time shape does not give the compiled result shape {tuple(out)}")
    return topi.reshape(x, out)


@lowering("Squeeze", "Unsqueeze", static=(1,), runtime=(1,))
def _squeeze(ctx, x, axes=None):
    """Run-time ``axes`` must name exactly the size-1 dims the compiled shapes drop (add)."""
    out, in_shape = ctx.out_shape(), ctx.in_types[0][0]
    if axes is not None and ctx.static(1) is None:
        squeeze = ctx.op == "Squeeze"
        full, short = (in_shape, out) if squeeze else (out, in_shape)
        count = operand_length(ctx, 1)
        if len(full) - len(short) != count:
            raise ctx.fail(f"{count} run-time axes cannot turn {tuple(in_shape)} into {tuple(out)}")

        def ok(read):
            get = guard_get(read)
            picked = [norm_axis(get(axes, j), len(full)) for j in range(count)]
            conds = [tirx.And(a >= 0, a < len(full)) for a in picked]
            conds += [picked[j] != picked[k] for j in range(count) for k in range(j + 1, count)]
            kept_before = tirx.const(0, I64)
            for p in range(len(full)):
                is_axis = any_of([a == p for a in picked])
                conds.append(
                    tirx.Select(is_axis, tirx.const(full[p] == 1, "bool"), pick(kept_before, list(short)) == full[p])
                )
                kept_before = kept_before + tirx.Select(is_axis, tirx.const(0, I64), tirx.const(1, I64))
            return all_of(conds)

        ctx.require(ok, f"the run-time axes do not turn {tuple(in_shape)} into the compiled {tuple(out)}")
    return topi.reshape(x, out)
