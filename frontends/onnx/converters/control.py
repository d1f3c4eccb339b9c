"""Control flow across opsets.

- Scan-8 (inputs and states carry a leading batch axis; optional sequence_lens) ->
  Loop over the batch whose body gathers one batch element and runs Scan-9 on it;
  the Loop's scan outputs stack the per-element results back along axis 0.
  Only the form without ``sequence_lens`` is supported.
"""

from __future__ import annotations

import numpy as np

from compiler.ir.core import Graph, Node
from compiler.ir.types import DType, TensorType
from compiler.ops.inference import infer_types

from . import converter, i64


def _batch_size(ctx, values):
    for v in values:
        if isinstance(v.type, TensorType) and v.type.shape and isinstance(v.type.shape[0], int):
            return ctx.const(i64(v.type.shape[0]))
    (shape,) = ctx.emit("Shape", [values[0]], {"start": 0, "end": 1})
    (squeezed,) = ctx.emit("Squeeze", [shape])
    return squeezed


def _add(graph: Graph, op: str, operands, attrs=None, name: str = ""):
    attrs = attrs or {}
    n_results = 1 if op != "Scan" else len(attrs["body"].outputs)
    node = Node(
        op, operands, infer_types(op, operands, attrs, n_results), attrs, [f"{name}{k}" for k in range(n_results)]
    )
    graph.append(node)
    return node.results


@converter("Scan", 1, 9)
def scan_v8(ctx):
    """Scan-8: a batch of independent scans, each element run by Scan-9 inside a Loop."""
    if ctx.inputs and ctx.inputs[0] is not None:
        raise ctx.fail("Scan-8 with sequence_lens is not supported (only full-length scans)")
    values = [v for v in ctx.inputs[1:]]
    if any(v is None for v in values) or not values:
        raise ctx.fail("Scan-8 needs its state and scan inputs")
    attrs = ctx.attrs
    n_scan = int(attrs["num_scan_inputs"])
    directions = list(attrs.get("directions") or [0] * n_scan)
    body = Graph(f"{ctx.name}_batch")
    body.add_param(TensorType(DType.INT64, ()), "batch_index")
    cond_in = body.add_param(TensorType(DType.BOOL, ()), "cond")
    index = body.params[0]
    prefix = f"{ctx.name}/element"
    elements = [_add(body, "Gather", [v, index], {"axis": 0}, f"{prefix}{k}_")[0] for k, v in enumerate(values)]
    scan_attrs = {"body": attrs["body"], "num_scan_inputs": n_scan, "scan_input_directions": directions}
    results = _add(body, "Scan", elements, scan_attrs, f"{ctx.name}/scan")
    cond_out = _add(body, "Identity", [cond_in], {}, f"{ctx.name}/cond")[0]
    body.outputs = [cond_out, *results]
    trip = _batch_size(ctx, values)
    keep_going = ctx.const(np.array(True))
    return ctx.emit("Loop", [trip, keep_going], {"body": body}, num_results=len(results), final=True)
