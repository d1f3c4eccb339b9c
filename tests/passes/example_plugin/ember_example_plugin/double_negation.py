"""``remove-double-negation``: Neg(Neg(x)) -> x; Relu(Relu(x)) -> Relu(x);
LeakyRelu(LeakyRelu(x, a), b) -> LeakyRelu(x, a * b) when a > 0."""

from dataclasses import dataclass

from compiler.passes import Pass, PassResult
from compiler.rewrite import MatchResult, RuleSet, Var, apply_rules, get_attr, op, rule

x = Var("x")


@rule(op.Neg(op.Neg(x)))
def double_negation(rw, m):
    return m.x


@rule(op.Relu(op.Relu(x, name="inner")))
def relu_of_relu(rw, m):
    return m.inner


def inner_slope_is_positive(m):
    # node.attrs holds only what is written on the node: get_attr falls back to the op's default
    if get_attr(m.nodes["inner"], "alpha") <= 0:
        return MatchResult.fail("the inner LeakyRelu's alpha is not positive")
    return MatchResult.success()


@rule(op.LeakyRelu(op.LeakyRelu(x, name="inner")), check=inner_slope_is_positive)
def leaky_relu_of_leaky_relu(rw, m):
    alpha = get_attr(m.nodes["inner"], "alpha") * get_attr(m.root, "alpha")
    return rw.op("LeakyRelu", [m.x], {"alpha": alpha})


RULES = RuleSet([double_negation, relu_of_relu, leaky_relu_of_leaky_relu])


@dataclass(frozen=True)
class RemoveDoubleNegationPass(Pass):
    """Neg(Neg(x)) -> x; Relu(Relu(x)) -> Relu(x); LeakyRelu(LeakyRelu(x, a), b) -> LeakyRelu(x, a*b) if a > 0."""

    name = "remove-double-negation"

    def run(self, graph):
        return PassResult(apply_rules(graph, RULES))
