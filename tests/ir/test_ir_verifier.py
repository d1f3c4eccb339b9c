"""The verifier accepts well-formed graphs and rejects each kind of corruption, naming the node."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import Builder, DType, Graph, Node, TensorType, Use, VerifyError, parse_ir, verify
from compiler.testing.strategies import graphs

F32x4 = TensorType(DType.FLOAT32, (4,))
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def problems(g: Graph) -> str:
    with pytest.raises(VerifyError) as info:
        verify(g)
    return "\n".join(info.value.problems)


def small():
    g = Graph()
    b = Builder(g)
    x = b.param("x", F32x4)
    a = b.op("Relu", [x], names=["a"])
    c = b.op("Neg", [a], names=["c"])
    g.outputs = [c]
    return g, x, a, c


def test_unknown_op_is_reported():
    g, x, a, c = small()
    g.append(Node("NoSuchOp", [x], [F32x4], result_names=["q"]))
    assert "node 'q' (NoSuchOp): unknown op 'NoSuchOp'" in problems(g)


def test_wrong_operand_count_is_reported():
    g, x, a, c = small()
    g.append(Node("Add", [x], [F32x4], result_names=["q"]))
    assert "node 'q' (Add): takes 2..2 operands, has 1" in problems(g)


@pytest.mark.parametrize(
    "attrs, message",
    [
        ({"bogus": 1}, "unknown attribute 'bogus'"),
        ({"perm": "0,1"}, "attribute 'perm' must be ints"),
    ],
)
def test_bad_attributes_are_reported(attrs, message):
    g, x, a, c = small()
    g.append(Node("Transpose", [x], [F32x4], attrs, result_names=["q"]))
    assert message in problems(g)


def test_missing_required_attribute_is_reported():
    g, x, a, c = small()
    g.append(Node("Cast", [x], [F32x4], {}, result_names=["q"]))
    assert "node 'q' (Cast): missing required attribute 'to'" in problems(g)


def test_result_type_disagreeing_with_inference_is_reported():
    g, x, a, c = small()
    a.type = TensorType(DType.FLOAT32, (5,))
    text = problems(g)
    assert "node 'a' (Relu): result %a has type f32[5] but inference gives f32[4]" in text


def test_undefined_output_and_param_defined_twice():
    g, x, a, c = small()
    other = Graph("other")
    stray = other.add_param(F32x4, "stray")
    g.outputs = [c, stray]
    g.params.append(x)
    text = problems(g)
    assert "output 1 (%stray) is not defined in scope" in text
    assert "parameter %x of graph 'main' is defined twice" in text


def test_value_of_a_sibling_branch_is_out_of_scope():
    g = parse_ir("""graph @main(%c: bool[], %x: f32[4]) {
  %y = If(%c) {else_branch = graph @e() {
    %n = Neg(%x) : f32[4]
    return %n
  }, then_branch = graph @t() {
    %r = Relu(%x) : f32[4]
    return %r
  }} : f32[4]
  return %y
}""")
    verify(g)
    if_node = g.outputs[0].producer
    then_relu = next(if_node.attrs["then_branch"].nodes)
    else_neg = next(if_node.attrs["else_branch"].nodes)
    else_neg.set_operand(0, then_relu.result)
    assert "node 'n' (Neg): operand 0 (%r) is not defined before its use (defined nowhere in scope)" in problems(g)


def test_nested_graph_must_point_back_to_its_node():
    g = parse_ir("""graph @main(%c: bool[], %x: f32[4]) {
  %y = If(%c) {else_branch = graph @e() {
    return %x
  }, then_branch = graph @t() {
    return %x
  }} : f32[4]
  return %y
}""")
    g.outputs[0].producer.attrs["then_branch"].parent = None
    assert "nested graph 't' does not point back to its node" in problems(g)


# ----------------------------------------------------------------------------- corrupting random graphs


def nodes_with_operands(g: Graph) -> list[Node]:
    return [n for n in g.nodes if any(v is not None for v in n.operands)]


def in_graph_operand(n: Node) -> int | None:
    """Index of an operand of ``n`` produced by a node of the same graph."""
    for i, v in enumerate(n.operands):
        if v is not None and v.producer is not None and v.producer.graph is n.graph:
            return i
    return None


def downstream(node: Node) -> list[Node]:
    """``node`` and every node of its graph that (transitively) reads its results as operands."""
    seen, todo = [], [node]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.append(n)
        for r in n.results:
            todo.extend(u for u in r.users if u.graph is node.graph)
    return seen


def corrupt_dangling_use(g, data):
    """Erase a used node without safety: its users read a value defined nowhere."""
    users = [n for n in nodes_with_operands(g) if in_graph_operand(n) is not None]
    if not users:
        return None
    user = data.draw(st.sampled_from(users))
    producer = user.operands[in_graph_operand(user)].producer
    producer.erase(safe=False)
    return user, "not defined before its use"


def corrupt_stale_use(g, data):
    """Add a use-list entry that no operand backs."""
    node = data.draw(st.sampled_from(list(g.nodes)))
    value = data.draw(st.sampled_from(list(g.params)))
    value._add_use(Use(node, len(node.operands) + 3))
    return node, "dangling use"


def corrupt_result_type(g, data):
    """Change a result's dtype so that it disagrees with type inference."""
    node = data.draw(st.sampled_from(list(g.nodes)))
    r = node.results[0]
    r.type = TensorType(DType.INT8 if r.type.dtype != DType.INT8 else DType.INT16, r.type.shape)
    return node, "but inference gives"


def corrupt_cycle(g, data):
    """Make a node read a result of itself or of a node that depends on it."""
    user = data.draw(st.sampled_from(nodes_with_operands(g)))
    later = data.draw(st.sampled_from(downstream(user)))
    index = data.draw(st.sampled_from([i for i, v in enumerate(user.operands) if v is not None]))
    user.set_operand(index, later.results[0])
    return user, "defined later"


def corrupt_use_before_def(g, data):
    """Move a node in front of the producer of one of its operands."""
    users = [n for n in nodes_with_operands(g) if in_graph_operand(n) is not None]
    if not users:
        return None
    user = data.draw(st.sampled_from(users))
    g.move_before(user.operands[in_graph_operand(user)].producer, user)
    return user, "defined later"


CORRUPTIONS = [corrupt_dangling_use, corrupt_stale_use, corrupt_result_type, corrupt_cycle, corrupt_use_before_def]


@SETTINGS
@given(graphs(max_nodes=6, symbolic=True), st.sampled_from(CORRUPTIONS), st.data())
def test_verifier_rejects_corrupted_graphs_naming_the_node(g, corrupt, data):
    verify(g)
    found = corrupt(g, data)
    if found is None:
        return
    node, message = found
    text = problems(g)
    assert any(node.describe() in p and message in p for p in text.splitlines()), (corrupt.__name__, text)


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__)
def test_each_corruption_is_rejected_on_a_fixed_graph(corrupt):
    g = Graph()
    b = Builder(g)
    x = b.param("x", F32x4)
    a = b.op("Relu", [x], names=["a"])
    c = b.op("Add", [a, b.constant(np.ones(4, np.float32), name="one")], names=["c"])
    g.outputs = [b.op("Neg", [c], names=["d"])]

    class First:
        """A stand-in for hypothesis' ``data``: always draws the first choice."""

        @staticmethod
        def draw(strategy):
            return (
                strategy.wrapped_strategy.elements[0] if hasattr(strategy, "wrapped_strategy") else strategy.elements[0]
            )

    node, message = corrupt(g, First)
    assert any(node.describe() in p and message in p for p in problems(g).splitlines())
