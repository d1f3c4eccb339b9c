"""How ``compiler.testing.strategies`` grows random graphs: the generation state and one generator per op.

``_State`` holds the pool of values built so far and draws operands whose types
fit; each entry of ``GENERATORS`` adds one op (with guard nodes in front of ops
with a restricted domain) or returns None when nothing in the pool fits.  The
module docstring of ``strategies`` describes the shapes, names and numeric
guards these generators keep to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from hypothesis import strategies as st

from ..ir.builder import Builder
from ..ir.core import Graph, Value
from ..ir.types import DType, TensorType

F32 = DType.FLOAT32
SYMBOL = "N"
MAX_PARAMS = 4
NAME_MODES = ("unique", "none", "clashing")
CLASHING_NAMES = ("", "", "0", "1", "t", "x0", "t_1", "a b")


# ----------------------------------------------------------------------------- generation state


@dataclass
class _State:
    """What the generator knows while it builds one graph."""

    draw: Callable
    builder: Builder
    dtypes: tuple[DType, ...]
    symbolic: bool
    names: str = "unique"
    pool: list[Value] = field(default_factory=list)
    counter: int = 0

    def name(self) -> str:
        """A name for a new result: ``t<k>``, empty, or a clashing one (see ``names=``)."""
        self.counter += 1
        if self.names == "none":
            return ""
        if self.names == "clashing":
            return self.draw(st.sampled_from(CLASHING_NAMES), label="name")
        return f"t{self.counter - 1}"

    def op(self, op: str, operands, attrs=None) -> Value:
        """Create ``op`` (types inferred) with a fresh result name."""
        return self.builder.op(op, operands, attrs or {}, names=[self.name()])

    def const(self, array: np.ndarray) -> Value:
        return self.builder.constant(array, name=self.name())

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.draw(st.integers(0, 2**32 - 1), label="seed"))

    def tensors(self, pred=lambda t: True, dtype: DType | None = None) -> list[Value]:
        """Pool values that are float tensors of a known shape and satisfy ``pred``."""
        return [
            v
            for v in self.pool
            if isinstance(v.type, TensorType)
            and v.type.shape is not None
            and v.type.dtype in self.dtypes
            and (dtype is None or v.type.dtype == dtype)
            and all(d is not None for d in v.type.shape)
            and pred(v.type)
        ]

    def pick(
        self, pred=lambda t: True, *, rank: int | None = None, min_dim: int = 1, dtype: DType | None = None
    ) -> Value | None:
        """A pool value fitting ``pred`` and ``rank``, else a fresh parameter of that rank."""

        def fits(t):
            return (rank is None or t.rank == rank) and pred(t)

        found = self.tensors(fits, dtype)
        if found and self.draw(st.integers(0, 4)) > 0:
            return self.draw(st.sampled_from(found))
        if len(self.builder.graph.params) >= MAX_PARAMS:
            return self.draw(st.sampled_from(found)) if found else None
        if rank is None:
            rank = self.draw(st.integers(1, 4))
        fresh = self.new_param(rank, min_dim, dtype)
        return fresh if fits(fresh.type) else None

    def new_param(self, rank: int, min_dim: int = 1, dtype: DType | None = None) -> Value:
        """Add a graph parameter of the given rank (first dim maybe symbolic)."""
        lo, hi = (3, 7) if rank == 4 else (1, 5)
        lo = max(lo, min_dim)
        dims: list = [self.draw(st.integers(lo, max(lo, hi))) for _ in range(rank)]
        if rank == 4:
            dims[0], dims[1] = self.draw(st.integers(1, 2)), self.draw(st.integers(1, 4))
        if self.symbolic and rank >= 1 and self.draw(st.booleans()):
            dims[0] = SYMBOL
        dtype = dtype or self.draw(st.sampled_from(self.dtypes))
        index = len(self.builder.graph.params)
        v = self.builder.param(f"x{index}", TensorType(dtype, tuple(dims)))
        self.pool.append(v)
        return v

    def random_array(self, shape, dtype: DType, low=-2.0, high=2.0) -> np.ndarray:
        return self.rng().uniform(low, high, size=shape).astype(dtype.np)


def _int_dims(t: TensorType) -> list[int]:
    """Axes of ``t`` whose size is a static int."""
    return [i for i, d in enumerate(t.shape) if isinstance(d, int)]


def _scalar(value: float, dtype: DType) -> np.ndarray:
    return np.array(value, dtype=dtype.np)


# ----------------------------------------------------------------------------- op generators
# Each takes the state and returns the new value, or None when nothing fits.

UNARY = ("Relu", "Sigmoid", "Tanh", "Neg", "Abs", "Erf", "Softsign", "Identity", "Gelu")
UNARY_WITH_ATTRS = {"LeakyRelu": {"alpha": 0.1}, "Elu": {"alpha": 0.5}, "HardSigmoid": {}, "Selu": {}}
GUARDED_UNARY = ("Log", "Sqrt", "Reciprocal", "Exp")
BINARY = ("Add", "Sub", "Mul", "Div", "Max", "Min")
COMPARE = ("Greater", "Less")
REDUCE = ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin")
POOL = ("MaxPool", "AveragePool")


# onnx.reference's Softsign kernel fails on 0-d arrays (xfail in tests/ops/test_kernel_regressions.py);
# until it is fixed, Softsign only gets operands of rank >= 1 so that pass property tests stay meaningful.
NEEDS_RANK_1 = {"Softsign"}


def _unary(s: _State, op: str, attrs=None) -> Value | None:
    x = s.pick(lambda t: t.rank >= 1) if op in NEEDS_RANK_1 else s.pick()
    return None if x is None else s.op(op, [x], attrs)


def _positive(s: _State, x: Value) -> Value:
    """``Abs(x) + 1``: a guard that keeps Log/Sqrt/Reciprocal/Div finite."""
    return s.op("Add", [s.op("Abs", [x]), s.const(_scalar(1.0, x.type.dtype))])


def _guarded_unary(s: _State, op: str) -> Value | None:
    x = s.pick()
    if x is None:
        return None
    if op == "Exp":
        dt = x.type.dtype
        guarded = s.op("Clip", [x, s.const(_scalar(-4.0, dt)), s.const(_scalar(4.0, dt))])
    else:
        guarded = _positive(s, x)
    return s.op(op, [guarded])


def _broadcast_partner(s: _State, a: Value) -> Value:
    """A value that broadcasts into ``a``'s shape (so the result keeps that shape).

    From the pool, or a constant whose shape is a suffix of ``a``'s with some dims set to 1.
    """
    shape = a.type.shape

    def compatible(t: TensorType) -> bool:
        if t.rank > len(shape):
            return False
        return all(x == y or x == 1 for x, y in zip(t.shape[::-1], shape[::-1]))

    found = s.tensors(compatible, a.type.dtype)
    if found and s.draw(st.booleans()):
        return s.draw(st.sampled_from(found))
    keep = s.draw(st.integers(0, len(shape)))
    dims = [d if isinstance(d, int) and s.draw(st.booleans()) else 1 for d in shape[len(shape) - keep :]]
    return s.const(s.random_array(tuple(dims), a.type.dtype))


def _binary(s: _State, op: str) -> Value | None:
    a = s.pick()
    if a is None:
        return None
    b = _broadcast_partner(s, a)
    if op == "Div":
        b = _positive(s, b)
    operands = [b, a] if op != "Div" and s.draw(st.booleans()) else [a, b]
    return s.op(op, operands)


def _compare(s: _State, op: str) -> Value | None:
    a = s.pick()
    return None if a is None else s.op(op, [a, _broadcast_partner(s, a)])


def _where(s: _State) -> Value | None:
    a = s.pick()
    if a is None:
        return None
    b = _broadcast_partner(s, a)
    cond = s.op("Greater", [a, _broadcast_partner(s, a)])
    return s.op("Where", [cond, a, b])


def _matmul(s: _State) -> Value | None:
    a = s.pick(lambda t: t.rank >= 1 and isinstance(t.shape[-1], int))
    if a is None or not isinstance(a.type.shape[-1], int):
        return None
    k = a.type.shape[-1]
    n = s.draw(st.integers(1, 5))
    w = s.const(s.random_array((k, n), a.type.dtype, -1, 1))
    return s.op("MatMul", [a, w])


def _gemm(s: _State) -> Value | None:
    a = s.pick(lambda t: isinstance(t.shape[1], int), rank=2)
    if a is None:
        return None
    k, n, dt = a.type.shape[1], s.draw(st.integers(1, 5)), a.type.dtype
    trans_b = s.draw(st.integers(0, 1))
    b = s.const(s.random_array((n, k) if trans_b else (k, n), dt, -1, 1))
    c = s.const(s.random_array((n,), dt))
    return s.op("Gemm", [a, b, c], {"transB": trans_b, "alpha": 0.5})


def _spatial_ok(t: TensorType, k: int) -> bool:
    return all(isinstance(d, int) for d in t.shape[1:]) and min(t.shape[2:]) >= k


def _conv(s: _State) -> Value | None:
    x = s.pick(lambda t: _spatial_ok(t, 3), rank=4, min_dim=3)
    if x is None:
        return None
    c, dt = x.type.shape[1], x.type.dtype
    k = s.draw(st.sampled_from([1, 3]))
    group = s.draw(st.sampled_from([g for g in (1, c) if c % g == 0]))
    m = group * s.draw(st.integers(1, 2))
    w = s.const(s.random_array((m, c // group, k, k), dt, -1, 1))
    attrs = {"pads": [k // 2] * 4, "strides": [s.draw(st.integers(1, 2))] * 2, "group": group}
    operands = [x, w]
    if s.draw(st.booleans()):
        operands.append(s.const(s.random_array((m,), dt)))
    return s.op("Conv", operands, attrs)


def _pool(s: _State, op: str) -> Value | None:
    x = s.pick(lambda t: _spatial_ok(t, 2), rank=4, min_dim=3)
    if x is None:
        return None
    k = s.draw(st.integers(1, min(3, *x.type.shape[2:])))
    return s.op(op, [x], {"kernel_shape": [k, k], "strides": [s.draw(st.integers(1, 2))] * 2})


def _global_pool(s: _State) -> Value | None:
    x = s.pick(lambda t: all(isinstance(d, int) for d in t.shape[1:]), rank=4, min_dim=3)
    return None if x is None else s.op("GlobalAveragePool", [x])


def _reshape(s: _State) -> Value | None:
    x = s.pick(lambda t: t.rank >= 1 and all(isinstance(d, int) for d in t.shape[1:]))
    if x is None:
        return None
    shape = x.type.shape
    if not isinstance(shape[0], int):
        if len(shape) < 2:
            return None
        target = [0, -1]
    else:
        total = int(np.prod(shape))
        choices = [[-1], [total, 1], [1, -1]]
        if len(shape) >= 2:
            choices.append([shape[0], -1])
        target = s.draw(st.sampled_from(choices))
    return s.op("Reshape", [x, s.const(np.array(target, np.int64))])


def _transpose(s: _State) -> Value | None:
    x = s.pick(lambda t: t.rank >= 2)
    if x is None:
        return None
    perm = s.draw(st.permutations(range(x.type.rank)))
    return s.op("Transpose", [x], {"perm": list(perm)})


def _concat(s: _State) -> Value | None:
    a = s.pick(lambda t: t.rank >= 1 and bool(_int_dims(t)))
    if a is None or not _int_dims(a.type):
        return None
    axis = s.draw(st.sampled_from(_int_dims(a.type)))
    same = s.tensors(lambda t: t.shape == a.type.shape, a.type.dtype)
    b = s.draw(st.sampled_from(same)) if same and s.draw(st.booleans()) else a
    return s.op("Concat", [a, b], {"axis": axis - a.type.rank * s.draw(st.integers(0, 1))})


def _slice(s: _State) -> Value | None:
    x = s.pick(lambda t: any(isinstance(d, int) and d >= 2 for d in t.shape))
    axes = [i for i in _int_dims(x.type) if x.type.shape[i] >= 2] if x is not None else []
    if not axes:
        return None
    axis = s.draw(st.sampled_from(axes))
    d = x.type.shape[axis]
    start = s.draw(st.integers(0, d - 1))
    end = s.draw(st.integers(start + 1, d))
    step = s.draw(st.integers(1, 2))
    ints = [np.array([v], np.int64) for v in (start, end, axis, step)]
    return s.op("Slice", [x] + [s.const(a) for a in ints])


def _squeeze(s: _State) -> Value | None:
    x = s.pick(lambda t: 1 in t.shape)
    if x is None or 1 not in x.type.shape:
        return None
    axis = s.draw(st.sampled_from([i for i, d in enumerate(x.type.shape) if d == 1]))
    return s.op("Squeeze", [x, s.const(np.array([axis], np.int64))])


def _unsqueeze(s: _State) -> Value | None:
    x = s.pick(lambda t: t.rank <= 4)
    if x is None:
        return None
    axis = s.draw(st.integers(0, x.type.rank))
    return s.op("Unsqueeze", [x, s.const(np.array([axis], np.int64))])


def _reduce(s: _State, op: str) -> Value | None:
    x = s.pick(lambda t: t.rank >= 1)
    if x is None:
        return None
    axes = s.draw(st.lists(st.integers(0, x.type.rank - 1), min_size=1, max_size=x.type.rank, unique=True))
    return s.op(op, [x, s.const(np.array(sorted(axes), np.int64))], {"keepdims": s.draw(st.integers(0, 1))})


def _softmax(s: _State) -> Value | None:
    x = s.pick(lambda t: t.rank >= 1)
    if x is None:
        return None
    return s.op("Softmax", [x], {"axis": s.draw(st.integers(-x.type.rank, x.type.rank - 1))})


def _layer_norm(s: _State) -> Value | None:
    x = s.pick(lambda t: t.rank >= 1 and isinstance(t.shape[-1], int))
    if x is None:
        return None
    n, dt = x.type.shape[-1], x.type.dtype
    return s.op(
        "LayerNormalization", [x, s.const(s.random_array((n,), dt, 0.5, 1.5)), s.const(s.random_array((n,), dt))]
    )


def _cast(s: _State) -> Value | None:
    x = s.pick()
    if x is None:
        return None
    to = s.draw(st.sampled_from(s.dtypes))
    return s.op("Cast", [x], {"to": to.onnx})


def _clip(s: _State) -> Value | None:
    x = s.pick()
    if x is None:
        return None
    lo = s.draw(st.sampled_from([-1.0, -0.5, 0.0]))
    dt = x.type.dtype
    return s.op("Clip", [x, s.const(_scalar(lo, dt)), s.const(_scalar(lo + 1.5, dt))])


def _shape(s: _State) -> Value | None:
    x = s.pick()
    return None if x is None else s.op("Shape", [x])


def _gather(s: _State) -> Value | None:
    x = s.pick(lambda t: t.rank >= 1 and bool(_int_dims(t)))
    if x is None or not _int_dims(x.type):
        return None
    axis = s.draw(st.sampled_from(_int_dims(x.type)))
    d = x.type.shape[axis]
    count = s.draw(st.integers(1, 3))
    indices = s.rng().integers(-d, d, size=(count,)).astype(np.int64)
    return s.op("Gather", [x, s.const(indices)], {"axis": axis})


BRANCH_OPS = ("Relu", "Neg", "Tanh", "Sigmoid", "Abs")


def _if(s: _State) -> Value | None:
    """``If(ReduceSum(x) > 0)`` whose branches apply different unary ops to the captured ``x``."""
    x = s.pick()
    if x is None:
        return None
    total = s.op("ReduceSum", [x], {"keepdims": 0})
    cond = s.op("Greater", [total, s.const(_scalar(0.0, x.type.dtype))])
    then_op, else_op = s.draw(st.lists(st.sampled_from(BRANCH_OPS), min_size=2, max_size=2, unique=True))
    branches = {}
    for key, op in (("then_branch", then_op), ("else_branch", else_op)):
        body = Graph(key.split("_")[0])
        body.outputs = [Builder(body).op(op, [x], names=[s.name()])]
        branches[key] = body
    return s.op("If", [cond], branches)


def _loop(s: _State) -> Value | None:
    """``Loop`` of 1..3 trips: carries ``a + x`` (``x`` captured) and stacks each step as a scan output."""
    x = s.pick()
    if x is None:
        return None
    trips = s.const(np.array(s.draw(st.integers(1, 3)), np.int64))
    body = Graph("body")
    b = Builder(body)
    b.param(s.name(), TensorType(DType.INT64, ()))
    cond = b.param(s.name(), TensorType(DType.BOOL, ()))
    carried = b.param(s.name(), x.type)
    step = b.op(s.draw(st.sampled_from(["Add", "Sub"])), [carried, x], names=[s.name()])
    scanned = b.op("Tanh", [step], names=[s.name()])
    body.outputs = [cond, step, scanned]
    final, stacked = s.builder.op("Loop", [trips, None, x], {"body": body}, num_results=2, names=[s.name(), s.name()])
    s.pool.append(final)
    return stacked


def _scan(s: _State) -> Value | None:
    """``Scan`` over the first axis of ``xs``: state += row * scale (``scale`` captured), emits tanh(state)."""
    xs = s.pick(lambda t: t.rank >= 2 and isinstance(t.shape[0], int))
    if xs is None:
        return None
    dt, row_type = xs.type.dtype, TensorType(xs.type.dtype, xs.type.shape[1:])
    init = s.op("ReduceMean", [xs, s.const(np.array([0], np.int64))], {"keepdims": 0})
    scale = s.const(_scalar(0.5, dt))
    body = Graph("step")
    b = Builder(body)
    state, row = b.param(s.name(), row_type), b.param(s.name(), row_type)
    new_state = b.op("Add", [state, b.op("Mul", [row, scale], names=[s.name()])], names=[s.name()])
    body.outputs = [new_state, b.op("Tanh", [new_state], names=[s.name()])]
    final, stacked = s.builder.op(
        "Scan", [init, xs], {"body": body, "num_scan_inputs": 1}, num_results=2, names=[s.name(), s.name()]
    )
    s.pool.append(final)
    return stacked


def _constant(s: _State) -> Value | None:
    """A constant of rank 0..3 with dims up to 6: often more elements than the printer inlines."""
    rank = s.draw(st.integers(0, 3))
    dims = tuple(s.draw(st.integers(1, 6)) for _ in range(rank))
    return s.const(s.random_array(dims, s.draw(st.sampled_from(s.dtypes))))


GENERATORS: dict[str, Callable[[_State], Value | None]] = {
    **{op: (lambda s, op=op: _unary(s, op)) for op in UNARY},
    **{op: (lambda s, op=op, a=a: _unary(s, op, dict(a))) for op, a in UNARY_WITH_ATTRS.items()},
    **{op: (lambda s, op=op: _guarded_unary(s, op)) for op in GUARDED_UNARY},
    **{op: (lambda s, op=op: _binary(s, op)) for op in BINARY},
    **{op: (lambda s, op=op: _compare(s, op)) for op in COMPARE},
    **{op: (lambda s, op=op: _reduce(s, op)) for op in REDUCE},
    **{op: (lambda s, op=op: _pool(s, op)) for op in POOL},
    "Where": _where,
    "MatMul": _matmul,
    "Gemm": _gemm,
    "Conv": _conv,
    "GlobalAveragePool": _global_pool,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "Concat": _concat,
    "Slice": _slice,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Softmax": _softmax,
    "LayerNormalization": _layer_norm,
    "Cast": _cast,
    "Clip": _clip,
    "Shape": _shape,
    "Gather": _gather,
    "Constant": _constant,
    "If": _if,
    "Loop": _loop,
    "Scan": _scan,
}
SUPPORTED_OPS: tuple[str, ...] = tuple(sorted(GENERATORS))
"""Op names that ``graphs(ops=...)`` accepts."""
