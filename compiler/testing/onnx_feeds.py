"""Random run-time inputs for an ONNX model, for comparing Ember with another runtime on it."""

from __future__ import annotations

import numpy as np
import onnx


def random_feeds(model: onnx.ModelProto, seed: int = 0, scale: float = 1.0) -> dict[str, np.ndarray]:
    """One array per graph input that is not an initializer.

    Floats are standard normal times ``scale``; integers (token ids, masks) are 0 or 1; a dimension
    without a fixed size (symbolic or unknown) is 1.
    """
    rng = np.random.default_rng(seed)
    weights = {init.name for init in model.graph.initializer}
    feeds = {}
    for inp in model.graph.input:
        if inp.name in weights:
            continue
        shape = [d.dim_value if d.dim_value > 0 else 1 for d in inp.type.tensor_type.shape.dim]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(inp.type.tensor_type.elem_type)
        if np.issubdtype(dtype, np.integer) or dtype == np.bool_:
            feeds[inp.name] = rng.integers(0, 2, shape).astype(dtype)
        else:
            feeds[inp.name] = (rng.standard_normal(shape) * scale).astype(dtype)
    return feeds
