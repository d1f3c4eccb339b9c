"""``ember compile --emit llvm``: every kernel's LLVM IR in ``<output stem>.ll``, no library linked."""

import re

import llvmlite.binding as llvm  # parses the emitted modules
import pytest

from compiler.cli import main

# two unique kernels (a fused MatMul+Add+Relu and a Softmax) at -O2; O0 keeps one kernel per node
MODEL_IR = """graph @main(%x: f32[2,4], %w: f32[4,3], %b: f32[3]) {
  %m = MatMul(%x, %w) : f32[2,3]
  %a = Add(%m, %b) : f32[2,3]
  %r = Relu(%a) : f32[2,3]
  %s = Softmax(%r) {axis = -1} : f32[2,3]
  return %s
}
"""

HEADER = re.compile(
    r"^; ---- kernel (\w+) \(function (\w+), schedule [\w-]+\)\n; ---- graph nodes: (.*)$", re.MULTILINE
)


def _modules(text: str) -> list[tuple[str, str, str, str]]:
    """(kernel, function, nodes, module text) per module, split at each header comment."""
    starts = list(HEADER.finditer(text))
    return [
        (m.group(1), m.group(2), m.group(3), text[m.end() : starts[i + 1].start() if i + 1 < len(starts) else None])
        for i, m in enumerate(starts)
    ]


@pytest.mark.parametrize("opt, kernels", [("O0", 4), ("O2", None)])
def test_emit_llvm_writes_one_parsable_module_per_kernel(tmp_path, capsys, opt, kernels):
    model = tmp_path / "net.ir"
    model.write_text(MODEL_IR)
    out = tmp_path / "build" / "net.so"
    out.parent.mkdir()
    assert main(["compile", str(model), "-o", str(out), "--emit", "llvm", "--opt", opt, "-q"]) == 0
    path = tmp_path / "build" / "net.ll"
    assert str(path) in capsys.readouterr().out
    assert not out.exists(), "--emit llvm links no library"
    modules = _modules(path.read_text())
    assert modules and (kernels is None or len(modules) == kernels)
    covered = set()
    for i, (kernel, function, nodes, text) in enumerate(modules):
        assert kernel == f"ember_model_k{i}" and function == f"__tvm_ffi_{kernel}"
        assert re.search(rf"^define .*@{function}\(", text, re.MULTILINE), f"no define of {function}"
        parsed = llvm.parse_assembly(text)
        parsed.verify()
        assert parsed.get_function(function).name == function
        covered.update(n.strip() for n in nodes.split(","))
    assert len(covered) >= (4 if opt == "O0" else 1)


def test_emit_llvm_prefix_names_the_functions(tmp_path, capsys):
    model = tmp_path / "net.ir"
    model.write_text(MODEL_IR)
    assert main(["compile", str(model), "-o", str(tmp_path / "m.so"), "--emit", "llvm", "--prefix", "tiny", "-q"]) == 0
    text = (tmp_path / "m.ll").read_text()
    assert "define" in text and "@__tvm_ffi_tiny_k0(" in text
    assert "ember_model" not in text
