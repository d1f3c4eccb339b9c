"""Float16 products on tensor cores (``codegen/cuda/tensor_core.py``), checked without a GPU: the
schedule's loops run on the CPU in its emulated form (the same tiling, padding, weight-panel reads
and epilogue, with plain loops in place of the ``wmma`` intrinsics) against numpy; the real form
generates ``wmma`` code that nvcc and ptxas accept for sm_80 and sm_90; the rule's choices (which
products, which tile) and its fallback to SIMT cores."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import tvm
from onnx import TensorProto, helper, numpy_helper
from tvm import te

from codegen import CodegenError, parse_target
from codegen.cuda import kernel as cuda_kernel
from codegen.cuda.kernel import _generate
from codegen.cuda.nvcc import compile_fatbin
from codegen.cuda.schedule import SM_COUNT, gpu_schedule
from codegen.cuda.tensor_core import (
    MAX_SHARED_BYTES,
    TENSOR_CORE_TILES,
    TensorCoreTile,
    copy_axes,
    schedule_tensor_core,
    tensor_core_operands,
    tensor_core_tile,
)
from compiler.driver import DEFAULT_PIPELINE, compile_model

PANEL = 32  # the CPU layout's prepacked weight panels: B as [N / 32, K, 32]


def _product(m: int, k: int, n: int, b_layout: str, bias: bool = True, dtype: str = "float16"):
    """A float16 product accumulated in float32 and cast back, as the lowerings write it: ``A [1, m, k]``
    times B stored ``"panels"`` ([n/32, k, 32]), ``"nk"`` ([n, k], a Gemm with transB) or ``"kn"``,
    plus a bias. Returns the PrimFunc, a function of numpy inputs giving the expected output, and
    the inputs' shapes."""
    a = te.placeholder((1, m, k), dtype, name="in0")
    shapes = {"panels": (n // PANEL, k, PANEL), "nk": (n, k), "kn": (k, n)}
    b = te.placeholder(shapes[b_layout], dtype, name="in1")
    read = {
        "panels": lambda j, r: b[j // PANEL, r, j % PANEL],
        "nk": lambda j, r: b[j, r],
        "kn": lambda j, r: b[r, j],
    }[b_layout]
    r = te.reduce_axis((0, k), "k")
    prod = te.compute(
        (1, m, n), lambda s, i, j: te.sum(a[s, i, r].astype("float32") * read(j, r).astype("float32"), axis=r)
    )
    params = [a, b]
    if bias:
        c = te.placeholder((n,), dtype, name="in2")
        out = te.compute((1, m, n), lambda s, i, j: prod[s, i, j].astype(dtype) + c[j], name="out")
        params.append(c)
    else:
        out = te.compute((1, m, n), lambda s, i, j: prod[s, i, j].astype(dtype), name="out")
    func = te.create_prim_func(params + [out]).with_attr("global_symbol", "mm")

    def expected(a_np, b_np, c_np=None):
        dense = {
            "panels": lambda: b_np.transpose(1, 0, 2).reshape(k, n),
            "nk": lambda: b_np.T,
            "kn": lambda: b_np,
        }[b_layout]()
        y = (a_np[0].astype(np.float64) @ dense.astype(np.float64)).astype(np.float32).astype(np.float16)
        return y if c_np is None else (y + c_np)[None]

    return func, expected, [tuple(int(d) for d in p.shape) for p in params]


@pytest.mark.parametrize(
    "m,k,n,b_layout",
    [
        (128, 768, 256, "panels"),  # BERT's projections (prepacked weights)
        (100, 200, 96, "panels"),  # rows, columns and K all padded to whole tiles
        (64, 160, 48, "nk"),  # a Gemm with transB: B read along K
        (49, 64, 64, "kn"),  # a 7 x 7 map's rows
    ],
)
def test_emulated_tensor_core_schedule_matches_numpy(m, k, n, b_layout):
    """The largest and the smallest tile's loop nests, run on the CPU, compute the product: the
    tiling, the padding of rows, columns and K, the B layouts and the inlined epilogue."""
    func, expected, shapes = _product(m, k, n, b_layout)
    assert tensor_core_operands(func) == (1, m, n)
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(shape).astype("float16") for shape in shapes]
    want = expected(*inputs).astype(np.float32)
    for tile in (TENSOR_CORE_TILES[0], TENSOR_CORE_TILES[-1]):  # the largest and the smallest
        lib = tvm.tirx.build(schedule_tensor_core(func, tile, emulate=True).mod, "llvm")
        out = tvm.runtime.tensor(np.zeros((1, m, n), "float16"))
        lib(*[tvm.runtime.tensor(x) for x in inputs], out)
        got = out.numpy().astype(np.float32)
        # float32 sums in another order, one float16 rounding of the product and of the sum with the bias
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-3 * np.abs(want).max(), err_msg=str(tile))


def test_tile_gives_every_multiprocessor_a_block():
    # BERT-base's 128 x 768 projections on an H100/H200 (132 multiprocessors): 16 x 32 tiles, 192 blocks
    assert tensor_core_tile(1, 128, 768, 132) == TensorCoreTile(1, 2, 1, 1)
    # its 128 x 2304 QKV projection: 32 x 64 tiles, 144 blocks
    assert tensor_core_tile(1, 128, 2304, 132) == TensorCoreTile(2, 2, 1, 2)
    # a large product takes the largest tile
    assert tensor_core_tile(8, 512, 1024, 132) == TENSOR_CORE_TILES[0]
    # 49 rows: a 64-row tile would pad by 1.31, a 128-row one by 2.6
    assert tensor_core_tile(1, 49, 4096, 108).rows <= 64
    assert all(t.shared_bytes() <= MAX_SHARED_BYTES for t in TENSOR_CORE_TILES)


def test_copies_are_vectors_where_the_source_is_contiguous():
    """A is read along K (row-major); B along K for a ``transB`` Gemm, along N for a plain or
    prepacked one (then kept as [K, N] in shared memory)."""
    assert copy_axes(_product(64, 64, 64, "panels")[0]) == ("reduction", "spatial")
    assert copy_axes(_product(64, 64, 64, "nk")[0]) == ("reduction", "reduction")
    assert copy_axes(_product(64, 64, 64, "kn")[0]) == ("reduction", "spatial")
    assert copy_axes(_product(64, 60, 64, "nk")[0]) == (None, None)  # K = 60: no whole vectors


def test_products_the_rule_takes():
    assert tensor_core_operands(_product(128, 64, 64, "nk")[0]) == (1, 128, 64)
    # float32 operands stay on SIMT cores; so does a product with a side under one fragment
    a = te.placeholder((64, 64), "float32", name="A")
    b = te.placeholder((64, 64), "float32", name="B")
    r = te.reduce_axis((0, 64), "k")
    c = te.compute((64, 64), lambda i, j: te.sum(a[i, r] * b[r, j], axis=r))
    assert tensor_core_operands(te.create_prim_func([a, b, c])) is None
    assert tensor_core_operands(_product(8, 64, 64, "nk", bias=False)[0]) is None


@pytest.mark.parametrize("arch,dtype", [("sm_80", "float16"), ("sm_90", "float16"), ("sm_80", "bfloat16")])
def test_16_bit_matmul_compiles_to_wmma(arch, dtype, tmp_path):
    """BERT's projection with its prepacked weights and bias: one kernel of ``wmma`` loads, products and
    stores that nvcc compiles and ptxas accepts, 32 threads per warp and the tile's warps per block."""
    from test_cuda import _need_nvcc

    func = _product(128, 768, 2304, "panels", dtype=dtype)[0]
    target = tvm.target.Target(parse_target(f"cuda:{arch}").to_tvm())
    kernel = _generate(gpu_schedule(tvm.IRModule({"main": func}), target), target, "mm", 4)
    assert kernel.schedule == "tensor-core"
    assert "wmma::mma_sync" in kernel.source and "wmma::load_matrix_sync" in kernel.source
    fragment = {"float16": "half", "bfloat16": "nv_bfloat16"}[dtype]
    assert f"wmma::matrix_a, 16, 16, 16, {fragment}, nvcuda::wmma::row_major>" in kernel.source
    (launch,) = kernel.launches
    tile = tensor_core_tile(1, 128, 2304, 132 if arch == "sm_90" else 108)
    assert launch.block == (32, tile.warps, 1)
    assert launch.grid[0] * launch.grid[1] == (128 // tile.rows) * (2304 // tile.cols)
    _need_nvcc()
    source = tmp_path / "mm.cu"
    source.write_text(kernel.source)
    (report,) = compile_fatbin(str(source), str(tmp_path / "mm.fatbin"), arch)
    assert report.registers > 0


def _fp16_mlp() -> onnx.ModelProto:
    rng = np.random.default_rng(3)
    w1 = numpy_helper.from_array((rng.standard_normal((64, 128)) * 0.1).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(np.zeros(128, np.float32), "b1")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Add", ["h", "b1"], ["y"])],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 128, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 128, 128])],
        [w1, b1],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_float16_model_reports_tensor_core_kernels(tmp_path):
    """``convert-float16``'s matmul with its bias is one tensor-core kernel; the library's stats say so."""
    from test_cuda import _need_nvcc

    _need_nvcc()
    pipeline = f"{DEFAULT_PIPELINE},convert-float16"
    result = compile_model(_fp16_mlp(), str(tmp_path / "a.so"), "cuda:sm_90", pipeline=pipeline)
    assert result.stats["schedules"] == {"dlight": 1, "tensor-core": 1}  # the input's cast, the product
    labels = result.stats["cuda_kernel_labels"]
    (matmul,) = [name for name, label in labels.items() if label.startswith("matmul")]
    assert all(f["spill_stores"] == 0 for f in result.stats["cuda_resources"][matmul])
    # the target option that keeps float16 products on SIMT cores
    simt = compile_model(_fp16_mlp(), str(tmp_path / "b.so"), "cuda:sm_90,tensor_cores=0", pipeline=pipeline)
    assert simt.stats["schedules"] == {"dlight": 2}


def test_tensor_cores_target_option():
    assert parse_target("cuda:sm_90").cuda_tensor_cores
    assert not parse_target("cuda:sm_90,tensor_cores=0").cuda_tensor_cores
    for text in ("x86-64:tensor_cores=0", "cuda:tensor_cores=yes"):
        with pytest.raises(CodegenError, match="tensor_cores"):
            parse_target(text)


def test_refused_tensor_core_form_is_generated_on_simt_cores(monkeypatch):
    """Where TVM's code generation refuses the tensor-core form, the kernel is generated again on SIMT
    cores instead of failing the compile."""
    func = _product(128, 64, 128, "nk")[0]
    target = tvm.target.Target(parse_target("cuda:sm_90").to_tvm())
    assert cuda_kernel.scheduled_kernel(func, target, "mm", 4).schedule == "tensor-core"
    generate = cuda_kernel._generate

    def refuse_wmma(mod, *args):
        if "wmma.matrix_a" in mod.script():
            raise tvm.error.InternalError("refused")
        return generate(mod, *args)

    monkeypatch.setattr(cuda_kernel, "_generate", refuse_wmma)
    kernel = cuda_kernel.scheduled_kernel(func, target, "mm", 4)
    assert kernel.schedule == "dlight" and "wmma" not in kernel.source


def _fp16_convnet() -> onnx.ModelProto:
    """Convolutions the tensor-core rule takes after ``convert-float16`` / ``convert-bfloat16``: 3x3
    with padding, bias and ReLU; strided 1x1; 3x3 strided with padding on 20 channels (not a multiple
    of the packed block). The max pool between them is there for bfloat16: its -inf and NaN
    constants did not compile for CUDA, nor did the rounding to bfloat16 in a vector epilogue."""
    rng = np.random.default_rng(5)

    def init(name, *shape):
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.2).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], strides=[2, 2]),
        helper.make_node("Conv", ["c2", "w3"], ["y"], pads=[1, 1, 1, 1], strides=[2, 2]),
    ]
    graph = helper.make_graph(
        nodes,
        "convs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 40, 40])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 20, 3, 3])],
        [init("w1", 32, 16, 3, 3), init("b1", 32), init("w2", 48, 32, 1, 1), init("w3", 20, 48, 3, 3)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("convert", ["convert-float16", "convert-bfloat16"])
def test_emulated_schedule_matches_each_kernels_own_definition(convert, tmp_path, monkeypatch):
    """Every kernel of the conv net after ``convert-float16`` / ``convert-bfloat16`` that the rule
    takes (convolutions through DLight's GEMM normalisation, with padding, strides, packed weights,
    bias and activation; matmuls are ``test_emulated_tensor_core_schedule_matches_numpy``'s), its
    tensor-core loop nest emulated on the CPU against the kernel's unscheduled TIR built for the CPU
    (float32 sums in another order, one rounding to 16 bits)."""
    funcs = []
    schedule = cuda_kernel.scheduled_kernel

    def record(func, *args):
        funcs.append(func)
        return schedule(func, *args)

    monkeypatch.setattr(cuda_kernel, "scheduled_kernel", record)
    pipeline = f"{DEFAULT_PIPELINE},{convert}"
    from test_cuda import _need_nvcc

    _need_nvcc()
    compile_model(_fp16_convnet(), str(tmp_path / "m.so"), "cuda:sm_90", pipeline=pipeline, jobs=1)  # in-process
    taken = [f for f in funcs if tensor_core_operands(f) is not None]
    assert len(taken) == 3
    rng = np.random.default_rng(0)
    for func in taken:
        buffers = [p.ty for p in func.params]  # each parameter's buffer type: shape, dtype
        inputs = [rng.standard_normal([int(d) for d in b.shape]).astype(str(b.dtype)) for b in buffers[:-1]]
        out = buffers[-1]
        chosen = tensor_core_tile(*tensor_core_operands(func), SM_COUNT["sm_90"])
        modules = [tvm.IRModule({"main": func})]
        modules += [schedule_tensor_core(func, tile, emulate=True).mod for tile in {chosen, TENSOR_CORE_TILES[0]}]
        results = []
        for mod in modules:
            result = tvm.runtime.tensor(np.zeros([int(d) for d in out.shape], str(out.dtype)))
            tvm.tirx.build(mod, "llvm")(*[tvm.runtime.tensor(x) for x in inputs], result)
            results.append(result.numpy().astype(np.float32))
        want, *got = results
        tolerance = 2e-3 if convert == "convert-float16" else 1.6e-2  # 2 units of the last place
        for each in got:
            np.testing.assert_allclose(each, want, rtol=tolerance, atol=tolerance * np.abs(want).max())


@pytest.mark.gpu
@pytest.mark.parametrize(
    "model,convert,tolerance",
    [
        (_fp16_convnet, "convert-float16", 1e-2),
        (_fp16_convnet, "convert-bfloat16", 4e-2),  # 8 significant bits, rounded at each layer
        (_fp16_mlp, "convert-float16", 1e-2),
    ],
)
def test_tensor_core_kernels_match_interpreter_on_gpu(model, convert, tolerance, tmp_path):
    """On a GPU: the 16-bit library (its products on tensor cores) against the float32 interpreter,
    within the 16-bit type's rounding of the outputs' range."""
    from test_cuda import _driver_present, _need_nvcc

    from compiler.runtime import load
    from frontends.onnx.backend import EmberBackend

    if not _driver_present():
        pytest.skip("needs an NVIDIA GPU and driver")
    _need_nvcc()
    out = tmp_path / "m.so"
    result = compile_model(model(), str(out), "cuda:sm_80", pipeline=f"{DEFAULT_PIPELINE},{convert}")
    assert result.stats["schedules"].get("tensor-core", 0) >= 1
    lib = load(str(out))
    name = lib.inputs[0].name
    x = np.random.default_rng(2).standard_normal(lib.inputs[0].shape).astype(np.float32)
    got = list(lib.run({name: x}).values())[0].astype(np.float32)
    want = EmberBackend.prepare(model()).run({name: x})[0]
    np.testing.assert_allclose(got, want, rtol=tolerance, atol=tolerance * np.abs(want).max())
