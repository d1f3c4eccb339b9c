"""Lowerings of the ONNX tensor ops: views, data movement, indexing, creation, sorting and the
ops whose result size depends on the data."""
