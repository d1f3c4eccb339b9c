"""64-bit flattened indexing for tensors of more than 2^31 - 1 elements, 32-bit for the rest.

Kernels of such tensors are built here and their LLVM IR inspected, not run: running one needs
over 2 GiB per tensor, too much for CI. (By hand, with ``codegen.plan.check_index_width`` lifted:
Not over a bool [2, 2^30 + 1] and ReduceMax over an int8 one give NumPy's answers.)
"""

from __future__ import annotations

import re

import pytest
from tvm import tirx

from codegen.plan import FusedOp, KernelSpec
from codegen.tvm.kernel import build_config, build_kernel_module
from codegen.tvm.te_util import INT32_MAX, expr_dtype, index_shape

TARGET = {"kind": "llvm", "mcpu": "znver4"}
WIDE = (2, (1 << 30) + 1)  # 2^31 + 2 elements: each dim fits int32, the flattened offset does not


def test_index_shape_widens_only_past_int32():
    assert index_shape((3, 4)) == (3, 4) and all(type(d) is int for d in index_shape((3, 4)))
    assert index_shape((1, INT32_MAX)) == (1, INT32_MAX)
    wide = index_shape(WIDE)
    assert all(isinstance(d, tirx.IntImm) and expr_dtype(d) == "int64" for d in wide)
    assert [int(d) for d in wide] == list(WIDE)


def unary(op, shape, dtype):
    fop = FusedOp(op, (), (("in", 0),), (), ((shape, dtype),), ((shape, dtype),))
    return KernelSpec((fop,), ((shape, dtype),), ((0, 0, shape, dtype),))


def reduce_max(shape, dtype):
    out = (shape[0],)
    fop = FusedOp("ReduceMax", (("axes", (1,)), ("keepdims", 0)), (("in", 0),), (), ((shape, dtype),), ((out, dtype),))
    return KernelSpec((fop,), ((shape, dtype),), ((0, 0, out, dtype),))


def offsets(spec):
    """(i32 multiplies, i64 multiplies) in the kernel's LLVM IR."""
    lib, _ = build_kernel_module(spec, "k", TARGET, 16)
    ll = lib.inspect_source("ll")
    return len(re.findall(r"mul (?:nsw |nuw )*i32", ll)), len(re.findall(r"mul (?:nsw |nuw )*i64", ll))


@pytest.mark.parametrize(
    "spec",
    [unary("Not", WIDE, "bool"), unary("Neg", WIDE, "int8"), reduce_max(WIDE, "int8")],
    ids=["Not-bool", "Neg-int8", "ReduceMax-int8"],
)
def test_kernels_over_2_31_elements_build_with_64_bit_offsets(spec):
    """These failed before ("Literal value 2147483650 exceeds range of int32"); the reduction also
    needs automatic unrolling off (``build_config``: TVM's unroll count overflows int32)."""
    assert build_config(spec) == {"tirx.UnrollLoop": {"auto_max_depth": -1}}
    narrow, wide = offsets(spec)
    assert wide >= 1 and narrow == 0


def test_small_kernels_keep_32_bit_offsets_and_the_default_build():
    spec = unary("Neg", (64, 1000), "int8")
    assert build_config(spec) == {}
    narrow, wide = offsets(spec)
    assert narrow >= 1  # the flattened offsets (LLVM may still widen a pointer step)
