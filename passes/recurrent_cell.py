"""How ``unroll-recurrent`` writes a recurrent cell's step as graph ops: ``cell_step`` (the equations
the interpreter's kernel runs, ``compiler.ops.kernels_recurrent``) over graph values.

    gates of a step      ->  Gemm(H, R^T, x_t), Split per gate (GRU: MatMul for z and r, or for all
                             three gates under linear_before_reset)
    activation           ->  its ONNX op (``ACTIVATIONS[name].onnx_op``), or Mul/Add/Tanh for affine
                             and scaledtanh
    clip                 ->  Clip(x, -clip, clip)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from compiler.ir.core import Node, Value
from compiler.ops.kernels_recurrent import ACTIVATIONS, Activation, CellArithmetic
from compiler.rewrite import Rewriter

if TYPE_CHECKING:
    from .unroll_recurrent import _Direction


def apply_activation(act: Activation, e: "Emitter", x: Value) -> Value:
    """Graph ops computing ``act`` (the interpreter computes ``ACTIVATIONS[act.name].fn``)."""
    if act.name == "affine":  # alpha * x + beta
        return e.op("Add", [e.op("Mul", [x, e.const(act.alpha)]), e.const(act.beta)])
    if act.name == "scaledtanh":  # alpha * tanh(beta * x)
        return e.op("Mul", [e.op("Tanh", [e.op("Mul", [x, e.const(act.beta)])]), e.const(act.alpha)])
    attrs = {}
    if act.alpha is not None:
        attrs["alpha"] = float(act.alpha)
    if act.beta is not None:
        attrs["beta"] = float(act.beta)
    return e.op(ACTIVATIONS[act.name].onnx_op, [x], attrs)


class Emitter:
    """Creates nodes through the pass's Rewriter, constants in the recurrent op's float dtype."""

    def __init__(self, rw: Rewriter, anchor: Node, dtype):
        rw.set_insertion_point_before(anchor)
        self.b = rw
        self.dtype = dtype

    def op(self, op: str, operands, attrs=None, **kw):
        return self.b.op(op, operands, attrs, **kw)

    def const(self, value, dtype=None) -> Value:
        return self.b.constant(np.asarray(value, dtype or self.dtype))

    def ints(self, values) -> Value:
        return self.b.constant(np.asarray(values, np.int64))

    def take(self, x: Value, index: int, axis: int = 0) -> Value:
        """``x``'s slice ``index`` along ``axis``, that axis dropped (sliced here when constant: the
        weights of two directions would otherwise be too big for constant folding to split)."""
        if x.const_value is not None:
            return self.b.constant(np.ascontiguousarray(np.take(np.asarray(x.const_value), index, axis=axis)))
        return self.op("Gather", [x, self.b.constant(np.array(index, np.int64))], {"axis": axis})

    def transpose(self, x: Value) -> Value:
        """``x^T`` of a matrix (transposed here when constant)."""
        if x.const_value is not None:
            return self.b.constant(np.ascontiguousarray(np.asarray(x.const_value).T))
        return self.op("Transpose", [x], {"perm": [1, 0]})

    def cols(self, x: Value, start: int, stop: int) -> Value:
        """Columns ``start:stop`` of the last axis."""
        return self.op("Slice", [x, self.ints([start]), self.ints([stop]), self.ints([-1])])

    def split(self, x: Value, parts: int, size: int) -> list[Value]:
        """``x`` cut into ``parts`` equal pieces of ``size`` along the last axis."""
        if parts == 1:
            return [x]
        return list(self.b.node("Split", [x, self.ints([size] * parts)], {"axis": -1}, num_results=parts).results)


class GraphCell(CellArithmetic):
    """``cell_step`` on graph values: gate pre-activations in one ``Gemm(H, R^T, x_t)`` (GRU: one
    MatMul for its z and r gates, or for all three under ``linear_before_reset``)."""

    def __init__(
        self, e: Emitter, dr: "_Direction", clip: float | None, hidden: int, gates: int, linear_before_reset: bool
    ):
        self.e, self.dr, self.bound, self.hidden, self.n_gates = e, dr, clip, hidden, gates
        self.lbr = linear_before_reset
        self.peepholes = None if dr.peep is None else tuple(dr.peep)
        self._inputs: dict[int, list] = {}  # id(x_t) -> its gates (GRU)
        self._h_gate: tuple | None = None  # (H, H Rh^T + Rbh) from GRU's one MatMul under linear_before_reset

    def add(self, a, b):
        return self.e.op("Add", [a, b])

    def mul(self, a, b):
        return self.e.op("Mul", [a, b])

    def sub(self, a, b):
        return self.e.op("Sub", [a, b])

    def one_minus(self, a):
        return self.e.op("Sub", [self.e.const(1), a])

    def activate(self, act, x):
        return apply_activation(act, self.e, x)

    def clip(self, x):
        if self.bound is None:
            return x
        return self.e.op("Clip", [x, self.e.const(-self.bound), self.e.const(self.bound)])

    def gates(self, x_t, h, count):
        e, hs = self.e, self.hidden
        if count == self.n_gates:  # RNN, LSTM: H.R^T + x_t in one kernel
            return e.split(e.op("Gemm", [h, self.dr.rt, x_t]), count, hs)
        if self.lbr:  # GRU, linear_before_reset: H.R^T of all three gates in one MatMul
            hz, hr, hh = e.split(e.op("MatMul", [h, self.dr.rt]), 3, hs)
            self._h_gate = (h, hh if self.dr.rbh is None else e.op("Add", [hh, self.dr.rbh]))
        else:
            hz, hr = e.split(e.op("MatMul", [h, e.cols(self.dr.rt, 0, 2 * hs)]), 2, hs)
        xz, xr, _ = self._input_gates(x_t)
        return [e.op("Add", [xz, hz]), e.op("Add", [xr, hr])]

    def _input_gates(self, x_t) -> list:
        if id(x_t) not in self._inputs:
            self._inputs[id(x_t)] = self.e.split(x_t, self.n_gates, self.hidden)
        return self._inputs[id(x_t)]

    def input_gate(self, x_t, k):
        return self._input_gates(x_t)[k]

    def recurrence(self, v, k):
        if self._h_gate is not None and v is self._h_gate[0] and k == 2:
            return self._h_gate[1]
        hs = self.hidden
        return self.e.op("MatMul", [v, self.e.cols(self.dr.rt, k * hs, (k + 1) * hs)])
