"""Recurrent ops: RNN, GRU, LSTM.

Their reference kernels, which follow the ONNX equations where onnx.reference
does not (``sequence_lens``, ``clip``, activation lists, ``layout``), live in
``kernels_recurrent.py`` with the gate tables that codegen's unrolling shares.
The contract ties every operand's shape to X's and to ``hidden_size``: onnx's
inference only reads the output shapes off them.
"""

from __future__ import annotations

from . import contracts as c
from .declare import Family
from .kernels_recurrent import GATES, gru, lstm, rnn
from .registry import FlopContext, InferContext

FAMILY = Family("recurrent")
onnx_op = FAMILY.onnx_op


def recurrent_contract(ctx: InferContext) -> list[str]:
    """W [D, G*H, I], R [D, G*H, H], B [D, 2*G*H], sequence_lens [batch], initial_h/_c [D, batch, H]
    ([batch, D, H] under layout=1), P [D, 3*H]: D directions, G gates, H hidden_size, I X's input size."""
    x = c.shape(ctx, 0)
    layout = int(c.attr(ctx, "layout") or 0)
    direction = c.attr(ctx, "direction") or "forward"
    dirs = 2 if (direction.decode() if isinstance(direction, bytes) else direction) == "bidirectional" else 1
    gates = GATES[ctx.op]
    r = c.shape(ctx, 2)
    hidden = c.attr(ctx, "hidden_size")
    if hidden is None and r is not None and len(r) == 3:
        hidden = r[2]
    gh = gates * hidden if c.static(hidden) else None
    batch, size = (None, None) if x is None or len(x) != 3 else ((x[0], x[2]) if layout else (x[1], x[2]))
    state = (batch, dirs, hidden) if layout else (dirs, batch, hidden)
    want = {
        1: ("W", (dirs, gh, size)),
        2: ("R", (dirs, gh, hidden)),
        3: ("B", (dirs, 2 * gh if gh is not None else None)),
        4: ("sequence_lens", (batch,)),
        5: ("initial_h", state),
        6: ("initial_c", state),
        7: ("P", (dirs, 3 * hidden if c.static(hidden) else None)),
    }
    found = []
    for index, (name, dims) in want.items():
        s = c.shape(ctx, index)
        if s is None or (index > 5 and ctx.op != "LSTM"):
            continue
        if len(s) != len(dims) or any(c.static(a) and c.static(b) and a != b for a, b in zip(s, dims)):
            found.append(
                f"{name} {c.show(s)} must be {c.show(dims)} (X {c.show(x)}, {dirs} direction(s), "
                f"{gates} gate(s), hidden_size {hidden if c.static(hidden) else '?'})"
            )
    return found


def recurrent_flops(ctx: FlopContext) -> int:
    """2 x (steps x batch) x (W's and R's elements): every step multiplies x_t by W and h_{t-1} by R for each
    direction; gate arithmetic is not counted."""
    x, w, r = (ctx.in_shapes[i] if i < len(ctx.in_shapes) else None for i in range(3))
    if x is None or w is None or r is None or len(x) != 3 or not x[2]:
        return sum(_numel(s) for s in ctx.out_shapes)
    steps_times_batch = _numel(x) // int(x[2])
    return 2 * steps_times_batch * (_numel(w) + _numel(r))


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


onnx_op("RNN", kernel=rnn, contract=recurrent_contract, flops=recurrent_flops)
onnx_op("GRU", kernel=gru, contract=recurrent_contract, flops=recurrent_flops)
onnx_op("LSTM", kernel=lstm, contract=recurrent_contract, flops=recurrent_flops)
