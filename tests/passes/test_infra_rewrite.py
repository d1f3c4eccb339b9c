"""Pattern matching, rules, the Rewriter and the two drivers."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import Builder, DType, EmberError, Graph, TensorType, interpret, verify
from compiler.rewrite import (
    AnyOf,
    Const,
    Match,
    MatchResult,
    NodeRule,
    RewriteListener,
    Rewriter,
    RuleSet,
    Var,
    apply_rules,
    apply_rules_once,
    op,
    rule,
)

F32 = DType.FLOAT32


def graph_with(x_shape=(2, 3)):
    g = Graph("main")
    b = Builder(g)
    return g, b, b.param("x", TensorType(F32, x_shape)), b.param("y", TensorType(F32, x_shape))


def ops_of(g: Graph) -> list[str]:
    return [n.op for n in g.nodes]


# --------------------------------------------------------------------------- patterns


def test_commute_matches_both_operand_orders():
    g, b, x, _ = graph_with()
    zero = b.constant(np.zeros((1,), np.float32))
    left, right = b.op("Add", [zero, x]), b.op("Add", [x, zero])
    pat = op.Add(Var("v"), Const("z", value=0.0), commute=True)
    for value in (left, right):
        m = Match(value.producer)
        assert pat.match_node(value.producer, m)
        assert m["v"] is x and np.array_equal(m.z, np.zeros((1,), np.float32))
    assert not op.Add(Var("v"), Const("z", value=0.0)).match_node(left.producer, Match())


def test_repeated_variable_must_bind_the_same_value():
    g, b, x, y = graph_with()
    same, other = b.op("Sub", [x, x]), b.op("Sub", [x, y])
    pat = op.Sub(Var("a"), Var("a"))
    assert pat.match_node(same.producer, Match())
    m = Match()
    assert not pat.match_node(other.producer, m)
    assert "two different values" in m.reason


def test_nested_patterns_attribute_and_type_constraints():
    g, b, x, _ = graph_with((2, 3, 4, 5))
    t = b.op("Transpose", [x], {"perm": [0, 2, 3, 1]})
    r = b.op("Relu", [t])
    assert op.Relu(op.Transpose(Var("v", rank=4, dtype=F32), perm=[0, 2, 3, 1])).match_node(r.producer, Match())
    m = Match()
    assert not op.Relu(op.Transpose(Var("v"), perm=[0, 3, 1, 2])).match_node(r.producer, m)
    assert "perm" in m.reason
    assert not op.Relu(op.Transpose(Var("v", rank=3))).match_node(r.producer, Match())
    assert op.Relu(op.Transpose(Var("v"), perm=lambda p: len(p) == 4, name="tr")).match_node(r.producer, Match())


def test_attribute_constraint_falls_back_to_the_op_default():
    g, b, x, _ = graph_with()
    s = b.op("Softmax", [x])  # axis defaults to -1
    assert op.Softmax(Var("v"), axis=-1).match_node(s.producer, Match())


def test_any_of_tries_alternatives():
    g, b, x, _ = graph_with()
    r = b.op("Sigmoid", [x])
    pat = AnyOf(op.Relu(Var("v")), op.Sigmoid(Var("v")))
    assert pat.match(r, Match())


def test_const_where_checks_the_array():
    g, b, x, _ = graph_with()
    c = b.constant(np.full((1,), 2.0, np.float32))
    assert Const("c", where=lambda a: (a > 0).all()).match(c, Match())
    assert not Const("c", where=lambda a: (a < 0).all()).match(c, Match())
    assert not Const("c").match(x, Match())


# --------------------------------------------------------------------------- rules and drivers

x_, y_ = Var("x"), Var("y")


@rule(op.Add(x_, Const("zero", value=0.0), commute=True))
def add_zero(rw, m):
    return m.x


@rule(op.Mul(x_, Const("one", value=1.0), commute=True))
def mul_one(rw, m):
    return m.x


@rule(op.Add(x_, x_))
def add_self_to_mul_two(rw, m):
    return rw.op("Mul", [m.x, rw.constant(np.array(2.0, np.float32))])


def test_greedy_driver_reaches_a_fixed_point_and_preserves_values():
    g, b, x, _ = graph_with()
    zero, one = b.constant(np.zeros((1,), np.float32)), b.constant(np.ones((1,), np.float32))
    a = b.op("Add", [b.op("Mul", [one, b.op("Add", [x, zero])]), zero])
    g.outputs = [b.op("Relu", [a])]
    inputs = {"x": np.random.default_rng(0).normal(size=(2, 3)).astype(np.float32), "y": np.zeros((2, 3), np.float32)}
    before = interpret(g, inputs)
    assert apply_rules(g, RuleSet([add_zero]) + mul_one)
    verify(g)
    assert ops_of(g) == ["Relu"]
    np.testing.assert_array_equal(list(interpret(g, inputs).values())[0], list(before.values())[0])
    assert not apply_rules(g, RuleSet([add_zero, mul_one]))


def test_rule_sets_combine_and_index_by_root():
    rules = RuleSet([add_zero]) + mul_one + RuleSet([add_self_to_mul_two])
    assert len(rules) == 3
    assert [r.name for r in rules.for_op("Add")] == ["add-zero", "add-self-to-mul-two"]
    assert rules.for_op("Relu") == []


def test_check_failure_carries_a_reason():
    checked = rule(op.Relu(x_), check=lambda m: MatchResult.fail("not today"))(lambda rw, m: m.x)
    g, b, x, _ = graph_with()
    r = b.op("Relu", [x])
    m, reason = checked.try_match(r.producer)
    assert m is None and reason == "not today"


def test_benefit_orders_rules():
    low = rule(op.Relu(x_), name="low", benefit=1)(lambda rw, m: rw.op("Abs", [m.x]))
    high = rule(op.Relu(x_), name="high", benefit=5)(lambda rw, m: rw.op("Neg", [m.x]))
    g, b, x, _ = graph_with()
    g.outputs = [b.op("Relu", [x])]
    apply_rules_once(g, RuleSet([low, high]))
    assert ops_of(g) == ["Neg"]


def test_looping_rules_are_stopped_and_named():
    flip = rule(op.Add(x_, y_), name="flip-add")(lambda rw, m: rw.op("Add", [m.y, m.x]))
    g, b, x, y = graph_with()
    g.outputs = [b.op("Add", [x, y])]
    with pytest.raises(EmberError, match="rule 'flip-add' fired"):
        apply_rules(g, RuleSet([flip]), max_rewrites=50)


def test_exception_in_rule_names_rule_node_and_op():
    def broken(rw, m):
        raise ValueError("bad rule")

    bad = rule(op.Relu(x_), name="broken-rule")(broken)
    g, b, x, _ = graph_with()
    g.outputs = [b.op("Relu", [x])]
    with pytest.raises(EmberError) as err:
        apply_rules(g, RuleSet([bad]))
    text = str(err.value)
    assert "broken-rule" in text and "op Relu" in text and "ValueError: bad rule" in text
    assert "test_infra_rewrite.py" in text  # the rule's source location


def test_replacement_keeps_the_graph_output_name():
    g, b, x, _ = graph_with()
    r = b.op("Relu", [b.op("Add", [x, b.constant(np.zeros((1,), np.float32))])])
    a = b.op("Add", [r, b.constant(np.zeros((1,), np.float32))])
    a.name = "result"
    g.outputs = [a]
    apply_rules(g, RuleSet([add_zero]))
    assert g.outputs[0].name == "result" and g.outputs[0].producer.op == "Relu"


def test_rewriter_notifies_listeners():
    events = []

    class Recorder(RewriteListener):
        def node_inserted(self, node):
            events.append(("inserted", node.op))

        def node_erased(self, node):
            events.append(("erased", node.op))

        def value_replaced(self, old, new):
            events.append(("replaced", old.producer.op, new.producer.op))

    g, b, x, _ = graph_with()
    r = b.op("Relu", [x])
    g.outputs = [b.op("Neg", [r])]
    rw = Rewriter(g, [Recorder()])
    rw.set_insertion_point_before(r.producer)
    rw.replace_node(r.producer, rw.op("Abs", [x]))
    assert events == [("inserted", "Abs"), ("replaced", "Relu", "Abs"), ("erased", "Relu")]
    verify(g)


def test_replacement_with_incompatible_type_is_refused():
    g, b, x, _ = graph_with()
    r = b.op("Relu", [x])
    g.outputs = [r]
    wrong = rule(op.Relu(x_), name="wrong-type")(lambda rw, m: rw.op("Cast", [m.x], {"to": 7}))
    with pytest.raises(EmberError, match="incompatible type"):
        apply_rules(g, RuleSet([wrong]))


def test_walk_driver_visits_each_node_once():
    g, b, x, _ = graph_with()
    g.outputs = [b.op("Relu", [b.op("Relu", [x])])]
    seen = []

    def note(node, rw):
        seen.append(node.op)
        return False

    assert not apply_rules_once(g, RuleSet([NodeRule("*", note)]))
    assert seen == ["Relu", "Relu"]


def test_node_rule_escape_hatch():
    def relu_to_max(node, rw):
        zero = rw.constant(np.zeros((), np.float32))
        rw.replace_node(node, rw.op("Max", [node.operands[0], zero]))
        return True

    g, b, x, _ = graph_with()
    g.outputs = [b.op("Relu", [x])]
    assert apply_rules(g, RuleSet([NodeRule("Relu", relu_to_max)]))
    verify(g)
    assert ops_of(g) == ["Constant", "Max"]


def test_driver_rewrites_inside_nested_graphs():
    from compiler import parse_ir

    text = """graph @main(%c: bool[], %x: f32[2]) {
  %z = Constant() {value = dense<f32[1] [0.0]>} : f32[1]
  %r = If(%c) {then_branch = graph @then() {
    %a = Add(%x, %z) : f32[2]
    return %a
  }, else_branch = graph @else() {
    %n = Neg(%x) : f32[2]
    return %n
  }} : f32[2]
  return %r
}"""
    g = parse_ir(text)
    assert apply_rules(g, RuleSet([add_zero]))
    verify(g)
    assert "Add" not in [n.op for n in g.walk()]


def test_node_predicates_variadic_operands_and_static_shapes():
    g, b, x, y = graph_with()
    s = b.op("Sum", [x, y, x])
    assert op.Sum(Var("a"), variadic=True).match_node(s.producer, Match())
    assert not op.Sum(Var("a")).match_node(s.producer, Match())
    assert op.Sum(Var("a"), variadic=True, where=lambda n: len(n.operands) == 3).match_node(s.producer, Match())
    g2, b2, n, _ = graph_with(("N", 3))
    r = b2.op("Relu", [n])
    assert not op.Relu(Var("v", static=True)).match_node(r.producer, Match())
    assert op.Relu(Var("v", static=True)).match_node(b.op("Relu", [x]).producer, Match())


def test_match_tracer_says_why_a_rule_did_not_fire():
    from compiler.rewrite import MatchTracer, observing

    g, b, x, y = graph_with()
    g.outputs = [b.op("Add", [x, y]), b.op("Add", [x, b.constant(np.zeros((1,), np.float32))])]
    with observing(MatchTracer()) as tracer:
        apply_rules(g, RuleSet([add_zero]))
    outcomes = [e[3] for e in tracer.events]
    assert "applied" in outcomes
    assert any("expects a constant" in o for o in outcomes)
    assert "test_infra_rewrite.py" in tracer.report()


def _failure_reasons(g, rules) -> dict[str, list[str]]:
    """Run ``rules`` under a PatternStatistics instrument; the failure reasons per rule name."""
    from dataclasses import dataclass

    from compiler.instruments import PatternStatistics
    from compiler.passes import Pass, PassResult
    from compiler.pipeline import PassManager

    @dataclass(frozen=True)
    class RulesPass(Pass):
        name = "test-rules"

        def run(self, graph):
            return PassResult(apply_rules(graph, rules))

    stats = PatternStatistics()
    PassManager([RulesPass()], [stats]).run(g)
    assert stats.report()
    return {name: list(reasons) for name, reasons in stats.reasons.items()}


def test_node_rules_report_why_they_did_not_fire():
    g, b, x, y = graph_with()
    g.outputs = [b.op("Relu", [x])]

    def says_why(node, rw):
        return MatchResult.fail("the operand is not a constant")

    def plain_false(node, rw):
        return False

    def checked(node, rw):
        raise AssertionError("check should have ruled the node out")

    rules = RuleSet(
        [
            NodeRule("Relu", says_why, name="says-why"),
            NodeRule("Relu", plain_false, name="plain"),
            NodeRule("Relu", checked, check=lambda n: MatchResult.fail(f"{n.op} is not wanted"), name="checked"),
            NodeRule("Relu", checked, check=lambda n: False, name="checked-bool"),
        ]
    )
    reasons = _failure_reasons(g, rules)
    assert reasons["says-why"] == ["the operand is not a constant"]
    assert reasons["plain"] == [f"{plain_false.__qualname__} declined (returned False, no reason given)"]
    assert reasons["checked"] == ["Relu is not wanted"]
    assert reasons["checked-bool"] == [
        f"{rules.rules[3].check_fn.__qualname__} declined (returned False, no reason given)"
    ]


def test_rewrite_rules_report_declined_and_no_op_rewrites():
    g, b, x, y = graph_with()
    g.outputs = [b.op("Neg", [x])]
    declining = rule(op.Neg(x_), name="declining")(lambda rw, m: MatchResult.fail("would not pay off"))
    no_op = rule(op.Neg(x_, name="n"), name="no-op")(lambda rw, m: m.n)
    reasons = _failure_reasons(g, RuleSet([declining, no_op]))
    assert reasons["declining"] == ["would not pay off"]
    assert reasons["no-op"] == ["the rewrite returned the root's own results (nothing to change)"]
    assert ops_of(g) == ["Neg"]


def test_pattern_stats_cli_prints_node_rule_reasons(tmp_path, capsys):
    from compiler.cli import main

    path = tmp_path / "in.ir"
    path.write_text("""graph @main(%x: f32[4]) {
  %s = Constant() {value = dense<i64[2] [2, 2]>} : i64[2]
  %d = Reshape(%x, %s) : f32[2,2]
  %r = Mul(%d, %d) : f32[2,2]
  return %r
}
""")
    assert main(["opt", str(path), "--passes", "simplify", "--pattern-stats"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert rows["recognise-attention"].split()[1:3] == ["0", "1"]
    assert "not a float Transpose merging heads" in rows["recognise-attention"]


def test_get_attr_fills_in_the_op_default_and_refuses_typos():
    from compiler.rewrite import get_attr

    g, b, x, _ = graph_with()
    leaky = b.op("LeakyRelu", [x]).producer
    steep = b.op("LeakyRelu", [x], {"alpha": 0.5}).producer
    assert "alpha" not in leaky.attrs
    assert get_attr(leaky, "alpha") == pytest.approx(0.01) and get_attr(steep, "alpha") == 0.5
    with pytest.raises(KeyError, match="LeakyRelu has no attribute 'alfa' \\(its attributes: alpha\\)"):
        get_attr(leaky, "alfa")


def test_a_node_made_by_a_rule_takes_the_name_of_the_node_it_replaces():
    """``simplify`` folds MatMul + Add into a Gemm: the Gemm keeps the Add's name (profiles and
    errors name the model's node, not ``<unnamed>``)."""
    from compiler import parse_ir
    from compiler.pipeline import run_pipeline

    g = parse_ir(
        """graph @main(%a: f32[4, 8], %b: f32[8, 3], %c: f32[3]) {
  %m = MatMul(%a, %b) : f32[4, 3] loc("proj/MatMul")
  %y = Add(%m, %c) : f32[4, 3] loc("proj/Add")
  return %y
}"""
    )
    run_pipeline(g, "simplify")
    (gemm,) = [n for n in g.nodes if n.op == "Gemm"]
    assert gemm.name == "proj/Add"


def test_a_folded_batch_norm_keeps_the_conv_name():
    """``fold-batchnorm`` makes a new Conv with the scaled weights: it keeps the Conv's name."""
    from compiler import parse_ir
    from compiler.pipeline import run_pipeline

    g = parse_ir(
        """graph @main(%x: f32[1, 2, 4, 4]) {
  %w = Constant() {value = dense<f32[3, 2, 1, 1] [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]>} : f32[3, 2, 1, 1]
  %s = Constant() {value = dense<f32[3] [1.0, 2.0, 3.0]>} : f32[3]
  %b = Constant() {value = dense<f32[3] [0.5, 0.0, -0.5]>} : f32[3]
  %m = Constant() {value = dense<f32[3] [0.1, 0.2, 0.3]>} : f32[3]
  %v = Constant() {value = dense<f32[3] [1.0, 4.0, 9.0]>} : f32[3]
  %c = Conv(%x, %w) : f32[1, 3, 4, 4] loc("stem/Conv")
  %y = BatchNormalization(%c, %s, %b, %m, %v) : f32[1, 3, 4, 4] loc("stem/BN")
  return %y
}"""
    )
    run_pipeline(g, "simplify")
    (conv,) = [n for n in g.nodes if n.op == "Conv"]
    assert conv.name == "stem/Conv" and not [n for n in g.nodes if n.op == "BatchNormalization"]
