"""The mutation API: use lists, operand setters, replace_all_uses_with, erase, placement, Builder."""

import numpy as np
import pytest

from compiler import Builder, DType, Graph, IRError, Node, TensorType, Use, interpret, verify
from compiler.ir.verifier import VerifyError
from compiler.ops import InferenceError

F32x4 = TensorType(DType.FLOAT32, (4,))


def chain():
    """x -> a = Relu(x) -> b = Neg(a) -> c = Add(a, b); returns c."""
    g = Graph("main")
    b = Builder(g)
    x = b.param("x", F32x4)
    a = b.op("Relu", [x], names=["a"])
    n = b.op("Neg", [a], names=["n"])
    c = b.op("Add", [a, n], names=["c"])
    g.outputs = [c]
    return g, x, a, n, c


def ops(g):
    return [n.op for n in g.nodes]


def test_use_lists_follow_operands_and_outputs():
    g, x, a, n, c = chain()
    assert x.uses == (Use(a.producer, 0),)
    assert set(a.uses) == {Use(n.producer, 0), Use(c.producer, 0)}
    assert c.uses == (Use(g, 0),)
    assert a.users == [n.producer, c.producer]
    verify(g)


def test_users_are_distinct_when_a_node_reads_a_value_twice():
    g = Graph()
    b = Builder(g)
    x = b.param("x", F32x4)
    y = b.op("Mul", [x, x])
    assert len(x.uses) == 2 and x.users == [y.producer]


def test_set_operand_moves_the_use():
    g, x, a, n, c = chain()
    c.producer.set_operand(1, x)
    assert Use(c.producer, 1) in x.uses
    assert Use(c.producer, 1) not in a.uses
    assert not n.has_uses()
    verify(g)


def test_set_operand_to_none_and_back():
    g, x, a, n, c = chain()
    node = c.producer
    node.set_operand(0, None)
    assert node.operands == (None, n) and Use(node, 0) not in a.uses
    node.set_operand(0, a)
    assert Use(node, 0) in a.uses
    verify(g)


def test_operands_setter_rebuilds_every_use():
    g, x, a, n, c = chain()
    node = c.producer
    node.operands = [n, n]
    assert node.operands == (n, n)
    assert [u for u in a.uses if u.user is node] == []
    assert {Use(node, 0), Use(node, 1)} <= set(n.uses)
    verify(g)


def test_operand_must_be_a_value():
    g, x, a, n, c = chain()
    with pytest.raises(IRError, match="must be a Value"):
        Node("Relu", [np.zeros(4)], [F32x4])


def test_replace_all_uses_with_covers_operands_and_graph_outputs():
    g, x, a, n, c = chain()
    data = np.array([1, -2, 3, -4], np.float32)
    np.testing.assert_array_equal(interpret(g, {"x": data})["c"], np.maximum(data, 0) * 0)
    c.replace_all_uses_with(a)
    assert g.outputs == (a,)
    assert not c.has_uses()
    a.replace_all_uses_with(a)  # replacing with itself changes nothing
    assert len(a.uses) == 3
    n.replace_all_uses_with(x)
    assert Use(c.producer, 1) in x.uses
    np.testing.assert_array_equal(interpret(g, {"x": data})["a"], np.maximum(data, 0))
    c.producer.erase()
    n.producer.erase()
    verify(g)
    assert ops(g) == ["Relu"]


def test_erase_raises_while_results_are_used_and_names_the_user():
    g, x, a, n, c = chain()
    with pytest.raises(IRError, match=r"cannot erase node 'a' \(Relu\).*node 'n' \(Neg\) operand 0"):
        a.producer.erase()
    with pytest.raises(IRError, match="graph output 0"):
        c.producer.erase()
    assert len(g) == 3
    verify(g)


def test_erase_drops_operand_uses():
    g, x, a, n, c = chain()
    g.outputs = [a]
    c.producer.erase()
    assert Use(c.producer, 0) not in a.uses
    n.producer.erase()
    assert a.uses == (Use(g, 0),)
    assert ops(g) == ["Relu"]
    verify(g)


def test_unsafe_erase_leaves_dangling_uses_that_the_verifier_reports():
    g, x, a, n, c = chain()
    n.producer.erase(safe=False)
    with pytest.raises(Exception, match="node 'c' \\(Add\\)"):
        verify(g)


def test_iteration_tolerates_erasing_the_current_node():
    g = Graph()
    b = Builder(g)
    x = b.param("x", F32x4)
    for _ in range(5):
        b.op("Relu", [x])
    y = b.op("Neg", [x])
    g.outputs = [y]
    seen = []
    for node in g.nodes:
        seen.append(node.op)
        if node.op == "Relu":
            node.erase()
    assert seen == ["Relu"] * 5 + ["Neg"]
    assert ops(g) == ["Neg"] and len(g) == 1
    verify(g)


def test_insert_before_after_prepend_and_move():
    g, x, a, n, c = chain()
    relu = a.producer
    first = Node("Abs", [x], [F32x4], result_names=["first"])
    g.insert_before(relu, first)
    after = Node("Sigmoid", [a], [F32x4], result_names=["after"])
    g.insert_after(relu, after)
    head = Node("Exp", [x], [F32x4], result_names=["head"])
    g.prepend(head)
    assert ops(g) == ["Exp", "Abs", "Relu", "Sigmoid", "Neg", "Add"]
    g.move_before(head, c.producer.prev)  # move Neg to the front
    assert ops(g) == ["Neg", "Exp", "Abs", "Relu", "Sigmoid", "Add"]
    assert head.is_before(c.producer) and not c.producer.is_before(head)
    with pytest.raises(VerifyError, match="before"):
        verify(g)  # Neg now reads %a before its definition
    g.sort_topologically()
    assert ops(g).index("Relu") < ops(g).index("Neg")
    verify(g)


def test_a_node_lives_in_one_graph():
    g, x, a, n, c = chain()
    other = Graph("other")
    with pytest.raises(IRError, match="already in graph"):
        other.append(a.producer)
    with pytest.raises(IRError, match="not in graph 'other'"):
        other.insert_before(a.producer, Node("Relu", [x], [F32x4]))


def test_builder_insertion_points():
    g, x, a, n, c = chain()
    b = Builder(g)
    b.set_insertion_point_before(n.producer)
    s1 = b.op("Sigmoid", [a], names=["s1"])
    b.set_insertion_point_after(a.producer)
    t1 = b.op("Tanh", [a], names=["t1"])
    t2 = b.op("Tanh", [t1], names=["t2"])  # 'after' advances: t2 lands after t1
    b.set_insertion_point_at_end(g)
    e = b.op("Exp", [c], names=["e"])
    assert [nd.results[0].name for nd in g.nodes] == ["a", "t1", "t2", "s1", "n", "c", "e"]
    assert s1.type == t2.type == e.type == F32x4
    verify(g)


def test_builder_infers_types_and_keeps_constant_arrays():
    g = Graph()
    b = Builder(g)
    x = b.param("x", TensorType(DType.FLOAT32, ("batch", 3, 8, 8)))
    weight = np.ones((4, 3, 3, 3), np.float32)
    w = b.constant(weight, name="w")
    assert w.const_value is weight  # no copy
    y = b.op("Conv", [x, w], {"pads": [1, 1, 1, 1]})
    assert y.type == TensorType(DType.FLOAT32, ("batch", 4, 8, 8))
    assert x.const_value is None and y.const_value is None
    with pytest.raises(InferenceError, match="Incompatible dimensions"):
        b.op("MatMul", [x, b.constant(np.ones((5, 2), np.float32))])  # 8 != 5


def test_erasing_a_node_with_a_subgraph_drops_its_captures():
    g = Graph()
    b = Builder(g)
    cond = b.param("cond", TensorType(DType.BOOL, ()))
    x = b.param("x", F32x4)
    then_g, else_g = Graph("then"), Graph("else")
    then_g.outputs = [Builder(then_g).op("Relu", [x])]
    else_g.outputs = [Builder(else_g).op("Neg", [x])]
    y = b.op("If", [cond], {"then_branch": then_g, "else_branch": else_g})
    assert then_g.parent is y.producer
    assert len(x.uses) == 2  # read from inside both branches
    g.outputs = [x]
    y.producer.erase()
    assert x.uses == (Use(g, 0),)
    verify(g)


def test_walk_includes_nested_graphs_and_find_looks_up_names():
    g = Graph()
    b = Builder(g)
    cond = b.param("cond", TensorType(DType.BOOL, ()))
    x = b.param("x", F32x4)
    then_g, else_g = Graph("then"), Graph("else")
    then_g.outputs = [Builder(then_g).op("Relu", [x])]
    else_g.outputs = [Builder(else_g).op("Neg", [x])]
    y = b.op("If", [cond], {"then_branch": then_g, "else_branch": else_g}, names=["y"])
    g.outputs = [y]
    assert [n.op for n in g.walk()] == ["If", "Relu", "Neg"]
    assert g.find("y") is y and g.find("x") is x and g.find("nope") is None
    assert list(then_g.ancestors()) == [g]


def test_sort_topologically_counts_nested_graph_captures():
    g = Graph()
    b = Builder(g)
    cond = b.param("cond", TensorType(DType.BOOL, ()))
    x = b.param("x", F32x4)
    a = b.op("Relu", [x], names=["a"])
    then_g, else_g = Graph("then"), Graph("else")
    then_g.outputs = [Builder(then_g).op("Neg", [a])]  # the branch captures %a
    else_g.outputs = [a]
    y = b.op("If", [cond], {"then_branch": then_g, "else_branch": else_g}, names=["y"])
    g.outputs = [y]
    g.move_before(a.producer, y.producer)  # the If now comes before the Relu it reads
    assert ops(g) == ["If", "Relu"]
    with pytest.raises(Exception, match="not defined before its use"):
        verify(g)
    g.sort_topologically()
    assert ops(g) == ["Relu", "If"]
    verify(g)


def test_sort_topologically_reports_a_cycle_naming_the_nodes():
    g, x, a, n, c = chain()
    a.producer.set_operand(0, c)  # Relu reads the Add that reads it
    with pytest.raises(ValueError, match=r"cycle: .*node 'a' \(Relu\)"):
        g.sort_topologically()


def test_misuse_leaves_the_graph_intact():
    g, x, a, n, c = chain()
    g.move_before(a.producer, a.producer)  # moving a node before itself is a no-op
    assert ops(g) == ["Relu", "Neg", "Add"]
    stray = Node("Abs", [x], [F32x4])
    with pytest.raises(IRError, match="not in graph"):
        g.move_before(stray, n.producer)  # the anchor is not in the graph: nothing moves
    assert ops(g) == ["Relu", "Neg", "Add"]
    with pytest.raises(IRError, match="must be a Value"):
        c.producer.set_operand(0, np.zeros(4, np.float32))
    assert c.producer.operands == (a, n)
    with pytest.raises(Exception, match=r"dangling use by node \(Abs\)"):
        verify(g)  # the detached node still reads %x
    stray.erase()
    verify(g)
