"""Lowerings of the ONNX neural-network ops: convolutions, pooling, normalisations."""
