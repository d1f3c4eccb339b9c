"""TE helpers shared by the lowerings of several op families.

* ``ints``: a static operand or attribute as a list of Python ints;
* ``index_shape``: a kernel tensor's shape, with int64 dims when it holds over 2^31 - 1 elements;
* ``all_of`` / ``any_of``: the conjunction / disjunction of TIR conditions;
* run-time operand checks: ``require_each`` / ``require_values`` / ``check_values`` make a kernel
  check, when it starts (``LowerContext.require``), that an index or size operand that arrives at
  run time holds values this library was compiled for, so a different value fails the run with a
  message naming the op instead of reading or writing out of bounds;
* NaN-keeping ``nan_max`` / ``nan_min`` / ``clamp_keep_nan`` / ``extreme_reducer`` for Relu, Clip,
  Max/Min, the max/min reductions and max pools;
* ``read_if``: a load guarded by a condition, for padded reads (not ``tirx.Select``: see there);
* ``MATERIALISED``: the TE ``attrs`` of a stage that the schedules must keep as its own loop nest
  instead of inlining it into its consumers (read by ``codegen.tvm.schedule``);
* half-precision numerics: ``HALF_TYPES`` and the bfloat16 rounding (``round_to_bf16``,
  ``rounded_to_half``) that matmuls, convolutions and softmax share so their float16/bfloat16
  results round like onnxruntime's.
"""

from __future__ import annotations

import contextlib

import numpy as np
import tvm
from tvm import te, tirx

from .tir_util import I64, unravel

MATERIALISE_KEY = "ember.materialise"  # block annotation: the schedules never inline this stage
MATERIALISED = {MATERIALISE_KEY: 1}  # ``te.compute(..., attrs=MATERIALISED)``


def read_if(cond, value, otherwise):
    """``value`` where ``cond`` holds, else ``otherwise``, with ``value``'s loads run only where
    ``cond`` holds: a padded read, ``read_if(inside, x[clamp(i)], pad)``.

    Not ``tirx.Select``: TVM simplifies a Select's branches under its condition, so a clamp that
    the condition makes redundant is dropped (``Select(0 <= i < h, x[max(0, min(i, h - 1))], 0)``
    becomes ``Select(..., x[i], 0)``), and a Select evaluates both branches: the load then runs at
    the unclamped index, before or past the buffer (a compiled bf16 ResNet-50 segfaulted so).
    ``if_then_else`` lowers to a branch (or a masked load when vectorised)."""
    return tirx.if_then_else(cond, value, otherwise)


def ints(values) -> list[int]:
    """A static operand or attribute as a list of Python ints."""
    return [int(v) for v in (values.reshape(-1).tolist() if hasattr(values, "reshape") else values)]


def all_of(conditions) -> object:
    """The conjunction of TIR boolean expressions (true for none)."""
    out = tirx.const(True, "bool")
    for c in conditions:
        out = tirx.And(out, c)
    return out


def any_of(conditions) -> object:
    """The disjunction of TIR boolean expressions (false for none)."""
    out = tirx.const(False, "bool")
    for c in conditions:
        out = tirx.Or(out, c)
    return out


MAX_UNROLLED_CHECKS = 1024  # run-time index operands checked element by element at kernel start


def size_of(shape) -> int:
    """Number of elements of a (static) shape."""
    return int(np.prod([int(d) for d in shape])) if len(shape) else 1


INT32_MAX = (1 << 31) - 1


def index_shape(shape) -> tuple:
    """A kernel tensor's shape as TE should see it: plain ints (int32 loops and offsets, TVM's
    default, which keeps every kernel's index arithmetic as it was) unless the tensor holds more
    than 2^31 - 1 elements, when every dim is an int64 constant, so its loop variables, buffer
    dims and flattened offsets (``i * stride + j``) are computed in 64 bits."""
    dims = [int(d) for d in shape]
    if size_of(dims) <= INT32_MAX:
        return tuple(dims)
    return tuple(tirx.const(d, I64) for d in dims)


def flat_read(read, tensor, j: int):
    """Element ``j`` (C order) of a run-time operand, through a ``ctx.require`` reader."""
    return read(tensor, *unravel(tirx.const(j, I64), tensor.shape)) if len(tensor.shape) else read(tensor)


def require_each(ctx, tensor, ok, message: str) -> None:
    """``ok(element, j)`` must hold for every element ``j`` of the run-time operand ``tensor``."""
    count = size_of(tensor.shape)
    if count > MAX_UNROLLED_CHECKS:
        raise ctx.fail(
            f"a run-time index operand of {count} elements is too long to check "
            f"(at most {MAX_UNROLLED_CHECKS}); make it a constant"
        )
    if count:
        ctx.require(lambda read: all_of([ok(flat_read(read, tensor, j).astype(I64), j) for j in range(count)]), message)


CHECK_LOOP_FROM = 16  # operands with more elements are checked by a loop, shorter ones unrolled


def assert_stmt(condition, message: str):
    """A TIR statement that makes the kernel return an error with ``message`` unless ``condition``."""
    # TVM 0.27's Python AssertStmt passes (kind, condition) to a constructor that takes
    # (condition, kind): call the constructor directly
    return tirx._ffi_api.AssertStmt(condition, tvm.ir.StringImm("ValueError"), [tvm.ir.StringImm(message)], None)


def require_all(ctx, tensor, ok, message: str) -> None:
    """``ok(element, j)`` (the element as int64, ``j`` its C-order position) must hold for every
    element of the run-time operand ``tensor``: checked once per element when the kernel starts,
    before anything is read or written at those positions (a loop over the operand, never per
    output element)."""
    count = size_of(tensor.shape)
    if not count:
        return
    if count < CHECK_LOOP_FROM:
        ctx.require(lambda read: all_of([ok(flat_read(read, tensor, j).astype(I64), j) for j in range(count)]), message)
        return
    text = f"{ctx.op}: {message}"

    def loop(read):
        j = tirx.Var("check", I64)
        element = read(tensor, *unravel(j, tensor.shape)).astype(I64)
        check = assert_stmt(ok(element, j), text)
        return tirx.For(j, tirx.const(0, I64), tirx.const(count, I64), tirx.ForKind.SERIAL, check)

    ctx.require(loop, message)


def index_in_range(v, n: int):
    """``v`` lies in ONNX's index range ``[-n, n)`` for an axis ``n`` long."""
    return tirx.And(v >= -n, v < n)


def wrapped_index(v, n: int):
    """An ONNX index in ``[-n, n)`` as a position in ``[0, n)``, clamped there whatever ``v`` is, so a
    load or store at it stays inside the axis even where the kernel's check (``require_all``) has not
    run yet (speculation, vectorised loads)."""
    v = v.astype(I64)
    v = tirx.Select(v < 0, v + n, v)
    return tirx.max(tirx.const(0, I64), tirx.min(v, tirx.const(max(n - 1, 0), I64)))


def checked_indices(axis_length):
    """A prepack hook (``@lowering(prepack={k: ...})``) for a constant index operand: its indices,
    all in ``[-n, n)`` for ``n = axis_length(attrs, in_types)`` (an int, or an array broadcast
    against the indices' last axis), come back as a copy wrapped into ``[0, n)`` (the lowering then
    sees the operand in ``ctx.packed`` and skips the run-time check); any other constant is left as
    it is, for the run-time check to refuse."""

    def hook(attrs, in_types, array):
        values = np.asarray(array)
        if values.dtype.kind not in "iu":
            return array
        n = np.asarray(axis_length(attrs, in_types), dtype=np.int64)
        wide = values.astype(np.int64)
        if not np.all((wide >= -n) & (wide < n)):
            return array
        return np.where(wide < 0, wide + n, wide).astype(values.dtype)

    return hook


def require_values(ctx, k: int, tensor, expected: list[int], what: str) -> None:
    """Operand ``k`` (compile-time or run-time) must equal ``expected``, the value compiled for."""
    value = ctx.static(k)
    if value is not None:
        if ints(np.asarray(value)) != list(expected):
            raise ctx.fail(f"{what} {ints(np.asarray(value))} does not match the compiled {expected}")
        return
    if tensor is None:
        raise ctx.fail(f"{what} is missing")
    if size_of(tensor.shape) != len(expected):
        raise ctx.fail(f"{what} has {size_of(tensor.shape)} elements; expected {len(expected)}")
    require_each(
        ctx,
        tensor,
        lambda v, j: v == expected[j],
        f"{what} must be {expected}, the value this library was compiled for",
    )


def check_values(ctx, k, tensor, expected: dict, what: str) -> None:
    """Operand ``k`` must hold ``expected[j]`` at each listed position ``j`` (compile time or run time)."""
    count = int(np.prod(ctx.in_types[k][0])) if len(ctx.in_types[k][0]) else 1
    if max(expected, default=-1) >= count:
        raise ctx.fail(f"{what} has {count} elements; expected at least {max(expected) + 1}")
    message = (
        f"{what} {list(expected.values())} (at positions {list(expected)}) is what this library was "
        f"compiled for (result shape {tuple(ctx.out_shape())}); the run-time value differs"
    )
    value = ctx.static(k)
    if value is not None:
        flat = np.asarray(value).reshape(-1)
        if any(int(flat[j]) != v for j, v in expected.items()):
            raise ctx.fail(f"{what} {flat.tolist()} does not give the result shape {tuple(ctx.out_shape())}")
        return
    if tensor is None:
        raise ctx.fail(f"{what} is missing")
    rank = len(tensor.shape)

    def ok(read):
        def get(j):
            return (read(tensor, j) if rank else read(tensor)).astype(I64)

        return all_of([get(j) == v for j, v in expected.items()])

    ctx.require(ok, message)


def expr_dtype(expr) -> str:
    """The dtype of a TE/TIR expression as a string."""
    return str(expr.dtype) if hasattr(expr, "dtype") else str(expr.ty)


_LETS = {"bound": True}


def let(name: str, value, body):
    """``body(v)`` with ``v`` a variable bound once to ``value`` by a TIR Let, or ``body(value)``
    inside ``lets_inlined()``."""
    if not _LETS["bound"]:
        return body(value)
    var = tirx.Var(name, expr_dtype(value))
    return tirx.Let(var, value, body(var))


@contextlib.contextmanager
def lets_inlined():
    """Lowerings build their expressions without Lets while this is open: the kernels MetaSchedule
    tunes (``tuning.workload``), whose FLOP estimate (TVM 0.27's ``EstimateTIRFlops``) has no case
    for a Let."""
    saved = _LETS["bound"]
    _LETS["bound"] = False
    try:
        yield
    finally:
        _LETS["bound"] = saved


def is_nan(x):
    """``isnan(x)`` for any float dtype (TVM has no bfloat16 isnan: it is tested in float32)."""
    if expr_dtype(x) == "bfloat16":
        x = x.astype("float32")
    return tirx.isnan(x)


# an IEEE type's integer of the same width and its exponent bits: a NaN's magnitude is above them
_NAN_BITS = {
    "float16": ("int16", 0x7C00),
    "float32": ("int32", 0x7F800000),
    "float64": ("int64", 0x7FF0000000000000),
}


def nan_bits(x):
    """``isnan(x)`` tested on the bits (magnitude above the exponent's all-ones), which TVM's
    vectoriser keeps a vector: ``tirx.isnan`` makes it scalarise the whole loop, and a ``x != x``
    comparison does not survive LLVM's no-NaN assumptions.  A bfloat16 is tested as the float32 it
    widens to exactly: TVM computes bfloat16 in float32 (``BF16ComputeLegalize``), so its own bits
    were a float32's reinterpreted as int16, which LLVM rejects (a bfloat16 MaxPool failed to
    compile)."""
    if expr_dtype(x) == "bfloat16":
        x = x.astype("float32")
    dtype = expr_dtype(x)
    if dtype not in _NAN_BITS:
        return is_nan(x)
    itype, exponent = _NAN_BITS[dtype]
    width = int(itype[3:])
    magnitude = tirx.reinterpret(itype, x) & tirx.const((1 << (width - 1)) - 1, itype)
    return magnitude > tirx.const(exponent, itype)


def nan_max(a, b):
    """``max(a, b)`` that keeps a NaN from either side, as onnxruntime's Max, Relu, Clip and ReduceMax
    do (``tirx.max`` on floats lowers to LLVM's maxnum, which drops it). A compare and a select,
    the NaN test on the bits (``nan_bits``), so that TVM's vectoriser keeps it a vector. Integers
    take ``tirx.max``."""
    if "float" not in expr_dtype(a):
        return tirx.max(a, b)
    return tirx.Select(tirx.Or(a > b, nan_bits(a)), a, b)


def nan_min(a, b):
    """``min(a, b)`` that keeps a NaN from either side (see ``nan_max``)."""
    if "float" not in expr_dtype(a):
        return tirx.min(a, b)
    return tirx.Select(tirx.Or(a < b, nan_bits(a)), a, b)


def clamp_keep_nan(v, lo=None, hi=None):
    """``v`` clamped into ``[lo, hi]`` (either bound may be None) by one compare and one select per
    bound: a NaN ``v`` stays NaN, and a NaN bound clamps nothing (onnxruntime's Clip does both)."""
    if lo is not None:
        v = tirx.Select(v < lo, lo, v)
    if hi is not None:
        v = tirx.Select(v > hi, hi, v)
    return v


def float_const(value: float, dtype: str):
    """``value`` as a constant of the float ``dtype``. A non-finite bfloat16 is made from its bits:
    TVM 0.27's CUDA code generator writes it as ``__float2bfloat16_rn(nanf )`` / ``(-inff )``,
    which nvcc rejects (a bfloat16 ResNet-50's max pool did not compile for CUDA)."""
    if str(dtype) == "bfloat16" and not np.isfinite(value):
        bits = int(np.array([value], np.float32).view(np.uint32)[0]) >> 16
        return tirx.reinterpret("bfloat16", tirx.const(bits, "uint16"))
    return tirx.const(value, dtype)


def extreme_reducer(dtype: str, largest: bool):
    """A TE max (``largest``) or min reducer that keeps NaN (``nan_max``/``nan_min``), starting from
    -inf/+inf (integers: their lowest/highest value)."""
    if "float" in dtype:
        start = float("-inf") if largest else float("inf")
    else:
        info = np.iinfo(np.dtype(dtype))
        start = int(info.min) if largest else int(info.max)
    return te.comm_reducer(
        nan_max if largest else nan_min,
        lambda t: float_const(start, t) if "float" in str(t) else tirx.const(start, t),
        name="nan_max" if largest else "nan_min",
    )


HALF_TYPES = ("float16", "bfloat16")


def rounded_to_half(out, half_dtype):
    """A float32 result rounded once to float16/bfloat16 (bfloat16 rounded here, ties to even: TVM may
    drop a bfloat16 rounding inside a fused kernel)."""
    if str(half_dtype) == "bfloat16":
        return te.compute(out.shape, lambda *i: round_to_bf16(out(*i)).astype(half_dtype), name="half_result")
    return te.compute(out.shape, lambda *i: out(*i).astype(half_dtype), name="half_result")


def round_to_bf16(v):
    """A float32 value rounded to the nearest bfloat16 (ties to even), kept as float32; a NaN stays a
    NaN (quieted, so that it survives truncation to bfloat16).  Integer operations only: a Select on
    ``isnan`` here left a conv's fused write-back as scalar code with a branch per element (a bf16
    ResNet-50 1x1 conv's write-back took 4x its products)."""
    u32 = "uint32"
    bits = tirx.reinterpret(u32, v)
    rounded = (bits + tirx.const(0x7FFF, u32) + ((bits >> 16) & tirx.const(1, u32))) & tirx.const(0xFFFF0000, u32)
    nan = ((bits & tirx.const(0x7FFFFFFF, u32)) > tirx.const(0x7F800000, u32)).astype(u32)
    mask = tirx.const(0, u32) - nan  # all ones for a NaN
    # all ones for a number: ``~mask``, which TVM's CUDA code writes as ``~uint4`` (CUDA's vector
    # types have no operators; binary ones TVM writes lane by lane)
    unmask = mask ^ tirx.const(0xFFFFFFFF, u32)
    kept = (bits | tirx.const(0x00400000, u32)) & mask
    return tirx.reinterpret("float32", (rounded & unmask) | kept)
