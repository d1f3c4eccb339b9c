"""``conv-transpose-as-conv``: a ConvTranspose whose kernel equals its stride is a 1x1 Conv and a
DepthToSpace.

    ConvTranspose(x[N, C, H, W], w[C, K, s, s], b){strides = kernel_shape = [s, s]}
        ->  DepthToSpace(Conv(x, w'[K*s*s, C, 1, 1], b'), blocksize=s, mode="CRD")

with ``w'[k*s*s + i*s + j, c] = w[c, k, i, j]`` and ``b'[k*s*s + q] = b[k]``: each output pixel
``(y, x)`` reads exactly one input pixel ``(y // s, x // s)`` through tap ``(y % s, x % s)``, so the
``s*s`` taps are ``s*s`` output channels of a pointwise product, which DepthToSpace (column-row-depth
order) scatters to their pixels. The product runs on the pointwise conv kernels, whose tile rows are
output channels of any count, where the stride-decomposed ConvTranspose computed 16-channel blocks:
a DBNet-style head's 24 -> 1 upsampling computed 16 channels for 1, and its 24 -> 24 one 32 for 24
(one-off timing at 1 thread, both on a loaded machine: 3.3 -> 1.4 ms and 22.7 -> 3.5 ms; onnxruntime
1.9 and 4.0 ms).

Applies to 2-D, group-1, float ConvTransposes of static shapes with constant weights (and bias),
square ``s`` at least 2, no padding, output padding or dilation, and an output of exactly
``s`` times the input. A code-generation preparation (``codegen-prepare``): it adds a node, so
``O2``, whose exported graphs stay at most as large as onnxsim's, does not run it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.ir.core import Graph, Node
from compiler.passes import Pass, PassResult
from compiler.rewrite import MatchResult, NodeRule, RuleSet, apply_rules_counted

from .rules.common import attr, is_float, static_shape


def _stride(node: Node) -> int | None:
    """``s`` of a ConvTranspose whose kernel, strides and output are ``s`` times its input, else None."""
    x_shape, w_shape, y_shape = (static_shape(v) for v in (node.operands[0], node.operands[1], node.results[0]))
    if x_shape is None or w_shape is None or y_shape is None or len(x_shape) != 4 or len(w_shape) != 4:
        return None
    strides = list(attr(node, "strides") or [1, 1])
    s = strides[0]
    if strides != [s, s] or s < 2 or list(w_shape[2:]) != [s, s]:
        return None
    if list(y_shape) != [x_shape[0], w_shape[1], x_shape[2] * s, x_shape[3] * s]:
        return None
    return s


def _convertible(node: Node) -> MatchResult:
    if len(node.operands) < 2 or node.operands[1] is None or node.operands[1].const_value is None:
        return MatchResult.fail("the weight is not a constant")
    bias = node.operands[2] if len(node.operands) > 2 else None
    if bias is not None and bias.const_value is None:
        return MatchResult.fail("the bias is not a constant")
    if not is_float(node.results[0]) or int(attr(node, "group") or 1) != 1:
        return MatchResult.fail("not a float ConvTranspose of group 1")
    if any(attr(node, "pads") or []) or any(attr(node, "output_padding") or []):
        return MatchResult.fail("padded, or with output padding")
    if any(d != 1 for d in attr(node, "dilations") or []) or (attr(node, "auto_pad") or "NOTSET") not in (
        "NOTSET",
        "VALID",
    ):
        return MatchResult.fail("dilated, or with SAME padding")
    if _stride(node) is None:
        return MatchResult.fail("its kernel is not its (square) stride, or its output not stride x its input")
    return MatchResult.success()


def _as_conv(node: Node, rw) -> bool:
    s = _stride(node)
    w = np.asarray(node.operands[1].const_value)
    channels, k = w.shape[0], w.shape[1]
    weight = np.ascontiguousarray(w.transpose(1, 2, 3, 0).reshape(k * s * s, channels, 1, 1))
    operands = [node.operands[0], rw.constant(weight)]
    bias = node.operands[2] if len(node.operands) > 2 else None
    if bias is not None:
        operands.append(rw.constant(np.repeat(np.asarray(bias.const_value), s * s)))
    conv = rw.op("Conv", operands, {}, name=node.name)
    rw.replace_node(node, rw.op("DepthToSpace", [conv], {"blocksize": s, "mode": "CRD"}))
    return True


RULES = RuleSet(
    [NodeRule("ConvTranspose", _as_conv, check=_convertible, name="conv-transpose-as-conv")],
    name="conv-transpose-as-conv",
)


@dataclass(frozen=True)
class ConvTransposeAsConvPass(Pass):
    """ConvTranspose with kernel == stride -> 1x1 Conv + DepthToSpace (see the module docstring)."""

    name = "conv-transpose-as-conv"

    def run(self, graph: Graph) -> PassResult:
        return PassResult(*apply_rules_counted(graph, RULES))
