"""Reference kernels for ONNX ops through ``onnx.reference`` (one op at a time)."""

from __future__ import annotations

import functools

import numpy as np
from onnx.reference import ReferenceEvaluator
from onnx.reference.ops import load_op

from .. import onnx_bridge as bridge
from .infer_onnx import DOMAIN_VERSIONS, split_domain

_RUN_PARAMS = {
    "log": lambda *a, **k: None,
    "opsets": dict(DOMAIN_VERSIONS),
    "new_ops": None,
    "verbose": 0,
    "existing_functions": {},
    "evaluator_cls": ReferenceEvaluator,
}


@functools.lru_cache(maxsize=None)
def _op_class(op: str):
    """onnx.reference's kernel class for an op ("ai.onnx.ml.X" ops from that domain's list), or None."""
    domain, op_type = split_domain(op)
    try:
        if domain == "ai.onnx.ml":
            from onnx.reference.ops.aionnxml._op_list import load_op as load_ml_op

            return load_ml_op(domain, op_type, None)
        if domain == "ai.onnx.preview.training":
            from onnx.reference.ops.aionnx_preview_training._op_list import load_op as load_training_op

            return load_training_op(domain, op_type, None)
        return load_op("", op_type)
    except Exception:
        return None


def onnx_reference(inputs, attrs, ctx):
    """Run one ONNX op with onnx.reference's kernel; returns the list of outputs."""
    from .onnx_schemas import make_node_proto

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
