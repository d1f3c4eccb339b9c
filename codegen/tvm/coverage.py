"""Which registered ops the TVM backend lowers, and what happens to the others.

The op registry (``compiler.ops``) is the one list of ops and their TVM lowerings; this module only
reads it. ``docs/codegen.md`` carries the table of ops without a lowering between the
``<!-- unlowered-ops -->`` markers; ``tests/codegen/test_lowering_registry.py`` checks it against the
registry, so the list cannot drift silently. Regenerate it with

    PYTHONPATH=$PWD python3 -m codegen.tvm.coverage --write docs/codegen.md
"""

from __future__ import annotations

import argparse
import re
import sys

from onnx import defs

from compiler.ops import OpDef, Trait, all_ops

from ..plan import FUSED_OP
from .registry import BACKEND

BEGIN, END = "<!-- unlowered-ops -->", "<!-- /unlowered-ops -->"


def lowered_ops() -> list[OpDef]:
    """Every registered op with a TVM lowering, by name."""
    return [op for op in all_ops() if op.lowering(BACKEND) is not None]


def unlowered_ops() -> list[OpDef]:
    """Every registered op without a TVM lowering, by name."""
    return [op for op in all_ops() if op.lowering(BACKEND) is None]


def _has_function_body(op: OpDef) -> bool:
    if op.domain not in ("", "ai.onnx"):
        return False
    try:
        schema = defs.get_schema(op.name.rsplit(".", 1)[-1], defs.onnx_opset_version(), op.domain)
    except Exception:
        return False
    return bool(schema.has_function or schema.has_context_dependent_function)


def fate(op: OpDef) -> str:
    """What compilation does with ``op``, from the op's own facts (traits, its ONNX schema)."""
    if op.name == "Constant" or op.has(Trait.SHAPE_ONLY):
        return "folded by the planner (constants, static shapes)"
    if op.name == FUSED_OP:
        return "made by the `fuse` pass: the planner lowers its body as one kernel"
    if op.name == "If":  # the planner's IfStep (codegen/branches.py)
        return "control flow: inlined or selected by graph preparation, else real branches in the driver"
    if op.has(Trait.CONTROL_FLOW):
        return "control flow: rewritten by graph preparation when static, else interpreter only"
    if op.has(Trait.SEQUENCE):
        return "sequences and optionals: interpreter only"
    if op.has(Trait.RANDOM):
        return "random: interpreter only"
    if _has_function_body(op):
        return "expanded into its ONNX function body before codegen"
    return "interpreter only, unless a codegen-preparation pass rewrites it (`ember opt --list-passes`)"


def markdown_table() -> str:
    """The table of ops without a TVM lowering, as in docs/codegen.md."""
    rows = ["| op | without a lowering |", "|---|---|"]
    rows += [f"| `{op.name}` | {fate(op)} |" for op in unlowered_ops()]
    return "\n".join(rows)


def replace_table(text: str, table: str) -> str:
    """``text`` with the part between the markers replaced by ``table``."""
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise ValueError(f"no {BEGIN} ... {END} markers")
    return pattern.sub(lambda _: f"{BEGIN}\n{table}\n{END}", text)


def checked_in_table(text: str) -> str:
    """The table between the markers of ``text``."""
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[start:end].strip("\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", metavar="DOC", help="rewrite the table in DOC (docs/codegen.md)")
    args = parser.parse_args(argv)
    table = markdown_table()
    if args.write:
        with open(args.write) as f:
            text = f.read()
        with open(args.write, "w") as f:
            f.write(replace_table(text, table))
    else:
        print(table)
    print(f"{len(lowered_ops())} ops lowered, {len(unlowered_ops())} not", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
