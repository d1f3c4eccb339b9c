"""``Rewriter.replace_value`` keeps what the replaced value's type knew.

When a rewrite replaces a value by an equal one whose inferred type knows less (``Cast`` to the
same type removed before a graph output declared ``f32[10]``, leaving an ``Add`` inferred as
``f32[?]``), the surviving value takes the dims the old type knew: they describe the same run-time
value. Otherwise a declared output shape is lost, and with it the shape that ``shapes-from-uses``
gives a run-time-sized ``Range`` feeding it (the expanded window functions stopped compiling).
"""

import numpy as np

from compiler import Builder, DType, Graph, TensorType, interpret, verify
from compiler.pipeline import run_pipeline
from compiler.rewrite import Rewriter


def test_replacing_a_value_keeps_the_dims_its_type_knew():
    g = Graph("m")
    x = g.add_param(TensorType(DType.FLOAT32, (None, 4)), "x")
    b = Builder(g)
    y = b.op("Relu", [x])
    z = b.op("Identity", [y])
    z.type = TensorType(DType.FLOAT32, (3, 4))  # declared by the model
    g.outputs = [z]
    Rewriter(g).replace_node(z.producer, y)
    assert g.outputs[0] is y and y.type == TensorType(DType.FLOAT32, (3, 4))
    verify(g)


def test_o2_keeps_a_declared_output_shape_that_codegen_preparation_needs():
    g = Graph("window")
    n = g.add_param(TensorType(DType.INT32, ()), "n")
    b = Builder(g)
    size = b.op("Cast", [n], {"to": 1})
    ramp = b.op("Range", [b.constant(np.float32(0)), size, b.constant(np.float32(1))])
    wave = b.op("Cos", [ramp])
    out = b.op("Cast", [wave], {"to": 1})  # a no-op cast that simplify removes
    out.type = TensorType(DType.FLOAT32, (10,))
    out.name = "y"
    g.outputs = [out]
    run_pipeline(g, "O2,codegen-prepare")
    assert [v.name for v in g.outputs] == ["y"]
    assert g.outputs[0].type == TensorType(DType.FLOAT32, (10,))
    ranges = [node for node in g.walk() if node.op == "Range"]  # fused groups' bodies included
    assert ranges and ranges[0].results[0].type == TensorType(DType.FLOAT32, (10,))
    np.testing.assert_allclose(interpret(g, {"n": np.int32(10)})["y"], np.cos(np.arange(10, dtype=np.float32)))
