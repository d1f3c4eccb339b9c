"""``remove-double-negation``: Neg(Neg(x)) -> x; Relu(Relu(x)) -> Relu(x)."""

from dataclasses import dataclass

from compiler.passes import Pass, PassResult
from compiler.rewrite import RuleSet, Var, apply_rules, op, rule

x = Var("x")


@rule(op.Neg(op.Neg(x)))
def double_negation(rw, m):
    return m.x


@rule(op.Relu(op.Relu(x, name="inner")))
def relu_of_relu(rw, m):
    return m.inner


@dataclass(frozen=True)
class RemoveDoubleNegationPass(Pass):
    """Neg(Neg(x)) -> x; Relu(Relu(x)) -> Relu(x)."""

    name = "remove-double-negation"

    def run(self, graph):
        return PassResult(apply_rules(graph, RuleSet([double_negation, relu_of_relu])))
