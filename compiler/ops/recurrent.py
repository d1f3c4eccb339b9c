"""Recurrent ops: RNN, GRU, LSTM.

Their reference kernels, which follow the ONNX equations where onnx.reference
does not (``sequence_lens``, ``clip``, activation lists, ``layout``), live in
``kernels_recurrent.py`` with the gate tables that codegen's unrolling shares.
"""

from __future__ import annotations

from .declare import Family
from .kernels_recurrent import gru, lstm, rnn

FAMILY = Family("recurrent")
onnx_op = FAMILY.onnx_op

onnx_op("RNN", kernel=rnn)
onnx_op("GRU", kernel=gru)
onnx_op("LSTM", kernel=lstm)
