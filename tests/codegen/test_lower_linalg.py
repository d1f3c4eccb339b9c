"""Linear-algebra lowerings (codegen/tvm/lower/linalg.py) compiled: Det, and half-precision MatMul
(with the Softmax after it) rounding exactly like the reference.

Each model is one node with declared output shapes, as exported models with static shapes have;
parameters are model inputs where the op allows it. The compiled library must give the
interpreter's answer for every value consistent with those shapes, and fail the run with a message
naming the op, never a wrong result, for a value that is not."""

from __future__ import annotations

import numpy as np
import pytest
from compiled_checks import check_against_interpreter, node_model
from onnx import TensorProto, helper

F, I64, H = TensorProto.FLOAT, TensorProto.INT64, TensorProto.FLOAT16


@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 4), (1, 1)])
def test_det(shape):
    x = np.random.default_rng(8).standard_normal(shape).astype(np.float32)
    x2 = x.copy()
    if len(shape) == 3:
        x2[1, 2] = x2[1, 0]  # a singular matrix
    check_against_interpreter(
        node_model("Det", [("x", F, list(shape))], [("y", F, list(shape[:-2]))]), {"x": x2}, rtol=1e-4, atol=1e-5
    )


# Half-precision MatMul and Softmax round like the reference ----------------------------------------------

BF16 = TensorProto.BFLOAT16


@pytest.mark.parametrize("elem", [H, BF16])
def test_half_matmul_add_softmax_match_reference_exactly(elem):
    """fp16/bf16 MatMul accumulates in float32 and rounds once; Softmax rounds each step as numpy does
    (bf16: element-by-element bf16 sums). A fused Add after the MatMul must see the rounded product."""
    import ml_dtypes

    dtype = np.float16 if elem == H else ml_dtypes.bfloat16
    rng = np.random.default_rng(13)
    nodes = [
        helper.make_node("MatMul", ["a", "b"], ["p"]),
        helper.make_node("Add", ["p", "c"], ["q"]),
        helper.make_node("Softmax", ["q"], ["y"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "attn",
        [
            helper.make_tensor_value_info("a", elem, [2, 4, 16]),
            helper.make_tensor_value_info("b", elem, [2, 16, 6]),
            helper.make_tensor_value_info("c", elem, [4, 6]),
        ],
        [helper.make_tensor_value_info("y", elem, [2, 4, 6])],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    feeds = {
        "a": rng.standard_normal((2, 4, 16)).astype(dtype),
        "b": rng.standard_normal((2, 16, 6)).astype(dtype),
        "c": (rng.standard_normal((4, 6)) * 2).astype(dtype),
    }
    check_against_interpreter(m, feeds, rtol=0, atol=0)


# Gemm and MatMul: every case on the register-tiled schedule (B packed into zero-padded panels) ---------


@pytest.mark.parametrize("constant_b", [True, False])
@pytest.mark.parametrize("trans_a,trans_b", [(0, 0), (0, 1), (1, 0), (1, 1)])
@pytest.mark.parametrize("m,k,n", [(13, 20, 37), (1, 24, 10), (3, 5, 5)])
def test_gemm(constant_b, trans_a, trans_b, m, k, n):
    """Gemm equals the interpreter for both transposes, a constant (prepacked) or run-time B, N and M
    that do not fit the register tile (padded, then cropped), alpha, beta and a broadcast C."""
    from onnx import numpy_helper

    rng = np.random.default_rng(m * 100 + n)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
    c = rng.standard_normal((1, n)).astype(np.float32)
    ins = [("a", F, list(a.shape)), ("c", F, [1, n])] + ([] if constant_b else [("b", F, list(b.shape))])
    inits = [numpy_helper.from_array(b, "b")] if constant_b else []
    model = node_model(
        "Gemm", ins, [("y", F, [m, n])], initializers=inits, transA=trans_a, transB=trans_b, alpha=0.5, beta=2.0
    )
    model.graph.node[0].input[:] = ["a", "b", "c"]
    feeds = {"a": a, "c": c} if constant_b else {"a": a, "b": b, "c": c}
    check_against_interpreter(model, feeds, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "a_shape,b_shape,constant_b",
    [
        ((13, 20), (20, 50), True),
        ((20,), (20, 37), True),  # 1-D A
        ((2, 13, 20), (20, 40), True),  # batched A, constant 2-D B
        ((2, 3, 13, 20), (3, 20, 37), False),  # broadcast batch
        ((3, 12, 8), (1, 8, 16), False),  # B's batch of 1 broadcast
        ((2, 13, 20), (20,), False),  # 1-D B
        ((197, 16), (16, 48), False),  # prime M: rows padded to the tile
    ],
)
def test_matmul(a_shape, b_shape, constant_b):
    from onnx import numpy_helper

    rng = np.random.default_rng(len(a_shape) * 10 + len(b_shape))
    a = rng.standard_normal(a_shape).astype(np.float32)
    b = rng.standard_normal(b_shape).astype(np.float32)
    ins = [("a", F, list(a_shape))] + ([] if constant_b else [("b", F, list(b_shape))])
    inits = [numpy_helper.from_array(b, "b")] if constant_b else []
    out_shape = list(np.matmul(a, b).shape)
    model = node_model("MatMul", ins, [("y", F, out_shape)], initializers=inits)
    model.graph.node[0].input[:] = ["a", "b"]
    check_against_interpreter(model, {"a": a} if constant_b else {"a": a, "b": b}, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "a_shape,n,addend",
    [
        ((2, 13, 20), 40, "bias"),  # the rows the reverted schedule-level flattening got wrong
        ((24, 1, 20), 37, "bias"),  # a CRNN classifier: one row per time step, N off the panel width
        ((2, 3, 5, 20), 16, "residual"),  # several batch dims, an addend of the product's shape
        ((3, 2, 20), 33, "per-batch"),  # an addend along a batch axis: stays after the output Reshape
    ],
)
def test_batched_matmul_against_one_weight_flattened(a_shape, n, addend):
    """MatMul(a[..., M, K], W[K, N]) + c, which O2's flatten-matmul-batch compiles as one 2-D product
    (a Gemm when c is a bias) between Reshape views, equals numpy's batched product."""
    from onnx import numpy_helper

    rng = np.random.default_rng(sum(a_shape) + n)
    a = rng.standard_normal(a_shape).astype(np.float32)
    w = rng.standard_normal((a_shape[-1], n)).astype(np.float32)
    out_shape = (*a_shape[:-1], n)
    c_shape = {"bias": (n,), "residual": out_shape, "per-batch": (a_shape[0],) + (1,) * (len(a_shape) - 1)}[addend]
    c = rng.standard_normal(c_shape).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w")] + ([numpy_helper.from_array(c, "c")] if addend == "bias" else [])
    inputs = [helper.make_tensor_value_info("a", F, list(a_shape))]
    if addend != "bias":
        inputs.append(helper.make_tensor_value_info("c", F, list(c_shape)))
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "w"], ["m"]), helper.make_node("Add", ["c", "m"], ["y"])],
        "flattened",
        inputs,
        [helper.make_tensor_value_info("y", F, list(out_shape))],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    feeds = {"a": a} if addend == "bias" else {"a": a, "c": c}
    rep = check_against_interpreter(model, feeds, rtol=1e-4, atol=1e-4)
    want = np.matmul(a.astype(np.float64), w.astype(np.float64)) + c
    np.testing.assert_allclose(rep.run(feeds)[0], want, rtol=1e-4, atol=1e-4)


def test_rows_are_padded_to_whole_register_tiles_of_the_target():
    """A row count whose best dividing tile is under 4 rows, or under the target's tile where whole
    tiles add at most 1/8, is computed rounded up (AVX-512: 8-row tiles, AVX2: 6)."""
    from codegen.target import parse_target
    from codegen.tvm.lower.linalg import _padded_rows

    avx512 = parse_target("x86-64:vector_bits=512").schedule_params()
    avx2 = parse_target("x86-64:vector_bits=256").schedule_params()
    tile512, tile256 = avx512.mm_rows(avx512.mm_vectors), avx2.mm_rows(avx2.mm_vectors)
    assert (tile512, tile256) == (8, 6)
    assert _padded_rows(128, tile512) == 128 and _padded_rows(128, tile256) == 132  # BERT's rows: 4-row tiles on AVX2
    assert _padded_rows(197, tile512) == 200 and _padded_rows(197, tile256) == 198  # ViT's: prime
    assert _padded_rows(49, tile512) == 49  # 7-row tiles; 56 rows would add 1/7
    assert _padded_rows(8, tile256) == 8  # 4-row tiles; 12 rows would add half
    assert _padded_rows(6, tile256) == 6 and _padded_rows(5, tile512) == 5  # one tile or less


@pytest.mark.parametrize("bits", [256, 512])
def test_matmul_over_padded_rows_matches_interpreter(bits):
    """The rows past the last (132 for 128 on AVX2) read the last row again and are dropped."""
    from onnx import numpy_helper

    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(rng.standard_normal((64, 48)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "mm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [128, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [128, 48])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.standard_normal((128, 64)).astype(np.float32)
    check_against_interpreter(model, {"x": x}, rtol=1e-4, atol=1e-4, target=f"x86-64:vector_bits={bits}")


def test_avx2_matmul_k_chunks():
    """On AVX2 a matmul whose column panel of B is over ``mm_chunk_bytes`` (24 KiB) along K runs K
    in as few even chunks of at most 24 KiB of the panel (384 steps of a 16-column tile) as fit,
    outside its row blocks. Others keep one K loop: K = 384 (one chunk), 12 rows (2 row blocks),
    accumulators past 128 KiB, 8 panels (too few tasks), AVX-512 (no chunks, unmeasured there)."""
    from codegen.target import ScheduleParams
    from codegen.tvm.schedule_matmul import matmul_k_chunk

    avx2 = ScheduleParams.x86(8, 16)
    assert matmul_k_chunk(avx2, 768, 132, 6, 16, 192) == 384  # BERT's [128, 768] x [768, 3072]
    assert matmul_k_chunk(avx2, 3072, 132, 6, 16, 48) == 384
    assert matmul_k_chunk(avx2, 1000, 132, 6, 16, 48) == 250  # the largest divisor of at most 384
    assert matmul_k_chunk(avx2, 512, 84, 6, 16, 500) == 256  # the CRNN's classifier: 2 x 16 KiB
    assert matmul_k_chunk(avx2, 384, 132, 6, 16, 48) == 0
    assert matmul_k_chunk(avx2, 768, 12, 6, 16, 48) == 0
    assert matmul_k_chunk(avx2, 768, 3136, 4, 16, 48) == 0
    assert matmul_k_chunk(avx2, 768, 132, 6, 16, 8) == 0
    assert matmul_k_chunk(ScheduleParams.x86(16, 32), 768, 128, 8, 32, 96) == 0


@pytest.mark.parametrize("batch", [None, 3])
def test_avx2_k_chunked_matmul_matches_interpreter(batch):
    """A [48, 1536] x [1536, 256] product plus a bias, alone or batched over one weight, scheduled
    for AVX2: K runs in 4 chunks of 384 outside the row blocks, and the result matches the
    interpreter (the chunks keep the sum's order)."""
    import tvm
    from onnx import numpy_helper
    from tvm import te

    from codegen.plan import build_plan
    from codegen.target import parse_target
    from codegen.tvm.kernel import anchor_kind, spec_to_te
    from codegen.tvm.registry import get_lowering
    from codegen.tvm.schedule import apply_schedule
    from compiler.driver import prepare_for_codegen
    from frontends.onnx import import_model

    rng = np.random.default_rng(5)
    lead = [] if batch is None else [batch]
    w = numpy_helper.from_array((rng.standard_normal((1536, 256)) * 0.05).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(256).astype(np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["t"]), helper.make_node("Add", ["t", "b"], ["y"])],
        "mm",
        [helper.make_tensor_value_info("x", F, [*lead, 48, 1536])],
        [helper.make_tensor_value_info("y", F, [*lead, 48, 256])],
        [w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    params = parse_target("x86-64:vector_bits=256").schedule_params()
    (call,) = build_plan(prepare_for_codegen(import_model(model), "O2"), get_lowering, schedule=params).calls
    placeholders, outputs = spec_to_te(call.spec, [], params)
    scheduled, used = apply_schedule(
        tvm.IRModule({"main": te.create_prim_func(placeholders + outputs)}), anchor_kind(call.spec), params
    )
    assert used == "matmul"
    import re

    # 4 chunks of 384 steps, the row blocks between them
    assert re.search(r"for rk_0, i\d_0, rk_1 in T\.grid\(4, 8, 384\)", str(scheduled))
    x = rng.standard_normal((*lead, 48, 1536)).astype(np.float32)
    check_against_interpreter(model, {"x": x}, rtol=1e-4, atol=1e-4, target="x86-64:vector_bits=256")
