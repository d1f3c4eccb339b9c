"""Reference kernels of ``RNN``, ``GRU`` and ``LSTM``.

onnx.reference's kernels ignore ``sequence_lens``, ``clip``, the activation list and its
``activation_alpha``/``activation_beta``, and GRU's ``linear_before_reset`` on some paths, so the
interpreter would answer wrongly where onnxruntime does not. These follow the ONNX equations
(onnxruntime's reading where the text is loose):

- a batch entry with ``sequence_lens[b] = L`` runs steps ``0..L-1`` (the reverse direction starts
  at ``L-1``); ``Y`` is zero past ``L``; ``Y_h``/``Y_c`` are the states after its last step;
- ``clip`` bounds every gate's input before its activation;
- ``activation_alpha``/``activation_beta`` are consumed in order by the activations that take them;
- ``layout = 1`` puts the batch first in X, the initial states and every output.

The equations of one step (``cell_step``) and the activation table (``ACTIVATIONS``) are written
once, over ``CellArithmetic``: this kernel runs them on NumPy arrays, and the ``unroll-recurrent``
pass on graph values, so the interpreter and compiled libraries read a recurrent op the same way.

Computed in float64 and returned in X's dtype.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}  # ONNX gate order: RNN i; GRU z r h; LSTM i o f c
DEFAULT_ACTIVATIONS = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}


def _sigmoid(x):
    return np.exp(-np.logaddexp(0, -x))


@dataclass(frozen=True)
class ActivationDef:
    """One activation a cell may use: its NumPy function of (x, alpha, beta), the ONNX op computing
    it (None: composed of Mul/Add/Tanh by ``unroll-recurrent``), and its default alpha/beta (None:
    it takes no such value; one that has a default takes the next ``activation_alpha``/``_beta``)."""

    fn: Callable
    onnx_op: str | None
    alpha: float | None = None
    beta: float | None = None


ACTIVATIONS = {  # by lower-case name; the interpreter's kernel and unroll-recurrent both read this table
    "relu": ActivationDef(lambda x, a, b: np.maximum(x, 0), "Relu"),
    "tanh": ActivationDef(lambda x, a, b: np.tanh(x), "Tanh"),
    "sigmoid": ActivationDef(lambda x, a, b: _sigmoid(x), "Sigmoid"),
    "softsign": ActivationDef(lambda x, a, b: x / (1 + np.abs(x)), "Softsign"),
    "softplus": ActivationDef(lambda x, a, b: np.logaddexp(0, x), "Softplus"),
    "leakyrelu": ActivationDef(lambda x, a, b: np.where(x >= 0, x, a * x), "LeakyRelu", 0.01),
    "thresholdedrelu": ActivationDef(lambda x, a, b: np.where(x > a, x, 0), "ThresholdedRelu", 1.0),
    "elu": ActivationDef(lambda x, a, b: np.where(x >= 0, x, a * np.expm1(np.minimum(x, 0))), "Elu", 1.0),
    "hardsigmoid": ActivationDef(lambda x, a, b: np.clip(a * x + b, 0, 1), "HardSigmoid", 0.2, 0.5),
    "affine": ActivationDef(lambda x, a, b: a * x + b, None, 1.0, 0.0),
    "scaledtanh": ActivationDef(lambda x, a, b: a * np.tanh(b * x), None, 1.0, 1.0),
}


@dataclass(frozen=True)
class Activation:
    """One activation of a cell with its alpha/beta resolved."""

    name: str  # a key of ACTIVATIONS
    alpha: float | None
    beta: float | None

    def __call__(self, x):
        return ACTIVATIONS[self.name].fn(x, self.alpha, self.beta)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def cell_activations(op: str, attrs: dict, directions: int) -> list[list[Activation]]:
    """Per direction, the cell's activations with their alpha/beta, consumed in order by those
    that take them (one list given for a bidirectional cell serves both directions).
    ValueError on a wrong count or an unknown name."""
    per_dir = len(DEFAULT_ACTIVATIONS[op])
    names = [_text(n) for n in (attrs.get("activations") or DEFAULT_ACTIVATIONS[op] * directions)]
    if len(names) == per_dir and directions == 2:
        names = names * 2
    if len(names) != per_dir * directions:
        raise ValueError(f"{len(names)} activations given, {per_dir * directions} expected")
    alphas = list(attrs.get("activation_alpha") or [])
    betas = list(attrs.get("activation_beta") or [])
    resolved = []
    for name in names:
        spec = ACTIVATIONS.get(name.lower())
        if spec is None:
            raise ValueError(f"unknown activation '{name}'")
        alpha = alphas.pop(0) if spec.alpha is not None and alphas else spec.alpha
        beta = betas.pop(0) if spec.beta is not None and betas else spec.beta
        resolved.append(Activation(name.lower(), alpha, beta))
    return [resolved[d * per_dir : (d + 1) * per_dir] for d in range(directions)]


def _activations(op: str, ctx, directions: int) -> list[list]:
    try:
        return cell_activations(op, ctx.attrs, directions)
    except ValueError as exc:
        raise ValueError(f"{op}: {exc}") from None


class CellArithmetic:
    """What ``cell_step`` writes a cell's equations in: NumPy arrays here (the interpreter's kernel),
    graph values in ``unroll-recurrent`` (passes/unroll_recurrent.py).  ``x_t`` is a step's input
    projection ``x_t W^T`` plus the biases that can be added up front (all of them, except R's bias
    of GRU's h gate under ``linear_before_reset``, which ``recurrence`` adds); gate ``k`` is the
    k-th block of ``hidden`` columns in ONNX gate order."""

    peepholes: tuple | None = None  # LSTM's (p_i, p_o, p_f), when P is given

    def add(self, a, b):
        raise NotImplementedError

    def mul(self, a, b):
        raise NotImplementedError

    def sub(self, a, b):
        raise NotImplementedError

    def one_minus(self, a):
        raise NotImplementedError

    def activate(self, act: Activation, x):
        raise NotImplementedError

    def clip(self, x):
        """``x`` bounded by the cell's ``clip`` (``x`` itself when it has none)."""
        raise NotImplementedError

    def gates(self, x_t, h, count: int) -> list:
        """``x_t[k] + h R_k^T`` for the first ``count`` gates."""
        raise NotImplementedError

    def input_gate(self, x_t, k: int):
        """``x_t[k]``."""
        raise NotImplementedError

    def recurrence(self, v, k: int):
        """``v R_k^T``, plus R's bias of gate ``k`` when it was not added up front."""
        raise NotImplementedError


def cell_step(
    op: str,
    m: CellArithmetic,
    acts: list[Activation],
    x_t,
    h,
    c,
    *,
    linear_before_reset: bool = False,
    input_forget: bool = False,
):
    """One time step of one direction, the ONNX equations: (new H, new C or None)."""
    if op == "RNN":
        (f,) = acts
        (pre,) = m.gates(x_t, h, 1)
        return m.activate(f, m.clip(pre)), None
    if op == "GRU":
        f, g = acts
        z_pre, r_pre = m.gates(x_t, h, 2)
        z, r = m.activate(f, m.clip(z_pre)), m.activate(f, m.clip(r_pre))
        if linear_before_reset:
            cand = m.add(m.input_gate(x_t, 2), m.mul(r, m.recurrence(h, 2)))
        else:
            cand = m.add(m.input_gate(x_t, 2), m.recurrence(m.mul(r, h), 2))
        cand = m.activate(g, m.clip(cand))
        return m.add(cand, m.mul(z, m.sub(h, cand))), None  # (1 - z) * cand + z * H
    f, g, hact = acts
    pi, po, pf, pc = m.gates(x_t, h, 4)
    if m.peepholes is not None:
        p_i, p_o, p_f = m.peepholes
        pi, pf = m.add(pi, m.mul(p_i, c)), m.add(pf, m.mul(p_f, c))
    i = m.activate(f, m.clip(pi))
    forget = m.one_minus(i) if input_forget else m.activate(f, m.clip(pf))
    cand = m.activate(g, m.clip(pc))
    c_new = m.add(m.mul(forget, c), m.mul(i, cand))
    if m.peepholes is not None:
        po = m.add(po, m.mul(p_o, c_new))
    o = m.activate(f, m.clip(po))
    return m.mul(o, m.activate(hact, c_new)), c_new


class _NumpyCell(CellArithmetic):
    """``cell_step`` on float64 NumPy arrays (``r``: one direction's R, [gates * hidden, hidden])."""

    def __init__(self, r, hidden: int, clip, late_bias=None, peepholes=None):
        self.r, self.hidden, self.bound = r, hidden, clip
        self.late_bias = late_bias  # GRU linear_before_reset: R's h-gate bias
        self.peepholes = peepholes

    def add(self, a, b):
        return a + b

    def mul(self, a, b):
        return a * b

    def sub(self, a, b):
        return a - b

    def one_minus(self, a):
        return 1 - a

    def activate(self, act, x):
        return act(x)

    def clip(self, x):
        return x if self.bound is None else np.clip(x, -self.bound, self.bound)

    def gates(self, x_t, h, count):
        n = count * self.hidden
        pre = x_t[:, :n] + h @ self.r[:n].T
        return [pre[:, k * self.hidden : (k + 1) * self.hidden] for k in range(count)]

    def input_gate(self, x_t, k):
        return x_t[:, k * self.hidden : (k + 1) * self.hidden]

    def recurrence(self, v, k):
        out = v @ self.r[k * self.hidden : (k + 1) * self.hidden].T
        return out if self.late_bias is None else out + self.late_bias


def _recurrent(op, inputs, ctx):
    inputs = list(inputs) + [None] * (8 - len(inputs))
    x, w, r, b, lens, h0, c0, p = inputs[:8]
    dtype = x.dtype
    layout = int(ctx.attrs.get("layout") or 0)
    if layout:
        x = x.transpose(1, 0, 2)
        h0 = None if h0 is None else h0.transpose(1, 0, 2)
        c0 = None if c0 is None else c0.transpose(1, 0, 2)
    x, w, r = (np.asarray(v, np.float64) for v in (x, w, r))
    steps, batch, _ = x.shape
    dirs, hidden = w.shape[0], r.shape[-1]
    gh = GATES[op] * hidden
    direction = _text(ctx.attrs.get("direction") or "forward")
    reverse = [False, True] if direction == "bidirectional" else [direction == "reverse"]
    acts = _activations(op, ctx, dirs)
    clip = ctx.attrs.get("clip")
    lens = np.full(batch, steps) if lens is None else np.asarray(lens).reshape(-1)
    y = np.zeros((steps, dirs, batch, hidden))
    y_h, y_c = np.zeros((dirs, batch, hidden)), np.zeros((dirs, batch, hidden))
    lbr = op == "GRU" and bool(ctx.attrs.get("linear_before_reset"))
    for d in range(dirs):
        bias = np.zeros(2 * gh) if b is None else np.asarray(b[d], np.float64)
        wb, rb = bias[:gh], bias[gh:].copy()
        late = None
        if lbr:  # R's h-gate bias goes inside r * (H Rh^T + Rbh)
            late, rb[2 * hidden :] = rb[2 * hidden :].copy(), 0
        h = np.zeros((batch, hidden)) if h0 is None else np.asarray(h0[d], np.float64)
        c = np.zeros((batch, hidden)) if c0 is None else np.asarray(c0[d], np.float64)
        peep = None if p is None else np.asarray(p[d], np.float64)
        cell = _NumpyCell(r[d], hidden, clip, late, None if peep is None else tuple(np.split(peep, 3)))
        xw = x @ w[d].T + wb + rb  # every step's input projection with the biases added up front
        for t in range(steps - 1, -1, -1) if reverse[d] else range(steps):
            active = (t < lens)[:, None]
            h_new, c_new = cell_step(
                op,
                cell,
                acts[d],
                xw[t],
                h,
                c,
                linear_before_reset=lbr,
                input_forget=bool(ctx.attrs.get("input_forget")),
            )
            y[t, d] = np.where(active, h_new, 0)
            h = np.where(active, h_new, h)
            c = c if c_new is None else np.where(active, c_new, c)
        y_h[d], y_c[d] = h, c
    if layout:
        y, y_h, y_c = y.transpose(2, 0, 1, 3), y_h.transpose(1, 0, 2), y_c.transpose(1, 0, 2)
    outs = [y.astype(dtype), y_h.astype(dtype)] + ([y_c.astype(dtype)] if op == "LSTM" else [])
    return outs[: ctx.num_outputs]


def rnn(inputs, attrs, ctx):
    return _recurrent("RNN", inputs, ctx)


def gru(inputs, attrs, ctx):
    return _recurrent("GRU", inputs, ctx)


def lstm(inputs, attrs, ctx):
    return _recurrent("LSTM", inputs, ctx)
