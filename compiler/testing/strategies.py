"""Hypothesis strategies that build random, well-typed Ember graphs and inputs for them.

Pass authors use these to check that a pass preserves semantics::

    from hypothesis import given, settings
    from compiler.testing import assert_pass_preserves_semantics
    from compiler.testing.strategies import graph_and_inputs

    @settings(deadline=None)
    @given(graph_and_inputs(ops=["Add", "Mul", "Relu", "MatMul"], max_nodes=6))
    def test_my_pass_keeps_values(case):
        graph, inputs = case
        assert_pass_preserves_semantics("my-pass", graph, inputs)

or, by hand: ``before = interpret(graph, inputs)``, run the pass, ``verify(graph)``,
and compare ``interpret(graph, inputs)`` with ``before`` output by output.

How graphs are built: a pool of available values starts with one to three
parameters; each step picks an op from ``ops``, finds operands in the pool
whose types fit (or adds a fresh parameter or constant that does) and creates
the node with ``Builder`` so that the registry infers its result type.  By
default every result is named (``t0``, ``t1``, ...), so ``interpret`` output
names are stable; the unused values become the graph's outputs.  ``names=``
changes that for tests of the text form and of passes that must not depend on
names: ``"none"`` leaves every node result and nested-graph parameter unnamed,
``"clashing"`` draws names from a few that collide with each other, with the
parameters' names and with the numbers the printer gives unnamed values
(top-level parameters keep their unique names ``x0``, ``x1``, ... because
inputs are given by name).  Control flow is
included: ``If`` branches and ``Loop``/``Scan`` bodies read values of the enclosing
graph directly, the case that passes most often get wrong.

Numeric safety: ops with a restricted domain get guard nodes in front of
their inputs so that random data never produces NaN or inf: ``Log``,
``Sqrt`` and ``Reciprocal`` read ``Abs(x) + 1``, ``Div`` divides by
``Abs(y) + 1``, ``Exp`` reads ``Clip(x, -4, 4)``.  ``inputs_for`` draws float
data uniformly from [-2, 2] and integers from [0, 3].  Guard nodes and
constants do not count towards ``max_nodes``.

Comparisons (``Greater``, ``Less``, ``Where``'s condition) and ``Cast`` to a
narrower float are discontinuous: a pass that legitimately reassociates
float math can flip them.  Such passes should pass ``ops=`` without them.

Shapes: static dims are 1..5 (4-D tensors get spatial dims 3..7 so that
convolutions and pools fit).  With ``symbolic=True`` a parameter's first dim
may be the symbol ``"N"``; operands combine only when their dims agree
exactly (or broadcast from 1), and ops never slice, concatenate or gather
along a symbolic dim, so every generated graph runs for any size of ``N``.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ..ir.builder import Builder
from ..ir.core import Graph
from ..ir.types import DType, TensorType
from .op_generators import CLASHING_NAMES, F32, GENERATORS, NAME_MODES, SUPPORTED_OPS, SYMBOL, _State

# ----------------------------------------------------------------------------- public strategies


def graphs(
    ops=None, max_nodes: int = 8, dtypes=(F32,), symbolic: bool = False, names: str = "unique"
) -> st.SearchStrategy[Graph]:
    """A strategy of random well-typed ``Graph``s (each passes ``verify``) built from the op registry.

    ``ops``: op names to draw from (default: all of ``SUPPORTED_OPS``); guard
    nodes and constants may use other ops.  ``max_nodes``: at most this many
    drawn ops (at least one).  ``dtypes``: float element types for parameters
    and constants.  ``symbolic``: let parameters have the symbolic first dim
    ``"N"``.  ``names``: ``"unique"`` (results ``t0``, ``t1``, ...), ``"none"``
    (unnamed results) or ``"clashing"`` (duplicate names; see the module
    docstring).  Bad options raise ``ValueError`` at once.  Example::

        @given(graphs(ops=["Conv", "Relu", "Add"], symbolic=True))
        def test_round_trip(g):
            assert print_ir(parse_ir(print_ir(g))) == print_ir(g)
    """
    op_names = SUPPORTED_OPS if ops is None else tuple(ops)
    unknown = [op for op in op_names if op not in GENERATORS]
    if unknown or not op_names:
        raise ValueError(f"graphs() cannot generate {unknown}; supported: {', '.join(SUPPORTED_OPS)}")
    dtypes = tuple(DType(d) if isinstance(d, str) else d for d in dtypes)
    if not dtypes or not all(d.is_float for d in dtypes):
        raise ValueError("graphs() builds float graphs: dtypes must be float DTypes")
    if names not in NAME_MODES:
        raise ValueError(f"graphs(names={names!r}): expected one of {', '.join(NAME_MODES)}")
    return _graphs(op_names, max_nodes, dtypes, symbolic, names)


@st.composite
def _graphs(
    draw, op_names: tuple[str, ...], max_nodes: int, dtypes: tuple[DType, ...], symbolic: bool, names: str
) -> Graph:
    """The strategy behind ``graphs`` (options already checked)."""
    graph = Graph("main")
    state = _State(draw, Builder(graph), dtypes, symbolic, names)
    for _ in range(draw(st.integers(1, 3))):
        state.new_param(draw(st.integers(1, 4)))
    wanted = draw(st.integers(1, max(1, max_nodes)))
    made = attempts = 0
    while made < wanted and attempts < 4 * wanted:
        attempts += 1
        value = GENERATORS[draw(st.sampled_from(op_names))](state)
        if value is not None:
            state.pool.append(value)
            made += 1
    produced = [v for node in graph.nodes for v in node.results]
    sinks = [v for v in produced if not v.has_uses()] or produced or graph.params[:1]
    graph.outputs = sinks
    return graph


def random_inputs(graph: Graph, seed: int = 0, symbols: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    """Arrays for ``graph``'s parameters: floats uniform in [-2, 2], ints in [0, 3], bools random.

    Symbolic dims take their size from ``symbols`` (default 2 for every symbol).
    """
    rng = np.random.default_rng(seed)
    symbols = dict(symbols or {})
    inputs = {}
    for p in graph.params:
        t = p.type
        if not isinstance(t, TensorType) or t.shape is None:
            raise ValueError(f"random_inputs: parameter %{p.name} has type {t}; give its input by hand")
        shape = tuple(
            d if isinstance(d, int) else symbols.setdefault(d, 2) if isinstance(d, str) else 2 for d in t.shape
        )
        if t.dtype.is_float:
            inputs[p.name] = rng.uniform(-2, 2, size=shape).astype(t.dtype.np)
        elif t.dtype == DType.BOOL:
            inputs[p.name] = rng.integers(0, 2, size=shape).astype(bool)
        else:
            inputs[p.name] = rng.integers(0, 4, size=shape).astype(t.dtype.np)
    return inputs


@st.composite
def inputs_for(draw, graph: Graph) -> dict[str, np.ndarray]:
    """A strategy of input dicts for ``graph`` (see ``random_inputs``; symbols get sizes 1..3)."""
    symbols = {}
    for p in graph.params:
        if isinstance(p.type, TensorType) and p.type.shape is not None:
            for d in p.type.shape:
                if isinstance(d, str) and d not in symbols:
                    symbols[d] = draw(st.integers(1, 3), label=f"size of {d}")
    return random_inputs(graph, draw(st.integers(0, 2**32 - 1), label="input seed"), symbols)


@st.composite
def graph_and_inputs(draw, ops=None, max_nodes: int = 8, dtypes=(F32,), symbolic: bool = False, names: str = "unique"):
    """A strategy of ``(graph, inputs)`` pairs: ``graphs(...)`` plus ``inputs_for`` it.

    Example::

        @given(graph_and_inputs(max_nodes=5))
        def test_interpreter_runs(case):
            graph, inputs = case
            outputs = interpret(graph, inputs)
            assert all(np.isfinite(o).all() for o in outputs.values() if o.dtype.kind == "f")
    """
    graph = draw(graphs(ops=ops, max_nodes=max_nodes, dtypes=dtypes, symbolic=symbolic, names=names))
    return graph, draw(inputs_for(graph))


__all__ = ["graphs", "inputs_for", "graph_and_inputs", "random_inputs", "SUPPORTED_OPS", "SYMBOL", "CLASHING_NAMES"]
