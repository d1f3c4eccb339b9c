"""Reading a tensor element once in a scalar function that uses it several times.

``vector_math``'s functions (e^, tanh, log, ...) and the activations written with them read their
argument many times. A kernel inlines its elementwise stages into one loop body, so without a
binding every read of ``Tanh(x)`` inside ``Exp(Tanh(x))`` is a full copy of Tanh's expression:
three nested Tanh took four minutes to compile, eight nested LeakyRelu more than 100 s.
``bound(v, body)`` evaluates ``body`` on a variable bound once to ``v`` by a TIR ``Let``.

A Let does not make a chain free: TVM's LLVM code generator hands each Let's value to its arithmetic
analyser, which substitutes the Lets bound before it, so each further bound function still
multiplies the analysed expression. Whole compiles of one kernel of 4096 values with the cuts below
turned off (``python benchmarks/chain_build_times.py --no-cut``, Zen 4): Exp and Tanh alternating
four deep 0.9 s, five deep 18 s, ten Tanh over 90 s; five Elu 5.6 s; six, seven and eight LeakyRelu
0.7, 1.3 and 5.5 s; Log(Softplus(Log(x))), whose expanded expression has 0.7 million nodes, 2.5 s.
With the cuts each of them compiles in about a second. So where a tensor read here is itself a chain
``CHAIN_DEPTH_LIMIT`` Lets deep once its producers are inlined, or expands to more than
``CHAIN_SIZE_LIMIT`` nodes, the read goes through a materialised copy of the tensor
(``te_util.MATERIALISED``) and the chain starts again from a load: one pass over memory. Only
generic (elementwise and injective) kernels meet such a chain: the conv, matmul and reduction
schedules do not take a materialised stage in their epilogue, and ``fuse``
(``passes/fuse_rules.py``) nests at most two transcendental ops in such a group (Mish written out as
Softplus, Tanh and Mul is two deep).

Two copies of one bound expression (a consumer reading an inlined producer twice) define the same
variable twice: ``kernel.py`` renames them apart with TVM's ``ConvertSSA`` before scheduling and
again before building.
"""

from __future__ import annotations

import functools

import tvm
from tvm import te, tirx

from .te_util import MATERIALISE_KEY, MATERIALISED, expr_dtype, let

CHAIN_DEPTH_LIMIT = 7  # nested Lets a read may bring into its reader before it is materialised
CHAIN_SIZE_LIMIT = 500_000  # nodes of the expanded expression (``_measure``), likewise


def bound(v, body):
    """``body(t)`` with t a variable bound to ``v`` once, where ``v`` reads a tensor (an expression of
    constants and variables only is passed as it is: inlining never copies into it)."""
    if isinstance(v, te.tensor.TensorSlice):  # x[i] before it takes part in an expression
        v = v.asobject()
    loads = tensor_loads(v)
    if not loads or any(expr_dtype(load) == "bfloat16" for load in loads):
        # TVM 0.27's BF16ComputeLegalize gets a Let of a widened bfloat16 read wrong (a Let of
        # float32(x[i]) read back 2.4e9 for x = -3), so bfloat16 reads stay unbound
        return body(v)
    if _is_load(v) and _too_deep(chain_measure(v.args[0])):
        tensor = v.args[0]
        v = _materialised(tensor.op, tensor.value_index)(*v.args[1:])
    return let("m", v, body)


def binds_argument(fn):
    """``fn(v, ...)`` evaluated on its first argument bound once (``bound``)."""

    @functools.wraps(fn)
    def wrapper(v, *args, **kwargs):
        return bound(v, lambda t: fn(t, *args, **kwargs))

    return wrapper


def _is_load(expr) -> bool:
    return isinstance(expr, tvm.ir.Call) and getattr(expr.op, "name", "") == "te.tensor_load"


_CHILDREN = ("a", "b", "condition", "true_value", "false_value", "value", "body", "args", "indices", "base", "stride")


def _children(node) -> list:
    found = []
    for name in _CHILDREN:
        child = getattr(node, name, None)
        if child is None or isinstance(child, (str, int, float)):
            continue
        if isinstance(child, tvm.ir.Expr):
            found.append(child)
        elif hasattr(child, "__len__"):  # args, indices
            found += [c for c in child if isinstance(c, tvm.ir.Expr)]
    return found


def _too_deep(measure) -> bool:
    size, depth = measure
    return depth >= CHAIN_DEPTH_LIMIT or size > CHAIN_SIZE_LIMIT


def _measure(expr, load_measure) -> tuple[int, int]:
    """(size, depth) of ``expr``: how many nodes it has with every Let's variable replaced by its
    value (the expression TVM's analyser builds from it), and how deep its Lets nest; a tensor read
    counts as ``load_measure(load)``. Walked over the expression's fields, each shared node once
    (TVM 0.27 exposes no TIR visitor to Python)."""
    memo: dict = {}
    bound_to: dict = {}

    def measure(node) -> tuple[int, int]:
        key = node.__chandle__()
        if key in memo:
            return memo[key]
        if _is_load(node):
            result = load_measure(node)
        elif isinstance(node, tirx.Var):
            result = bound_to.get(key, (1, 0))
        elif isinstance(node, tirx.Let):
            size, depth = measure(node.value)
            bound_to[node.var.__chandle__()] = (size, depth + 1)
            result = measure(node.body)
        else:
            parts = [measure(c) for c in _children(node)]
            result = (1 + sum(p[0] for p in parts), max((p[1] for p in parts), default=0))
        memo[key] = result
        return result

    return measure(expr)


def tensor_loads(expr) -> list:
    """The TE tensor reads (``te.tensor_load`` calls) inside ``expr``."""
    found = []
    _measure(expr, lambda load: found.append(load) or (1, 0))
    return found


def _inlined(tensor) -> bool:
    """Whether the schedules may inline ``tensor``'s stage into its readers: a spatial compute stage
    not marked materialised."""
    op = tensor.op
    return isinstance(op, te.ComputeOp) and not op.reduce_axis and not int(op.attrs.get(MATERIALISE_KEY, 0) or 0)


def chain_measure(tensor) -> tuple[int, int]:
    """``_measure`` of a read of ``tensor`` once every inlinable stage above it is inlined: (1, 0)
    for a tensor in memory."""
    if not _inlined(tensor):
        return (1, 0)
    return _stage_measure(tensor.op, tensor.value_index)


@functools.lru_cache(maxsize=256)
def _stage_measure(op, index: int) -> tuple[int, int]:
    return _measure(op.body[index], lambda load: chain_measure(load.args[0]))


@functools.lru_cache(maxsize=64)
def _materialised(op, index: int):
    """A materialised copy of ``op``'s result ``index`` (one per tensor, shared by its readers; keyed
    by the op, whose equality is identity, where a rank-0 tensor's ``==`` raises)."""
    tensor = op.output(index)
    return te.compute(tensor.shape, lambda *i: tensor(*i), name=f"{op.name}_cut", attrs=MATERIALISED)
