"""The ``simplify`` rules, one FileCheck case at least per rule, checked three ways.

The cases live in ``tests/filecheck/passes/simplify/*.ir`` (the FileCheck runner checks their
CHECK lines).  Each case names the rule it is about: ``// RULE: name`` must fire and
``// NOT-RULE: name`` must not.  Here every case is also run through
``assert_pass_preserves_semantics`` (interpreter before vs after on random inputs), and every
rule of ``simplify_rules(fast_math=True)`` must have a case where it fires.
"""

from __future__ import annotations

import pathlib
import re

import pytest

from compiler import parse_ir
from compiler.pipeline import PassManager
from compiler.testing import assert_pass_preserves_semantics
from passes.simplify import SimplifyPass, simplify_rules

CASE_DIR = pathlib.Path(__file__).parent.parent / "filecheck" / "passes" / "simplify"
RUN = re.compile(r"^\s*//\s*RUN:(.*)$", re.MULTILINE)
RULE = re.compile(r"^\s*//\s*(NOT-)?RULE:\s*(\S+)", re.MULTILINE)


def _cases():
    for path in sorted(CASE_DIR.glob("*.ir")):
        for number, text in enumerate(path.read_text().split("// -----")):
            if RUN.search(text):
                yield pytest.param(text, id=f"{path.stem}-{number}")


CASES = list(_cases())


def _pass_of(pipeline: str) -> SimplifyPass:
    """The ``simplify{...}`` pass of a one-pass RUN line."""
    match = re.fullmatch(r"simplify(\{fast-math=(true|false)\})?", pipeline.strip())
    assert match, f"simplify cases run 'simplify' alone, not '{pipeline}'"
    return SimplifyPass(fast_math=match.group(2) == "true")


@pytest.mark.parametrize("text", CASES)
def test_case_fires_its_rule_and_keeps_outputs(text):
    pass_ = _pass_of(RUN.search(text).group(1))
    rules = RULE.findall(text)
    assert rules, "each simplify case names its rule (// RULE: or // NOT-RULE:)"
    graph = parse_ir(text)
    fired = set(pass_(graph).statistics)
    for negated, name in rules:
        if negated:
            assert name not in fired, f"rule '{name}' fired but must not"
        else:
            assert name in fired, f"rule '{name}' did not fire (fired: {sorted(fired)})"
    assert_pass_preserves_semantics(pass_, parse_ir(text))


def test_every_rule_has_a_case_where_it_fires():
    fired_cases = {name for text in CASES for negated, name in RULE.findall(text.values[0]) if not negated}
    names = {r.name for r in simplify_rules(fast_math=True)}
    assert len(names) >= 30
    assert names - fired_cases == set(), f"rules without a case: {sorted(names - fired_cases)}"


def test_fast_math_rules_are_off_by_default():
    exact = {r.name for r in simplify_rules()}
    assert {"mul-zero", "sub-self"}.isdisjoint(exact)
    assert {"mul-zero", "sub-self"} <= {r.name for r in simplify_rules(fast_math=True)}
    assert PassManager("simplify{fast-math=true}").pipeline_text == "simplify{fast-math=true}"
