"""Pass registry, pipeline text, PassManager and instruments."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pytest

from compiler import Builder, DType, EmberError, Graph, TensorType, parse_ir, print_ir
from compiler.instruments import CrashReproducer, PatternStatistics, PrintIR, Timing, VerifyInstrument
from compiler.passes import Pass, PassResult, available_passes, get_pass, register_pass, unregister_pass
from compiler.pipeline import FixedPoint, PassManager, parse_pipeline, pipeline_text
from compiler.rewrite import Const, RuleSet, Var, apply_rules, op, rule

F32 = DType.FLOAT32


@dataclass(frozen=True)
class CountingPass(Pass):
    """Test pass: reports a change for the first ``changes`` runs (shared counter in ``log``)."""

    name = "test-counting"
    changes: int = 0
    label: str = "x"
    ratio: float = 0.5
    flag: bool = False
    dims: tuple[int, ...] = ()

    def run(self, graph: Graph) -> PassResult:
        runs = graph.metadata.setdefault("runs", [])
        runs.append(self.label)
        return PassResult(len(runs) <= self.changes)


@dataclass(frozen=True)
class BreakingPass(Pass):
    """Test pass: leaves a dangling operand (invalid IR) or raises, as asked."""

    name = "test-breaking"
    mode: str = "raise"

    def run(self, graph: Graph) -> PassResult:
        if self.mode == "raise":
            raise RuntimeError("boom")
        node = graph.first
        node.erase(safe=False)
        return PassResult(True)


@pytest.fixture(autouse=True)
def _registered():
    register_pass(CountingPass)
    register_pass(BreakingPass)
    yield
    unregister_pass(CountingPass.name)
    unregister_pass(BreakingPass.name)


def small_graph() -> Graph:
    g = Graph("main")
    b = Builder(g)
    x = b.param("x", TensorType(F32, (2, 3)))
    y = b.op("Relu", [x])
    z = b.op("Add", [y, b.constant(np.zeros((1,), np.float32))])
    g.outputs = [z]
    return g


# --------------------------------------------------------------------------- registry and options


def test_builtin_passes_are_registered_lazily():
    names = available_passes()
    for name in ("dce", "cse", "fold-constants", "infer-shapes", "test-counting"):
        assert name in names
    assert get_pass("dce").name == "dce"


def test_unknown_pass_lists_the_valid_ones():
    with pytest.raises(EmberError) as err:
        parse_pipeline("dce,no-such-pass")
    assert "unknown pass 'no-such-pass'" in str(err.value)
    assert "fold-constants" in str(err.value)


def test_options_are_typed_from_kebab_case():
    (p,) = parse_pipeline("test-counting{changes=3,label=abc,ratio=0.25,flag=true,dims=[1,2]}")
    assert p == CountingPass(changes=3, label="abc", ratio=0.25, flag=True, dims=(1, 2))


def test_unknown_and_bad_options_are_clear_errors():
    with pytest.raises(EmberError, match=r"no option 'nope' \(options: changes, label, ratio, flag, dims\)"):
        parse_pipeline("test-counting{nope=1}")
    with pytest.raises(EmberError, match="not a valid int"):
        parse_pipeline("test-counting{changes=many}")
    with pytest.raises(EmberError, match="expected true or false"):
        parse_pipeline("test-counting{flag=maybe}")


@pytest.mark.parametrize(
    "text",
    [
        "dce",
        "test-counting{changes=2},cse",
        "fold-constants{max-bytes=64},fixed-point{max-iterations=3}(cse,dce)",
        "",
    ],
)
def test_pipeline_text_round_trips(text):
    steps = parse_pipeline(text)
    assert parse_pipeline(pipeline_text(steps)) == steps


def test_pipeline_syntax_errors_point_at_the_column():
    with pytest.raises(EmberError) as err:
        parse_pipeline("dce,,cse")
    assert "column 5" in str(err.value)
    with pytest.raises(EmberError, match="only fixed-point takes a nested pipeline"):
        parse_pipeline("dce(cse)")
    with pytest.raises(EmberError, match="expected"):
        parse_pipeline("fixed-point(dce")


def test_named_pipelines_expand():
    steps = parse_pipeline("O1")
    assert [s.name for s in steps] == ["fold-constants", "cse", "dce"]
    assert parse_pipeline("O0") == []
    if "simplify" in available_passes():
        assert any(isinstance(s, FixedPoint) for s in parse_pipeline("O2"))


def test_pass_names_must_be_kebab_case():
    @dataclass(frozen=True)
    class Bad(Pass):
        name = "Bad_Name"

    with pytest.raises(ValueError, match="kebab-case"):
        register_pass(Bad)


# --------------------------------------------------------------------------- running


def test_fixed_point_reruns_until_no_change():
    g = small_graph()
    result = PassManager("fixed-point{max-iterations=10}(test-counting{changes=3})").run(g)
    assert result.modified
    assert len(g.metadata["runs"]) == 4  # three changing rounds, then one quiet round


def test_fixed_point_respects_its_cap():
    g = small_graph()
    PassManager("fixed-point{max-iterations=2}(test-counting{changes=100})").run(g)
    assert len(g.metadata["runs"]) == 2


def test_failing_pass_becomes_ember_error_naming_it():
    with pytest.raises(EmberError, match="pass 'test-breaking' failed: RuntimeError: boom"):
        PassManager("dce,test-breaking").run(small_graph())


def test_verify_each_names_the_pass_that_broke_the_ir():
    with pytest.raises(EmberError) as err:
        PassManager("test-breaking{mode=dangle}", verify_each=True).run(small_graph())
    assert "invalid after pass 'test-breaking'" in str(err.value)


def test_test_suite_turns_verify_each_on():
    pm = PassManager("dce")
    assert any(isinstance(i, VerifyInstrument) for i in pm.instruments)


# --------------------------------------------------------------------------- instruments


def test_timing_table_lists_every_pass():
    timing = Timing()
    PassManager("dce,cse,dce", [timing]).run(small_graph())
    report = timing.report()
    assert timing.runs["dce"] == 2 and timing.runs["cse"] == 1
    assert "dce" in report and "cse" in report and "total" in report


def test_print_ir_after_change_only_prints_changing_passes():
    out = io.StringIO()
    g = small_graph()
    g.outputs = [g.first.result]  # makes Add and its constant dead
    PassManager("cse,dce", [PrintIR(after_change=True, stream=out)]).run(g)
    text = out.getvalue()
    assert "IR after dce" in text and "IR after cse" not in text
    assert "Add" not in text


def test_print_ir_before_and_after_a_chosen_pass():
    out = io.StringIO()
    PassManager("cse,dce", [PrintIR(before=["dce"], after=["cse"], stream=out)]).run(small_graph())
    text = out.getvalue()
    assert "IR before dce" in text and "IR after cse (no change)" in text
    assert "IR before cse" not in text


def test_crash_reproducer_writes_input_ir_and_pipeline(tmp_path):
    path = str(tmp_path / "crash.ir")
    g = small_graph()
    original = print_ir(g)
    with pytest.raises(EmberError) as err:
        PassManager("dce,test-breaking", [CrashReproducer(path)]).run(g)
    assert path in str(err.value)
    text = open(path).read()
    assert text.splitlines()[0] == "// RUN: dce,test-breaking"
    body = "\n".join(line for line in text.splitlines() if not line.startswith("//"))
    assert print_ir(parse_ir(body)) == original


def test_pattern_statistics_count_applications_and_failures():
    x = Var("x")

    @rule(op.Add(x, Const("zero", value=0.0), commute=True))
    def add_zero(rw, m):
        return m.x

    @dataclass(frozen=True)
    class AddZeroPass(Pass):
        name = "test-add-zero"

        def run(self, graph):
            return PassResult(apply_rules(graph, RuleSet([add_zero])))

    g = small_graph()
    b = Builder(g)
    extra = b.op("Add", [g.params[0], g.params[0]])
    g.outputs = list(g.outputs) + [extra]
    stats = PatternStatistics()
    PassManager([AddZeroPass()], [stats]).run(g)
    assert stats.applied["add-zero"] == 1
    assert stats.failed["add-zero"] == 1
    assert "add-zero" in stats.report()


def test_crash_reproducer_keeps_large_constants_loadable(tmp_path):
    from compiler import load_ir

    g = Graph("main")
    b = Builder(g)
    x = b.param("x", TensorType(F32, (100,)))
    weights = np.arange(100, dtype=np.float32)
    g.outputs = [b.op("Mul", [x, b.constant(weights)])]
    path = str(tmp_path / "crash.ir")
    with pytest.raises(EmberError):
        PassManager("test-breaking", [CrashReproducer(path)]).run(g)
    replay = load_ir(path)
    np.testing.assert_array_equal(replay.first.attrs["value"], weights)
