"""The warp-level matrix (``wmma``) tensor intrinsics that ``tensor_core.py`` tensorizes with, 16 x 16 x
16 fragments, registered with TVM once, on first use.

Each is a pair of TIR functions: a description (plain loops: what the fragment operation computes,
which ``tensorize`` matches against the scheduled block) and an implementation (TVM's builtin
``tvm_load_matrix_sync`` / ``tvm_fill_fragment`` / ``tvm_mma_sync`` / ``tvm_store_matrix_sync``
calls, which the CUDA code generator writes as ``nvcuda::wmma`` calls). TVM's own set
(``tvm.s_tir.tensor_intrin.cuda``) registers some 400 intrinsics at import, which took 33 s on the
2-core machine: once per process that compiles a float16 model. These are the ones a float16 or
bfloat16 product needs (five per configuration of types and layouts).
"""

from __future__ import annotations

from functools import cache

from tvm.s_tir import TensorIntrin
from tvm.script import tirx as T
from tvm.tirx import Cast

M = N = K = 16
_ALIGN = 64


def _fragment(buffer, stride, rows, cols):
    """The index of the 16 x 16 fragment that ``buffer`` (a view into a fragment array) starts at."""
    return buffer.elem_offset // stride // rows * (stride // cols) + buffer.elem_offset % stride // cols


def _copy(dtype: str, source_scope: str, target_scope: str):
    """The description of a load or a store: a 16 x 16 tile copied between two scopes."""

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, c: T.handle) -> None:
        src = T.match_buffer(a, (16, 16), dtype, align=_ALIGN, offset_factor=16, scope=source_scope)
        dst = T.match_buffer(c, (16, 16), dtype, align=_ALIGN, offset_factor=16, scope=target_scope)
        with T.sblock("root"):
            T.reads(src[0:16, 0:16])
            T.writes(dst[0:16, 0:16])
            for i, j in T.grid(16, 16):
                with T.sblock("copy"):
                    vi, vj = T.axis.remap("SS", [i, j])
                    dst[vi, vj] = src[vi, vj]

    return desc


def _load(dtype: str, source_scope: str, operand: str, transposed: bool):
    """Shared memory -> a matrix_a/matrix_b fragment. ``transposed``: B is stored [N, K] (read as a
    column-major [K, N] fragment)."""
    scope = f"wmma.matrix_{operand}"
    layout = "col_major" if transposed else "row_major"

    desc = _copy(dtype, source_scope, scope)

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, c: T.handle) -> None:
        s1, s0, d1, d0 = T.int32(), T.int32(), T.int32(), T.int32()
        src = T.match_buffer(a, (16, 16), dtype, align=_ALIGN, offset_factor=16, scope=source_scope, strides=[s1, s0])
        frag = T.match_buffer(c, (16, 16), dtype, align=_ALIGN, offset_factor=16, scope=scope, strides=[d1, d0])
        with T.sblock("root"):
            T.reads(src[0:16, 0:16])
            T.writes(frag[0:16, 0:16])
            T.evaluate(
                T.tvm_load_matrix_sync(
                    frag.data,
                    M,
                    N,
                    K,
                    _fragment(frag, d1, 16, 16),
                    src.access_ptr("r", ptr_type=dtype),
                    s1,
                    layout,
                    dtype="void",
                )
            )

    return desc, impl


def _fill(acc_dtype: str):
    """A zero accumulator fragment."""

    @T.prim_func(s_tir=True)
    def desc(c: T.handle) -> None:
        acc = T.match_buffer(c, (16, 16), acc_dtype, align=_ALIGN, offset_factor=16, scope="wmma.accumulator")
        with T.sblock("root"):
            T.reads()
            T.writes(acc[0:16, 0:16])
            for i, j in T.grid(16, 16):
                with T.sblock("init"):
                    vi, vj = T.axis.remap("SS", [i, j])
                    acc[vi, vj] = T.cast(0, acc_dtype)

    @T.prim_func(s_tir=True)
    def impl(c: T.handle) -> None:
        d1, d0 = T.int32(), T.int32()
        acc = T.match_buffer(
            c, (16, 16), acc_dtype, align=_ALIGN, offset_factor=16, scope="wmma.accumulator", strides=[d1, d0]
        )
        with T.sblock("root"):
            T.reads()
            T.writes(acc[0:16, 0:16])
            T.evaluate(T.tvm_fill_fragment(acc.data, M, N, K, _fragment(acc, d1, 16, 16), T.float32(0), dtype="void"))

    return desc, impl


def _store(acc_dtype: str, target_scope: str):
    """An accumulator fragment -> row-major memory."""

    desc = _copy(acc_dtype, "wmma.accumulator", target_scope)

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, c: T.handle) -> None:
        s1, s0, d1, d0 = T.int32(), T.int32(), T.int32(), T.int32()
        acc = T.match_buffer(
            a, (16, 16), acc_dtype, align=_ALIGN, offset_factor=16, scope="wmma.accumulator", strides=[d1, d0]
        )
        dst = T.match_buffer(
            c, (16, 16), acc_dtype, align=_ALIGN, offset_factor=16, scope=target_scope, strides=[s1, s0]
        )
        with T.sblock("root"):
            T.reads(acc[0:16, 0:16])
            T.writes(dst[0:16, 0:16])
            T.evaluate(
                T.tvm_store_matrix_sync(
                    acc.data,
                    M,
                    N,
                    K,
                    _fragment(acc, d1, 16, 16),
                    dst.access_ptr("w", ptr_type=acc_dtype),
                    s1,
                    "row_major",
                    dtype="void",
                )
            )

    return desc, impl


def _mma(in_dtype: str, acc_dtype: str, transposed: bool):
    """acc[i, j] += A[i, k] * B[k, j] (B stored [j, k] when ``transposed``), products in ``acc_dtype``."""

    def widen(value):
        return value if in_dtype == acc_dtype else Cast(acc_dtype, value)

    def b_at(k, j):
        return (j, k) if transposed else (k, j)

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, b: T.handle, c: T.handle) -> None:
        fa = T.match_buffer(a, (16, 16), in_dtype, align=_ALIGN, offset_factor=16, scope="wmma.matrix_a")
        fb = T.match_buffer(b, (16, 16), in_dtype, align=_ALIGN, offset_factor=16, scope="wmma.matrix_b")
        acc = T.match_buffer(c, (16, 16), acc_dtype, align=_ALIGN, offset_factor=16, scope="wmma.accumulator")
        with T.sblock("root"):
            T.reads(acc[0:16, 0:16], fa[0:16, 0:16], fb[0:16, 0:16])
            T.writes(acc[0:16, 0:16])
            for i, j, k in T.grid(16, 16, 16):
                with T.sblock(""):
                    vi, vj, vk = T.axis.remap("SSR", [i, j, k])
                    b0, b1 = T.meta_var(b_at(vk, vj))
                    acc[vi, vj] = acc[vi, vj] + widen(fa[vi, vk]) * widen(fb[b0, b1])

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, b: T.handle, c: T.handle) -> None:
        a1, a0, b1, b0, c1, c0 = T.int32(), T.int32(), T.int32(), T.int32(), T.int32(), T.int32()
        fa = T.match_buffer(
            a, (16, 16), in_dtype, align=_ALIGN, offset_factor=16, scope="wmma.matrix_a", strides=[a1, a0]
        )
        fb = T.match_buffer(
            b, (16, 16), in_dtype, align=_ALIGN, offset_factor=16, scope="wmma.matrix_b", strides=[b1, b0]
        )
        acc = T.match_buffer(
            c, (16, 16), acc_dtype, align=_ALIGN, offset_factor=16, scope="wmma.accumulator", strides=[c1, c0]
        )
        with T.sblock("root"):
            T.reads(acc[0:16, 0:16], fa[0:16, 0:16], fb[0:16, 0:16])
            T.writes(acc[0:16, 0:16])
            T.evaluate(
                T.tvm_mma_sync(
                    acc.data,
                    _fragment(acc, c1, 16, 16),
                    fa.data,
                    _fragment(fa, a1, 16, 16),
                    fb.data,
                    _fragment(fb, b1, 16, 16),
                    acc.data,
                    _fragment(acc, c1, 16, 16),
                    dtype="void",
                )
            )

    return desc, impl


@cache
def intrinsics(in_dtype: str, acc_dtype: str, b_transposed: bool, source_scope: str, target_scope: str) -> dict:
    """Names of the registered intrinsics for one configuration: ``load_a``, ``load_b``, ``init``,
    ``compute``, ``store``. Registered on the first call (TVM's registry is per process)."""
    tag = f"{in_dtype}_{acc_dtype}_{'bt' if b_transposed else 'b'}_{source_scope}_{target_scope}".replace(".", "_")
    made = {
        "load_a": _load(in_dtype, source_scope, "a", False),
        "load_b": _load(in_dtype, source_scope, "b", b_transposed),
        "init": _fill(acc_dtype),
        "compute": _mma(in_dtype, acc_dtype, b_transposed),
        "store": _store(acc_dtype, target_scope),
    }
    names = {}
    for role, (desc, impl) in made.items():
        names[role] = f"ember_wmma_{role}_{tag}"
        TensorIntrin.register(names[role], desc, impl, override=True)
    return names
