"""2-D matrix products become ``Gemm`` and absorb transposes and bias additions.

Rewrites (2-D float operands only; the intermediate result read only there):

- ``Add(MatMul(a, b), c)``, ``Add(c, MatMul(a, b))`` -> ``Gemm(a, b, c)`` when ``c`` broadcasts to the product;
- ``Add(Gemm(a, b), c)`` (no ``C`` yet) -> ``Gemm(a, b, c)`` with ``beta = 1``;
- ``Gemm(Transpose(a), b)`` -> ``Gemm(a, b, transA = 1 - transA)``, likewise for ``b`` and ``transB``;
- ``MatMul(Transpose(a), b)`` / ``MatMul(a, Transpose(b))`` -> ``Gemm(a, b, transA=1)`` / ``Gemm(a, b, transB=1)``;
- sibling projections of one input (any rank), e.g. attention's Q, K and V:
  ``Add(MatMul(x, W1), b1), ..., Add(MatMul(x, Wn), bn)`` -> ``Split(Add(MatMul(x, [W1..Wn]), [b1..bn]))``
  (constant 2-D ``Wi``, constant 1-D ``bi``; also without the Adds), when that leaves fewer nodes.
"""

from __future__ import annotations

import functools

import numpy as np

from compiler.rewrite import AnyOf, MatchResult, NodeRule, RuleSet, Var, op, rule

from .common import attr, is_float, only_use_is, same_type, tensor_type

a, b, c = Var("a", rank=2), Var("b", rank=2), Var("c")


def _is_2d_transpose(node) -> bool:
    perm = node.attrs.get("perm")
    return perm is None or list(perm) == [1, 0]


def _bias_fits(m, product) -> MatchResult:
    """``c`` broadcasts (one way) to the 2-D product, which only the Add reads."""
    out, ct = tensor_type(product), tensor_type(m.c)
    if not is_float(product) or ct is None or ct.shape is None or ct.rank > 2 or out.shape is None:
        return MatchResult.fail("not a float product with a bias of known shape")
    if not only_use_is(product, m.root) or not same_type(m.root.results[0], product):
        return MatchResult.fail("the product has other users or the Add broadcasts it")
    for dim, full in zip(reversed(ct.shape), reversed(out.shape)):
        if dim != 1 and dim != full:
            return MatchResult.fail(f"bias dim {dim} does not broadcast to {full}")
    return MatchResult.success()


def _transposed(name: str):
    return op.Transpose(Var(name, rank=2), name=f"t_{name}", where=_is_2d_transpose)


def _bias_add(mm):
    """The Add that adds a constant 1-D bias to ``mm``'s result (its only reader), else None."""
    users = mm.results[0].users
    if len(users) != 1 or users[0].op != "Add" or len(mm.results[0].uses) != 1:
        return None
    add = users[0]
    other = add.operands[1] if add.operands[0] is mm.results[0] else add.operands[0]
    b = other.const_value
    n = mm.operands[1].const_value.shape[1]
    if b is None or b.shape != (n,) or b.dtype != mm.operands[1].const_value.dtype:
        return None
    return add if same_type(add.results[0], mm.results[0]) else None


def _sibling_projections(node) -> list:
    """The MatMuls that multiply ``node``'s first operand by a constant 2-D weight with the same rows."""
    x, w = node.operands
    if w.const_value is None or w.const_value.ndim != 2 or not is_float(x):
        return []
    k, dtype = w.const_value.shape[0], w.const_value.dtype
    out = []
    for user in x.users:
        same_graph = user.graph is node.graph  # (readers inside nested graphs stay apart)
        c = user.operands[1].const_value if same_graph and user.op == "MatMul" and user.operands[0] is x else None
        if c is not None and c.ndim == 2 and c.shape[0] == k and c.dtype == dtype:
            out.append(user)
    return sorted(out, key=functools.cmp_to_key(lambda a, b: -1 if a.is_before(b) else (a is not b)))


def _merge_projections(node, rw) -> "bool | MatchResult":
    """The sibling-projection merge of the module docstring."""
    siblings = _sibling_projections(node)
    adds = [_bias_add(mm) for mm in siblings]
    biased = all(a is not None for a in adds)
    if len(siblings) < 2 or (2 * len(siblings) - 3 if biased else len(siblings) - 2) <= 0:
        return MatchResult.fail(f"{len(siblings)} sibling projection(s) of one input: merging saves no node")
    weights = [mm.operands[1].const_value for mm in siblings]
    rw.set_insertion_point_before(siblings[0])
    y = rw.op("MatMul", [node.operands[0], rw.constant(np.concatenate(weights, axis=1))])
    if biased:
        biases = [
            a.operands[1].const_value if a.operands[1].const_value is not None else a.operands[0].const_value
            for a in adds
        ]
        y = rw.op("Add", [y, rw.constant(np.concatenate(biases))])
    sizes = rw.constant(np.array([w.shape[1] for w in weights], np.int64))
    parts = rw.node("Split", [y, sizes], {"axis": -1}, num_results=len(siblings)).results
    for i, mm in enumerate(siblings):
        last = adds[i] if biased else mm
        rw.replace_value(last.results[0], parts[i])
        if biased:
            rw.erase_node(adds[i])
        rw.erase_node(mm)
    return True


def rules(fast_math: bool = False) -> RuleSet:
    """The Gemm rules (exact: the same products and sums, in the same order)."""

    @rule(
        op.Add(op.MatMul(a, b, name="mm"), c, commute=True),
        check=lambda m: _bias_fits(m, m.mm),
        name="matmul-add-to-gemm",
    )
    def matmul_add(rw, m):
        return rw.op("Gemm", [m.a, m.b, m.c])

    def gemm_add_check(m) -> MatchResult:
        gemm = m.nodes["g"]
        if len(gemm.operands) > 2 and gemm.operands[2] is not None:
            return MatchResult.fail("the Gemm already has a bias")
        return _bias_fits(m, m.g)

    @rule(op.Add(op.Gemm(a, b, name="g"), c, commute=True), check=gemm_add_check, name="gemm-add")
    def gemm_add(rw, m):
        return rw.op("Gemm", [m.a, m.b, m.c], dict(m.nodes["g"].attrs, beta=1.0))

    def flip(node, key: str) -> dict:
        return dict(node.attrs, **{key: 1 - int(attr(node, key))})

    @rule(op.Gemm(_transposed("a"), b, variadic=True), name="gemm-transpose-a")
    def gemm_transpose_a(rw, m):
        return rw.op("Gemm", [m.a] + list(m.root.operands[1:]), flip(m.root, "transA"))

    @rule(op.Gemm(a, _transposed("b"), variadic=True), name="gemm-transpose-b")
    def gemm_transpose_b(rw, m):
        return rw.op("Gemm", [m.root.operands[0], m.b] + list(m.root.operands[2:]), flip(m.root, "transB"))

    def float_product(m) -> MatchResult:
        return MatchResult.success() if is_float(m.root.results[0]) else MatchResult.fail("not a float product")

    @rule(
        AnyOf(op.MatMul(_transposed("a"), b), op.MatMul(a, _transposed("b"))),
        check=float_product,
        name="matmul-transpose-to-gemm",
    )
    def matmul_transpose(rw, m):
        ta, tb = "t_a" in m.nodes, "t_b" in m.nodes
        return rw.op("Gemm", [m.a, m.b], {"transA": int(ta), "transB": int(tb)})

    merge = NodeRule("MatMul", _merge_projections, name="merge-sibling-projections")
    return RuleSet([matmul_add, gemm_add, gemm_transpose_a, gemm_transpose_b, matmul_transpose, merge], name="gemm")
