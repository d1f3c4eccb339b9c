"""``ember compile model.prototxt --weights model.caffemodel``: the weights reach the Caffe frontend."""

from __future__ import annotations

import numpy as np
import pytest

from caffe_harness import randn, save
from compiler import interpret
from compiler.cli import main
from frontends.caffe import import_model
from test_caffe_networks import lenet


def test_compile_emit_ir_reads_the_caffemodel(capsys):
    proto, model = save(lenet())
    assert main(["compile", proto, "--weights", model, "--emit", "ir"]) == 0
    out = capsys.readouterr().out
    assert "graph @lenet" in out and "Gemm(" in out


@pytest.mark.slow
def test_compiled_lenet_matches_the_interpreter(tmp_path):
    from compiler import runtime

    proto, model = save(lenet())
    library = str(tmp_path / "lenet.so")
    assert main(["compile", proto, "--weights", model, "-o", library, "-q"]) == 0
    x = randn(2, 1, 28, 28) * 255
    ours = runtime.load(library).run({"data": x})["prob"]
    expected = interpret(import_model(proto, model), {"data": x})["prob"]
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-6)
