"""compiler.fma_peak: the measured FMA peak behind the profiler's and the zoo's "% peak" columns."""

import llvmlite.binding as llvm
import pytest

from compiler import fma_peak


@pytest.mark.parametrize("lanes", [4, 8, 16])
def test_kernel_ir_is_valid_llvm_at_every_vector_width(lanes):
    module = llvm.parse_assembly(fma_peak._kernel_ir(lanes))
    module.verify()
    text = str(module)
    assert text.count(f"@llvm.fma.v{lanes}f32(") == fma_peak.ACCUMULATORS + 1  # the calls and the declaration


def test_vector_width_follows_host_features():
    assert fma_peak._vector_lanes("+sse2,+avx,+avx2,+fma,+avx512f") == 16
    assert fma_peak._vector_lanes("+sse2,+avx,+avx2,+fma,-avx512f") == 8
    assert fma_peak._vector_lanes("+neon") == 4


def test_chains_fit_the_register_file():
    # 16 chains and 2 operands spill AVX2's 16 registers (a Zen 3 measured half its peak); 32 registers hold them
    assert fma_peak._accumulators("+sse2,+avx,+avx2,+fma,-avx512f") == fma_peak.ACCUMULATORS_16_REGISTERS
    assert fma_peak._accumulators("+sse2,+avx,+avx2,+fma,+avx512f") == fma_peak.ACCUMULATORS
    assert fma_peak._accumulators("+neon") == fma_peak.ACCUMULATORS
    assert fma_peak.ACCUMULATORS_16_REGISTERS + 2 <= 16 and fma_peak.ACCUMULATORS + 2 <= 32


def test_measured_peak_is_a_plausible_rate_and_the_kernel_computes():
    _engine, function, lanes, chains = fma_peak._compiled_kernel()
    peak = fma_peak.measure_fma_peak(1, repeats=1)
    # Any x86-64 or aarch64 core does at least a few GFLOP/s in vector FMAs, and none 10 TFLOP/s.
    assert 2.0 < peak < 10_000.0
    # The loop really accumulates: each of the chains adds 1 * 1e-3 ten times onto 0; they are summed.
    import ctypes

    buffer = (ctypes.c_float * (3 * lanes))(*([1.0] * lanes + [1e-3] * lanes + [0.0] * lanes))
    function(10, buffer)
    assert list(buffer)[2 * lanes :] == pytest.approx([chains * 10 * 1e-3] * lanes, rel=1e-5)
