"""``convert-layout{layout=NCHWc,lanes=16}``: 2-D convolutions in the blocked layout NCHW{c}c.

``c`` is ``lanes``, the target's f32 vector width (16 for AVX-512). Rewrites:

- ``Conv(x, w, b)`` (2-D, group 1 or depthwise, static shapes, float32, input and output channels multiples of
  ``c``) -> ``back(ember.ConvBlocked(fwd(x), w, b))`` with explicit pads (``auto_pad`` resolved),
  where ``fwd``/``back`` are ``ember.LayoutTransform`` to NCHW{c}c and back; the weight stays
  Conv's ``[K, C, R, S]`` constant, which code generation prepacks at compile time;
- then the ``layout`` rules (``passes/rules/layout.py``) to a fixed point: ``back`` sinks past
  elementwise ops (residual ``Add``, ``Relu``, ``Clip``, per-channel constants blocked at compile
  time) and ``fwd(back(y))`` cancels, so a chain of convolutions stays blocked between kernels;
- dead nodes left by the rewrites are removed.

Not in the default pipelines (see docs/optimization.md for what was measured). Since the NCHW
kernels for 1x1 convs (``conv_pw``) and strided depthwise convs improved, O3 measured 1.04-1.26x
O2's latency at 1 thread on MobileNetV2/V3, EfficientNet-B0, RegNetY and SqueezeNet, 0.99-1.04x on
ShuffleNetV2 and ResNet-50, and 4.2x on DenseNet-121 (benchmarks/compare_libraries.py, 2026-12-02).
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.ir.core import Graph, Node
from compiler.ir.types import DType
from compiler.ops.ember_layout import PLAIN, blocked_layout, conv_out_dim
from compiler.passes import Pass, PassResult
from compiler.rewrite import MatchResult, NodeRule, RuleSet, apply_rules
from compiler.rewrite.driver import RuleCounts, observing

from .dce import DeadCodeEliminationPass
from .rules import layout
from .rules.common import attr, static_shape, tensor_type


def _explicit_pads(node: Node, x_shape, w_shape, out_shape) -> list[int] | None:
    """Conv's pads as ``[top, left, bottom, right]`` with ``auto_pad`` resolved, or None."""
    strides = list(attr(node, "strides") or [1, 1])
    dilations = list(attr(node, "dilations") or [1, 1])
    auto_pad = attr(node, "auto_pad") or "NOTSET"
    if auto_pad in ("NOTSET", "VALID"):
        pads = list(attr(node, "pads") or [0, 0, 0, 0]) if auto_pad == "NOTSET" else [0, 0, 0, 0]
    else:
        before, after = [], []
        for d in range(2):
            total = max(
                0, (out_shape[2 + d] - 1) * strides[d] + (w_shape[2 + d] - 1) * dilations[d] + 1 - x_shape[2 + d]
            )
            small, big = total // 2, total - total // 2
            before.append(small if auto_pad == "SAME_UPPER" else big)
            after.append(big if auto_pad == "SAME_UPPER" else small)
        pads = before + after
    for d in range(2):
        got = conv_out_dim(x_shape[2 + d], w_shape[2 + d], strides[d], dilations[d], pads[d], pads[2 + d])
        if got != out_shape[2 + d]:
            return None
    return pads


def blocked_conv_rule(lanes: int) -> NodeRule:
    layout_name = blocked_layout(lanes)

    def to_blocked(node: Node, rw) -> bool | MatchResult:
        x, w = node.operands[0], node.operands[1]
        xs, ws, ys = static_shape(x), static_shape(w), static_shape(node.results[0])
        if xs is None or ws is None or ys is None or len(xs) != 4:
            return MatchResult.fail("not a 2-D convolution with static shapes")
        group = int(attr(node, "group") or 1)
        depthwise = group == xs[1] == ys[1] and ws[1] == 1
        if tensor_type(x).dtype != DType.FLOAT32 or not (group == 1 or depthwise):
            return MatchResult.fail("only float32 convolutions with group 1 or depthwise ones are blocked")
        if xs[1] % lanes or ys[1] % lanes:
            return MatchResult.fail(f"channels {xs[1]} -> {ys[1]} are not multiples of {lanes}")
        pads = _explicit_pads(node, xs, ws, ys)
        if pads is None:
            return MatchResult.fail("the output shape does not follow from the pads")
        attrs = {
            "layout": layout_name,
            "strides": list(attr(node, "strides") or [1, 1]),
            "pads": pads,
            "dilations": list(attr(node, "dilations") or [1, 1]),
            **({"group": group} if depthwise else {}),
        }
        xb = rw.op(layout.TRANSFORM, [x], {"src": PLAIN, "dst": layout_name})
        yb = rw.op("ember.ConvBlocked", [xb, *node.operands[1:]], attrs, name=node.name)  # profiles name it
        rw.replace_node(node, rw.op(layout.TRANSFORM, [yb], {"src": layout_name, "dst": PLAIN}))
        return True

    return NodeRule("Conv", to_blocked, name="conv-to-blocked")


@dataclass(frozen=True)
class ConvertLayoutPass(Pass):
    """2-D convolutions to NCHW{lanes}c, the layout carried through elementwise ops (module docstring)."""

    name = "convert-layout"
    layout: str = "NCHWc"
    lanes: int = 16

    def run(self, graph: Graph) -> PassResult:
        if self.layout != "NCHWc":
            raise ValueError(f"convert-layout: unsupported layout '{self.layout}' (NCHWc is the one there is)")
        with observing(RuleCounts()) as counts:
            changed = apply_rules(graph, RuleSet([blocked_conv_rule(self.lanes)]) + layout.rules())
        if changed:
            DeadCodeEliminationPass().run(graph)
        return PassResult(changed, dict(counts.applied))
