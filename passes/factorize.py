"""``factorize``: split a constant weight into two thinner factors by SVD when that saves FLOPs.

With ``W = U S Vt`` (``W``: ``[K, N]``, input features by outputs) cut to rank ``r`` (``rank=R``,
or the fewest singular values holding ``energy`` of ``sum(S**2)``), ``A = U[:, :r] S[:r]`` and
``B = Vt[:r]``; rewrites, only when ``r * (K + N) < K * N``:

    MatMul(x, W)                    ->  MatMul(MatMul(x, A), B)
    Gemm(x, W, c) {transB}          ->  Gemm(MatMul(x, A), B, c)          (transA = 0)
    Conv(x, W[N, K, 1, 1], b) {..}  ->  Conv(Conv(x, A^T[r, K, 1, 1]) {..}, B^T[N, r, 1, 1], b)

Exact when ``W`` has rank ``<= r``; otherwise the error is what the dropped singular values hold.
Statistics: ``factorized`` and ``skipped`` (no FLOP saving at the chosen rank).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from compiler.ir.core import Graph, Node
from compiler.passes import Pass, PassResult
from compiler.rewrite import Rewriter

from .quantize import erase_if_unused, is_float32


def weight_matrix(node: Node) -> np.ndarray | None:
    """The node's constant weight as a ``[K in, N out]`` matrix, or None when it cannot be factorized."""
    if len(node.operands) < 2 or node.operands[1] is None or not is_float32(node.operands[1]):
        return None
    w = node.operands[1].const_value
    if w is None:
        return None
    w = np.asarray(w, dtype=np.float64)
    if node.op == "MatMul" and w.ndim == 2:
        return w
    if node.op == "Gemm" and w.ndim == 2 and not node.attrs.get("transA", 0):
        return w.T if node.attrs.get("transB", 0) else w
    is_pointwise = w.ndim >= 3 and all(d == 1 for d in w.shape[2:])
    if node.op == "Conv" and is_pointwise and node.attrs.get("group", 1) == 1:
        return w.reshape(w.shape[:2]).T
    return None


@dataclass(frozen=True)
class FactorizePass(Pass):
    """Low-rank factorisation of MatMul, Gemm and 1x1 Conv weights (see the module docstring)."""

    name = "factorize"
    lossy: ClassVar[bool] = True
    energy: float = 0.95
    rank: int = 0

    def choose_rank(self, singular: np.ndarray) -> int:
        if self.rank > 0:
            return min(self.rank, len(singular))
        power = np.cumsum(singular**2)
        if power[-1] == 0:
            return 1
        return int(np.searchsorted(power / power[-1], self.energy - 1e-12) + 1)

    def run(self, graph: Graph) -> PassResult:
        rw = Rewriter(graph, rule_name=self.name)
        done = skipped = 0
        for node in list(graph.nodes):
            w = weight_matrix(node)
            if w is None:
                continue
            u, s, vt = np.linalg.svd(w, full_matrices=False)
            r = self.choose_rank(s)
            k, n = w.shape
            if r * (k + n) >= k * n:
                skipped += 1
                continue
            a = (u[:, :r] * s[:r]).astype(np.float32)
            b = vt[:r].astype(np.float32)
            self._rewrite(rw, node, a, b)
            done += 1
        return PassResult(done > 0, {"factorized": done, "skipped": skipped})

    @staticmethod
    def _rewrite(rw: Rewriter, node: Node, a: np.ndarray, b: np.ndarray) -> None:
        rw.set_insertion_point_before(node)
        x, w = node.operands[0], node.operands[1]
        base = w.name or "w"
        if node.op == "Conv":
            first = rw.constant(a.T.reshape(a.shape[1], a.shape[0], 1, 1), name=f"{base}_rank_in")
            second = rw.constant(b.T.reshape(b.shape[1], b.shape[0], 1, 1), name=f"{base}_rank_out")
            h = rw.op("Conv", [x, first], dict(node.attrs))
            attrs = {"kernel_shape": [1, 1]} if "kernel_shape" in node.attrs else {}
            y = rw.op("Conv", [h, second, *node.operands[2:]], attrs)
        else:
            h = rw.op("MatMul", [x, rw.constant(a, name=f"{base}_rank_in")])
            second = rw.constant(b, name=f"{base}_rank_out")
            attrs = {k: v for k, v in node.attrs.items() if k != "transB"}
            y = rw.op(node.op, [h, second, *node.operands[2:]], attrs if node.op == "Gemm" else {})
        rw.replace_node(node, y)
        erase_if_unused(rw, w)
