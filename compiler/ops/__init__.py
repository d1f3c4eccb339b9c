"""The op registry and type inference over it."""

from .registry import (REQUIRED, AttrSpec, EvalContext, FlopContext, Fusion, InferContext, OpDef, Trait,
                       add_lowering, all_ops, get_op, ops_with_lowering, register_op)
from .inference import InferenceError, check_contract, infer_types

__all__ = ["REQUIRED", "AttrSpec", "EvalContext", "FlopContext", "Fusion", "InferContext", "OpDef", "Trait",
           "add_lowering", "all_ops", "ops_with_lowering", "get_op", "register_op", "infer_types",
           "check_contract", "InferenceError"]
