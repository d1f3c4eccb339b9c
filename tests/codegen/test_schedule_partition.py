"""The generic schedule cuts an innermost loop where its body switches source at constant points (a
Concat along the last axis, as YOLOv8's head concatenates its three scales' 6400, 1600 and 400
anchors before a Split and Sigmoid), so every part reads one source with whole-vector loads: left
whole, each vector of guarded loads ran lane by lane (9.8 ms for that kernel, 0.2 ms cut)."""

from __future__ import annotations

import numpy as np
from compiled_checks import check_against_interpreter, only_kernel
from onnx import TensorProto, helper

F = TensorProto.FLOAT


def _head_model(widths=(96, 32, 16), channels=(6, 10)):
    inputs = [helper.make_tensor_value_info(f"x{i}", F, [1, sum(channels), w]) for i, w in enumerate(widths)]
    nodes = [
        helper.make_node("Concat", [f"x{i}" for i in range(len(widths))], ["c"], axis=2),
        helper.make_node("Split", ["c", "sizes"], ["box", "cls_raw"], axis=1),
        helper.make_node("Sigmoid", ["cls_raw"], ["cls"]),
    ]
    sizes = helper.make_tensor("sizes", TensorProto.INT64, [2], list(channels))
    graph = helper.make_graph(
        nodes,
        "head",
        inputs,
        [
            helper.make_tensor_value_info("box", F, [1, channels[0], sum(widths)]),
            helper.make_tensor_value_info("cls", F, [1, channels[1], sum(widths)]),
        ],
        initializer=[sizes],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _scheduled_text(model) -> str:
    import tvm
    from tvm import s_tir, te

    from codegen.tvm.kernel import spec_to_te
    from codegen.tvm.schedule import schedule_generic

    spec, target = only_kernel(model)
    placeholders, outputs = spec_to_te(spec, [], target.schedule_params())
    sch = s_tir.Schedule(tvm.IRModule({"main": te.create_prim_func(placeholders + outputs)}))
    schedule_generic(sch, 16)
    return sch.mod["main"].script()


def test_concat_split_sigmoid_is_cut_at_the_sources_and_matches():
    model = _head_model()
    text = _scheduled_text(model)
    assert "range(6, 8)" in text and "range(8, 9)" in text  # vectors [0, 6), [6, 8), [8, 9) of 16 columns
    assert text.count("T.vectorized(16)") >= 6  # each part of both outputs in whole vectors
    rng = np.random.default_rng(0)
    feeds = {f"x{i}": rng.standard_normal((1, 16, w)).astype(np.float32) * 4 for i, w in enumerate((96, 32, 16))}
    check_against_interpreter(model, feeds)


def test_bounds_off_the_vector_grid_keep_one_loop_and_match():
    """Sources 20 and 13 wide: not whole vectors, so no cut; still the interpreter's answer."""
    model = _head_model(widths=(20, 13, 15))
    assert "_partition" not in _scheduled_text(model)
    rng = np.random.default_rng(1)
    feeds = {f"x{i}": rng.standard_normal((1, 16, w)).astype(np.float32) for i, w in enumerate((20, 13, 15))}
    check_against_interpreter(model, feeds)


def _dense_model(channels=(24, 8, 8, 8), hw=(12, 32)):
    """DenseNet's channel Concat fused with the BatchNormalization and Relu that follow it."""
    from onnx import numpy_helper

    rng = np.random.default_rng(2)
    total = sum(channels)
    inputs = [helper.make_tensor_value_info(f"x{i}", F, [1, c, *hw]) for i, c in enumerate(channels)]
    stats = [rng.random(total).astype(np.float32) + 0.5 for _ in range(4)]
    nodes = [
        helper.make_node("Concat", [f"x{i}" for i in range(len(channels))], ["c"], axis=1),
        helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["n"]),
        helper.make_node("Relu", ["n"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "dense",
        inputs,
        [helper.make_tensor_value_info("y", F, [1, total, *hw])],
        initializer=[numpy_helper.from_array(a, n) for a, n in zip(stats, "sbmv")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_channel_concat_is_cut_into_one_loop_per_source_and_matches():
    """A Concat along an outer axis: that axis moves inside the parallel loop over rows and is cut
    at the sources (4 sources: 4 channel loops, each with its own whole-row vector loop, whose
    guarded chain lowering simplifies to one source); NaN inputs still propagate through the fused
    Relu."""
    model = _dense_model()
    text = _scheduled_text(model)
    assert "range(24, 32)" in text and "range(32, 40)" in text and "range(40, 48)" in text, text
    assert text.count("T.vectorized(16)") == 4, text
    assert "T.parallel(12)" in text, text  # the rows, outside the channel parts
    rng = np.random.default_rng(3)
    feeds = {f"x{i}": rng.standard_normal((1, c, 12, 32)).astype(np.float32) for i, c in enumerate((24, 8, 8, 8))}
    feeds["x2"][0, 1, 2, 3] = np.nan
    check_against_interpreter(model, feeds)


def _one_node(op, shape, inputs=(), initializer=(), **attrs):
    node = helper.make_node(op, ["x", *inputs], ["y"], **attrs)
    graph = helper.make_graph(
        [node],
        op,
        [helper.make_tensor_value_info("x", F, shape)],
        [helper.make_tensor_value_info("y", F, None)],
        initializer=list(initializer),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_interleaving_kernels_unroll_their_phases_and_match():
    """A nearest x2 upsampling and a DepthToSpace read their innermost output index as ``x // 2``
    and ``x % 2``: the generic schedule splits it into (x, phase), unrolls the phase and leaves the
    x loop to LLVM, whose interleaved stores replace a gather per vector (DBNet's 96 x 80 x 80
    Resize: 0.85 -> 0.23 ms; its 96 x 160 x 160 DepthToSpace + Relu: 1.05 -> 0.50 ms)."""
    from onnx import numpy_helper

    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    resize = _one_node(
        "Resize",
        [1, 3, 5, 6],
        ["", "scales"],
        [scales],
        mode="nearest",
        coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
    )
    depth_to_space = _one_node("DepthToSpace", [1, 8, 5, 6], blocksize=2, mode="CRD")
    rng = np.random.default_rng(3)
    for model, shape in ((resize, (1, 3, 5, 6)), (depth_to_space, (1, 8, 5, 6))):
        text = _scheduled_text(model)
        assert "T.unroll(2)" in text and "T.vectorized" not in text, text
        x = rng.standard_normal(shape).astype(np.float32)
        x[0, 1, 2, 3] = np.nan
        check_against_interpreter(model, {"x": x})
    plain = _scheduled_text(_one_node("Relu", [1, 3, 5, 32]))
    assert "T.vectorized(16)" in plain and "T.unroll" not in plain  # no // or %: whole vectors as before


def test_upsampled_channel_concat_interleaves_and_matches():
    """A channel Concat of a nearest x2 upsampling and a plain input (YOLOv8's and DBNet's necks):
    cut at the sources, and the upsampled index split into (x, phase) as a lone Resize's is."""
    from onnx import numpy_helper

    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    nodes = [
        helper.make_node(
            "Resize",
            ["x", "", "scales"],
            ["u"],
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        ),
        helper.make_node("Concat", ["u", "z"], ["y"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "neck",
        [helper.make_tensor_value_info("x", F, [1, 3, 4, 8]), helper.make_tensor_value_info("z", F, [1, 2, 8, 16])],
        [helper.make_tensor_value_info("y", F, None)],
        initializer=[scales],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    text = _scheduled_text(model)
    assert "T.unroll(2)" in text and "_partition" in text, text
    rng = np.random.default_rng(4)
    feeds = {
        "x": rng.standard_normal((1, 3, 4, 8)).astype(np.float32),
        "z": rng.standard_normal((1, 2, 8, 16)).astype(np.float32),
    }
    feeds["x"][0, 2, 1, 7] = np.nan
    check_against_interpreter(model, feeds)


def _broadcast_mul_model(other_shape):
    """``x [1, 24, 7, 7] * other``: an SE block's per-channel gate, or a row-broadcast operand."""
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "g"], ["y"])],
        "mul",
        [
            helper.make_tensor_value_info("x", F, [1, 24, 7, 7]),
            helper.make_tensor_value_info("g", F, list(other_shape)),
        ],
        [helper.make_tensor_value_info("y", F, [1, 24, 7, 7])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_rows_narrower_than_a_vector_run_as_one_loop_where_every_operand_allows_and_match():
    """7-pixel rows times a per-channel gate: the row and column loops become one vector loop over
    the plane (``_rows_fuse_contiguously``); times an operand broadcast along the rows ([7]), whose
    index would then be ``f % 7``, they stay rows. Both equal the interpreter."""
    rng = np.random.default_rng(3)
    for other, fused in (((1, 24, 1, 1), True), ((7,), False), ((1, 24, 7, 7), True)):
        model = _broadcast_mul_model(other)
        text = _scheduled_text(model)
        assert ("T.vectorized(49)" in text) == fused, text
        feeds = {
            "x": rng.standard_normal((1, 24, 7, 7)).astype(np.float32),
            "g": rng.standard_normal(other).astype(np.float32),
        }
        check_against_interpreter(model, feeds)
