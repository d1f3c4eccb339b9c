"""A build-time proof that a kernel's index arithmetic does not overflow int32.

A tensor of more than 2^31 - 1 elements gets int64 dims in TE (``te_util.index_shape``), and TVM
flattens its accesses in int64; a kernel is still wrong, silently, where a lowering computes an
index in int32 that goes past 2^31 - 1 (an image plane flattened by hand, ``rp * lanes + lane``,
of more elements than that). ``IndexCapture`` records a kernel's TIR as ``tvm.tirx.build`` lowers
it (flattened, narrowed to int32 where TVM could prove it fits, vectorised; before common
subexpressions become let-bound variables), and ``overflowing_index_arithmetic`` bounds every
int32 sum, difference, product, vector ramp and narrowing cast there whose value does not depend
on tensor data, given its loops' ranges (TVM's ``Analyzer.const_int_bound`` computes the bound
without wrapping), and each int32 parallel loop's extent (``PARALLEL_TASKS_MAX``). Arithmetic on
loaded values is data: it wraps as ONNX integer ops do.
"""

from __future__ import annotations

import tvm
import tvm_ffi
from tvm.ir.expr import TensorLoad
from tvm.sym import Analyzer
from tvm.tirx import expr as E
from tvm.tirx.stmt import Bind, For, ForKind

from .te_util import expr_dtype

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
# the passes before which the lowered kernel is taken (the first that runs): common subexpression
# elimination binds index parts to variables; MakePackedAPI adds the calling convention's code
_CAPTURE_BEFORE = ("tirx.CommonSubexprElim", "tirx.MakePackedAPI")
_ARITHMETIC = (E.Add, E.Sub, E.Mul, E.LShift, E.Ramp, E.Cast)
# LLVM code generation splits a parallel loop into ``num_task`` chunks in the loop's index type:
# ``(extent + num_task - 1) / num_task * (task + 1)`` wraps in int32 for an extent within
# ``num_task`` of 2^31 - 1 (the runtime launches at most MAX_TASKS = 64 tasks)
PARALLEL_TASKS_MAX = 1 << 20


@tvm.instrument.pass_instrument
class IndexCapture:
    """A pass instrument keeping the module as ``tvm.tirx.build`` has lowered it (``module``)."""

    def __init__(self):
        self.module = None

    def run_before_pass(self, mod, info):
        if self.module is None and info.name in _CAPTURE_BEFORE:
            self.module = mod


def overflowing_index_arithmetic(module) -> list[str]:
    """The int32 index expressions of ``module``'s functions that may leave the int32 range,
    each with its bound; empty when every one is proved to fit."""
    found: list[str] = []
    for func in module.functions.values():
        if isinstance(func, tvm.tirx.PrimFunc):
            found += _check(func.body)
    return found


def _check(body) -> list[str]:
    analyzer, data_vars, found = Analyzer(), [], []

    def depends_on_data(expr) -> bool:
        hits = []
        tvm_ffi.structural_walk(
            expr,
            [
                (TensorLoad, lambda _: hits.append(True)),
                (E.Var, lambda v: hits.append(True) if any(v.same_as(d) for d in data_vars) else None),
            ],
        )
        return bool(hits)

    def on_for(loop):
        analyzer.bind(loop.loop_var, tvm.ir.Range.from_min_extent(loop.min, loop.extent), allow_override=True)
        extent = analyzer.const_int_bound(loop.extent).max_value
        if (
            loop.kind == ForKind.PARALLEL
            and expr_dtype(loop.extent) == "int32"
            and extent > INT32_MAX - PARALLEL_TASKS_MAX
        ):
            found.append(f"a parallel loop of {extent} iterations split into tasks in int32")

    def on_binding(node):  # a let: data when its value is; a vector of indices stays unbound (any int32)
        if depends_on_data(node.value) or not expr_dtype(node.value).startswith(("int", "uint")):
            data_vars.append(node.var)
        elif "x" not in expr_dtype(node.value):
            analyzer.bind(node.var, node.value, allow_override=True)

    def on_arithmetic(node):
        if isinstance(node, E.Cast):  # only a cast that narrows a wider integer to int32 can wrap
            narrowed, source = expr_dtype(node).split("x")[0], expr_dtype(node.value).split("x")[0]
            if narrowed != "int32" or source not in ("int64", "uint64"):
                return
            value = node.value
        elif expr_dtype(node).split("x")[0] != "int32":
            return
        else:
            value = node
        bound = analyzer.const_int_bound(value)
        if (bound.min_value < INT32_MIN or bound.max_value > INT32_MAX) and not depends_on_data(value):
            found.append(f"{str(node)[:200]} in [{bound.min_value}, {bound.max_value}]")

    tvm_ffi.structural_walk(
        body,
        [(For, on_for), ((Bind, E.Let), on_binding), (_ARITHMETIC, on_arithmetic)],
        order="pre",
    )
    return found
