"""Lowerings of the ONNX signal ops: DFT, STFT, window functions, MelWeightMatrix."""
