"""Lowerings of the ONNX image ops: Resize, GridSample, AffineGrid."""
