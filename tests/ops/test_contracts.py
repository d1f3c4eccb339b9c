"""Shape contracts (``OpDef.contract``): what onnx's inference lets through and no runtime can run.

Each case applies an op to operands of given shapes (tuples: graph parameters,
with ``"n"`` for a symbolic dim; arrays: constants) and says which texts the
contract's reasons quote, or None when the application keeps the contract.
Unknown dims and unknown ranks always pass.  The verifier reports broken
contracts naming the node, the op and the shapes.  (onnx's node test suite,
run by test_registered_ops.py and scripts/onnx_conformance.py, checks that no
valid node is refused.)
"""

from __future__ import annotations

import numpy as np
import pytest

from compiler import Builder, DType, Graph, TensorType, interpret, verify
from compiler.ir.interpreter import InterpreterError
from compiler.ir.verifier import VerifyError
from compiler.ops import check_contract, get_op


def i64(*values):
    return np.array(values, np.int64)


def ones(*shape):
    return np.ones(shape, np.float32)


CASES = [
    # op, operands, attrs, quoted texts (None: keeps the contract)
    ("Conv", [(1, 3, 8, 8), (4, 3, 3, 3)], {}, None),
    ("Conv", [(1, 3, 8, 8), (4, 5, 3, 3)], {}, ["W [4, 5, 3, 3]", "X [1, 3, 8, 8]", "5 x group 1"]),
    ("Conv", [(1, "n", 8, 8), (4, 5, 3, 3)], {}, None),
    ("Conv", [(1, 6, 8, 8), (6, 2, 3, 3)], {"group": 3}, None),
    ("Conv", [(1, 6, 8, 8), (4, 2, 3, 3)], {"group": 3}, ["group 3 does not divide the 4 output channels"]),
    ("Conv", [(1, 3, 8, 8), (4, 3, 3, 3), (4,)], {}, None),
    ("Conv", [(1, 3, 8, 8), (4, 3, 3, 3)], {"group": 0}, ["group 0 must be positive"]),
    ("Conv", [(1, 3, 8, 8), (4, 3, 3, 3), (3,)], {}, ["B [3]", "not 4"]),
    ("ConvTranspose", [(1, 3, 8, 8), (3, 2, 3, 3), (2,)], {}, None),
    ("ConvTranspose", [(1, 3, 8, 8), (3, 2, 3, 3), (4,)], {"group": 1}, ["B [4]", "not 2"]),
    ("ConvTranspose", [(1, 4, 8, 8), (3, 2, 3, 3)], {}, ["expects 3 input channels", "X [1, 4, 8, 8]"]),
    ("Gemm", [(2, 3), (3, 5), (5,)], {}, None),
    ("Gemm", [(3, 2), (5, 3), (1, 5)], {"transA": 1, "transB": 1}, None),
    ("Gemm", [(2, 3), (3, 5), (2,)], {}, ["C [2]", "[2, 5]"]),
    ("Reshape", [(2, 3), i64(3, 2)], {}, None),
    ("Reshape", [(2, 3), i64(0, -1)], {}, None),
    ("Reshape", [(2, 3), i64(4, -1)], {}, ["shape [4, -1]", "6 elements"]),
    ("Reshape", [(2, 3), i64(0, 4)], {}, ["asks for 8 elements", "X [2, 3]"]),
    ("Reshape", [(0, 3), i64(0, 4)], {"allowzero": 1}, None),
    ("Reshape", [("n", 3), i64(4, 2)], {}, None),
    ("InstanceNormalization", [(1, 3, 4, 4), (3,), (3,)], {}, None),
    ("InstanceNormalization", [(1, 3, 4, 4), (3,), (4,)], {}, ["B [4]", "X [1, 3, 4, 4]"]),
    ("GroupNormalization", [(1, 6, 4, 4), (6,), (6,)], {"num_groups": 3}, None),
    ("GroupNormalization", [(1, 6, 4, 4), (6,), (6,)], {"num_groups": 4}, ["num_groups 4 does not divide"]),
    ("LayerNormalization", [(2, 3, 8), (3, 8), (8,)], {"axis": 1}, None),
    ("LayerNormalization", [(2, 3, 8), (3,)], {}, ["Scale [3]", "[8]"]),
    ("RMSNormalization", [(2, 3, 8), (8,)], {}, None),
    ("PRelu", [(1, 3, 4, 4), (3, 1, 1)], {}, None),
    ("PRelu", [(1, 3, 4, 4), (2, 1, 1)], {}, ["slope [2, 1, 1]", "X [1, 3, 4, 4]"]),
    ("GatherElements", [(3, 4), i64(0, 1).reshape(1, 2)], {}, None),
    ("GatherElements", [(3, 4), (2,)], {}, ["indices [2]", "data [3, 4]"]),
    ("ScatterElements", [(3, 4), (2, 2), (2, 2)], {}, None),
    ("ScatterElements", [(3, 4), (2, 2), (2, 3)], {}, ["updates [2, 3]", "indices [2, 2]"]),
    ("ScatterND", [(3, 4), (2, 1), (2, 4)], {}, None),
    ("ScatterND", [(3, 4), (2, 1), (2, 5)], {}, ["updates [2, 5] must have shape [2, 4]"]),
    ("Slice", [(3, 4), i64(0, 0), i64(1, 1), i64(0, 1)], {}, None),
    ("Slice", [(3, 4), (2,), (2,), (3,)], {}, ["starts has 2", "axes has 3"]),
    ("Slice", [(3, 4), i64(0), i64(1), i64(2)], {}, ["axes [2] are out of range"]),
    ("Slice", [(3, 4), i64(0), i64(1), i64(0), i64(0)], {}, ["0 step"]),
    ("Pad", [(3, 4), i64(1, 1, 1, 1)], {}, None),
    ("Pad", [(3, 4), i64(1, 1, 1, 1), np.zeros(0, np.float32)], {}, None),
    ("Pad", [(3, 4), i64(1, 1, 1, 1), ones(2)], {}, ["constant_value [2] must be one value"]),
    ("Pad", [(3, 4), (6,), ones(), i64(0, 1)], {}, ["pads [6]", "2 x 2"]),
    ("DepthToSpace", [(1, 8, 2, 2)], {"blocksize": 2}, None),
    ("DepthToSpace", [(1, 6, 2, 2)], {"blocksize": 2}, ["4 does not divide the 6 channels"]),
    ("SpaceToDepth", [(1, 3, 5, 4)], {"blocksize": 2}, ["blocksize 2", "[1, 3, 5, 4]"]),
    ("Resize", [(1, 3, 4, 4), None, (4,)], {}, None),
    ("Resize", [(1, 3, 4, 4), None, (3,)], {}, ["scales [3]", "4 entries"]),
    ("QuantizeLinear", [(2, 3), (3,), (3,)], {"axis": 1}, None),
    ("DequantizeLinear", [(2, 3), (4,)], {"axis": 1}, ["scale [4]", "axis 1"]),
    ("QLinearConv", [(1, 3, 8, 8), (), (), (4, 5, 3, 3), (), (), (), ()], {}, ["W [4, 5, 3, 3]"]),
    ("ConvInteger", [(1, 3, 8, 8), (4, 3, 3, 3)], {}, None),
    ("DeformConv", [(1, 3, 8, 8), (4, 5, 3, 3), (1, 18, 6, 6)], {}, ["5 x group 1"]),
    ("LpNormalization", [(2, 3)], {"axis": 4}, ["axis 4"]),
    ("GatherND", [(2, 3, 4), (2, 1)], {"batch_dims": 1}, None),
    ("GatherND", [(2, 3, 4), (3, 1)], {"batch_dims": 1}, ["indices [3, 1]", "data [2, 3, 4]"]),
    ("CumSum", [(3, 4), np.array(1, np.int64)], {}, None),
    ("CumSum", [(3, 4), np.array(2, np.int64)], {}, ["axis 2 is out of range"]),
    ("NonMaxSuppression", [(1, 6, 4), (1, 2, 6)], {}, None),
    ("NonMaxSuppression", [(1, 6, 4), (1, 2, 5)], {}, ["number of boxes"]),
    ("MaxUnpool", [(1, 3, 4, 4), (1, 3, 4, 4)], {"kernel_shape": [2, 2]}, None),
    ("MaxUnpool", [(1, 3, 4, 4), (1, 3, 5, 5)], {"kernel_shape": [2, 2]}, ["indices [1, 3, 5, 5]"]),
    (
        "LSTM",
        [(5, 2, 10), (1, 80, 10), (1, 80, 20), (1, 160), (2,), (1, 2, 20), (1, 2, 20), (1, 60)],
        {"hidden_size": 20},
        None,
    ),
    (
        "LSTM",
        [(2, 5, 10), (2, 80, 10), (2, 80, 20), None, None, (2, 2, 20)],
        {"hidden_size": 20, "direction": "bidirectional", "layout": 1},
        None,
    ),
    ("LSTM", [(5, 2, 10), (1, 80, 12), (1, 80, 20)], {"hidden_size": 20}, ["W [1, 80, 12] must be [1, 80, 10]"]),
    ("GRU", [(5, 2, 10), (1, 60, 10), (1, 60, 19)], {"hidden_size": 20}, ["R [1, 60, 19] must be [1, 60, 20]"]),
    ("RNN", [(5, 2, 10), (2, 20, 10), (2, 20, 20)], {"hidden_size": 20}, ["W [2, 20, 10]", "1 direction(s)"]),
    ("RNN", [(5, 2, 10), (1, 20, 10), (1, 20, 20), (1, 30)], {}, ["B [1, 30] must be [1, 40]"]),
    ("ReverseSequence", [(4, 2, 3), (2,)], {}, None),
    ("ReverseSequence", [(4, 2, 3), (3,)], {}, ["sequence_lens [3]", "not 2"]),
    ("ReverseSequence", [(4, 2, 3), (4,)], {"batch_axis": 0, "time_axis": 1}, None),
    ("Trilu", [(3, 4), i64(1)], {}, None),
    ("Trilu", [(3, 4), (2,)], {}, ["k [2] must be one value"]),
    ("SoftmaxCrossEntropyLoss", [(3, 5, 2), (3, 2), (5,)], {}, None),
    ("SoftmaxCrossEntropyLoss", [(3, 5), (4,)], {}, ["labels [4] must be [3]"]),
    ("SoftmaxCrossEntropyLoss", [(3, 5), (3,), (4,)], {}, ["weights [4]"]),
    ("AffineGrid", [(2, 2, 3), i64(2, 1, 4, 4)], {}, None),
    ("AffineGrid", [(2, 2, 3), i64(3, 1, 4, 4)], {}, ["theta [2, 2, 3] must be [3, 2, 3]"]),
    ("Einsum", [(2, 3), (3, 5)], {"equation": "ij,jk->ik"}, None),
    ("Einsum", [(2, 3, 3), (3, 5)], {"equation": "...ij,jk"}, None),
    ("Einsum", [(2, 3), (4, 5)], {"equation": "ij,jk->ik"}, ["'j'", "3", "4"]),
    ("Einsum", [(2, 3), (3, 5)], {"equation": "ijk,jk->i"}, ["term 'ijk'"]),
]


def _operands(b: Builder, specs):
    """Values for the specs (contracts judge shapes and constants, not dtypes: parameters are f32)."""
    values = []
    for i, spec in enumerate(specs):
        if spec is None:
            values.append(None)
        elif isinstance(spec, np.ndarray):
            values.append(b.constant(spec))
        else:
            values.append(b.param(f"p{i}", TensorType(DType.FLOAT32, tuple(spec))))
    return values


@pytest.mark.parametrize("op, specs, attrs, quoted", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_contract(op, specs, attrs, quoted):
    b = Builder(Graph("g"))
    found = check_contract(op, _operands(b, specs), attrs, max(get_op(op).outputs[0], 1))
    if quoted is None:
        assert found == []
        return
    assert found, f"{op} {specs} {attrs} keeps its contract"
    text = "; ".join(found)
    for q in quoted:
        assert q in text, f"{q!r} missing from: {text}"


def test_unknown_ranks_pass():
    for op in ("Conv", "Gemm", "Reshape", "LayerNormalization", "ScatterND", "Pad"):
        op_def = get_op(op)
        b = Builder(Graph("g"))
        operands = [b.param(f"p{i}", TensorType(DType.FLOAT32, None)) for i in range(op_def.inputs[0])]
        assert check_contract(op, operands, {}, 1) == [], op


def test_verifier_reports_a_broken_contract_with_node_op_and_shapes():
    g = Graph("g")
    b = Builder(g)
    x = b.param("x", TensorType(DType.FLOAT32, (1, 3, 8, 8)))
    w = b.constant(ones(4, 5, 3, 3))
    g.outputs = [b.op("Conv", [x, w], {}, names=["y"], name="conv1")]
    with pytest.raises(VerifyError) as info:
        verify(g)
    (problem,) = info.value.problems
    assert problem.startswith("node 'conv1' (Conv): breaks the Conv shape contract:"), problem
    assert "W [4, 5, 3, 3]" in problem and "X [1, 3, 8, 8]" in problem


def test_verifier_lists_every_broken_node():
    g = Graph("g")
    b = Builder(g)
    x = b.param("x", TensorType(DType.FLOAT32, (2, 3)))
    r = b.op("Reshape", [x, b.constant(i64(4, 2))], {}, names=["r"], result_types=[TensorType(DType.FLOAT32, (4, 2))])
    p = b.op("PRelu", [r, b.constant(ones(3))], {}, names=["p"])
    g.outputs = [p]
    with pytest.raises(VerifyError) as info:
        verify(g)
    problems = info.value.problems
    assert len(problems) == 2, problems
    assert "node 'r' (Reshape)" in problems[0] and "node 'p' (PRelu)" in problems[1]


def test_interpreter_says_which_contract_an_unverified_graph_breaks():
    """Not NumPy's reshape error from inside the Conv kernel."""
    g = Graph("g")
    b = Builder(g)
    x = b.param("x", TensorType(DType.FLOAT32, (1, 3, 8, 8)))
    g.outputs = [b.op("Conv", [x, b.constant(ones(4, 5, 3, 3))], {}, names=["y"], name="conv1")]
    with pytest.raises(InterpreterError) as info:
        interpret(g, {"x": ones(1, 3, 8, 8)})
    message = str(info.value)
    assert message.startswith("node 'conv1' (Conv): breaks the Conv shape contract:"), message
    assert "W [4, 5, 3, 3]" in message and "reshape" not in message
