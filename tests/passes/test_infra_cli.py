"""``ember opt``: pipelines on ONNX files, node counts, instruments, errors."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.cli import main


def shape_model() -> onnx.ModelProto:
    """x -> Reshape(x, Concat(Gather(Shape(x), 0), -1)) plus a duplicated Relu."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["d0"], axis=0),
        helper.make_node("Unsqueeze", ["d0", "axes"], ["d0u"]),
        helper.make_node("Concat", ["d0u", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["r"]),
        helper.make_node("Relu", ["r"], ["a"]),
        helper.make_node("Relu", ["r"], ["b"]),
        helper.make_node("Add", ["a", "b"], ["y"]),
    ]
    inits = [
        numpy_helper.from_array(np.array(0, np.int64), "zero"),
        numpy_helper.from_array(np.array([0], np.int64), "axes"),
        numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run_ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_opt_onnx_to_onnx_keeps_outputs(tmp_path, capsys):
    src, dst = tmp_path / "m.onnx", tmp_path / "out.onnx"
    onnx.save(shape_model(), src)
    code = main(
        [
            "opt",
            str(src),
            "-o",
            str(dst),
            "--passes",
            "infer-shapes,fold-constants,cse,dce",
            "--time-passes",
            "--verify-each",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "nodes: 8 -> 3" in out  # Reshape, Relu, Add
    assert "fold-constants" in out and "total" in out  # the timing table
    optimized = onnx.load(dst)
    assert sorted(n.op_type for n in optimized.graph.node) == ["Add", "Relu", "Reshape"]
    assert [o.name for o in optimized.graph.output] == ["y"]
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(run_ort(optimized, x), run_ort(shape_model(), x), rtol=1e-6)


def test_opt_writes_ir_and_prints_after_changing_passes(tmp_path, capsys):
    src, dst = tmp_path / "m.onnx", tmp_path / "out.ir"
    onnx.save(shape_model(), src)
    assert main(["opt", str(src), "-o", str(dst), "--passes", "cse,dce,cse", "--print-ir-after-change"]) == 0
    out = capsys.readouterr().out
    assert out.count("// ----- IR after") == 1 and "IR after cse" in out
    assert dst.read_text().startswith("graph @")


def test_opt_reports_bad_pipelines_in_one_line(tmp_path, capsys):
    src = tmp_path / "m.onnx"
    onnx.save(shape_model(), src)
    assert main(["opt", str(src), "--passes", "fold-constants{max-bites=1}"]) == 1
    err = capsys.readouterr().err
    assert "no option 'max-bites' (options: max-bytes, max-input-elements, cheap-any-size)" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("name", ["O0", "O1"])
def test_named_pipelines_run_from_the_cli(tmp_path, capsys, name):
    src = tmp_path / "m.onnx"
    onnx.save(shape_model(), src)
    assert main(["opt", str(src), "--passes", name]) == 0
    assert "nodes: 8 ->" in capsys.readouterr().out
