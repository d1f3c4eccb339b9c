"""Native lowerings of neural-network ops (TopK, ...), compiled and compared with the interpreter.

Each model is one node with declared output shapes; every model input stays a run-time input of
the library. Results must equal the interpreter's (exactly for indices and integer data).
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from compiler.runtime import RuntimeLoadError
from frontends.onnx.backend import EmberBackend

F, I, H = TensorProto.FLOAT, TensorProto.INT64, TensorProto.FLOAT16


def model(op, inputs, outputs, opset=21, domain="", initializers=(), **attrs):
    """A one-node model: ``inputs`` / ``outputs`` are (name, elem type, shape); "" skips an operand."""
    node = helper.make_node(op, [i[0] if i else "" for i in inputs], [name for name, _, _ in outputs],
                            domain=domain, **attrs)
    graph = helper.make_graph([node], op.lower(), [helper.make_tensor_value_info(*i) for i in inputs if i],
                              [helper.make_tensor_value_info(*o) for o in outputs], initializer=list(initializers))
    opsets = [helper.make_opsetid("", opset)]
    if domain:
        opsets.append(helper.make_opsetid(domain, 1))
    return helper.make_model(graph, opset_imports=opsets)


def check(onnx_model, feeds, rtol=1e-5, atol=1e-5):
    """The compiled library's results equal the interpreter's."""
    rep, ref = EmberBackend.prepare(onnx_model, compile=True), EmberBackend.prepare(onnx_model)
    got, want = rep.run(feeds), ref.run(feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol, atol=atol)
    return rep


# TopK ------------------------------------------------------------------------------------------------

def top_k_model(shape, k, axis, largest, elem=F):
    out = list(shape)
    out[axis] = k
    return model("TopK", [("x", elem, list(shape)), ("k", I, [1])], [("v", elem, out), ("i", I, out)],
                 axis=axis, largest=largest)


@pytest.mark.parametrize("shape,k,axis,largest", [
    ((3, 11), 4, 1, 1), ((4, 5, 6), 2, 1, 0), ((2, 9), 9, -1, 1), ((6, 3), 1, 0, 0), ((5,), 5, 0, 0)])
def test_top_k_matches_interpreter_with_ties(shape, k, axis, largest):
    x = np.random.default_rng(k).integers(0, 3, shape).astype(np.float32)  # many ties: lower index first
    check(top_k_model(shape, k, axis, largest), {"x": x, "k": np.array([k], np.int64)})


@pytest.mark.parametrize("elem,dtype", [(TensorProto.INT32, np.int32), (TensorProto.UINT64, np.uint64), (H, np.float16)])
def test_top_k_other_element_types(elem, dtype):
    x = np.random.default_rng(1).integers(0, 50, (3, 8)).astype(dtype)
    check(top_k_model((3, 8), 3, 1, 1, elem), {"x": x, "k": np.array([3], np.int64)})


def test_top_k_long_axis_is_fast_and_checks_k(tmp_path):
    """A 40000-long axis (heap, not a quadratic scan) matches a stable argsort; another K is refused."""
    shape, k = (3, 40000), 7
    rep = EmberBackend.prepare(top_k_model(shape, k, 1, 1), compile=True)
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    x[:, 100:200] = x[:, :1]  # some exact ties
    values, indices = rep.run({"x": x, "k": np.array([k], np.int64)})
    want = np.argsort(-x, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(indices, want)
    np.testing.assert_array_equal(values, np.take_along_axis(x, want, 1))
    with pytest.raises(RuntimeLoadError, match="K must be 7"):
        rep.run({"x": x, "k": np.array([3], np.int64)})


def test_top_k_nan_ranks_above_numbers():
    x = np.array([[1.0, np.nan, 3.0, -1.0, np.nan]], np.float32)
    rep = EmberBackend.prepare(top_k_model((1, 5), 3, 1, 1), compile=True)
    values, indices = rep.run({"x": x, "k": np.array([3], np.int64)})
    np.testing.assert_array_equal(indices, [[1, 4, 2]])


# MaxPool indices, BatchNormalization training, LpNormalization, SpaceToDepth ---------------------------

@pytest.mark.parametrize("storage_order,attrs", [
    (0, dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    (1, dict(kernel_shape=[2, 3], strides=[1, 2], ceil_mode=1)),
    (0, dict(kernel_shape=[2, 2], dilations=[2, 1]))])
def test_max_pool_indices(storage_order, attrs):
    x = np.random.default_rng(3).integers(0, 4, (2, 3, 7, 6)).astype(np.float32)  # ties: first in scan order
    rep = EmberBackend.prepare(model("MaxPool", [("x", F, [2, 3, 7, 6])], [("y", F, None), ("i", I, None)],
                                     opset=12, storage_order=storage_order, **attrs), compile=True)
    ref = EmberBackend.prepare(model("MaxPool", [("x", F, [2, 3, 7, 6])], [("y", F, None), ("i", I, None)],
                                     opset=12, storage_order=storage_order, **attrs))
    got, want = rep.run({"x": x}), ref.run({"x": x})
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_batch_norm_training_mode_outputs():
    rng = np.random.default_rng(4)
    c = [("x", F, [2, 3, 4, 5])] + [(n, F, [3]) for n in ("s", "b", "m", "v")]
    m = model("BatchNormalization", c, [("y", F, [2, 3, 4, 5]), ("rm", F, [3]), ("rv", F, [3])],
              opset=15, training_mode=1, momentum=0.8, epsilon=1e-3)
    feeds = {"x": rng.standard_normal((2, 3, 4, 5)).astype(np.float32),
             **{n: rng.random(3).astype(np.float32) + 0.5 for n in ("s", "b", "m", "v")}}
    check(m, feeds)


def test_lp_normalization_zero_slice_gives_zeros():
    x = np.array([[[1, 2, 0], [3, 4, 0]], [[0, 5, 0], [6, 7, 0]]], np.float32)
    for p in (1, 2):
        check(model("LpNormalization", [("x", F, [2, 2, 3])], [("y", F, [2, 2, 3])], opset=22, axis=0, p=p),
              {"x": x})


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_space_to_depth_modes(mode):
    x = np.arange(2 * 4 * 6, dtype=np.float32).reshape(1, 2, 4, 6)
    m = model("SpaceToDepth", [("x", F, [1, 2, 4, 6])], [("y", F, [1, 8, 2, 3])], opset=28, blocksize=2,
              **({"mode": mode} if mode == "CRD" else {}))
    check(m, {"x": x})


# Binarizer, ArrayFeatureExtractor, TensorScatter, MaxUnpool, Col2Im, Det -----------------------------------

ML = "ai.onnx.ml"


def test_binarizer():
    x = np.random.default_rng(5).standard_normal((3, 4)).astype(np.float32)
    check(model("Binarizer", [("x", F, [3, 4])], [("y", F, [3, 4])], domain=ML, threshold=0.3), {"x": x})


def test_array_feature_extractor_checks_indices():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    m = model("ArrayFeatureExtractor", [("x", F, [3, 4]), ("y", I, [3])], [("z", F, [3, 3])], domain=ML)
    rep = check(m, {"x": x, "y": np.array([3, 0, 1], np.int64)})
    with pytest.raises(RuntimeLoadError, match="outside"):
        rep.run({"x": x, "y": np.array([4, 0, 1], np.int64)})


@pytest.mark.parametrize("mode", ["linear", "circular"])
def test_tensor_scatter(mode):
    rng = np.random.default_rng(6)
    m = model("TensorScatter", [("past", F, [2, 3, 6, 4]), ("upd", F, [2, 3, 3, 4]), ("w", I, [2])],
              [("present", F, [2, 3, 6, 4])], opset=24, mode=mode)
    feeds = {"past": rng.standard_normal((2, 3, 6, 4)).astype(np.float32),
             "upd": rng.standard_normal((2, 3, 3, 4)).astype(np.float32), "w": np.array([3, 1], np.int64)}
    if mode == "circular":
        feeds["w"] = np.array([5, 0], np.int64)
    rep = check(m, feeds)
    if mode == "linear":
        with pytest.raises(RuntimeLoadError, match="within the axis"):
            rep.run({**feeds, "w": np.array([4, 0], np.int64)})


def test_max_unpool_with_output_shape_and_bad_index():
    x = np.array([[[[5, 6], [7, 8]]]], np.float32)
    idx = np.array([[[[5, 7], [13, 15]]]], np.int64)
    m = model("MaxUnpool", [("x", F, [1, 1, 2, 2]), ("i", I, [1, 1, 2, 2]), ("s", I, [4])], [("y", F, [1, 1, 5, 5])],
              opset=11, kernel_shape=[2, 2], strides=[2, 2])
    rep = check(m, {"x": x, "i": idx, "s": np.array([1, 1, 5, 5], np.int64)})
    with pytest.raises(RuntimeLoadError, match="outside the unpooled"):
        rep.run({"x": x, "i": idx + 3, "s": np.array([1, 1, 5, 5], np.int64)})
    with pytest.raises(RuntimeLoadError, match="output_shape"):
        rep.run({"x": x, "i": idx, "s": np.array([1, 1, 6, 5], np.int64)})


@pytest.mark.parametrize("block,attrs", [([1, 5], {}), ([5, 1], {}), ([2, 2], dict(strides=[2, 1], pads=[1, 0, 1, 1])),
                                         ([2, 3], dict(dilations=[2, 1]))])
def test_col2im_run_time_block_shape(block, attrs):
    image, channels = [5, 6], 2
    nd = 2
    st, dl = attrs.get("strides", [1] * nd), attrs.get("dilations", [1] * nd)
    pd = attrs.get("pads", [0] * 2 * nd)
    counts = [(image[d] + pd[d] + pd[nd + d] - dl[d] * (block[d] - 1) - 1) // st[d] + 1 for d in range(nd)]
    cols = [1, channels * int(np.prod(block)), int(np.prod(counts))]
    m = model("Col2Im", [("c", F, cols), ("img", I, [2]), ("blk", I, [2])], [("y", F, [1, channels, *image])],
              opset=18, **attrs)
    feeds = {"c": np.random.default_rng(7).standard_normal(cols).astype(np.float32),
             "img": np.array(image, np.int64), "blk": np.array(block, np.int64)}
    rep = check(m, feeds)
    with pytest.raises(RuntimeLoadError, match="image_shape"):
        rep.run({**feeds, "img": np.array([6, 5], np.int64)})


@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 4), (1, 1)])
def test_det(shape):
    x = np.random.default_rng(8).standard_normal(shape).astype(np.float32)
    x2 = x.copy()
    if len(shape) == 3:
        x2[1, 2] = x2[1, 0]  # a singular matrix
    check(model("Det", [("x", F, list(shape))], [("y", F, list(shape[:-2]))]), {"x": x2}, rtol=1e-4, atol=1e-5)


# ConvInteger, QLinearConv ------------------------------------------------------------------------------

U8, I8 = TensorProto.UINT8, TensorProto.INT8


@pytest.mark.parametrize("attrs", [dict(pads=[1, 1, 1, 1]), dict(group=2, strides=[2, 1], dilations=[1, 2])])
def test_conv_integer(attrs):
    rng = np.random.default_rng(9)
    x = rng.integers(0, 255, (1, 4, 6, 7)).astype(np.uint8)
    w = rng.integers(0, 255, (4, 4 // attrs.get("group", 1), 3, 3)).astype(np.uint8)
    m = model("ConvInteger", [("x", U8, [1, 4, 6, 7]), ("w", U8, list(w.shape)), ("zx", U8, []), ("zw", U8, [])],
              [("y", TensorProto.INT32, None)], opset=10, **attrs)
    check(m, {"x": x, "w": w, "zx": np.array(12, np.uint8), "zw": np.array(130, np.uint8)})


def test_qlinear_conv_per_channel_with_bias():
    rng = np.random.default_rng(10)
    x = rng.integers(-128, 127, (1, 2, 5, 5)).astype(np.int8)
    w = rng.integers(-128, 127, (3, 2, 2, 2)).astype(np.int8)
    ins = [("x", I8, [1, 2, 5, 5]), ("xs", F, []), ("xz", I8, []), ("w", I8, [3, 2, 2, 2]), ("ws", F, [3]),
           ("wz", I8, []), ("ys", F, []), ("yz", I8, []), ("b", TensorProto.INT32, [3])]
    m = model("QLinearConv", ins, [("y", I8, None)], opset=10, pads=[0, 1, 0, 1])
    feeds = {"x": x, "xs": np.array(0.02, np.float32), "xz": np.array(3, np.int8), "w": w,
             "ws": np.array([0.01, 0.02, 0.005], np.float32), "wz": np.array(0, np.int8),
             "ys": np.array(0.5, np.float32), "yz": np.array(-4, np.int8), "b": np.array([100, -50, 7], np.int32)}
    check(m, feeds, rtol=0, atol=0)


# RoiAlign --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("attrs", [dict(mode="avg"), dict(mode="max", sampling_ratio=2),
                                   dict(coordinate_transformation_mode="output_half_pixel", spatial_scale=0.5)])
def test_roi_align(attrs):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3, 8, 9)).astype(np.float32)
    rois = np.array([[0, 0, 7, 7], [1.5, 2.2, 8.5, 6.1], [-2, -1, 3, 12], [4, 4, 4.2, 4.1]], np.float32)
    m = model("RoiAlign", [("x", F, [2, 3, 8, 9]), ("rois", F, [4, 4]), ("b", I, [4])], [("y", F, [4, 3, 3, 2])],
              opset=16, output_height=3, output_width=2, **attrs)
    feeds = {"x": x, "rois": rois, "b": np.array([0, 1, 1, 0], np.int64)}
    rep = check(m, feeds, rtol=1e-4, atol=1e-5)
    with pytest.raises(RuntimeLoadError, match="batch index"):
        rep.run({**feeds, "b": np.array([0, 2, 1, 0], np.int64)})


# DeformConv ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("with_mask_bias,attrs", [(False, dict(pads=[1, 1, 1, 1])),
                                                  (True, dict(group=2, offset_group=2, strides=[2, 1], dilations=[1, 2]))])
def test_deform_conv(with_mask_bias, attrs):
    rng = np.random.default_rng(12)
    group, og = attrs.get("group", 1), attrs.get("offset_group", 1)
    x = rng.standard_normal((1, 4, 6, 7)).astype(np.float32)
    w = rng.standard_normal((4, 4 // group, 2, 2)).astype(np.float32)
    st, dl, pd = attrs.get("strides", [1, 1]), attrs.get("dilations", [1, 1]), attrs.get("pads", [0] * 4)
    oh = (6 + pd[0] + pd[2] - dl[0] - 1) // st[0] + 1
    ow = (7 + pd[1] + pd[3] - dl[1] - 1) // st[1] + 1
    offset = (rng.standard_normal((1, og * 8, oh, ow)) * 1.5).astype(np.float32)
    ins = [("x", F, list(x.shape)), ("w", F, list(w.shape)), ("off", F, list(offset.shape))]
    feeds = {"x": x, "w": w, "off": offset}
    if with_mask_bias:
        ins += [("b", F, [4]), ("mask", F, [1, og * 4, oh, ow])]
        feeds.update(b=rng.standard_normal(4).astype(np.float32),
                     mask=rng.random((1, og * 4, oh, ow)).astype(np.float32))
    m = model("DeformConv", ins, [("y", F, [1, 4, oh, ow])], opset=19, **attrs)
    check(m, feeds, rtol=1e-4, atol=1e-4)


# Half-precision MatMul and Softmax round like the reference ----------------------------------------------

BF16 = TensorProto.BFLOAT16


@pytest.mark.parametrize("elem", [H, BF16])
def test_half_matmul_add_softmax_match_reference_exactly(elem):
    """fp16/bf16 MatMul accumulates in float32 and rounds once; Softmax rounds each step as numpy does
    (bf16: element-by-element bf16 sums). A fused Add after the MatMul must see the rounded product."""
    import ml_dtypes

    dtype = np.float16 if elem == H else ml_dtypes.bfloat16
    rng = np.random.default_rng(13)
    nodes = [helper.make_node("MatMul", ["a", "b"], ["p"]), helper.make_node("Add", ["p", "c"], ["q"]),
             helper.make_node("Softmax", ["q"], ["y"], axis=-1)]
    graph = helper.make_graph(nodes, "attn", [helper.make_tensor_value_info("a", elem, [2, 4, 16]),
                                              helper.make_tensor_value_info("b", elem, [2, 16, 6]),
                                              helper.make_tensor_value_info("c", elem, [4, 6])],
                              [helper.make_tensor_value_info("y", elem, [2, 4, 6])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    feeds = {"a": rng.standard_normal((2, 4, 16)).astype(dtype), "b": rng.standard_normal((2, 16, 6)).astype(dtype),
             "c": (rng.standard_normal((4, 6)) * 2).astype(dtype)}
    check(m, feeds, rtol=0, atol=0)


def test_float_reduce_max_min_of_infinite_slices():
    """ReduceMax of an all -inf slice is -inf (not the lowest finite float), as attention masks need."""
    x = np.array([[-np.inf, -np.inf, -np.inf], [1.0, -np.inf, 2.0]], np.float32)
    for op, values in (("ReduceMax", x), ("ReduceMin", -x)):
        check(_reduce_model(op), {"x": values})


def _reduce_model(op):
    node = helper.make_node(op, ["x"], ["y"], keepdims=1, axes=[1])
    graph = helper.make_graph([node], "r", [helper.make_tensor_value_info("x", F, [2, 3])],
                              [helper.make_tensor_value_info("y", F, [2, 1])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("elem", [H, BF16])
@pytest.mark.parametrize("shape,w_shape,attrs", [
    ((1, 32, 6, 6), (16, 32, 3, 3), dict(pads=[1, 1, 1, 1])),  # packed 2-D conv
    ((1, 16, 6, 6), (16, 1, 3, 3), dict(group=16)),  # depthwise
    ((2, 24, 9), (8, 24, 4), dict(strides=[2])),  # 1-D (topi)
])
def test_half_conv_accumulates_in_float32(elem, shape, w_shape, attrs):
    """fp16/bf16 Conv rounds once: within one unit in the last place of the float32 result rounded
    (a half accumulator over 288 products drifts by several, as the CausalConvWithState fp16 case showed)."""
    import ml_dtypes

    dtype = np.float16 if elem == H else ml_dtypes.bfloat16
    ulp = 2.0 ** -10 if elem == H else 2.0 ** -7
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal(shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)

    def conv_model(el):
        ins = [("x", el, list(shape)), ("w", el, list(w_shape)), ("b", el, [w_shape[0]])]
        return model("Conv", ins, [("y", el, None)], **attrs)

    got = EmberBackend.prepare(conv_model(elem), compile=True).run({"x": x, "w": w, "b": b})[0]
    wide = EmberBackend.prepare(conv_model(F)).run({"x": x.astype(np.float32), "w": w.astype(np.float32),
                                                   "b": b.astype(np.float32)})[0]
    want = wide.astype(dtype).astype(np.float64)
    assert got.dtype == dtype and got.shape == want.shape
    assert np.all(np.abs(got.astype(np.float64) - want) <= ulp * np.abs(want) + 1e-30)
