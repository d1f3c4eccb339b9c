"""``convert-float16`` and ``convert-bfloat16``: compute in 16-bit floats, keep the graph's I/O types.

Rewrites, for every float32 node whose op is not precision-sensitive (``OpDef.precision_sensitive``:
reductions, Softmax, normalizations) nor named in ``block`` (an op or node name)::

    y = Op(x, c)  ->  y = Cast(Op(Cast(x, to=T), c as T), to=float32)      T = float16 or bfloat16

with non-float operands (shapes, indices) left as they are, and constants converted in place.
The casts this leaves between two converted nodes cancel (``Cast(Cast(x: T, f32), T) -> x``, the
``cast-cast`` rule of ``passes/rules/shape.py``), so a run of converted nodes computes in T
throughout and the graph's inputs and outputs keep float32.  ``allow-sensitive=true`` converts the
precision-sensitive ops too.  A node whose op does not accept T (its type inference refuses) stays
float32; ``graph.metadata["convert-float-left"]`` lists each node left and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from compiler.ir.core import Graph, Node, Value
from compiler.ir.types import DType, TensorType
from compiler.ops import Trait, get_op
from compiler.passes import Pass, PassResult
from compiler.rewrite import Rewriter, RuleSet, apply_rules

from .dce import eliminate_dead_code
from .rules.shape import cast_cast, cast_noop

LEFT_KEY = "convert-float-left"
CANCEL_CASTS = RuleSet([cast_cast, cast_noop])


def is_float32(v: Value | None) -> bool:
    return v is not None and isinstance(v.type, TensorType) and v.type.dtype == DType.FLOAT32


def why_not(node: Node, block: tuple[str, ...], allow_sensitive: bool) -> str | None:
    """Why ``node`` stays float32, or None when it can be converted."""
    op_def = get_op(node.op)
    if not any(is_float32(r) for r in node.results) or node.op in ("Constant", "Cast", "CastLike"):
        return ""  # nothing to convert: no report
    if op_def is None or not op_def.has(Trait.PURE) or op_def.has(Trait.RANDOM) or node.subgraphs:
        return "not a pure op without subgraphs"
    if any(name in block for name in (node.op, node.name, *(r.name for r in node.results))):
        return "blocked"
    if op_def.precision_sensitive and not allow_sensitive:
        return "precision-sensitive op"
    return None


@dataclass(frozen=True)
class ConvertFloatPass(Pass):
    """Shared body of ``convert-float16`` and ``convert-bfloat16`` (see the module docstring)."""

    target: ClassVar[DType] = DType.FLOAT16
    lossy: ClassVar[bool] = True  # values change within the target type's rounding
    block: tuple[str, ...] = ()
    allow_sensitive: bool = False

    def run(self, graph: Graph) -> PassResult:
        rw = Rewriter(graph, rule_name=self.name)
        left: list[tuple[str, str]] = []
        converted = 0
        casts: dict[int, Value] = {}  # one cast to the target type per float32 value
        for node in list(graph.nodes):
            reason = why_not(node, self.block, self.allow_sensitive)
            if reason is None:
                reason = self._convert(rw, node, casts)
            if reason:
                left.append((node.describe(), reason))
            elif reason is None:
                converted += 1
        if converted:
            apply_rules(graph, CANCEL_CASTS)
            eliminate_dead_code(graph)
        graph.metadata[LEFT_KEY] = left
        return PassResult(converted > 0, {"converted": converted, "left-float32": len(left)})

    def _convert(self, rw: Rewriter, node: Node, casts: dict[int, Value]) -> str | None:
        """Rebuild ``node`` in the target type between casts; the reason when its op refuses."""
        rw.set_insertion_point_before(node)
        low = self.target
        created: list[Node] = []
        operands = []
        for v in node.operands:
            if not is_float32(v):
                operands.append(v)
            elif v.const_value is not None:
                operands.append(rw.constant(np.asarray(v.const_value).astype(low.np), name=f"{v.name}_{low.value}"))
                created.append(operands[-1].producer)
            elif id(v) in casts:
                operands.append(casts[id(v)])
            else:
                operands.append(rw.op("Cast", [v], {"to": low.onnx}))
                created.append(operands[-1].producer)
        names = [f"{r.name}_{low.value}" if r.name else "" for r in node.results]
        try:
            new = rw.node(node.op, operands, dict(node.attrs), num_results=len(node.results), names=names)
        except Exception as exc:  # the op's schema does not take the type
            for made in reversed(created):
                rw.erase_node(made)
            return f"does not accept {low.value}: {str(exc).splitlines()[0][:80]}"
        casts.update((id(v), c) for v, c in zip(node.operands, operands) if c is not v and c.producer.op == "Cast")
        rw.set_insertion_point_after(new)
        backs = []
        for old, result in zip(node.results, new.results):
            if is_float32(old) and isinstance(result.type, TensorType) and result.type.dtype == low:
                backs.append(rw.op("Cast", [result], {"to": DType.FLOAT32.onnx}))
            else:
                backs.append(result)
        new.name = node.name
        rw.replace_node(node, backs)
        return None


@dataclass(frozen=True)
class ConvertFloat16Pass(ConvertFloatPass):
    """float32 -> float16 inside the graph, I/O kept (see the module docstring)."""

    name = "convert-float16"
    target = DType.FLOAT16


@dataclass(frozen=True)
class ConvertBFloat16Pass(ConvertFloatPass):
    """float32 -> bfloat16 inside the graph, I/O kept (see the module docstring)."""

    name = "convert-bfloat16"
    target = DType.BFLOAT16
