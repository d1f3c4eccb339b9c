"""Every registered pass preserves semantics on random graphs (the pass property-testing kit at work).

The pass list comes from the registry at collection time, so a pass is
property-tested the day it is registered.  Each pass sees ``EXAMPLES`` random
well-typed graphs (some with a symbolic batch dim) with random inputs.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from compiler import print_ir
from compiler.passes import available_passes, get_pass
from compiler.rewrite import RuleSet, Var, apply_rules_once, op, rule
from compiler.testing import (
    assert_pass_is_idempotent,
    assert_pass_preserves_semantics,
    graph_and_inputs,
    graphs,
    inputs_for,
)

EXAMPLES = 200
MAX_NODES = 5
PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
# lossy passes (``lossy = True``: fp16, pruning, low-rank) change values by design; their property
# tests bound the change instead (tests/passes/test_compression_properties.py)
BUILTIN_PASSES = [
    name for name in available_passes() if not name.startswith("test-") and not getattr(get_pass(name), "lossy", False)
]
PIPELINES = ["O1"] + (["O2"] if "simplify" in available_passes() else [])
# passes that check instead of rewrite: they change nothing, or refuse a graph with a CodegenError
# naming the node and op that code generation cannot take (control flow left, for this one)
CHECKING_PASSES = {"check-codegen-ready"}


@st.composite
def cases(draw):
    """A random graph (some outputs dropped, so there is dead code) and inputs for it."""
    graph = draw(graphs(max_nodes=MAX_NODES, symbolic=draw(st.booleans())))
    outputs = list(graph.outputs)
    keep = draw(st.lists(st.sampled_from(range(len(outputs))), min_size=1, max_size=len(outputs), unique=True))
    graph.outputs = [outputs[i] for i in sorted(keep)]
    return graph, draw(inputs_for(graph))


@pytest.mark.parametrize("pass_name", BUILTIN_PASSES + PIPELINES)
def test_pass_preserves_semantics(pass_name):
    pass_ = pass_name if pass_name in PIPELINES else get_pass(pass_name)()
    changed = []

    @PROPERTY_SETTINGS
    @given(cases())
    def check(case):
        graph, inputs = case
        if pass_name in CHECKING_PASSES:
            from codegen.errors import CodegenError

            before = print_ir(graph)
            try:
                pass_(graph)
            except CodegenError as exc:
                assert exc.op and exc.node is not None, f"{pass_name} refused without naming the node: {exc}"
            assert print_ir(graph) == before, f"{pass_name} changed the graph"
            changed.append(False)
            return
        after = assert_pass_preserves_semantics(pass_, graph, inputs)
        changed.append(print_ir(after) != print_ir(graph))

    check()
    assert len(changed) >= EXAMPLES, f"only {len(changed)} random graphs were tried"
    print(f"{pass_name}: {len(changed)} graphs, {sum(changed)} changed by the pass")


@pytest.mark.parametrize("pass_name", ["dce", "cse", "fold-constants", "infer-shapes"])
def test_pass_is_idempotent(pass_name):
    pass_ = get_pass(pass_name)()

    @settings(PROPERTY_SETTINGS, max_examples=50)
    @given(graphs(max_nodes=MAX_NODES))
    def check(graph):
        assert_pass_is_idempotent(pass_, graph, pass_name)

    check()


def test_the_kit_catches_a_wrong_rule():
    """A deliberately wrong rule (x - y -> y - x) must be caught on random graphs."""
    x, y = Var("x"), Var("y")

    @rule(op.Sub(x, y), name="wrong-sub-swap")
    def swap(rw, m):
        return rw.op("Sub", [m.y, m.x])

    def wrong_pass(graph):
        apply_rules_once(graph, RuleSet([swap]))

    def kit_catches(case) -> bool:
        graph, inputs = case
        try:
            assert_pass_preserves_semantics(wrong_pass, graph, inputs)
        except AssertionError:
            return True
        return False

    try:
        graph, _ = find(
            graph_and_inputs(ops=["Sub", "Relu", "Add"], max_nodes=3),
            kit_catches,
            settings=settings(max_examples=EXAMPLES, deadline=None, database=None),
        )
    except NoSuchExample:
        pytest.fail("the property kit never noticed that x - y was rewritten to y - x")
    assert any(n.op == "Sub" for n in graph.nodes)
