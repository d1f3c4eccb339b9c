"""The passes of the ``codegen-prepare`` pipeline: semantics kept (the interpreter on the graph before
and after, on random inputs), refusals named, and the Rewriter API they mutate through.

FileCheck tests under tests/filecheck/passes/<pass-name>/ show each rewrite; the recurrent ops
are checked against onnxruntime in tests/codegen/test_rnn_controlflow.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codegen.errors import CodegenError
from compiler import parse_ir
from compiler.ir.builder import Builder
from compiler.ir.core import Graph
from compiler.ir.types import DType, TensorType
from compiler.passes import get_pass
from compiler.rewrite import RewriteListener, Rewriter
from compiler.testing import assert_pass_preserves_semantics

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)
COMPOSITES = [  # ops without a TVM lowering whose ONNX function body expand-functions inlines
    ("Celu", {"alpha": 1.5}),
    ("Celu", {}),
    ("Shrink", {"bias": 0.5, "lambd": 1.0}),
    ("MeanVarianceNormalization", {"axes": [0, 2]}),
]


def _unary_graph(op: str, attrs: dict, shape=(2, 3, 4)) -> Graph:
    g = Graph("main")
    x = g.add_param(TensorType(DType.FLOAT32, shape), "x")
    g.outputs = [Builder(g).op(op, [x], attrs)]
    return g


@pytest.mark.parametrize("op,attrs", COMPOSITES)
@SETTINGS
@given(data=st.data())
def test_expand_functions_keeps_results(op, attrs, data):
    graph = _unary_graph(op, attrs)
    x = np.asarray(data.draw(st.lists(st.floats(-4, 4, width=32), min_size=24, max_size=24)), np.float32)
    after = assert_pass_preserves_semantics(get_pass("expand-functions")(), graph, {"x": x.reshape(2, 3, 4)})
    assert not any(n.op == op for n in after.nodes)


def test_expand_functions_group_normalization():
    g = Graph("main")
    x = g.add_param(TensorType(DType.FLOAT32, (2, 4, 3, 3)), "x")
    s, b = (g.add_param(TensorType(DType.FLOAT32, (4,)), n) for n in ("s", "b"))
    g.outputs = [Builder(g).op("GroupNormalization", [x, s, b], {"num_groups": 2})]
    after = assert_pass_preserves_semantics("expand-functions,infer-shapes", g)
    assert not any(n.op == "GroupNormalization" for n in after.nodes)


def test_expand_functions_asks_the_backend():
    """An op with a TVM lowering stays; the backend option names whose lowerings count."""
    for op in ("Softsign", "Swish"):
        g = _unary_graph(op, {})
        assert not get_pass("expand-functions")()(g).modified
    assert get_pass("expand-functions").from_options({"backend": "tvm"}).backend == "tvm"


SCAN = """graph @scan(%s0: f32[2], %xs: f32[3,2]) {
  %s, %ys = Scan(%s0, %xs) {body = graph @body(%s_1: f32[2], %x: f32[2]) {
    %m = Mul(%s_1, %x) : f32[2]
    %s2 = Add(%m, %x) : f32[2]
    return %s2, %m
  }, num_scan_inputs = 1, scan_input_directions = [DIR], scan_output_axes = [AXIS]} : f32[2], OUT
  return %s, %ys
}"""


@pytest.mark.parametrize("direction,axis,out", [(0, 0, "f32[3,2]"), (1, 1, "f32[2,3]"), (0, -1, "f32[2,3]")])
def test_unroll_scans_keeps_results(direction, axis, out):
    graph = parse_ir(SCAN.replace("DIR", str(direction)).replace("AXIS", str(axis)).replace("OUT", out))
    for seed in range(3):
        after = assert_pass_preserves_semantics("unroll-scans", graph, seed=seed)
    assert not any(n.op == "Scan" for n in after.nodes)


LOOP = """graph @loop(%s0: f32[2], %x: f32[2]) {
  %M = Constant() {value = dense<i64[] [TRIPS]>} : i64[]
  %t = Constant() {value = dense<bool[] [true]>} : bool[]
  %s, %ys = Loop(%M, %t, %s0) {body = graph @body(%i: i64[], %c: bool[], %s_1: f32[2]) {
    %fi = Cast(%i) {to = 1} : f32[]
    %xi = Mul(%x, %fi) : f32[2]
    %s_out = Add(%s_1, %xi) : f32[2]
    %lim = Constant() {value = dense<i64[] [LIMIT]>} : i64[]
    %go = Less(%i, %lim) : bool[]
    return %go, %s_out, %xi
  }} : f32[2], f32[?,2]
  return %s, %ys
}"""


@pytest.mark.parametrize("trips,limit", [(4, 10), (5, 2), (1, 0), (3, 3)])
def test_unroll_loops_keeps_results(trips, limit):
    """A constant trip count and a condition that folds to a constant after each iteration."""
    graph = parse_ir(LOOP.replace("TRIPS", str(trips)).replace("LIMIT", str(limit)))
    after = assert_pass_preserves_semantics("unroll-loops", graph)
    assert not any(n.op == "Loop" for n in after.nodes)


RUN_TIME_CONDITION = """graph @loop(%s0: f32[2], %lim: f32[]) {
  %M = Constant() {value = dense<i64[] [5]>} : i64[]
  %t = Constant() {value = dense<bool[] [true]>} : bool[]
  %s = Loop(%M, %t, %s0) {body = graph @body(%i: i64[], %c: bool[], %s_1: f32[2]) {
    %one = Constant() {value = dense<f32[] [1.0]>} : f32[]
    %s_out = Add(%s_1, %one) : f32[2]
    %m = ReduceMax(%s_out) {keepdims = 0} : f32[]
    %go = Less(%m, %lim) : bool[]
    return %go, %s_out
  }} : f32[2]
  return %s
}"""


@SETTINGS
@given(lim=st.floats(-2, 8, width=32), s0=st.lists(st.floats(-2, 2, width=32), min_size=2, max_size=2))
def test_unroll_loops_masks_a_run_time_condition(lim, s0):
    """Five iterations written out; the carried value freezes once the condition turns false."""
    graph = parse_ir(RUN_TIME_CONDITION)
    after = assert_pass_preserves_semantics(
        "unroll-loops", graph, {"s0": np.array(s0, np.float32), "lim": np.array(lim, np.float32)}
    )
    ops = [n.op for n in after.nodes]
    assert "Loop" not in ops and "Where" in ops and "And" in ops


IF = """graph @main(%c: bool[], %x: f32[2,3]) {
  %z = If(%c) {else_branch = graph @else() {
    %e = Neg(%x) : f32[2,3]
    return %e
  }, then_branch = graph @then() {
    %two = Constant() {value = dense<f32[] [2.0]>} : f32[]
    %t = Mul(%x, %two) : f32[2,3]
    return %t
  }} : f32[2,3]
  return %z
}"""


@pytest.mark.parametrize("cond", [True, False])
def test_select_ifs_keeps_results(cond):
    graph = parse_ir(IF)
    after = assert_pass_preserves_semantics(
        "select-ifs", graph, {"c": np.array(cond), "x": np.arange(6, dtype=np.float32).reshape(2, 3)}
    )
    assert [n.op for n in after.nodes if n.op in ("If", "Where")] == ["Where"]


@pytest.mark.parametrize("cond", ["true", "false"])
def test_inline_constant_ifs_keeps_results(cond):
    text = IF.replace(
        "graph @main(%c: bool[], %x: f32[2,3]) {",
        "graph @main(%x: f32[2,3]) {\n  %c = Constant() {value = dense<bool[] [" + cond + "]>} : bool[]",
    )
    after = assert_pass_preserves_semantics("inline-constant-ifs", parse_ir(text))
    assert not any(n.op == "If" for n in after.nodes)


def test_fold_castlike_keeps_results():
    graph = parse_ir("""graph @main(%x: f16[3]) {
  %c = Constant() {value = dense<f32[] [0.1]>} : f32[]
  %k = CastLike(%c, %x) : f16[]
  %y = Mul(%x, %k) : f16[3]
  return %y
}""")
    assert_pass_preserves_semantics("fold-castlike", graph)


# refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,words",
    [
        (
            IF.replace("%e = Neg(%x) : f32[2,3]", "%e = ReduceSum(%x) {keepdims = 0} : f32[]")
            .replace("return %e\n", "return %e\n")
            .replace("} : f32[2,3]\n  return %z", "} : f32[?]\n  return %z"),
            "If.*different or non-static types",
        ),
        (
            """graph @main(%X: f32[T,1,2], %W: f32[1,2,2], %R: f32[1,2,2]) {
  %Y, %Y_h = RNN(%X, %W, %R) {hidden_size = 2} : f32[T,1,1,2], f32[1,1,2]
  return %Y, %Y_h
}""",
            "RNN: the sequence length must be static",
        ),
        (
            """graph @main(%M: i64[], %s0: f32[2]) {
  %t = Constant() {value = dense<bool[] [true]>} : bool[]
  %s = Loop(%M, %t, %s0) {body = graph @body(%i: i64[], %c: bool[], %s_1: f32[2]) {
    %s_out = Neg(%s_1) : f32[2]
    return %c, %s_out
  }} : f32[2]
  return %s
}""",
            "Loop: cannot be compiled: its trip count is not a compile-time constant",
        ),
    ],
)
def test_check_codegen_ready_names_the_node_and_why(text, words):
    graph = parse_ir(text)
    with pytest.raises(CodegenError, match=words) as info:
        get_pass("check-codegen-ready")()(graph)
    assert info.value.op in ("If", "RNN", "Loop")


# the Rewriter API the passes mutate through ---------------------------------------------------


class Recorder(RewriteListener):
    def __init__(self):
        self.inserted, self.erased = [], []

    def node_inserted(self, node):
        self.inserted.append(node.op)

    def node_erased(self, node):
        self.erased.append(node.op)


def test_inline_region_moves_nodes_binds_params_and_notifies():
    graph = parse_ir(SCAN.replace("DIR", "0").replace("AXIS", "0").replace("OUT", "f32[3,2]"))
    scan = next(n for n in graph.nodes if n.op == "Scan")
    body = scan.attrs["body"]
    b = Builder(graph, before=scan)
    x0 = b.op("Gather", [graph.params[1], b.constant(np.array(0, np.int64))], {"axis": 0})
    recorder = Recorder()
    rw = Rewriter(graph, [recorder], rule_name="test")
    state, out = rw.inline_region(scan, body, [graph.params[0], x0], name_prefix="step0/")
    assert recorder.inserted == ["Mul", "Add"] and len(body) == 0 and not body.outputs
    assert state.producer.op == "Add" and state.producer.graph is graph and state.producer.next is scan
    assert out.producer.operands == (graph.params[0], x0)
    with pytest.raises(Exception, match="2 parameters, 1 arguments"):
        rw.inline_region(scan, body, [x0])


def test_every_preparation_pass_has_filecheck_tests_and_is_listed():
    """Each pass of ``codegen-prepare`` has tests/filecheck/passes/<name>/*.ir and a docstring listing
    its rewrites; ``ember opt --list-passes`` lists them and the pipeline."""
    import pathlib
    import subprocess
    import sys

    from compiler.pipeline import FixedPoint, parse_pipeline

    def names(steps):
        for step in steps:
            if isinstance(step, FixedPoint):
                yield from names(step.steps)
            else:
                yield step.name

    root = pathlib.Path(__file__).parents[1] / "filecheck" / "passes"
    prepare = set(names(parse_pipeline("codegen-prepare")))
    preparation = {
        "decompose-contrib",
        "expand-functions",
        "unroll-recurrent",
        "unroll-loops",
        "unroll-scans",
        "inline-constant-ifs",
        "select-ifs",
        "prepare-if-branches",
        "lower-tfidf",
        "lower-tree-ensembles",
        "fold-castlike",
        "conv-transpose-as-conv",
        "integer-conv-int8-weights",
        "integer-conv-as-float",
        "integer-matmul-int8-weights",
        "lookup-8bit",
        "dequantize-at-uses",
        "fuse",
        "check-codegen-ready",
    }
    assert preparation | {"infer-shapes", "shapes-from-uses", "fold-constants", "dce"} == prepare
    for name in preparation:
        assert list((root / name).glob("*.ir")), f"no FileCheck test for {name}"
        module = sys.modules[get_pass(name).__module__]
        assert "->" in (module.__doc__ or ""), f"{name}: the module docstring lists no rewrite"
    listing = subprocess.run(
        [sys.executable, "-m", "compiler.cli", "opt", "--list-passes"],
        capture_output=True,
        text=True,
        check=True,
        cwd=pathlib.Path(__file__).parents[2],
    ).stdout.splitlines()
    assert prepare <= set(listing)
    assert any(line.startswith("codegen-prepare = ") for line in listing)


def test_a_weight_dequantized_by_decompose_contrib_is_folded_whatever_its_size():
    """A QGemm (onnxruntime's QOperator classifier) of a 2048 x 1000 int8 weight: decompose-contrib
    dequantizes the weight after O2 has folded, and codegen-prepare's folding limit (65,536 input
    elements) would have left that DequantizeLinear to run every call; it folds as Cast does
    (``OpDef.cheap_fold``), so the Gemm reads a constant float weight the planner prepacks."""
    from compiler.pipeline import run_pipeline
    from passes.pipelines import CODEGEN_REWRITES

    graph = Graph("qgemm")
    b = Builder(graph)
    a = b.param("a", TensorType(DType.UINT8, (1, 2048)))
    weight = np.random.default_rng(0).integers(-127, 127, (2048, 1000)).astype(np.int8)
    scales = [b.constant(np.float32(s)) for s in (0.02, 0.01, 0.5)]
    operands = [a, scales[0], b.constant(np.uint8(3)), b.constant(weight), scales[1], b.constant(np.int8(0))]
    operands += [None, scales[2], b.constant(np.uint8(7))]
    y = b.op("com.microsoft.QGemm", operands)
    y.type = TensorType(DType.UINT8, (1, 1000))
    graph.outputs = [y]
    run_pipeline(graph, CODEGEN_REWRITES)  # codegen-prepare's rewrites and folding, before ``fuse``
    (gemm,) = [node for node in graph.nodes if node.op == "Gemm"]
    assert gemm.operands[1].producer.op == "Constant" and gemm.operands[1].type.dtype == DType.FLOAT32
    dequantized = [node.operands[0] for node in graph.nodes if node.op == "DequantizeLinear"]
    assert dequantized == [a]  # only the run-time activation
