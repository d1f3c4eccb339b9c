"""Ember's compiler core: the SSA graph IR, op registry, interpreter and tools.

Public facade::

    from compiler import Graph, Value, Node, TensorType, DType, Builder
    from compiler import parse_ir, print_ir, load_ir, save_ir, verify, interpret, EmberError
    from compiler import compile                # model -> O2,codegen-prepare -> library (compiler.driver)
    from compiler import tune_model             # MetaSchedule on the heaviest kernels (compiler.tune)
"""

from .diagnostics import EmberError
from .driver import compile, compile_model  # noqa: A004,F401  (the one driver; compile not in __all__: a builtin's name)
from .ir.builder import Builder
from .ir.core import Graph, IRError, Node, Use, Value
from .ir.interpreter import InterpreterError, interpret
from .ir.parser import ParseError, load_ir, parse_ir
from .ir.printer import print_ir, save_ir
from .ir.types import DType, OptionalType, SequenceType, TensorType, Type
from .ir.verifier import VerifyError, verify
from .ops import AttrSpec, OpDef, Trait, all_ops, get_op, register_op
from .tune import tune_model

__version__ = "0.1.0"

__all__ = [
    "EmberError",
    "Builder",
    "Graph",
    "IRError",
    "Node",
    "Use",
    "Value",
    "InterpreterError",
    "interpret",
    "ParseError",
    "load_ir",
    "parse_ir",
    "print_ir",
    "save_ir",
    "DType",
    "OptionalType",
    "SequenceType",
    "TensorType",
    "Type",
    "VerifyError",
    "verify",
    "AttrSpec",
    "OpDef",
    "Trait",
    "all_ops",
    "get_op",
    "register_op",
    "compile_model",
    "tune_model",
    "__version__",
]
