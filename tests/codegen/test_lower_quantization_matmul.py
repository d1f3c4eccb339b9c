"""The MatMulInteger packed kernel (codegen/tvm/lower/quantization_gemm.py): its word weight packing
for both instructions (``vpdpbusd``: 4 bytes an int32 word, 16 columns; ``vpmaddwd`` on AVX2: 2
bytes an int16 word, 8 columns, sign-extended as loaded), and that its own schedule (not the
generic fallback, which ``apply_schedule`` takes silently when a schedule raises) builds to the
instruction with the column sums read as whole vectors.
Numerics against the interpreter are in test_int8_kernels.py and test_fuse_qdq_dynamic.py."""

from __future__ import annotations

import numpy as np
import pytest

from codegen.target import ScheduleParams
from codegen.tvm.dot_instructions import PMADDWD, VNNI
from codegen.tvm.lower.quantization_gemm import integer_dot, pack_vnni_matmul_weight

U8 = np.dtype("uint8")
AVX512, AVX2 = ScheduleParams.x86(16), ScheduleParams.x86(8, 16)


def test_each_target_lays_integer_weights_out_for_its_instruction():
    assert integer_dot(None) is VNNI and integer_dot(AVX512) is VNNI and integer_dot(AVX2) is PMADDWD


@pytest.mark.parametrize("params", [AVX512, AVX2], ids=["vpdpbusd", "vpmaddwd"])
@pytest.mark.parametrize("k,n", [(8, 16), (12, 20), (64, 48), (4, 3)])
def test_packed_words_hold_the_weights_and_the_column_sums(k, n, params):
    dot = integer_dot(params)
    b = np.random.default_rng(k * n).integers(-128, 127, (k, n), endpoint=True).astype(np.int8)
    packed = pack_vnni_matmul_weight({}, [((2, k), U8)], b, params)
    nb, kd, word = -(-n // dot.lanes), k // dot.depth, f"<i{dot.depth}"  # words of D bytes
    assert packed.dtype == np.dtype(word) and packed.shape == (nb, kd + 4 // dot.depth, dot.lanes)
    elements = np.ascontiguousarray(packed[:, :kd]).astype(word).view(np.int8).reshape(nb, kd, dot.lanes, dot.depth)
    unpacked = elements.transpose(1, 3, 0, 2).reshape(k, nb * dot.lanes)
    np.testing.assert_array_equal(unpacked[:, :n], b)
    assert not unpacked[:, n:].any()  # padding columns are zero
    sums = np.ascontiguousarray(packed[:, kd:].transpose(0, 2, 1)).astype(word).view("<i4").reshape(-1)
    np.testing.assert_array_equal(sums[:n], b.astype(np.int64).sum(axis=0))


def test_weights_the_kernel_cannot_take_are_left_alone():
    b = np.ones((6, 16), np.int8)  # K not a multiple of 4
    assert pack_vnni_matmul_weight({}, [((2, 6), U8)], b) is b
    b = np.ones((8, 16), np.int16)  # not int8 weights
    assert pack_vnni_matmul_weight({}, [((2, 8), U8)], b) is b
    b = np.ones((8, 16), np.int8)  # int16 activations
    assert pack_vnni_matmul_weight({}, [((2, 8), np.dtype("int16"))], b) is b


def test_int8_activations_get_the_same_packing_as_uint8():
    """The kernel shifts an int8 activation into uint8 (``qmatmul_au8``); the weight words do not change."""
    b = np.random.default_rng(0).integers(-128, 127, (8, 20), endpoint=True).astype(np.int8)
    signed = pack_vnni_matmul_weight({}, [((2, 8), np.dtype("int8"))], b)
    np.testing.assert_array_equal(signed, pack_vnni_matmul_weight({}, [((2, 8), U8)], b))


def _scheduled_matmul_integer(m: int, k: int, n: int, params=AVX512):
    import tvm
    from tvm import te

    import codegen.tvm.lowering  # noqa: F401  (every lowering registered)
    from codegen.tvm.registry import LowerContext, get_lowering
    from codegen.tvm.schedule import apply_schedule

    packed = pack_vnni_matmul_weight({}, [((m, k), U8)], np.ones((k, n), np.int8), params)
    types = [((m, k), U8), (packed.shape, packed.dtype), ((), U8), ((), np.dtype("int8"))]
    ctx = LowerContext(
        "MatMulInteger", {}, types, [((m, n), np.dtype("int32"))], {3: np.int8(0)}, frozenset({1}), schedule=params
    )
    a, bp, za = (te.placeholder(shape, str(dtype)) for shape, dtype in types[:3])
    out = get_lowering("MatMulInteger").build(ctx, a, bp, za)
    mod = tvm.IRModule({"main": te.create_prim_func([a, bp, za, out])})
    return mod, apply_schedule, params


def test_vnni_matmul_schedule_applies_and_reaches_vpdpbusd():
    from codegen.target import detect_host

    if "+avx512vnni" not in detect_host().features:
        pytest.skip("the host CPU has no AVX-512 VNNI")
    import tvm

    mod, apply_schedule, params = _scheduled_matmul_integer(8, 64, 48)
    target = tvm.target.Target({"kind": "llvm", "mcpu": detect_host().mcpu, "mattr": ["+avx512vnni"]})
    with target:
        scheduled, used = apply_schedule(mod, "vnni_matmul", params)
    assert used == "vnni_matmul"
    asm = tvm.tirx.build(scheduled, target).inspect_source("asm")
    assert "vpdpbusd" in asm
    assert "vpinsrb" not in asm  # the column sums are one int32 vector load, not byte inserts


def test_pmaddwd_matmul_schedule_applies_and_reaches_vpmaddwd():
    """On AVX2 the activation is widened to int16 once (``qmatmul_a16``) and each step of 2 along K
    is one ``vpmaddwd`` per 8 columns; only the assembly is read, so any x86 host checks it."""
    import tvm

    mod, apply_schedule, params = _scheduled_matmul_integer(8, 64, 48, AVX2)
    target = tvm.target.Target({"kind": "llvm", "mcpu": "haswell", "mattr": ["+avx2", "+fma"]})
    with target:
        scheduled, used = apply_schedule(mod, "vnni_matmul", params)
    assert used == "vnni_matmul"
    asm = tvm.tirx.build(scheduled, target).inspect_source("asm")
    assert "vpmaddwd" in asm
    assert "vpinsrd" not in asm  # the column sums are one int32 vector load
