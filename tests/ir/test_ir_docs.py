"""docs/ir.md stays true: its Python example runs and its IR example parses, verifies and round-trips."""

import re
from pathlib import Path

import numpy as np

from compiler import parse_ir, print_ir, verify
from compiler.ir.printer import tensor_hash

DOC = (Path(__file__).resolve().parents[2] / "docs" / "ir.md").read_text()


def test_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", DOC, re.S)
    assert len(blocks) >= 2
    scope: dict = {}
    for block in blocks:
        exec(compile(block, "docs/ir.md", "exec"), scope)
    assert scope["g"].outputs[0].name == "clipped" and scope["out"].shape == (2, 4, 8, 8)
    assert (scope["out"] >= 0).all() and (scope["out"] <= 6).all()


def test_ir_example_parses_and_round_trips():
    (text,) = re.findall(r"```\n(// A ResNet.*?)```", DOC, re.S)
    big = np.zeros((64, 4), np.float32)
    assert f"#{tensor_hash(big)}" in text
    g = parse_ir(text, {"big": big})
    verify(g)
    body = "\n".join(line for line in text.splitlines() if not line.startswith("//")) + "\n"
    assert print_ir(g, resources={}) == body


def test_grammar_lists_every_dtype():
    from compiler import DType

    listed = re.search(r"DTYPE     ::= (.*?)```", DOC, re.S).group(1)
    names = {t.strip() for t in re.split(r"[|\n]", listed) if t.strip()}
    assert names == {d.value for d in DType}
