"""Signal processing: Fourier transforms, windows and mel filter banks."""

from __future__ import annotations

from .declare import Family
from .registry import Fusion

FAMILY = Family("signal")
onnx_op = FAMILY.onnx_op

onnx_op("DFT")
onnx_op("STFT")
onnx_op("BlackmanWindow", fusion=Fusion.INJECTIVE)
onnx_op("HammingWindow", fusion=Fusion.INJECTIVE)
onnx_op("HannWindow", fusion=Fusion.INJECTIVE)
onnx_op("MelWeightMatrix", fusion=Fusion.INJECTIVE)
