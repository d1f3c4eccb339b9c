"""``RNN``, ``GRU`` and ``LSTM`` as one kernel per layer: the whole sequence runs inside it.

    RNN/GRU/LSTM(X, W, R, B, sequence_lens, initial_h, initial_c, P){...} -> Y, Y_h, Y_c

The kernel is hand-written TIR (``tir_util.extern``) in two phases:

1. the input projection of every step and direction at once, ``XW[d] = X W[d]^T + biases``, a
   GEMM over ``T * batch`` rows: parallel over (direction, column panel), ``MI`` rows x ``NW``
   columns of accumulators held in vector registers, W read panel by panel (prepacked at compile
   time when W is a constant, ``_pack_w``: [D, panels, I, NW], each panel one contiguous stream);
2. the time loop: each step computes ``h R^T`` for a block of ``JW`` hidden units' rows of every
   gate (R prepacked, ``_pack_r``: [D, blocks, H, G, JW], a block's rows one contiguous stream, a
   vector per gate and ``k``), then the cell's equations, fused (activations with their
   alpha/beta, clip, LSTM's peepholes and ``input_forget``, GRU's ``linear_before_reset``). The
   (direction, batch entry) recurrences are independent: when there are several, one parallel
   task runs each over the whole sequence with no synchronisation per step (a bidirectional
   layer's two directions on two cores); a lone recurrence with enough work per step runs each
   step as a parallel loop over the blocks (``recur``). GRU without ``linear_before_reset``
   needs ``r * h`` of every hidden unit before its h gate: its step is two passes (z and r, then h).

The state ``h`` is double-buffered (every block reads all of the previous step's ``h``); ``c`` is
updated in place (each unit belongs to one block). A batch entry past its ``sequence_lens``
keeps its state and writes zeros to ``Y``; the reverse direction thus starts at its last valid
step, and ``Y_h``/``Y_c`` are the states after the last valid step, as ONNX specifies (and as the
interpreter's kernel, ``compiler.ops.kernels_recurrent``, computes).

``whole_sequence_problem(node)`` says why a node cannot run as this kernel (``unroll-recurrent``
then writes it out per step instead): a dtype other than float32/float64, an unknown activation or
direction, shapes that are not static.
"""

from __future__ import annotations

import numpy as np
from tvm import tirx
from tvm.script.ir_builder import tirx as T

from compiler.ops.kernels_recurrent import GATES, Activation, cell_activations

from ..registry import lowering
from ..tir_util import Workspace, extern
from .vector_math import exp_clamped_f32

DTYPES = ("float32", "float64")  # what the kernel computes in (the interpreter's kernel: float64)
DIRECTIONS = ("forward", "reverse", "bidirectional")
# multiply-adds of one step's h R^T below which a parallel launch per step costs more than it saves
STEP_PARALLEL_MIN_MACS = 1 << 16


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _problem(op: str, attrs: dict, x_dtype: str) -> str | None:
    """Why the attributes or X's dtype keep ``op`` from running as one kernel, or None."""
    if x_dtype not in DTYPES:
        return f"{op} computes in {x_dtype}; the sequence kernel takes {' or '.join(DTYPES)}"
    direction = _text(attrs.get("direction") or "forward")
    if direction not in DIRECTIONS:
        return f"unknown direction '{direction}'"
    try:
        cell_activations(op, attrs, 2 if direction == "bidirectional" else 1)
    except ValueError as exc:
        return str(exc)
    return None


def whole_sequence_problem(node) -> str | None:
    """Why recurrent ``node`` cannot be compiled as one kernel over the whole sequence, or None."""
    from compiler.ir.types import TensorType

    x, r = node.operands[0], node.operands[2]
    for value in (x, r):
        t = value.type
        if not isinstance(t, TensorType) or t.shape is None or not all(isinstance(d, int) for d in t.shape):
            return f"{value.name} has no static shape"
    return _problem(node.op, dict(node.attrs), str(np.dtype(x.type.dtype.np)))


def _largest_divisor(n: int, options) -> int:
    return next(d for d in options if n % d == 0)


# the projection GEMM's register block where no target is given: AVX-512's 8 rows x 2 vectors
DEFAULT_PANEL, DEFAULT_ROWS = 32, 8


def _panel_width(gate_rows: int, schedule=None) -> int:
    """Columns of the projection GEMM's register block (NW): the target's matmul tile width
    (``ScheduleParams``: ``mm_vectors`` vectors), or the largest power of two below it dividing
    the gate rows."""
    widest = DEFAULT_PANEL if schedule is None else schedule.lanes * schedule.mm_vectors
    return _largest_divisor(gate_rows, [w for w in (64, 32, 16, 8, 4, 2, 1) if w <= widest])


def _gemm_rows(rows: int, nw: int, schedule=None) -> int:
    """Rows of the projection GEMM's register block (MI): the largest divisor of ``rows`` up to the
    target's matmul tile rows for ``nw`` columns (on AVX2, 6 x 16 columns, 12 accumulators: the
    8 x 32 block of AVX-512, 32 accumulators in 16 registers, spilled, and the CRNN's LSTM ran at
    1.45x onnxruntime's time)."""
    most = DEFAULT_ROWS if schedule is None else schedule.mm_rows(max(1, nw // schedule.lanes))
    return _largest_divisor(rows, range(most, 0, -1))


def _unit_block(hidden: int) -> int:
    """Hidden units one task of a step computes (JW), one vector."""
    return _largest_divisor(hidden, (16, 8, 4, 2, 1))


def _pack_w(attrs, in_types, w, schedule=None):
    """W [D, G*H, I] -> [D, G*H / NW, I, NW]: a GEMM column panel is contiguous, NW values per k."""
    dirs, rows, size = w.shape
    nw = _panel_width(rows, schedule)
    return np.ascontiguousarray(w.reshape(dirs, rows // nw, nw, size).transpose(0, 1, 3, 2))


_pack_w.uses_schedule = True  # the planner passes the target's ScheduleParams


def _pack_r(attrs, in_types, r):
    """R [D, G*H, H] -> [D, H / JW, H, G, JW]: a step's task streams one contiguous block."""
    dirs, rows, hidden = r.shape
    jw = _unit_block(hidden)
    blocked = r.reshape(dirs, rows // hidden, hidden // jw, jw, hidden)
    return np.ascontiguousarray(blocked.transpose(0, 2, 4, 1, 3))


def _exp(x, dt: str):
    """e^x; in float32 the vectorisable polynomial of ``vector_math`` (relative error about 1e-7,
    the argument clamped to the normal range) instead of a libm call per lane."""
    return exp_clamped_f32(x) if dt == "float32" else tirx.exp(x)


def _sigmoid(x, dt: str):
    return tirx.const(1.0, dt) / (tirx.const(1.0, dt) + _exp(-x, dt))


def _tanh(x, dt: str):
    """tanh as 1 - 2 / (1 + e^2x) (absolute error about 1e-7 in float32, saturating cleanly)."""
    if dt != "float32":
        return tirx.tanh(x)
    return tirx.const(1.0, dt) - tirx.const(2.0, dt) / (tirx.const(1.0, dt) + _exp(x + x, dt))


def _activate(act: Activation, x, dt: str):
    """``act`` applied to the TIR expression ``x``, as ``kernels_recurrent.ACTIVATIONS`` defines it."""
    c = lambda v: tirx.const(float(v), dt)  # noqa: E731
    a, b = act.alpha, act.beta
    if act.name == "relu":
        return tirx.max(x, c(0))
    if act.name == "tanh":
        return _tanh(x, dt)
    if act.name == "sigmoid":
        return _sigmoid(x, dt)
    if act.name == "softsign":
        return x / (c(1) + tirx.abs(x))
    if act.name == "softplus":
        return tirx.max(x, c(0)) + tirx.log1p(tirx.exp(-tirx.abs(x)))
    if act.name == "leakyrelu":
        return tirx.Select(x >= c(0), x, c(a) * x)
    if act.name == "thresholdedrelu":
        return tirx.Select(x > c(a), x, c(0))
    if act.name == "elu":
        return tirx.Select(x >= c(0), x, c(a) * (tirx.exp(tirx.min(x, c(0))) - c(1)))
    if act.name == "hardsigmoid":
        return tirx.min(tirx.max(c(a) * x + c(b), c(0)), c(1))
    if act.name == "affine":
        return c(a) * x + c(b)
    if act.name == "scaledtanh":
        return c(a) * _tanh(c(b) * x, dt)
    raise ValueError(f"unknown activation '{act.name}'")


class _Sequence:
    """The facts of one recurrent op and the TIR of its kernel (``emit``)."""

    def __init__(self, ctx, operands):
        x, w, r, b, lens, h0, c0, p = (list(operands) + [None] * 8)[:8]
        self.op, self.dt = ctx.op, str(x.dtype)
        why = _problem(ctx.op, ctx.attrs, self.dt)
        if why is not None:
            raise ctx.fail(why)
        self.layout = int(ctx.attr("layout", 0) or 0)
        direction = _text(ctx.attr("direction") or "forward")
        self.reverse = [False, True] if direction == "bidirectional" else [direction == "reverse"]
        self.acts = cell_activations(ctx.op, ctx.attrs, len(self.reverse))
        clip = ctx.attr("clip")
        self.clip = None if clip is None else float(clip)
        self.input_forget = ctx.op == "LSTM" and bool(ctx.attr("input_forget", 0))
        self.lbr = ctx.op == "GRU" and bool(ctx.attr("linear_before_reset", 0))
        xs = [int(d) for d in x.shape]
        self.steps, self.batch = (xs[1], xs[0]) if self.layout else (xs[0], xs[1])
        self.size = xs[2]
        self.dirs, self.gates = len(self.reverse), GATES[ctx.op]
        self.hidden = int(r.shape[2])  # packed or not
        self.gh = self.gates * self.hidden
        self.w_packed, self.r_packed = 1 in ctx.packed, 2 in ctx.packed
        self.tensors = {"x": x, "w": w, "r": r, "b": b, "lens": lens, "h0": h0, "c0": c0, "p": p}
        self.outputs = len(ctx.out_types)
        self.out_dtypes = [ctx.out_dtype(k) for k in range(self.outputs)]
        # blocks: GEMM rows x columns, and the hidden units one task of a step computes
        self.nw, self.jw = _panel_width(self.gh, ctx.schedule), _unit_block(self.hidden)
        self.mi = _gemm_rows(self.steps * self.batch, self.nw, ctx.schedule)

    # -- operand access (layouts and packing) ---------------------------------------------------
    def c(self, v):
        return tirx.const(float(v), self.dt)

    def load(self, name, *index):
        return self.buf[name][tuple(index)].astype(self.dt)

    def x_at(self, m, k):
        t, b = m // self.batch, m % self.batch
        return self.load("x", b, t, k) if self.layout else self.load("x", t, b, k)

    def w_at(self, d, k, n0, v):
        """W[d, n0 + v, k], ``n0`` a panel's first column."""
        return self.load("w", d, n0 // self.nw, k, v) if self.w_packed else self.load("w", d, n0 + v, k)

    def r_at(self, d, k, g, j0, v):
        """R[d, g * H + j0 + v, k], ``j0`` a block's first unit."""
        if self.r_packed:
            return self.load("r", d, j0 // self.jw, k, g, v)
        return self.load("r", d, g * self.hidden + j0 + v, k)

    def state_index(self, d, b, j):
        return (b, d, j) if self.layout else (d, b, j)

    def y_index(self, t, d, b, j):
        return (b, t, d, j) if self.layout else (t, d, b, j)

    def xw_at(self, d, t, b, n):
        return self.xw[((d * self.steps + t) * self.batch + b) * self.gh + n]

    def h_flat(self, slot, d, b, j):
        return ((slot * self.dirs + d) * self.batch + b) * self.hidden + j

    def cell_flat(self, d, b, j):
        return (d * self.batch + b) * self.hidden + j

    def clipped(self, v):
        return v if self.clip is None else tirx.min(tirx.max(v, self.c(-self.clip)), self.c(self.clip))

    def act(self, d, k, v):
        return _activate(self.acts[d][k], self.clipped(v), self.dt)

    def act_of(self, d, k, v):
        """Activation ``k`` of direction ``d`` (a run-time index) applied to ``v``."""
        if self.dirs == 1 or self.acts[0][k] == self.acts[1][k]:
            return self.act(0, k, v)
        return tirx.Select(d == 0, self.act(0, k, v), self.act(1, k, v))

    # -- the kernel --------------------------------------------------------------------------------
    def emit(self, ins, outs):
        names = [n for n, t in self.tensors.items() if t is not None]
        self.buf = dict(zip(names, ins))
        self.out = list(outs)
        ws = Workspace()
        self.xw = ws.buffer(self.dirs * self.steps * self.batch * self.gh, self.dt)
        self.bias = ws.buffer(self.dirs * self.gh, self.dt)
        self.h = ws.buffer(2 * self.dirs * self.batch * self.hidden, self.dt)
        self.cell = ws.buffer(self.dirs * self.batch * self.hidden, self.dt)
        if self.op == "GRU" and not self.lbr:
            self.z = ws.buffer(self.dirs * self.batch * self.hidden, self.dt)
            self.rh = ws.buffer(self.dirs * self.batch * self.hidden, self.dt)
        self.init_states()
        self.project()
        self.recur()
        self.write_states()
        ws.free_all()

    def init_states(self):
        d_, b_, h_, gh = self.dirs, self.batch, self.hidden, self.gh
        with T.grid(d_, gh) as (d, n):
            bias = self.c(0)
            if self.buf.get("b") is not None:
                bias = self.load("b", d, n)
                late = self.load("b", d, gh + n)
                bias = bias + (tirx.Select(n < 2 * h_, late, self.c(0)) if self.lbr else late)
            T.buffer_store(self.bias, bias, [d * gh + n])
        with T.grid(d_, b_, h_) as (d, b, j):
            h0 = self.load("h0", *self.state_index(d, b, j)) if "h0" in self.buf else self.c(0)
            c0 = self.load("c0", *self.state_index(d, b, j)) if "c0" in self.buf else self.c(0)
            T.buffer_store(self.h, h0, [self.h_flat(0, d, b, j)])
            T.buffer_store(self.cell, c0, [self.cell_flat(d, b, j)])

    def project(self):
        """XW[d] = X W[d]^T + bias[d] for every step: register-blocked GEMM over (d, column panel)."""
        mi, nw, rows, gh = self.mi, self.nw, self.steps * self.batch, self.gh
        panels = gh // nw
        with T.parallel(0, self.dirs * panels) as p:
            d, n0 = p // panels, (p % panels) * nw
            with T.serial(0, rows // mi) as mo:
                acc = T.alloc_buffer((mi * nw,), self.dt, scope="local")
                with T.unroll(0, mi) as i:
                    with T.vectorized(0, nw) as v:
                        T.buffer_store(acc, self.bias[d * gh + n0 + v], [i * nw + v])
                with T.serial(0, self.size) as k:
                    with T.unroll(0, mi) as i:
                        xv = self.x_at(mo * mi + i, k)
                        with T.vectorized(0, nw) as v:
                            T.buffer_store(acc, acc[i * nw + v] + xv * self.w_at(d, k, n0, v), [i * nw + v])
                with T.unroll(0, mi) as i:
                    with T.vectorized(0, nw) as v:
                        T.buffer_store(self.xw, acc[i * nw + v], [(d * rows + mo * mi + i) * gh + n0 + v])

    def phases(self) -> list:
        """A step's passes over the hidden units with their accumulator counts (GRU without
        linear_before_reset needs every unit's r * h before any h gate: two passes)."""
        if self.op == "GRU" and not self.lbr:
            return [(self.gru_reset_phase, 2), (self.gru_candidate_phase, 1)]
        return [(self.cell_phase, self.gates + (1 if self.lbr else 0))]

    def recur(self):
        """The time loop. Each (direction, batch entry) is an independent recurrence: with several,
        one task runs each over the whole sequence (no synchronisation per step); with one, each
        step is a parallel loop over the blocks of hidden units when a step has enough work
        (``STEP_PARALLEL_MIN_MACS``), else the single recurrence runs as one task."""
        blocks, jw = self.hidden // self.jw, self.jw
        slots = max(gates for _, gates in self.phases()) * jw
        tasks = self.dirs * self.batch
        if tasks > 1 or blocks == 1 or self.gates * self.hidden * self.hidden < STEP_PARALLEL_MIN_MACS:
            with T.parallel(0, tasks) if tasks > 1 else T.serial(0, 1) as p:
                d, b = p // self.batch, p % self.batch
                acc = T.alloc_buffer((slots,), self.dt, scope="local")
                with T.serial(0, self.steps) as s:
                    for phase, _ in self.phases():
                        with T.serial(0, blocks) as block:
                            self.block(phase, acc, d, b, block * jw, s)
            return
        with T.serial(0, self.steps) as s:
            for phase, _ in self.phases():
                with T.parallel(0, blocks) as block:
                    acc = T.alloc_buffer((slots,), self.dt, scope="local")
                    self.block(phase, acc, 0, 0, block * jw, s)

    def block(self, phase, acc, d, b, j0, s):
        """``phase`` for the units ``j0 .. j0 + JW`` of (direction ``d``, batch entry ``b``) at step
        ``s`` (time ``t``: ``s`` forward, ``T - 1 - s`` in reverse)."""
        cur = tirx.floormod(s, 2)
        t = s
        if self.dirs == 2:
            t = tirx.Select(d == 1, self.steps - 1 - s, s)
        elif self.reverse[0]:
            t = self.steps - 1 - s
        if "lens" in self.buf:
            valid = t.astype("int64") < self.buf["lens"][b].astype("int64")
            with T.If(valid):
                with T.Then():
                    phase(d, b, j0, t, cur, acc)
                with T.Else():
                    self.hold(d, b, j0, t, cur, phase)
        else:
            phase(d, b, j0, t, cur, acc)

    def hold(self, d, b, j0, t, cur, phase):
        """A batch entry past its length: the state stays, Y is zero."""
        if phase == self.gru_reset_phase:
            return
        with T.vectorized(0, self.jw) as v:
            j = j0 + v
            T.buffer_store(self.h, self.h[self.h_flat(cur, d, b, j)], [self.h_flat(1 - cur, d, b, j)])
            T.buffer_store(self.out[0], self.c(0).astype(self.out_dtypes[0]), self.y_index(t, d, b, j))

    def recurrence(self, acc, d, b, j0, cur, gates, source=None):
        """acc[g] (initialised by the caller) += h . R^T (``source`` instead of h when given) over
        the block's columns of gate ``gates[g]`` (None: slot g takes no recurrence)."""
        jw = self.jw
        with T.serial(0, self.hidden) as k:
            hk = self.h[self.h_flat(cur, d, b, k)] if source is None else source[self.cell_flat(d, b, k)]
            for g, gate in enumerate(gates):
                if gate is None:
                    continue
                with T.vectorized(0, jw) as v:
                    T.buffer_store(acc, acc[g * jw + v] + hk * self.r_at(d, k, gate, j0, v), [g * jw + v])

    def init_acc(self, acc, d, b, j0, t, gates):
        """acc[g] = the block's X W^T + biases of gate ``gates[g]``."""
        jw = self.jw
        for g, gate in enumerate(gates):
            with T.vectorized(0, jw) as v:
                T.buffer_store(acc, self.xw_at(d, t, b, gate * self.hidden + j0 + v), [g * jw + v])

    def emit_h(self, d, b, j, t, cur, h):
        T.buffer_store(self.h, h, [self.h_flat(1 - cur, d, b, j)])
        T.buffer_store(self.out[0], h.astype(self.out_dtypes[0]), self.y_index(t, d, b, j))

    def cell_phase(self, d, b, j0, t, cur, acc):
        """RNN, LSTM and GRU with linear_before_reset: the whole step in one pass."""
        h_, jw = self.hidden, self.jw
        gates = list(range(self.gates))
        self.init_acc(acc, d, b, j0, t, gates)
        if self.lbr:  # a fourth accumulator: h R_h^T + Rb_h, kept apart from X W_h^T
            with T.vectorized(0, jw) as v:
                late = self.load("b", d, self.gh + 2 * h_ + j0 + v) if "b" in self.buf else self.c(0)
                T.buffer_store(acc, late, [3 * jw + v])
            gates = [0, 1, None, 2]
        self.recurrence(acc, d, b, j0, cur, gates)
        with T.vectorized(0, jw) as v:
            j = j0 + v
            gate = lambda g: acc[g * jw + v]  # noqa: E731
            if self.op == "RNN":
                self.emit_h(d, b, j, t, cur, self.act_of(d, 0, gate(0)))
            elif self.op == "GRU":  # z and r in place: an activation of r inside g would be inlined many times
                T.buffer_store(acc, self.act_of(d, 0, gate(0)), [v])
                T.buffer_store(acc, self.act_of(d, 0, gate(1)), [jw + v])
            else:
                self.lstm_cell(d, b, j, v, gate)
        if self.op == "GRU":
            with T.vectorized(0, jw) as v:
                j = j0 + v
                z, r, h_prev = acc[v], acc[jw + v], self.h[self.h_flat(cur, d, b, j)]
                cand = self.act_of(d, 1, acc[2 * jw + v] + r * acc[3 * jw + v])
                self.emit_h(d, b, j, t, cur, (self.c(1) - z) * cand + z * h_prev)
        if self.op == "LSTM":
            with T.vectorized(0, jw) as v:
                j = j0 + v
                c_new = self.cell[self.cell_flat(d, b, j)]
                po = acc[1 * jw + v]
                if "p" in self.buf:
                    po = po + self.load("p", d, h_ + j) * c_new
                self.emit_h(d, b, j, t, cur, self.act_of(d, 0, po) * self.act_of(d, 2, c_new))

    def lstm_cell(self, d, b, j, v, gate):
        """LSTM's new c (gates i o f c), stored in place; its h follows once c is stored."""
        h_ = self.hidden
        c_prev = self.cell[self.cell_flat(d, b, j)]
        pi, pf = gate(0), gate(2)
        if "p" in self.buf:
            pi = pi + self.load("p", d, j) * c_prev
            pf = pf + self.load("p", d, 2 * h_ + j) * c_prev
        i = self.act_of(d, 0, pi)
        forget = self.c(1) - i if self.input_forget else self.act_of(d, 0, pf)
        c_new = forget * c_prev + i * self.act_of(d, 1, gate(3))
        T.buffer_store(self.cell, c_new, [self.cell_flat(d, b, j)])

    def gru_reset_phase(self, d, b, j0, t, cur, acc):
        """GRU without linear_before_reset, first pass: z, and r * h for the h gate's recurrence."""
        jw = self.jw
        self.init_acc(acc, d, b, j0, t, [0, 1])
        self.recurrence(acc, d, b, j0, cur, [0, 1])
        with T.vectorized(0, jw) as v:
            j = j0 + v
            T.buffer_store(self.z, self.act_of(d, 0, acc[v]), [self.cell_flat(d, b, j)])
            r = self.act_of(d, 0, acc[jw + v])
            T.buffer_store(self.rh, r * self.h[self.h_flat(cur, d, b, j)], [self.cell_flat(d, b, j)])

    def gru_candidate_phase(self, d, b, j0, t, cur, acc):
        """GRU without linear_before_reset, second pass: the h gate from (r * h) R_h^T, then h."""
        self.init_acc(acc, d, b, j0, t, [2])
        self.recurrence(acc, d, b, j0, cur, [2], source=self.rh)
        with T.vectorized(0, self.jw) as v:
            j = j0 + v
            z = self.z[self.cell_flat(d, b, j)]
            cand = self.act_of(d, 1, acc[v])
            h_prev = self.h[self.h_flat(cur, d, b, j)]
            self.emit_h(d, b, j, t, cur, (self.c(1) - z) * cand + z * h_prev)

    def write_states(self):
        last = self.steps % 2
        with T.grid(self.dirs, self.batch, self.hidden) as (d, b, j):
            if self.outputs > 1:
                value = self.h[self.h_flat(last, d, b, j)]
                T.buffer_store(self.out[1], value.astype(self.out_dtypes[1]), self.state_index(d, b, j))
            if self.outputs > 2:
                value = self.cell[self.cell_flat(d, b, j)]
                T.buffer_store(self.out[2], value.astype(self.out_dtypes[2]), self.state_index(d, b, j))


@lowering("RNN", "GRU", "LSTM", kind="extern", prepack={1: _pack_w, 2: _pack_r})
def _recurrent(ctx, *operands):
    seq = _Sequence(ctx, operands)
    inputs = [t for t in seq.tensors.values() if t is not None]
    return extern(ctx, inputs, seq.emit, ctx.op.lower() + "_sequence")
