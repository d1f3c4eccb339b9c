"""64-bit flattened indexing for tensors of more than 2^31 - 1 elements, 32-bit for the rest.

A kernel touching a tensor of rank > 1 and more than 2^31 - 1 elements is compiled on CPU targets
when every op in it is elementwise or a reduction (``codegen.sizes.check_index_width`` asks each
op's ``OpDef.fusion``); it takes the generic schedule, and its lowered TIR is checked for int32
index arithmetic that may wrap (``codegen.tvm.index_width``). Other kernels are refused naming
the node. Here: the LLVM IR of each allowed class over [2, 2^30 + 1] (built, not run), the
planner's refusals, the TIR check on kernels that would wrap, and one compiled run (ReduceMax
over 2 GiB of int8; marked slow: 4 to 8 s and a 2.9 GiB peak).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from tvm import s_tir, te, tirx

from codegen.errors import CodegenError
from codegen.plan import FusedOp, KernelSpec, build_plan
from codegen.tvm.index_width import IndexCapture, overflowing_index_arithmetic
from codegen.tvm.kernel import build_config, build_kernel_module
from codegen.tvm.registry import get_lowering
from codegen.tvm.te_util import INT32_MAX, expr_dtype, index_shape
from compiler.ir.builder import Builder
from compiler.ir.core import Graph
from compiler.ir.types import DType, TensorType

TARGET = {"kind": "llvm", "mcpu": "znver4"}
N = (1 << 30) + 1
WIDE = (2, N)  # 2^31 + 2 elements: each dim fits int32, the flattened offset does not
UNROLL_OFF = {"tirx.UnrollLoop": {"auto_max_depth": -1}}


def test_index_shape_widens_only_past_int32():
    assert index_shape((3, 4)) == (3, 4) and all(type(d) is int for d in index_shape((3, 4)))
    assert index_shape((1, INT32_MAX)) == (1, INT32_MAX)
    wide = index_shape(WIDE)
    assert all(isinstance(d, tirx.IntImm) and expr_dtype(d) == "int64" for d in wide)
    assert [int(d) for d in wide] == list(WIDE)


def kernel(op, inputs, outputs, **attrs):
    """A one-op KernelSpec: ``inputs`` and ``outputs`` are (shape, dtype) pairs."""
    fop = FusedOp(
        op,
        tuple(sorted(attrs.items())),
        tuple(("in", k) for k in range(len(inputs))),
        (),
        tuple(inputs),
        tuple(outputs),
    )
    return KernelSpec((fop,), tuple(inputs), tuple((0, r, *t) for r, t in enumerate(outputs)))


def _constants(pattern, text, at_least):
    return [int(c) for c in re.findall(pattern, text) if abs(int(c)) >= at_least]


def row_offsets(spec):
    """In the LLVM IR of the kernel's compute functions (its body and parallel lambdas): the i32
    multiplies and shifts by a constant of at least 2^16 (a row index times a row's stride, which
    wraps past 2^31 - 1), and the i64 arithmetic and pointer offsets by a constant of at least 2^30
    (a row's stride or offset computed in 64 bits)."""
    lib, used = build_kernel_module(spec, "k", TARGET, 16)
    assert used == "generic"  # wide kernels take the generic schedule (Softmax's would not build)
    ll = lib.inspect_source("ll")
    functions = r"^define [^\n]*@(?:\w+_compute_|__tvm_parallel_lambda[\w.]*)\(.*?^\}"
    body = "\n".join(re.findall(functions, ll, re.S | re.M))
    assert body
    narrow = _constants(r"= (?:mul|shl) (?:nsw |nuw )*i32 [^,\n]+, (-?\d+)", body, 1 << 16)
    wide = _constants(r"= (?:mul|shl|add) (?:nsw |nuw )*i64 [^,\n]+, (-?\d+)", body, 1 << 30)
    wide += _constants(r"getelementptr[^\n]*?, i64 (-?\d+)", body, 1 << 30)
    return narrow, wide


I8, F32 = "int8", "float32"
ALLOWED = {
    "Not-bool": kernel("Not", [(WIDE, "bool")], [(WIDE, "bool")]),
    "Neg-int8": kernel("Neg", [(WIDE, I8)], [(WIDE, I8)]),
    "Add-broadcast-row": kernel("Add", [(WIDE, I8), ((1, N), I8)], [(WIDE, I8)]),
    "Cast-int8-float32": kernel("Cast", [(WIDE, I8)], [(WIDE, F32)], to=1),
    "ReduceSum-last-axis": kernel("ReduceSum", [(WIDE, I8)], [((2,), I8)], axes=(1,), keepdims=0),
    "ReduceSum-first-axis": kernel("ReduceSum", [(WIDE, I8)], [((N,), I8)], axes=(0,), keepdims=0),
    "ReduceMax-last-axis": kernel("ReduceMax", [(WIDE, I8)], [((2,), I8)], axes=(1,), keepdims=0),
    "ReduceMax-first-axis-float32": kernel("ReduceMax", [(WIDE, F32)], [((N,), F32)], axes=(0,), keepdims=0),
    "Softmax-last-axis": kernel("Softmax", [(WIDE, F32)], [(WIDE, F32)], axis=-1),
}


@pytest.mark.parametrize("spec", list(ALLOWED.values()), ids=list(ALLOWED))
def test_each_allowed_class_builds_with_64_bit_row_offsets(spec):
    """These failed before ("Literal value 2147483650 exceeds range of int32"); they need automatic
    unrolling off (``build_config``: TVM's unroll count overflows int32). Built, each passed the
    lowered-TIR check; the LLVM IR multiplies no row index by a stride in 32 bits. (The i32
    arithmetic left is a parallel loop's split into tasks, of an extent that fits.)"""
    assert build_config(spec) == UNROLL_OFF
    narrow, wide = row_offsets(spec)
    assert narrow == [] and wide


def test_a_wide_softmax_allocates_no_buffer_of_its_size():
    """Its row-by-row form keeps each row's exponentials in a buffer, which the generic schedule
    makes as large as the input (8 GiB here); over a wide tensor it takes the one-stage form."""
    lib, _ = build_kernel_module(ALLOWED["Softmax-last-axis"], "k", TARGET, 16)
    workspaces = re.findall(r"\(i32 \d+, i32 %dev_id, i64 (\d+)", lib.inspect_source("ll"))
    assert all(int(size) < 1 << 20 for size in workspaces)


def test_global_average_pool_over_a_plane_past_int32_builds():
    """Its vector-at-a-time form flattens the plane in int32 (it failed: "Literal value
    2147488281 exceeds range of int32"); over such a plane it takes the one-stage form."""
    plane = (1, 1, 46341, 46341)
    narrow, _ = row_offsets(kernel("GlobalAveragePool", [(plane, F32)], [((1, 1, 1, 1), F32)]))
    assert narrow == []


def test_small_kernels_keep_32_bit_offsets_and_the_default_build():
    spec = kernel("Neg", [((64, 1000), I8)], [((64, 1000), I8)])
    assert build_config(spec) == {}
    lib, _ = build_kernel_module(spec, "k", TARGET, 16)
    assert re.search(r"mul (?:nsw |nuw )*i32", lib.inspect_source("ll"))  # the flattened offsets


def _lowered(outputs, inputs=()):
    """The TIR of ``outputs`` (TE) as ``tvm.tirx.build`` lowers it under the generic schedule."""
    import tvm

    from codegen.tvm.schedule import schedule_generic

    sch = s_tir.Schedule(tvm.IRModule({"main": te.create_prim_func([*inputs, *outputs])}))
    schedule_generic(sch, 16)
    capture = IndexCapture()
    with tvm.transform.PassContext(config=UNROLL_OFF, instruments=[capture]):
        tvm.tirx.build(sch.mod, tvm.target.Target(TARGET))
    return capture.module


def test_int32_index_arithmetic_that_may_wrap_is_found():
    """A value computed from the indices in int32 over [2, 2^30 + 1] wraps; TVM's own flattening
    (int64) and arithmetic on loaded data (it wraps as ONNX says) are not reported."""
    iota = te.compute(index_shape(WIDE), lambda i, j: i.astype("int32") * N + j.astype("int32"), name="iota")
    (found,) = overflowing_index_arithmetic(_lowered([iota]))
    assert "1073741825" in found and "2147483649]" in found
    x = te.placeholder(index_shape(WIDE), "int32", name="x")
    twice = te.compute(index_shape(WIDE), lambda i, j: x[i, j] * 2 + x[1 - i, j], name="twice")
    assert overflowing_index_arithmetic(_lowered([twice], [x])) == []


def test_a_parallel_loop_near_2_31_stays_serial():
    """LLVM code generation splits a parallel loop into tasks in the loop's index type: an int32
    loop of nearly 2^31 iterations would wrap there, so the generic schedule leaves it serial
    (an [n, 1] tensor: not wide, but its outer loop is that long); the TIR check would refuse it."""
    shape = (INT32_MAX, 1)
    lib, _ = build_kernel_module(kernel("Neg", [(shape, I8)], [(shape, I8)]), "k", TARGET, 16)
    assert "num_task" not in lib.inspect_source("ll")
    import tvm

    x = te.placeholder(shape, "int8", name="x")
    neg = te.compute(shape, lambda i, j: -x[i, j], name="neg")
    sch = s_tir.Schedule(tvm.IRModule({"main": te.create_prim_func([x, neg])}))
    sch.parallel(sch.get_loops(sch.get_sblock("neg"))[0])
    (found,) = overflowing_index_arithmetic(sch.mod)
    assert "parallel loop of 2147483647 iterations" in found


# ------------------------------------------------------------------------------------ the planner


def _graph(build, dtype=DType.INT8):
    """A graph of ``build(b, x)`` over an input ``x`` of shape [2, 2^30 + 1]."""
    g = Graph("main")
    b = Builder(g)
    y = build(b, b.param("x", TensorType(dtype, WIDE)))
    y.name = "y"
    g.outputs = [y]
    return g


def reduce_max(b, x, name=""):
    return b.op("ReduceMax", [x, b.constant(np.array([1], np.int64), "axes")], {"keepdims": 0}, name=name)


def test_elementwise_and_reduction_kernels_over_wide_tensors_are_planned():
    g = _graph(lambda b, x: reduce_max(b, b.op("Neg", [x], name="neg")))
    plan = build_plan(g, get_lowering, max_tensor_bytes=1 << 40)
    assert [c.spec.ops[0].op for c in plan.calls] == ["Neg", "ReduceMax"]


def matmul(b, x):
    return b.op("MatMul", [x, b.param("w", TensorType(DType.FLOAT32, (N, 1)))], name="mm")


@pytest.mark.parametrize(
    "build, dtype, node, op",
    [
        (lambda b, x: b.op("Transpose", [x], {"perm": [1, 0]}, name="t"), DType.INT8, "t", "Transpose"),
        (matmul, DType.FLOAT32, "mm", "MatMul"),
    ],
    ids=["injective", "anchor"],
)
def test_other_kernels_over_wide_tensors_are_refused_naming_the_node(build, dtype, node, op):
    with pytest.raises(CodegenError, match="elementwise or a reduction") as info:
        build_plan(_graph(build, dtype), get_lowering, max_tensor_bytes=1 << 40)
    assert info.value.node == node and info.value.op == op
    assert "value 'x' of shape [2, 1073741825]" in str(info.value) and f"{op} is " in str(info.value)


def test_a_fused_group_is_refused_naming_its_op_that_is_not_elementwise():
    from passes.fuse import FUSED_OP, FusePass

    g = _graph(lambda b, x: b.op("Relu", [matmul(b, x)], name="relu"), DType.FLOAT32)
    FusePass()(g)
    fused = [n for n in g.nodes if n.op == FUSED_OP]
    assert fused and "MatMul" in [n.op for n in fused[0].attrs["body"].nodes]
    with pytest.raises(CodegenError, match="MatMul is anchor") as info:
        build_plan(g, get_lowering, max_tensor_bytes=1 << 40)
    assert info.value.node == "mm"


def test_cuda_kernels_over_wide_tensors_are_refused():
    g = _graph(lambda b, x: reduce_max(b, x, name="rmax"))
    with pytest.raises(CodegenError, match="on --target cuda") as info:
        build_plan(g, get_lowering, target_name="cuda", max_tensor_bytes=1 << 40)
    assert info.value.node == "rmax"


# ---------------------------------------------------------------------------------- one real run


def _available_bytes() -> int:
    try:
        with open("/proc/meminfo") as f:
            return next(int(line.split()[1]) << 10 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration):
        return 0


@pytest.mark.slow
@pytest.mark.skipif(_available_bytes() < 6 << 30, reason="needs about 3 GiB of free memory")
def test_reduce_max_over_2_31_elements_gives_numpys_answer(tmp_path):
    """ReduceMax over an int8 [2, 2^30 + 1], compiled and run: its peak is the input (2 GiB, not
    copied by ``Model.run``) and the library's arena, which the input is copied into (2 GiB); the
    input is zeros (pages untouched until read) but for the maxima, one of them at the last
    element, offset 2^31 + 1. 4 to 8 s on 2 cores (half of it the compile), 2.9 GiB at peak."""
    from onnx import TensorProto, helper

    import compiler
    import compiler.runtime

    node = helper.make_node("ReduceMax", ["x"], ["y"], axes=[1], keepdims=0)
    graph = helper.make_graph(
        [node],
        "wide",
        [helper.make_tensor_value_info("x", TensorProto.INT8, list(WIDE))],
        [helper.make_tensor_value_info("y", TensorProto.INT8, [2])],
    )
    path = str(tmp_path / "wide.so")
    compiler.compile(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    x = np.zeros(WIDE, np.int8)
    x[0, N - 1], x[1, 3], x[1, N - 1] = 5, 7, 9
    y = compiler.runtime.load(path).run({"x": x})["y"]
    np.testing.assert_array_equal(y, np.max(x, axis=1))
    assert y.tolist() == [5, 9]
