"""``unroll-recurrent``: write ``RNN``, ``GRU`` and ``LSTM`` nodes out as primitive ops, one time step
after another.

Code generation has no recurrent kernels, but with a static sequence length ``T`` a recurrent op
is straight-line code:

    RNN/GRU/LSTM(X, W, R, B, sequence_lens, initial_h, initial_c, P)  ->  Y, Y_h, Y_c of the ops below

For each direction ``d`` the rewrite emits:

    XW  = MatMul(X, W[d]^T) + biases            # the input projection of all T steps at once
    for t in 0..T-1 (T-1..0 for the reverse direction):
        pre = Gemm(H, R[d]^T, Gather(XW, t))    # gates of this step, split per gate
        H, C = the cell's equations (activations, clip, peepholes, GRU's linear_before_reset)
        H, C = Where(t < sequence_lens, new, old)   # only when sequence_lens is given
    Y   = Concat of the per-step H (zero past a batch entry's length), Y_h = last H, Y_c = last C

``layout=1`` (batch first) transposes X and the initial states in and Y, Y_h, Y_c out.  Every
operand may be a run-time input: W, R, B, P are sliced by ops (constant folding removes the work
when they are initializers), and a run-time ``sequence_lens`` is honoured by the ``Where`` masks.
A step's equations (``cell_step``), the gate order, the default activations and the activation
table are the interpreter kernel's own (``compiler.ops.kernels_recurrent``), run here on graph
values (``recurrent_cell.GraphCell``), so both read a recurrent op the same way.

An op that code generation runs as one kernel over the whole sequence (its TVM lowering,
``codegen.tvm.lower.recurrent``, accepts its dtype, activations and shapes: ``runs_as_one_kernel``)
is left alone, unless the pass's ``force`` option is set; unrolling is the fallback for the others.
A recurrent op whose sequence length or batch size is not static, or longer than ``MAX_STEPS``,
is left alone too; ``check-codegen-ready`` then raises a ``CodegenError`` naming the node and the
reason (``recurrent_problem``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.ir.core import Graph, Node, Value
from compiler.ir.types import TensorType
from compiler.ops import get_op
from compiler.ops.kernels_recurrent import GATES, Activation, cell_activations, cell_step
from compiler.passes import Pass, PassResult
from compiler.rewrite import Rewriter

from .recurrent_cell import Emitter, GraphCell
from .unrolling import concat

MAX_STEPS = 256  # time steps (per direction) written out; longer sequences are refused


def _error(message: str, node: Node) -> Exception:
    from codegen.errors import CodegenError  # what compile drivers report (no TVM import)

    return CodegenError(message, node=node.name, op=node.op)


def _attr(node: Node, name: str):
    value = node.attrs.get(name)
    if value is None:
        spec = get_op(node.op).attrs.get(name)
        value = spec.default if spec is not None else None
    return value


def _activations(node: Node, directions: int) -> list[list[Activation]]:
    """The cell's activations per direction (``kernels_recurrent.cell_activations``)."""
    try:
        return cell_activations(node.op, node.attrs, directions)
    except ValueError as exc:
        raise _error(str(exc), node) from None


def _static_dim(node: Node, value: Value, axis: int, what: str) -> int:
    t = value.type
    dim = t.shape[axis] if isinstance(t, TensorType) and t.shape is not None else None
    if not isinstance(dim, int):
        raise _error(f"the {what} must be static to write the recurrence out as code (got {t})", node)
    return dim


@dataclass
class _Direction:
    """The per-direction operands, already sliced out of W, R, B, P and the initial states."""

    index: int
    reverse: bool
    acts: list[Activation]
    xw: Value  # [T, batch, G*H]: X.W^T plus the biases that can be added up front
    rt: Value  # [H, G*H]: R^T
    h0: Value  # [batch, H]
    c0: Value | None  # [batch, H] (LSTM)
    peep: list | None  # [p_i, p_o, p_f] (LSTM with P)
    rbh: Value | None  # GRU linear_before_reset: R's bias of the h gate, added inside r * (...)


class _Cell:
    """The facts of one recurrent node and the code it expands into."""

    def __init__(self, rw: Rewriter, node: Node):
        self.node = node
        ops = list(node.operands) + [None] * (8 - len(node.operands))
        self.x, self.w, self.r, self.b, self.seq_lens, self.h_init = ops[:6]
        self.c_init, self.p = (ops[6], ops[7]) if node.op == "LSTM" else (None, None)
        self.gates = GATES[node.op]
        self.layout = int(_attr(node, "layout") or 0)
        direction = _attr(node, "direction") or "forward"
        direction = direction.decode() if isinstance(direction, bytes) else direction
        if direction not in ("forward", "reverse", "bidirectional"):
            raise _error(f"unknown direction '{direction}'", node)
        self.reverse = [False, True] if direction == "bidirectional" else [direction == "reverse"]
        self.acts = _activations(node, len(self.reverse))
        clip = _attr(node, "clip")
        self.clip = None if clip is None else float(clip)
        self.input_forget = bool(_attr(node, "input_forget") or 0) if node.op == "LSTM" else False
        self.linear_before_reset = bool(_attr(node, "linear_before_reset") or 0) if node.op == "GRU" else False
        self.steps = _static_dim(node, self.x, 1 if self.layout else 0, "sequence length")
        self.batch = _static_dim(node, self.x, 0 if self.layout else 1, "batch size")
        self.hidden = _static_dim(node, self.r, 2, "hidden size (R's last dim)")
        if self.steps > MAX_STEPS:
            raise _error(f"{self.steps} time steps, more than the {MAX_STEPS} that code generation writes out", node)
        if not isinstance(self.x.type, TensorType):
            raise _error("X must be a tensor", node)
        self.rw = rw
        self.dtype = self.x.type.dtype.np
        self._e: Emitter | None = None

    @property
    def e(self) -> Emitter:
        """The emitter, set before the node when the first op is emitted (checking emits nothing)."""
        if self._e is None:
            self._e = Emitter(self.rw, self.node, self.dtype)
        return self._e

    # -- per-direction operands ---------------------------------------------------------------
    def _state(self, init: Value | None, d: int) -> Value:
        if init is None:
            return self.e.const(np.zeros((self.batch, self.hidden)))
        return self.e.take(init, d, axis=1 if self.layout else 0)

    def _direction(self, x: Value, d: int) -> _Direction:
        e, gh, h = self.e, self.gates * self.hidden, self.hidden
        wt, rt = e.transpose(e.take(self.w, d)), e.transpose(e.take(self.r, d))
        xw = e.op("MatMul", [x, wt])
        rbh = None
        if self.b is not None:
            bias = e.take(self.b, d)
            wb, rb = e.cols(bias, 0, gh), e.cols(bias, gh, 2 * gh)
            if self.linear_before_reset:  # R's h-gate bias goes inside r * (H.Rh^T + Rbh)
                rbh = e.cols(rb, 2 * h, 3 * h)
                rb = e.op("Mul", [rb, e.const(np.repeat([1, 1, 0], h))])
            xw = e.op("Add", [xw, e.op("Add", [wb, rb])])
        peep = None
        if self.p is not None:
            peep = e.split(e.take(self.p, d), 3, h)
        c0 = self._state(self.c_init, d) if self.node.op == "LSTM" else None
        return _Direction(d, self.reverse[d], self.acts[d], xw, rt, self._state(self.h_init, d), c0, peep, rbh)

    # -- the whole node -------------------------------------------------------------------------
    def _masks(self) -> list | None:
        """Per step, a [batch, 1] bool ``t < sequence_lens`` (None when every entry runs T steps)."""
        lens = self.seq_lens
        if lens is None:
            return None
        known = lens.const_value
        if known is not None and np.all(np.asarray(known) == self.steps):
            return None
        e = self.e
        lens = e.op("Unsqueeze", [lens, e.ints([1])])
        dtype = lens.type.dtype.np if isinstance(lens.type, TensorType) else np.int32
        return [e.op("Less", [e.const(t, dtype), lens]) for t in range(self.steps)]

    def expand(self) -> list[Value | None]:
        """Emit the unrolled recurrence; returns (Y, Y_h, Y_c) in the node's layout."""
        e = self.e
        x = e.op("Transpose", [self.x], {"perm": [1, 0, 2]}) if self.layout else self.x
        masks = self._masks()
        zeros = e.const(np.zeros((self.batch, self.hidden))) if masks else None
        ys, hs, cs = [], [], []
        for d in range(len(self.reverse)):
            dr = self._direction(x, d)
            cell = GraphCell(e, dr, self.clip, self.hidden, self.gates, self.linear_before_reset)
            h, c = dr.h0, dr.c0
            outputs: list = [None] * self.steps
            order = range(self.steps - 1, -1, -1) if dr.reverse else range(self.steps)
            for t in order:
                h_new, c_new = cell_step(
                    self.node.op,
                    cell,
                    dr.acts,
                    e.take(dr.xw, t),
                    h,
                    c,
                    linear_before_reset=self.linear_before_reset,
                    input_forget=self.input_forget,
                )
                if masks is None:
                    h, c, outputs[t] = h_new, c_new, h_new
                else:
                    outputs[t] = e.op("Where", [masks[t], h_new, zeros])
                    h = e.op("Where", [masks[t], h_new, h])
                    c = None if c is None else e.op("Where", [masks[t], c_new, c])
            steps = [e.op("Unsqueeze", [y, e.ints([0, 1])]) for y in outputs]
            ys.append(concat(e.b, steps, 0))
            hs.append(e.op("Unsqueeze", [h, e.ints([0])]))
            if c is not None:
                cs.append(e.op("Unsqueeze", [c, e.ints([0])]))
        y = ys[0] if len(ys) == 1 else e.op("Concat", ys, {"axis": 1})  # [T, D, batch, H]
        y_h = hs[0] if len(hs) == 1 else e.op("Concat", hs, {"axis": 0})  # [D, batch, H]
        y_c = (cs[0] if len(cs) == 1 else e.op("Concat", cs, {"axis": 0})) if cs else None
        if self.layout:
            y = e.op("Transpose", [y], {"perm": [2, 0, 1, 3]})
            y_h = e.op("Transpose", [y_h], {"perm": [1, 0, 2]})
            y_c = None if y_c is None else e.op("Transpose", [y_c], {"perm": [1, 0, 2]})
        return [y, y_h, y_c]


def recurrent_problem(node: Node) -> str | None:
    """Why ``node`` (RNN, GRU or LSTM) cannot be written out per step, or None."""
    try:
        _Cell(None, node)
    except Exception as exc:  # the CodegenError _Cell raises
        return getattr(exc, "message", str(exc))
    return None


def runs_as_one_kernel(node: Node) -> bool:
    """Whether code generation compiles ``node`` as one kernel over the whole sequence (asked of its
    TVM lowering; False where TVM is not installed)."""
    try:
        from codegen.tvm.lower.recurrent import whole_sequence_problem
    except ImportError:
        return False
    return whole_sequence_problem(node) is None


def unroll_recurrent(rw: Rewriter, node: Node) -> None:
    """Replace one recurrent ``node`` by its steps; ``CodegenError`` naming it when it cannot be."""
    results = _Cell(rw, node).expand()
    for old, new in zip(node.results, results):
        if old.has_uses():
            new.name = old.name  # graph outputs keep their names
            rw.replace_value(old, new)
    rw.erase_node(node)


@dataclass(frozen=True)
class UnrollRecurrentPass(Pass):
    """Write every top-level RNN/GRU/LSTM with static shapes that has no whole-sequence kernel out
    per step (see the module docstring); ``force``: those with a kernel too. The others are left
    alone (``check-codegen-ready`` names them with ``recurrent_problem``)."""

    name = "unroll-recurrent"
    force: bool = False

    def run(self, graph: Graph) -> PassResult:
        rw = Rewriter(graph, rule_name=self.name)
        count = kept = 0
        for node in [n for n in graph.nodes if n.op in GATES]:
            if not self.force and runs_as_one_kernel(node):
                kept += 1
            elif recurrent_problem(node) is None:
                unroll_recurrent(rw, node)
                count += 1
        return PassResult(count > 0, {"unrolled": count, "kept": kept})
