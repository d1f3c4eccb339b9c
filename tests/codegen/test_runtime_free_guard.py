"""Kernels that would call into the TVM runtime are refused at compile time, not left to crash."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler import EmberError
from frontends.onnx import import_model


def topk_model() -> onnx.ModelProto:
    node = helper.make_node("TopK", ["x", "k"], ["values", "indices"], axis=1)
    graph = helper.make_graph(
        [node],
        "topk",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])],
        [
            helper.make_tensor_value_info("values", TensorProto.FLOAT, [3, 2]),
            helper.make_tensor_value_info("indices", TensorProto.INT64, [3, 2]),
        ],
        [numpy_helper.from_array(np.array([2], np.int64), "k")],
    )
    return helper.make_model(graph)


def _lower_through_tvm_sort(ctx, x, _k=None):
    """A TopK lowering through topi, whose sort calls the TVM runtime's ``tvm.contrib.sort``."""
    from tvm import topi

    k = ctx.out_shape()[1]
    return list(topi.topk(x, k, 1, "both", False, "int64"))


def test_a_kernel_calling_the_tvm_runtime_is_refused_with_a_clear_error(tmp_path, monkeypatch):
    from codegen import compile_graph
    from codegen.tvm.registry import BACKEND, OpLowering
    from compiler.ops import get_op

    topk = get_op("TopK")
    topk.lowering(BACKEND)  # load every lowering, then swap in one that needs the TVM runtime
    monkeypatch.setitem(topk.lowerings, BACKEND, OpLowering("TopK", _lower_through_tvm_sort, (1,), "reduce"))

    with pytest.raises(EmberError) as info:
        compile_graph(import_model(topk_model()), str(tmp_path / "topk.so"))
    message = str(info.value)
    assert "TopK" in message
    assert "tvm.contrib.sort.topk" in message
    assert "interpreter" in message
    assert not (tmp_path / "topk.so").exists()
