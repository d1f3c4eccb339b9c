"""Reference kernels for ONNX ops through ``onnx.reference`` (one op at a time)."""

from __future__ import annotations

import functools

import numpy as np
from onnx import defs, helper
from onnx.reference import ReferenceEvaluator
from onnx.reference.ops import load_op

from .. import onnx_bridge as bridge

_RUN_PARAMS = {
    "log": lambda *a, **k: None,
    "opsets": {"": defs.onnx_opset_version()},
    "new_ops": None,
    "verbose": 0,
    "existing_functions": {},
    "evaluator_cls": ReferenceEvaluator,
}


@functools.lru_cache(maxsize=None)
def _op_class(op: str):
    try:
        return load_op("", op)
    except Exception:
        return None


def onnx_reference(inputs, attrs, ctx):
    """Run one ONNX op with onnx.reference's kernel; returns the list of outputs."""
    from .onnx_ops import make_node_proto

    names = [f"i{i}" if x is not None else "" for i, x in enumerate(inputs)]
    n_out = ctx.num_outputs
    node = make_node_proto(ctx.op, attrs, len(names), n_out, names, [f"o{i}" for i in range(n_out)])
    cls = _op_class(ctx.op)
    if cls is None:
        input_types = [bridge.type_to_proto(t) for t in ctx.input_types if t is not None]
        cls = load_op("", ctx.op, node=node, input_types=input_types, evaluator_cls=ReferenceEvaluator)
    inst = cls(node, _RUN_PARAMS)
    args = [x for x in inputs]
    while args and args[-1] is None:
        args.pop()
    outs = inst.run(*args)
    if not isinstance(outs, tuple):
        outs = (outs,)
    return [np.asarray(o) if isinstance(o, np.generic) else o for o in outs]
