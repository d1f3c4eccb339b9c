"""The textual IR: exact print -> parse -> print round trips, constants, resources and parse errors."""

import ml_dtypes
import numpy as np
import pytest

from compiler import (
    Builder,
    DType,
    Graph,
    Node,
    OptionalType,
    ParseError,
    SequenceType,
    TensorType,
    load_ir,
    parse_ir,
    print_ir,
    save_ir,
    verify,
)
from compiler.ir.verifier import VerifyError

F32 = DType.FLOAT32


def round_trip(g: Graph, resources=None, verify: bool = True) -> Graph:
    """Assert print(parse(print(g))) == print(g); returns the parsed graph."""
    res = {} if resources is None else resources
    text = print_ir(g, resources=res)
    parsed = parse_ir(text, res, verify=verify)
    assert print_ir(parsed, resources={}) == text
    return parsed


def test_simple_graph_text_is_stable_and_readable():
    text = """graph @main(%x: f32[batch,3], %w: f32[3,2]) {
  %y = MatMul(%x, %w) : f32[batch,2]
  %z = Relu(%y) : f32[batch,2] loc("relu1")
  return %z
}
"""
    g = parse_ir(text)
    verify(g)
    assert print_ir(g) == text
    relu = g.outputs[0].producer
    assert relu.op == "Relu" and relu.name == "relu1"
    assert g.params[0].type == TensorType(F32, ("batch", 3))


def test_names_that_need_quotes_round_trip():
    g = Graph("my graph")
    b = Builder(g)
    x = b.param("input:0", TensorType(F32, ("seq len", 3)))
    y = b.op("Relu", [x], names=["a/b c"], name='relu "quoted"\n')
    z = b.op("Neg", [y], names=["é"])
    g.outputs = [y, z]
    text = print_ir(g)
    assert '%"input:0"' in text and '@"my graph"' in text and '"seq len"' in text
    parsed = round_trip(g)
    assert parsed.name == "my graph"
    assert parsed.params[0].name == "input:0"
    assert parsed.params[0].type.shape == ("seq len", 3)
    assert parsed.outputs[0].name == "a/b c"
    assert parsed.outputs[0].producer.name == 'relu "quoted"\n'


def test_unnamed_and_clashing_names_get_unique_printed_names():
    g = Graph()
    b = Builder(g)
    x = b.param("x", TensorType(F32, (2,)))
    a = b.op("Relu", [x])
    c = b.op("Neg", [a], names=["x"])  # clashes with the parameter
    d = b.op("Abs", [c], names=["0"])  # clashes with a generated name
    g.outputs = [d]
    text = print_ir(g)
    parsed = round_trip(g)
    names = [p.name for p in parsed.params] + [n.results[0].name for n in parsed.nodes]
    assert len(set(names)) == len(names) == 4
    assert "%x_1" in text


@pytest.mark.parametrize(
    "t",
    [
        TensorType(F32, ()),
        TensorType(F32, None),
        TensorType(DType.INT64, (None, "N", 0, 7)),
        TensorType(DType.BFLOAT16, ("a.b", "c-d")),
        TensorType(F32, ("inf", "nan", "true", "none")),  # symbols that read like keywords or numbers
        SequenceType(TensorType(DType.INT32, (2, None))),
        SequenceType(None),
        OptionalType(TensorType(DType.STRING, ("n",))),
        OptionalType(SequenceType(TensorType(DType.BOOL, None))),
    ],
    ids=str,
)
def test_types_round_trip(t):
    g = Graph()
    p = g.add_param(t, "p")
    g.outputs = [p]
    assert round_trip(g).params[0].type == t


INLINE_ARRAYS = {
    "bool": np.array([True, False, True]),
    "i2": np.array([-2, 0, 1], dtype=ml_dtypes.int2),
    "u2": np.array([0, 3], dtype=ml_dtypes.uint2),
    "i4": np.array([-8, 0, 7], dtype=ml_dtypes.int4),
    "u4": np.array([0, 15], dtype=ml_dtypes.uint4),
    "i8": np.array([[-128, 127]], np.int8),
    "i16": np.array([-32768, 5], np.int16),
    "i32": np.array([2**31 - 1], np.int32),
    "i64": np.array([-(2**63), 2**63 - 1], np.int64),
    "u8": np.array([255], np.uint8),
    "u16": np.array([65535], np.uint16),
    "u32": np.array([2**32 - 1], np.uint32),
    "u64": np.array([2**64 - 1], np.uint64),
    "f16": np.array([65504, -0.0, np.inf], np.float16),
    "bf16": np.array([1.5, -np.inf, np.nan], ml_dtypes.bfloat16),
    "f32": np.array([[np.nan, -0.0], [np.inf, 1e-45]], np.float32),
    "f64": np.array([0.1, -1e308, 5e-324, -np.inf]),
    "f8e4m3fn": np.array([448, -0.0, 0.015625], ml_dtypes.float8_e4m3fn),
    "f8e4m3fnuz": np.array([240, 1], ml_dtypes.float8_e4m3fnuz),
    "f8e5m2": np.array([57344, -np.inf], ml_dtypes.float8_e5m2),
    "f8e5m2fnuz": np.array([-57344], ml_dtypes.float8_e5m2fnuz),
    "f4e2m1": np.array([6, -0.5], ml_dtypes.float4_e2m1fn),
    "f8e8m0": np.array([1.0, 2.0**-127, 2.0**127, np.nan]).astype(ml_dtypes.float8_e8m0fnu),
    "c64": np.array([1 + 2j, -0.5j], np.complex64),
    "c128": np.array([np.inf + 1j], np.complex128),
    "str": np.array(["", 'quote " and \\ backslash', "naïve\n"], dtype=object),
    "scalar": np.array(3.25, np.float32),
    "empty": np.zeros((0, 3), np.float32),
}


def test_inline_cases_cover_every_dtype():
    assert {DType.from_np(a.dtype) for a in INLINE_ARRAYS.values()} == set(DType)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal including NaN positions and the sign of zero."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype == object:
        return list(a.flat) == list(b.flat)
    return a.tobytes() == b.tobytes() or (
        a.dtype.kind == "V"
        and np.array_equal(a.astype(np.float64), b.astype(np.float64), equal_nan=True)
        and np.array_equal(np.signbit(a.astype(np.float64)), np.signbit(b.astype(np.float64)))
    )


@pytest.mark.parametrize("key", list(INLINE_ARRAYS))
def test_inline_constants_of_every_dtype_round_trip_exactly(key):
    array = INLINE_ARRAYS[key]
    g = Graph()
    c = Builder(g).constant(array, name="c")
    g.outputs = [c]
    text = print_ir(g)
    assert "dense<" in text and "resource<" not in text
    parsed = round_trip(g)
    got = parsed.outputs[0].const_value
    assert got.shape == array.shape and got.dtype == array.dtype
    if array.dtype.kind == "f" or array.dtype.kind == "c":
        np.testing.assert_array_equal(got, array)  # NaN == NaN here
        assert (np.signbit(got.real) == np.signbit(array.real)).all()
    else:
        assert same_bits(got, array)
    verify(parsed)


def test_attributes_of_every_kind_round_trip():
    g = Graph()
    node = Node(
        "test.source",
        [],
        [TensorType(F32, (1,))],
        {
            "i": -3,
            "f": 1e-05,
            "nan": float("nan"),
            "neg_zero": -0.0,
            "s": 'a "b"',
            "ints": [1, -2],
            "floats": [0.5, float("inf")],
            "strings": ["x", "y z"],
            "t": np.arange(3, dtype=np.int64),
            "type": TensorType(DType.INT8, ("n", 2)),
            "empty": [],
        },
        result_names=["s"],
    )
    g.append(node)
    g.outputs = [node.result]
    parsed = round_trip(g, verify=False)  # test.source has no such attributes: only their text is tested
    attrs = parsed.outputs[0].producer.attrs
    assert attrs["i"] == -3 and attrs["f"] == 1e-05 and np.isnan(attrs["nan"])
    assert str(attrs["neg_zero"]) == "-0.0" and attrs["s"] == 'a "b"' and attrs["ints"] == [1, -2]
    assert attrs["floats"] == [0.5, float("inf")] and attrs["strings"] == ["x", "y z"]
    np.testing.assert_array_equal(attrs["t"], np.arange(3)) and attrs["t"].dtype == np.int64
    assert attrs["type"] == TensorType(DType.INT8, ("n", 2)) and attrs["empty"] == []


def test_large_constants_print_as_resources():
    g = Graph()
    b = Builder(g)
    x = b.param("x", TensorType(F32, (64,)))
    w = np.arange(64, dtype=np.float32)
    y = b.op("Add", [x, b.constant(w, name="weight")])
    g.outputs = [y]
    resources = {}
    text = print_ir(g, resources=resources)
    assert 'resource<f32[64] "weight" #' in text and "63.0" not in text
    assert resources["weight"] is w
    parsed = round_trip(g, resources)
    assert parsed.nodes.__next__().attrs["value"] is w
    with pytest.raises(ParseError, match=r'no data for resource "weight"'):
        parse_ir(text)
    with pytest.raises(ParseError, match="holds f32\\[3\\]"):
        parse_ir(text, {"weight": np.zeros(3, np.float32)})


def test_save_ir_and_load_ir_keep_large_constants_beside_the_text(tmp_path):
    g = Graph()
    b = Builder(g)
    x = b.param("x", TensorType(F32, (2, 32)))
    big = np.random.default_rng(0).standard_normal((32, 32)).astype(np.float32)
    small = np.array([1.0, 2.0], np.float32)
    y = b.op("MatMul", [x, b.constant(big, name="big")])
    z = b.op("Mul", [y, b.constant(small.reshape(2, 1), name="small")])
    g.outputs = [z]
    path = tmp_path / "model.ir"
    save_ir(g, str(path))
    assert (tmp_path / "model.ir.npz").exists()
    loaded = load_ir(str(path))
    verify(loaded)
    assert print_ir(loaded, resources={}) == print_ir(g, resources={})
    consts = [n.attrs["value"] for n in loaded.nodes if n.op == "Constant"]
    np.testing.assert_array_equal(consts[0], big)
    np.testing.assert_array_equal(consts[1], small.reshape(2, 1))


@pytest.mark.parametrize("dtype", [ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn])
def test_save_ir_keeps_low_precision_constants(tmp_path, dtype):
    # .npz stores ml_dtypes arrays as raw bytes (|V2, |V1); load_ir reads them back with the text's type
    g = Graph()
    b = Builder(g)
    data = np.random.default_rng(1).standard_normal((4, 8)).astype(dtype)
    x = b.param("x", TensorType.of(data))
    g.outputs = [x, b.op("Identity", [b.constant(data, name="w")])]
    path = tmp_path / "low.ir"
    save_ir(g, str(path))
    loaded = load_ir(str(path))
    (w,) = [n.attrs["value"] for n in loaded.nodes if n.op == "Constant"]
    assert w.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(w.view(np.uint8), data.view(np.uint8))


def test_shared_array_prints_one_resource():
    g = Graph()
    b = Builder(g)
    w = np.zeros((5, 5), np.float32)
    a, c = b.constant(w, name="w"), b.constant(w, name="w2")
    g.outputs = [a, c]
    resources = {}
    text = print_ir(g, resources=resources)
    assert list(resources) == ["w"] and text.count('"w"') == 2


NESTED = """graph @main(%cond: bool[], %x: f32[3], %n: i64[]) {
  %y = If(%cond) {else_branch = graph @else() {
    %e = Neg(%x) : f32[3]
    return %e
  }, then_branch = graph @then() {
    %t = Relu(%x) : f32[3]
    return %t
  }} : f32[3]
  %acc, %scan = Loop(%n, none, %y) {body = graph @body(%i: i64[], %c: bool[], %a: f32[3]) {
    %a2 = Add(%a, %x) : f32[3]
    %i2 = Cast(%i) {to = 1} : f32[]
    %s = Mul(%a2, %i2) : f32[3]
    return %c, %a2, %s
  }} : f32[3], f32[?,3]
  %sum, %cum = Scan(%x, %scan) {body = graph @step(%st: f32[3], %row: f32[3]) {
    %nx = Add(%st, %row) : f32[3]
    %out = Identity(%nx) : f32[3]
    return %nx, %out
  }, num_scan_inputs = 1} : f32[3], f32[?,3]
  return %acc, %sum, %cum
}
"""


def test_nested_graphs_reading_outer_values_round_trip():
    g = parse_ir(NESTED)
    verify(g)
    assert print_ir(g) == NESTED
    if_node = g.outputs[0].producer.operands[2].producer
    then_g = if_node.attrs["then_branch"]
    x = g.params[1]
    assert then_g.parent is if_node
    assert next(then_g.nodes).operands[0] is x  # the branch reads the outer %x directly
    assert any(u.user.graph is then_g for u in x.uses)


@pytest.mark.parametrize(
    "text, where, message",
    [
        ("graph @main(%x: f32[2]) {\n  %y = Relu(%z) : f32[2]\n  return %y\n}\n", "2:13", "undefined value %z"),
        ("graph @main(%x: f32[2]) {\n  %y = Relu(%x) : f99[2]\n  return %y\n}\n", "2:19", "unknown dtype 'f99'"),
        ("graph @main(%x: f32[2]) {\n  %y = Relu(%x) f32[2]\n  return %y\n}\n", "2:17", "expected ':'"),
        ("graph @main(%x: f32[2]) {\n  %x = Relu(%x) : f32[2]\n  return %x\n}\n", "2:3", "defined twice"),
        ("graph @main(%x: f32[2]) {\n  %y = Relu(%x) : f32[2]\n", "3:1", "missing 'return'"),
        ("graph @main(%x: f32[2]) {\n  %y = Relu(%x) : f32[2] ~\n  return %y\n}\n", "2:26", "unexpected character"),
        ("graph @main() {\n  %a, %b = Split(%x) : f32[1]\n  return\n}\n", "2:18", "undefined value %x"),
        ("graph @main() {\n  return\n}\n}", "4:1", "unexpected '}' after the graph"),
        (
            "graph @main() {\n  %c = Constant() {value = dense<f32[?] [1.0]>} : f32[1]\n  return %c\n}\n",
            "2:41",
            "static tensor type",
        ),
        (
            "graph @main() {\n  %c = Constant() {value = dense<f32[3] [1.0, 2.0]>} : f32[3]\n  return %c\n}\n",
            "2:28",
            "needs 3 elements, has 2",
        ),
        (
            "graph @main() {\n  %c = Constant() {value = dense<i32[1] [1.5]>} : i32[1]\n  return %c\n}\n",
            "2:42",
            "expected an integer for i32",
        ),
        (
            "graph @main() {\n  %c = Constant() {value = dense<c64[1] [(1.0, x)]>} : c64[1]\n  return %c\n}\n",
            "2:48",
            "expected a number",
        ),
        ('graph @main() {\n  %c = test.source() {s = "a\nb"} : f32[1]\n  return %c\n}\n', "2:27", "bad string literal"),
        ("graph @main(%x: f32[2.5]) {\n  return %x\n}\n", "1:21", "bad dim '2.5'"),
    ],
    ids=[
        "undefined",
        "dtype",
        "colon",
        "twice",
        "no-return",
        "character",
        "undefined-operand",
        "trailing",
        "dynamic-constant",
        "element-count",
        "int-literal",
        "complex",
        "control-char",
        "float-dim",
    ],
)
def test_parse_errors_give_file_line_and_column(text, where, message):
    with pytest.raises(ParseError) as info:
        parse_ir(text, filename="bad.ir")
    assert str(info.value).startswith(f"bad.ir:{where}: "), str(info.value)
    assert message in str(info.value)


# --------------------------------------------------------------------------- verification while parsing

VERIFY_CASES = {
    "unknown-op": (
        "graph @main(%x: f32[2]) {\n  %y = Frobnicate(%x) : f32[2]\n  return %y\n}\n",
        "2:8",
        "unknown op 'Frobnicate'",
    ),
    "quoted-unknown-op": (
        'graph @main(%x: f32[2]) {\n  %y = "my.op"(%x) : f32[2]\n  return %y\n}\n',
        "2:8",
        "unknown op 'my.op'",
    ),
    "wrong-shape": (
        "graph @main(%x: f32[2]) {\n  %r = Relu(%x) : f32[2]\n  %y = Neg(%r) : f32[3]\n  return %y\n}\n",
        "3:8",
        "node 'y' (Neg): result %y has type f32[3] but inference gives f32[2]",
    ),
    "wrong-dtype": (
        "graph @main(%x: f32[2], %z: f32[2]) {\n  %y = Add(%x, %z) : i64[2]\n  return %y\n}\n",
        "2:8",
        "node 'y' (Add): result %y has type i64[2] but inference gives f32[2]",
    ),
    "wrong-rank": (
        "graph @main(%x: f32[2,3]) {\n  %y = Transpose(%x) : f32[3]\n  return %y\n}\n",
        "2:8",
        "(Transpose): result %y has type f32[3] but inference gives f32[3,2]",
    ),
    "operand-count": (
        "graph @main(%x: f32[2]) {\n  %y = Relu(%x, %x) : f32[2]\n  return %y\n}\n",
        "2:8",
        "node 'y' (Relu): takes 1..1 operands, has 2",
    ),
    "unknown-attr": (
        "graph @main(%x: f32[2]) {\n  %y = Relu(%x) {alpha = 0.5} : f32[2]\n  return %y\n}\n",
        "2:8",
        "unknown attribute 'alpha'",
    ),
    "in-a-branch": (
        "graph @main(%c: bool[], %x: f32[4]) {\n  %r = If(%c) {then_branch = graph @then() {\n"
        "    %a = Relu(%x) : f32[5]\n    return %a\n  }, else_branch = graph @else() {\n"
        "    %b = Neg(%x) : f32[4]\n    return %b\n  }} : f32[4]\n  return %r\n}\n",
        "3:10",
        "node 'a' (Relu): result %a has type f32[5] but inference gives f32[4]",
    ),
    "named-node": (
        'graph @main(%x: f32[2]) {\n  %y = Sigmoid(%x) : f16[2] loc("act1")\n  return %y\n}\n',
        "2:8",
        "node 'act1' (Sigmoid): result %y has type f16[2]",
    ),
}


@pytest.mark.parametrize("case", sorted(VERIFY_CASES))
def test_parse_ir_verifies_and_places_each_finding(case):
    text, where, message = VERIFY_CASES[case]
    with pytest.raises(ParseError) as info:
        parse_ir(text, filename="bad.ir")
    assert str(info.value).startswith(f"bad.ir:{where}: "), str(info.value)
    assert message in str(info.value)


@pytest.mark.parametrize("case", sorted(set(VERIFY_CASES) - {"unknown-op", "quoted-unknown-op"}))
def test_verify_false_reads_invalid_ir_which_verify_then_rejects(case):
    text, _, message = VERIFY_CASES[case]
    g = parse_ir(text, verify=False)
    with pytest.raises(VerifyError) as info:
        verify(g)
    assert message in str(info.value)
    assert print_ir(parse_ir(print_ir(g), verify=False)) == print_ir(g)


def test_unknown_ops_parse_unchecked_with_verify_false():
    g = parse_ir(VERIFY_CASES["unknown-op"][0], verify=False)
    assert [n.op for n in g.nodes] == ["Frobnicate"]


def test_every_finding_gets_its_own_line():
    text = (
        "graph @main(%x: f32[2]) {\n  %a = Relu(%x) : f32[3]\n  %b = Neg(%x) : f32[2]\n"
        "  %c = Abs(%b) : i32[2]\n  return %a, %c\n}\n"
    )
    with pytest.raises(ParseError) as info:
        parse_ir(text, filename="two.ir")
    lines = str(info.value).splitlines()
    assert [line.split(": ")[0] for line in lines] == ["two.ir:2:8", "two.ir:4:8"]
    assert "node 'a' (Relu)" in lines[0] and "node 'c' (Abs)" in lines[1]


def test_load_ir_verifies_unless_told_not_to(tmp_path):
    path = tmp_path / "wrong.ir"
    path.write_text(VERIFY_CASES["wrong-shape"][0])
    with pytest.raises(ParseError, match=r"wrong\.ir:3:8: node 'y' \(Neg\)"):
        load_ir(str(path))
    assert [n.op for n in load_ir(str(path), verify=False).nodes] == ["Relu", "Neg"]


def test_ember_opt_refuses_invalid_ir_with_its_line(tmp_path, capsys):
    from compiler.cli import main

    path = tmp_path / "wrong.ir"
    path.write_text(VERIFY_CASES["wrong-dtype"][0])
    assert main(["opt", str(path), "--passes", "dce"]) == 1
    err = capsys.readouterr().err
    assert f"ember: error: {path}:2:8: node 'y' (Add): result %y has type i64[2]" in err


def test_load_ir_reports_the_path(tmp_path):
    path = tmp_path / "broken.ir"
    path.write_text("graph @main( {\n")
    with pytest.raises(ParseError, match=r"broken\.ir:1:14: "):
        load_ir(str(path))


def test_distinct_large_constants_get_distinct_resource_names(tmp_path):
    g = Graph()
    b = Builder(g)
    arrays = [np.zeros(20, np.float32), np.ones(20, np.float32), np.full(20, 2, np.float32)]
    g.outputs = [b.constant(arrays[0]), b.constant(arrays[1]), b.constant(arrays[2], name="w/0:x y")]
    text = print_ir(g)
    assert text == print_ir(g, resources={})  # the same names with or without a resources dict
    # unnamed values print as %0 and %1; their resources take those names, which survive a round trip
    assert 'resource<f32[20] "0" ' in text and 'resource<f32[20] "1" ' in text and '"w/0:x y"' in text
    path = tmp_path / "consts.ir"
    save_ir(g, str(path))
    loaded = load_ir(str(path))
    for value, array in zip(loaded.outputs, arrays):
        np.testing.assert_array_equal(value.const_value, array)


def test_embedded_resources_section_round_trips_and_reports_bad_data():
    import ml_dtypes

    from compiler import Builder, DType, Graph, TensorType
    from compiler.ir.parser import ParseError

    g = Graph("m")
    x = g.add_param(TensorType(DType.FLOAT32, (20,)), "")
    b = Builder(g)
    w = b.constant(np.linspace(-1, 1, 20, dtype=np.float32))
    w.name = ""
    half = b.constant(np.arange(20, dtype=np.float32).astype(ml_dtypes.bfloat16))
    words = b.constant(np.array([f"w{i}" for i in range(20)], dtype=object))
    g.outputs = [b.op("Add", [x, w]), half, words]
    text = print_ir(g, embed_resources=True)
    assert "\nresources {\n" in text and '"0x' in text
    parsed = parse_ir(text)
    assert print_ir(parsed, embed_resources=True) == text
    consts = [n.attrs["value"] for n in parsed.nodes if n.op == "Constant"]
    np.testing.assert_array_equal(consts[0], np.linspace(-1, 1, 20, dtype=np.float32))
    assert consts[1].dtype == ml_dtypes.bfloat16 and list(consts[2][:2]) == ["w0", "w1"]
    short = text.replace(text.split('"0x', 1)[1][:8], "", 1)  # four bytes fewer
    with pytest.raises(ParseError, match='resource "[^"]+" holds 76 bytes, the text says f32\\[20\\]'):
        parse_ir(short)
