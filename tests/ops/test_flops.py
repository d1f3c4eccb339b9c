"""FLOP formulas declared on ops: what the profiler and the zoo's GFLOP/s columns divide by."""

from compiler.ops.registry import FlopContext, get_op


def _flops(op, in_shapes, out_shapes, **attrs):
    return get_op(op).count_flops(FlopContext(op, attrs, in_shapes, out_shapes))


def test_conv_counts_multiply_adds_per_output():
    # 1x3x8x8 -> 4 channels, 3x3 kernel, pad 1: 4*8*8 outputs, each 3*3*3 multiply-adds
    assert _flops("Conv", [(1, 3, 8, 8), (4, 3, 3, 3)], [(1, 4, 8, 8)]) == 2 * 4 * 64 * 27


def test_gemm_reads_k_from_the_transposed_side():
    assert _flops("Gemm", [(80, 512), (8210, 512)], [(80, 8210)], transB=1) == 2 * 80 * 8210 * 512
    assert _flops("Gemm", [(512, 80), (512, 8210)], [(80, 8210)], transA=1) == 2 * 80 * 8210 * 512


def test_recurrent_counts_both_projections_per_step_and_direction():
    # bidirectional LSTM, 80 steps, batch 1, input 512, hidden 256: 4 gates
    x, w, r = (80, 1, 512), (2, 4 * 256, 512), (2, 4 * 256, 256)
    expected = 2 * 80 * (2 * 1024 * 512 + 2 * 1024 * 256)
    assert _flops("LSTM", [x, w, r], [(80, 2, 1, 256)], hidden_size=256) == expected
    # layout=1 puts batch first; the count is the same for the same steps x batch
    assert _flops("GRU", [(1, 80, 512), (1, 768, 512), (1, 768, 256)], [(1, 80, 1, 256)], layout=1) == 2 * 80 * (
        768 * 512 + 768 * 256
    )
