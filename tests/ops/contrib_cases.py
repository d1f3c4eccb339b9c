"""One-node ``com.microsoft`` models on random inputs, checked against onnxruntime.

``CASES`` holds them; ``check_case`` imports one, interprets it and compares with onnxruntime (which
runs com.microsoft ops with its own C++ kernels).  ``CONTRIB_CASES`` (op -> check of all its cases)
joins ``hand_cases.HAND_CASES``; ``tests/ops/test_contrib.py`` and the decompose-contrib tests use
the same models.
"""

from __future__ import annotations

import collections

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

from compiler import Builder, DType, Graph, TensorType, interpret, verify
from frontends.onnx import import_model

MS = "com.microsoft"
RNG_SEED = 0


def q8(rng, shape, dtype=np.uint8):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, size=shape).astype(dtype)


def s7(rng, shape):
    """int8 weights in [-64, 63], as onnxruntime's quantizer writes them with ``reduce_range``: its u8 x s8
    kernels on CPUs without VNNI (AVX2) sum pairs of products in saturating 16 bits (``vpmaddubsw``),
    which full-range weights overflow (255 * -128 * 2), so onnxruntime itself is only exact on these."""
    return rng.integers(-64, 64, size=shape).astype(np.int8)


def f32(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


def scalar(value, dtype=np.float32):
    return np.array(value, dtype=dtype)


def standard_model(nodes, feeds, outputs, opset=17):
    """A model of standard ONNX ``nodes`` over the inputs ``feeds`` (name -> array)."""
    vis = [
        helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape) for n, a in feeds.items()
    ]
    graph = helper.make_graph(nodes, "g", vis, [onnx.ValueInfoProto(name=o) for o in outputs])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def model(op, inputs, attrs=None, outputs=("y",), opset=17):
    """A model of one ``com.microsoft`` node; ``inputs``: (name, array, is_initializer) or None (absent)."""
    names = ["" if i is None else i[0] for i in inputs]
    node = helper.make_node(op, names, list(outputs), domain=MS, name="n", **(attrs or {}))
    feeds, inits, vis = {}, [], []
    for item in inputs:
        if item is None:
            continue
        name, array, const = item
        if const:
            inits.append(numpy_helper.from_array(array, name))
        else:
            feeds[name] = array
            vis.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(array.dtype), array.shape))
    outs = [onnx.ValueInfoProto(name=o) for o in outputs if o]
    graph = helper.make_graph([node], "g", vis, outs, initializer=inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(MS, 1)])
    m.ir_version = 8
    return m, feeds


def simplified_norm_model(rng, axis):
    """SimplifiedLayerNormalization as onnxruntime's transformers optimizer writes it: default domain."""
    x = f32(rng, (2, 3, 4))
    scale = numpy_helper.from_array(f32(rng, (3, 4) if axis == 1 else (4,)), "g")
    node = helper.make_node("SimplifiedLayerNormalization", ["x", "g"], ["y", "inv"], axis=axis, epsilon=1e-5)
    m = standard_model([node], {"x": x}, ["y", "inv"], opset=17)
    m.graph.initializer.append(scale)
    return m, {"x": x}


def cases():
    """(id, model, feeds, quantized) for every contrib op the tests check against onnxruntime.

    ``quantized``: False (float results), True (integer results), "dynamic" (float results of
    onnxruntime's DynamicQuantizeLSTM, which also quantizes X and the hidden state to uint8 at each
    step: Ember's reference runs them in float, so the two differ by that rounding)."""
    rng = np.random.default_rng(RNG_SEED)
    out = []

    def add(case_id, op, inputs, attrs=None, outputs=("y",), quantized=False):
        m, feeds = model(op, inputs, attrs, outputs)
        out.append((case_id, m, feeds, quantized))

    for op in ("QLinearAdd", "QLinearMul"):
        for dtype in (np.uint8, np.int8):
            tag = np.dtype(dtype).name
            add(
                f"{op}-{tag}",
                op,
                [
                    ("a", q8(rng, (2, 3, 4), dtype), False),
                    ("sa", scalar(0.05), True),
                    ("za", scalar(3, dtype), True),
                    ("b", q8(rng, (4,), dtype), False),
                    ("sb", scalar(0.02), True),
                    ("zb", scalar(-2 if dtype == np.int8 else 128, dtype), True),
                    ("sc", scalar(0.1 if op == "QLinearAdd" else 0.5), True),
                    ("zc", scalar(1, dtype), True),
                ],
                quantized=True,
            )
    for op, attrs in (("QLinearSigmoid", {}), ("QLinearLeakyRelu", {"alpha": 0.2})):
        for dtype in (np.uint8, np.int8):
            add(
                f"{op}-{np.dtype(dtype).name}",
                op,
                [
                    ("x", q8(rng, (2, 3, 5), dtype), False),
                    ("sx", scalar(0.05), True),
                    ("zx", scalar(7, dtype), True),
                    ("sy", scalar(1 / 256 if op == "QLinearSigmoid" else 0.04), True),
                    ("zy", scalar(0 if op == "QLinearSigmoid" else (-3 if dtype == np.int8 else 60), dtype), True),
                ],
                attrs,
                quantized=True,
            )
    for channels_last, shape in ((0, (1, 3, 4, 5)), (1, (2, 4, 5, 3)), (0, (1, 3, 6))):
        add(
            f"QLinearGlobalAveragePool-cl{channels_last}-r{len(shape)}",
            "QLinearGlobalAveragePool",
            [
                ("x", q8(rng, shape), False),
                ("sx", scalar(0.05), True),
                ("zx", scalar(100, np.uint8), True),
                ("sy", scalar(0.03), True),
                ("zy", scalar(120, np.uint8), True),
            ],
            {"channels_last": channels_last},
            quantized=True,
        )
    add(
        "QLinearConcat",
        "QLinearConcat",
        [
            ("sy", scalar(0.1), True),
            ("zy", scalar(128, np.uint8), True),
            ("x0", q8(rng, (2, 3, 4)), False),
            ("s0", scalar(0.05), True),
            ("z0", scalar(120, np.uint8), True),
            ("x1", q8(rng, (2, 2, 4)), False),
            ("s1", scalar(0.2), True),
            ("z1", scalar(128, np.uint8), True),
        ],
        {"axis": 1},
        quantized=True,
    )
    add(
        "QuantizeLinear",
        "QuantizeLinear",
        [("x", f32(rng, (2, 3, 4)), False), ("s", scalar(0.02), True), ("z", scalar(-4, np.int8), True)],
        quantized=True,
    )
    add(
        "QuantizeLinear-per-axis",
        "QuantizeLinear",
        [
            ("x", f32(rng, (2, 3, 4)), False),
            ("s", np.array([0.01, 0.02, 0.05], np.float32), True),
            ("z", np.array([0, 10, 250], np.uint8), True),
        ],
        {"axis": 1},
        quantized=True,
    )
    add(
        "DequantizeLinear",
        "DequantizeLinear",
        [("x", q8(rng, (2, 3, 4)), False), ("s", scalar(0.02), True), ("z", scalar(100, np.uint8), True)],
    )
    add(
        "DequantizeLinear-per-axis",
        "DequantizeLinear",
        [
            ("x", q8(rng, (2, 3, 4), np.int8), False),
            ("s", np.array([0.01, 0.02, 0.05, 0.1], np.float32), True),
            ("z", np.array([0, 1, -3, 5], np.int8), True),
        ],
        {"axis": -1},
    )
    for act, params in (("", None), ("Relu", None), ("LeakyRelu", [0.3]), ("Clip", [-0.5, 0.7]), ("Sigmoid", None)):
        attrs = {"activation": act} if act else {}
        if params:
            attrs["activation_params"] = params
        attrs.update(pads=[1, 1, 1, 1], strides=[2, 1])
        add(
            f"FusedConv-{act or 'none'}",
            "FusedConv",
            [("x", f32(rng, (1, 4, 7, 6)), False), ("w", f32(rng, (6, 4, 3, 3)), True), ("b", f32(rng, (6,)), True)],
            attrs,
        )
    add(
        "FusedConv-sum-grouped",
        "FusedConv",
        [
            ("x", f32(rng, (1, 4, 5, 5)), False),
            ("w", f32(rng, (4, 2, 3, 3)), True),
            ("b", f32(rng, (4,)), True),
            ("z", f32(rng, (1, 4, 3, 3)), False),
        ],
        {"activation": "Relu", "group": 2},
    )
    for attrs, (sa, sb) in (
        ({}, ((2, 4, 5), (5, 3))),
        ({"transA": 1}, ((2, 5, 4), (5, 3))),
        ({"transB": 1, "alpha": 0.5}, ((2, 4, 5), (3, 5))),
        ({"transA": 1, "transB": 1, "alpha": 2.0}, ((3, 2, 5, 4), (2, 3, 5))),
    ):
        add(f"FusedMatMul-{attrs}", "FusedMatMul", [("a", f32(rng, sa), False), ("b", f32(rng, sb), False)], attrs)
    add("Gelu", "Gelu", [("x", f32(rng, (2, 3, 8)), False)])
    add("BiasGelu", "BiasGelu", [("x", f32(rng, (2, 3, 8)), False), ("b", f32(rng, (8,)), True)])
    add("FastGelu", "FastGelu", [("x", f32(rng, (2, 3, 8)), False)])
    add("FastGelu-bias", "FastGelu", [("x", f32(rng, (2, 3, 8)), False), ("b", f32(rng, (8,)), True)])
    add("QuickGelu", "QuickGelu", [("x", f32(rng, (2, 3, 8)), False)], {"alpha": 1.5})
    add(
        "BiasAdd",
        "BiasAdd",
        [("x", f32(rng, (2, 3, 8)), False), ("b", f32(rng, (8,)), True), ("s", f32(rng, (2, 3, 8)), False)],
    )
    norm_inputs = [("x", f32(rng, (2, 3, 8)), False), ("s", f32(rng, (2, 3, 8)), False), ("g", f32(rng, (8,)), True)]
    add(
        "SkipLayerNormalization",
        "SkipLayerNormalization",
        norm_inputs + [("be", f32(rng, (8,)), True), ("bi", f32(rng, (8,)), True)],
        {"epsilon": 1e-5},
        outputs=("y", "", "", "sum"),
    )
    add("SkipLayerNormalization-nobeta", "SkipLayerNormalization", norm_inputs)
    for op in ("SkipLayerNormalization", "SkipSimplifiedLayerNormalization"):
        add(f"{op}-stats", op, norm_inputs, outputs=("y", "mean", "inv_std_var", "sum"))
    add(
        "SkipSimplifiedLayerNormalization",
        "SkipSimplifiedLayerNormalization",
        norm_inputs + [("bi", f32(rng, (8,)), True)],
        {"epsilon": 1e-6},
        outputs=("y", "", "", "sum"),
    )
    for act, attrs in (("Relu", {}), ("LeakyRelu", {"activation_alpha": 0.2}), ("Sigmoid", {})):
        attrs = dict(attrs, alpha=0.5, beta=2.0, transB=1, **({"activation": act} if act else {}))
        add(
            f"FusedGemm-{act or 'none'}",
            "FusedGemm",
            [("a", f32(rng, (3, 4)), False), ("b", f32(rng, (5, 4)), True), ("c", f32(rng, (5,)), True)],
            attrs,
        )
    pool_q = [("sx", scalar(0.05), True), ("zx", scalar(100, np.uint8), True)]
    pool_q += [("sy", scalar(0.04), True), ("zy", scalar(110, np.uint8), True)]
    for channels_last, shape in ((0, (1, 3, 6, 5)), (1, (1, 6, 5, 3))):
        add(
            f"QLinearAveragePool-cl{channels_last}",
            "QLinearAveragePool",
            [("x", q8(rng, shape), False)] + pool_q,
            {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 0, 1, 1], "channels_last": channels_last},
            quantized=True,
        )
    for opset in (12, 13):
        add(
            f"QLinearSoftmax-opset{opset}",
            "QLinearSoftmax",
            [("x", q8(rng, (2, 3, 4)), False), ("sx", scalar(0.1), True), ("zx", scalar(120, np.uint8), True)]
            + [("sy", scalar(1 / 256), True), ("zy", scalar(0, np.uint8), True)],
            {"axis": 1, "opset": opset},
            quantized=True,
        )
    for per_column, quantized_out in ((False, True), (True, False)):
        gemm = [("a", q8(rng, (3, 4)), False), ("sa", scalar(0.05), True), ("za", scalar(120, np.uint8), True)]
        gemm += [("b", q8(rng, (4, 5), np.int8), True)]
        gemm += [("sb", np.linspace(0.01, 0.05, 5).astype(np.float32) if per_column else scalar(0.02), True)]
        gemm += [("zb", np.zeros(5, np.int8) if per_column else scalar(0, np.int8), True)]
        gemm += [("c", rng.integers(-500, 500, 5).astype(np.int32), True)]
        gemm += [("sy", scalar(0.1), True), ("zy", scalar(128, np.uint8), True)] if quantized_out else []
        add(f"QGemm-{'column' if per_column else 'tensor'}", "QGemm", gemm, {"alpha": 1.0}, quantized=quantized_out)
    add(
        "DynamicQuantizeMatMul",
        "DynamicQuantizeMatMul",
        [("a", f32(rng, (2, 3, 4)), False), ("b", s7(rng, (4, 5)), True)]
        + [("sb", scalar(0.02), True), ("zb", scalar(0, np.int8), True), ("bias", f32(rng, (5,)), True)],
    )
    add(
        "MatMulIntegerToFloat",
        "MatMulIntegerToFloat",
        [("a", q8(rng, (2, 3, 4)), False), ("b", s7(rng, (4, 5)), True), ("sa", scalar(0.05), True)]
        + [("sb", scalar(0.02), True), ("za", scalar(128, np.uint8), True), ("zb", scalar(0, np.int8), True)]
        + [("bias", f32(rng, (5,)), True)],
    )
    add(
        "QLinearReduceMean",
        "QLinearReduceMean",
        [("x", q8(rng, (2, 3, 4)), False), ("sx", scalar(0.05), True), ("zx", scalar(100, np.uint8), True)]
        + [("sy", scalar(0.04), True), ("zy", scalar(110, np.uint8), True)],
        {"axes": [1, 2], "keepdims": 0},
        quantized=True,
    )
    add(
        "QLinearWhere",
        "QLinearWhere",
        [("cond", rng.integers(0, 2, (2, 3)).astype(bool), False), ("x", q8(rng, (2, 3)), False)]
        + [("sx", scalar(0.05), True), ("zx", scalar(100, np.uint8), True), ("v", q8(rng, (3,)), False)]
        + [("sy", scalar(0.1), True), ("zy", scalar(50, np.uint8), True)]
        + [("sz", scalar(0.08), True), ("zz", scalar(128, np.uint8), True)],
        quantized=True,
    )
    for axis in (-1, 1):
        out.append((f"SimplifiedLayerNormalization-axis{axis}",) + simplified_norm_model(rng, axis) + (False,))
    heads, b, seq, hid = 2, 2, 5, 8
    lengths = np.array([5, 3], np.int32)
    raw = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int32)
    for mask, attrs in ((None, {}), (raw, {}), (lengths, {"unidirectional": 1}), (raw, {"scale": 0.5})):
        inputs = [("x", f32(rng, (b, seq, hid)), False), ("w", f32(rng, (hid, 3 * hid)) * 0.3, True)]
        inputs += [("bias", f32(rng, (3 * hid,)), True)] + ([] if mask is None else [("m", mask, False)])
        tag = "none" if mask is None else f"{mask.ndim}d"
        add(f"Attention-{tag}-{attrs}", "Attention", inputs, dict(attrs, num_heads=heads))
    for mask in (None, raw):
        inputs = [("q", f32(rng, (b, seq, hid)), False), ("k", f32(rng, (b, seq, hid)), False)]
        inputs += [("v", f32(rng, (b, seq, hid)), False), ("bias", f32(rng, (3 * hid,)), True)]
        inputs += [] if mask is None else [("m", mask, False)]
        add(
            f"MultiHeadAttention-{'none' if mask is None else 'mask'}",
            "MultiHeadAttention",
            inputs,
            {"num_heads": heads},
        )
    hidden, inp, dirs = 3, 4, 1
    add(
        "DynamicQuantizeLSTM",
        "DynamicQuantizeLSTM",
        [
            ("x", f32(rng, (5, 2, inp)), False),
            ("w", s7(rng, (dirs, inp, 4 * hidden)), True),
            ("r", s7(rng, (dirs, hidden, 4 * hidden)), True),
            ("b", f32(rng, (dirs, 8 * hidden)) * 0.1, True),
            None,
            None,
            None,
            None,
            ("ws", np.array([0.01], np.float32), True),
            ("wz", np.array([0], np.int8), True),
            ("rs", np.full((dirs, 4 * hidden), 0.02, np.float32), True),
            ("rz", np.zeros((dirs, 4 * hidden), np.int8), True),
        ],
        {"hidden_size": hidden},
        outputs=("y", "yh", "yc"),
        quantized="dynamic",
    )
    return out


CASES = cases()
# ops the importer's converters (frontends/onnx/converters/contrib.py) already write as standard ops
CONVERTED_AT_IMPORT = {
    "SimplifiedLayerNormalization",
    "Gelu",
    "BiasGelu",
    "FastGelu",
    "QuickGelu",
    "FusedMatMul",
    "SkipLayerNormalization",
}


def onnxruntime_outputs(m, feeds) -> dict:
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in m.graph.output]
    return dict(zip(names, sess.run(names, feeds)))


def expected_outputs(m, feeds) -> dict:
    """onnxruntime's outputs; for ops it implements for CUDA only, its outputs for the standard ops that
    define them: BiasAdd as Add(Add(X, bias), skip), QLinearReduceMean as q(ReduceMean(deq(X)))."""
    node = m.graph.node[0]
    if node.op_type == "QLinearReduceMean":
        x, sx, zx, sy, zy = node.input
        axes = numpy_helper.from_array(np.array(helper.get_attribute_value(node.attribute[0]), np.int64), "axes")
        keep = helper.get_attribute_value(node.attribute[1])
        nodes = [
            helper.make_node("DequantizeLinear", [x, sx, zx], ["d"]),
            helper.make_node("ReduceMean", ["d", "axes"], ["r"], keepdims=keep),
            helper.make_node("QuantizeLinear", ["r", sy, zy], ["y"]),
        ]
        graph = helper.make_graph(nodes, "g", list(m.graph.input), [onnx.ValueInfoProto(name="y")])
        graph.initializer.extend(list(m.graph.initializer) + [axes])
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
        m.ir_version = 8
    if node.op_type == "BiasAdd":
        x, bias, skip = node.input
        feeds = {**feeds, bias: numpy_helper.to_array(m.graph.initializer[0])}
        nodes = [helper.make_node("Add", [x, bias], ["t"]), helper.make_node("Add", ["t", skip], ["y"])]
        m = standard_model(nodes, feeds, ["y"])
    return onnxruntime_outputs(m, feeds)


def assert_matches(ours, theirs, quantized, name=""):
    ours = np.asarray(ours)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, name
    if quantized == "dynamic":
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-2, err_msg=name)
    elif quantized:  # onnxruntime's integer kernels may round a tie or a table entry one step differently
        assert np.abs(ours.astype(np.int32) - theirs.astype(np.int32)).max(initial=0) <= 1, name
    else:
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4, err_msg=name)


def contrib_graph(m) -> Graph:
    """The case's one-node model as an Ember graph built directly (the node as ``com.microsoft.<Op>``,
    whether or not the importer converts it)."""
    graph = Graph("g")
    b = Builder(graph)
    values = {}
    for i in m.graph.input:
        t = i.type.tensor_type
        values[i.name] = b.param(i.name, TensorType(DType.from_onnx(t.elem_type), [d.dim_value for d in t.shape.dim]))
    values.update({t.name: b.constant(numpy_helper.to_array(t), t.name) for t in m.graph.initializer})
    node = m.graph.node[0]
    attrs = {}
    for a in node.attribute:
        value = helper.get_attribute_value(a)
        attrs[a.name] = value.decode() if isinstance(value, bytes) else value
    outs = b.node(
        f"{MS}.{node.op_type}",
        [values[n] if n else None for n in node.input],
        attrs,
        num_results=len(node.output),
        names=list(node.output),
        name=node.name,
    ).results
    graph.outputs = [v for v, n in zip(outs, node.output) if n]
    verify(graph)
    return graph


def check_case(case) -> None:
    """Import the case's model (the contrib node stays one node), interpret it, compare with onnxruntime;
    the same for the node built directly (for the ops the importer converts)."""
    case_id, m, feeds, quantized = case
    graph = import_model(m)
    verify(graph)
    op = m.graph.node[0].op_type
    if op not in CONVERTED_AT_IMPORT:
        assert [n.op for n in graph.nodes if n.op != "Constant"] == [f"{MS}.{op}"], case_id
    expected = expected_outputs(m, feeds)
    for g in (graph, contrib_graph(m)):
        ours = interpret(g, feeds)
        for name, want in expected.items():
            assert_matches(ours[name], want, quantized, f"{case_id}: {name}")


def _by_op() -> dict:
    grouped = collections.defaultdict(list)
    for case in CASES:
        grouped[f"{MS}.{case[1].graph.node[0].op_type}"].append(case)
    return {op: (lambda cs=cs: [check_case(c) for c in cs] and None) for op, cs in grouped.items()}


CONTRIB_CASES = _by_op()
