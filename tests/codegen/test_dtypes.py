"""Low-precision and sub-byte tensors (float8, float4_e2m1fn, int4/uint4/int2/uint2; codegen/tvm/dtypes.py)
through the compiled library: Cast/CastLike, QuantizeLinear/DequantizeLinear, and the C API's dtype names.

Conversions from float32 are checked bit for bit against onnx.reference (ml_dtypes underneath) on
every encoding of each type and on values at, just below and just above every rounding boundary,
with NaN, infinities and overflow, with and without ``saturate``; conversions from float64 against
the ONNX spec's tables (rounded once), which ml_dtypes versions have disagreed on.  Float to int4/int2
out of range is undefined in ONNX and not compared.  Also Mod's and Mish's float edge cases, which
share the elementwise lowering file.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from compiler.runtime import RuntimeLoadError
from frontends.onnx.backend import EmberBackend

T = TensorProto
FLOAT8 = {
    "float8_e4m3fn": T.FLOAT8E4M3FN,
    "float8_e4m3fnuz": T.FLOAT8E4M3FNUZ,
    "float8_e5m2": T.FLOAT8E5M2,
    "float8_e5m2fnuz": T.FLOAT8E5M2FNUZ,
}
SMALL_INTS = {"int4": T.INT4, "uint4": T.UINT4, "int2": T.INT2, "uint2": T.UINT2}
ALL = {**FLOAT8, "float4_e2m1fn": T.FLOAT4E2M1, "float8_e8m0fnu": T.FLOAT8E8M0, **SMALL_INTS}
WIDTH = {"float4_e2m1fn": 4, "int4": 4, "uint4": 4, "int2": 2, "uint2": 2}  # others: 8 bits


def _int_range(name) -> tuple[int, int]:
    """The values sub-byte integer type ``name`` holds."""
    bits = WIDTH[name]
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if name.startswith("int") else (0, (1 << bits) - 1)


def _np(name):
    return np.dtype(getattr(ml_dtypes, name))


def _all_encodings(name) -> np.ndarray:
    """Every bit pattern of ``name`` as an ml_dtypes array (one element per byte)."""
    return np.arange(1 << WIDTH.get(name, 8), dtype=np.uint8).view(_np(name))


def _boundaries(dtype=np.float32) -> np.ndarray:
    """Inputs around every rounding boundary of every float format, and the specials (in float64:
    also just off each midpoint, where rounding through float32 first rounds twice)."""
    values = [dtype(v) for v in (0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, -1e30, 1e-30, 1e-45, 3e38)]
    for name in (*FLOAT8, "float4_e2m1fn", "float8_e8m0fnu"):
        grid = _all_encodings(name).astype(np.float32)
        grid = np.unique(np.abs(grid[np.isfinite(grid)]))
        top = grid[-1] + (grid[-1] - grid[-2])  # where the next encoding would be: overflow boundaries
        grid = np.append(grid, [top, np.float32(min(2 * float(top), 3e38))])
        mids = ((grid[1:].astype(np.float64) + grid[:-1]) / 2).astype(dtype)
        for points in (grid.astype(dtype), mids):
            values += [points, np.nextafter(points, dtype(np.inf)), np.nextafter(points, dtype(0))]
    flat = np.concatenate([np.atleast_1d(v) for v in values]).astype(dtype)
    return np.concatenate([flat, -flat])


def _model(nodes, inputs, outputs, opset=24):
    graph = helper.make_graph(
        nodes,
        "lowp",
        [helper.make_tensor_value_info(*i) for i in inputs],
        [helper.make_tensor_value_info(*o) for o in outputs],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _same(got, want, name, x=None):
    """Bit-exact equality, NaN matching any NaN; ``x`` (the inputs) masks undefined conversions."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, name
    g, w = got.astype(np.float32), want.astype(np.float32)
    if got.dtype.itemsize == 1:
        ok = got.view(np.uint8) == want.view(np.uint8)
    else:
        ok = (g == w) & (np.signbit(g) == np.signbit(w))
    ok |= np.isnan(g) & np.isnan(w)
    if x is not None:
        x = np.asarray(x, np.float64)
        if str(got.dtype) in SMALL_INTS:  # ONNX Cast: float -> fixed point is undefined out of range
            lo, hi = _int_range(str(got.dtype))
            ok |= ~((np.trunc(x) >= lo) & (np.trunc(x) <= hi))
        if str(got.dtype) == "float4_e2m1fn":  # ml_dtypes turns NaN into a sign-dependent zero
            ok |= np.isnan(x)
    bad = np.flatnonzero(~ok)
    assert not len(bad), (
        f"{name}: {len(bad)} mismatches, e.g. input {None if x is None else x.ravel()[bad[:4]]} "
        f"got {got.ravel()[bad[:4]]} want {want.ravel()[bad[:4]]}"
    )


def _run_both(model, feeds: dict):
    rep = EmberBackend.prepare(model, compile=True)
    return rep.run(list(feeds.values())), ReferenceEvaluator(model).run(None, feeds)


def test_cast_float32_to_every_type_at_every_rounding_boundary():
    x = _boundaries()
    nodes, outputs = [], []
    for name, code in ALL.items():
        variants = [dict(saturate=s) for s in (0, 1)] if name in FLOAT8 else [{}]
        if name == "float8_e8m0fnu":
            variants = [dict(saturate=s, round_mode=m) for s in (0, 1) for m in ("up", "down", "nearest")]
        for k, attrs in enumerate(variants):
            out = f"{name}_{k}"
            nodes.append(helper.make_node("Cast", ["x"], [out], to=code, **attrs))
            outputs.append((out, code, [len(x)]))
    got, want = _run_both(_model(nodes, [("x", T.FLOAT, [len(x)])], outputs), {"x": x})
    for (out, _, _), g, w in zip(outputs, got, want):
        _same(g, w, out, x)


def _spec_cast(x: np.ndarray, name: str, saturate: bool) -> np.ndarray:
    """ONNX Cast of float64 ``x`` to float format ``name``, straight from the spec's tables: round
    ``x`` itself to nearest, ties to the even encoding (once: not through float32), then the
    overflow, NaN and zero rules.  float4_e2m1fn always saturates.  Built from exactly representable
    values only, so no ml_dtypes rounding is involved."""
    enc = _all_encodings(name)
    grid = enc.astype(np.float64)
    finite = np.flatnonzero(np.isfinite(grid) & ~np.signbit(grid))  # positive encodings, ascending
    values = grid[finite]
    top = values[-1] + (values[-1] - values[-2])  # where the next encoding would be
    values = np.append(values, top)
    mag = np.abs(x)
    k = np.clip(np.searchsorted(values, mag), 1, len(values) - 1)
    lo, hi = values[k - 1], values[k]
    up = (mag - lo > hi - mag) | ((mag - lo == hi - mag) & (k % 2 == 0))  # index parity = mantissa parity
    rounded = np.where(up, hi, lo)
    overflow = (rounded > values[-2]) | np.isinf(mag)
    fnuz, ieee = name.endswith("fnuz"), name == "float8_e5m2"
    if saturate or name == "float4_e2m1fn":
        rounded = np.where(overflow, values[-2], rounded)
    else:
        rounded = np.where(overflow, np.inf if ieee else np.nan, rounded)
    out = np.where(np.signbit(x), -rounded, rounded)
    if fnuz:
        out = np.where(out == 0, 0.0, out)  # no negative zero
    out = np.where(np.isnan(x), 0.0 if name == "float4_e2m1fn" else np.nan, out)
    return out.astype(_np(name))


def test_spec_cast_oracle_rounds_once_and_ties_to_even():
    """The oracle of the float64 test on hand-worked cases (float8_e4m3fn: subnormal step 2^-9,
    step 1/8 in [1, 2), largest finite 448)."""
    m, a = 2.0**-10, 1.0 + 2.0**-4
    x = np.array([m, np.nextafter(m, 1), 3 * m, a, np.nextafter(a, 2), 464.0, np.nextafter(464.0, 1e3), -0.0])
    got = _spec_cast(x, "float8_e4m3fn", saturate=False).astype(np.float64)
    want = [0.0, 2.0**-9, 2.0**-8, 1.0, 1.125, 448.0, np.nan, -0.0]
    np.testing.assert_array_equal(got, want)
    assert np.signbit(got[-1])
    assert _spec_cast(np.array([1e9]), "float8_e5m2", saturate=False).astype(np.float64)[0] == np.inf
    assert _spec_cast(np.array([1e9]), "float8_e5m2", saturate=True).astype(np.float64)[0] == 57344.0


def test_cast_float64_rounds_once_as_the_spec_says():
    """ONNX Cast rounds a float64 ``x`` to the target's mantissa width once: just off a midpoint,
    rounding through float32 first would round twice (older ml_dtypes did, and onnxruntime still
    does), so the expectation comes from the spec's tables, not from one library."""
    x = _boundaries(np.float64)
    names = [*FLOAT8, "float4_e2m1fn"]
    nodes = [helper.make_node("Cast", ["x"], [n], to=ALL[n], saturate=0) for n in names]
    model = _model(nodes, [("x", T.DOUBLE, [len(x)])], [(n, ALL[n], [len(x)]) for n in names])
    got = EmberBackend.prepare(model, compile=True).run([x])
    for n, g in zip(names, got):
        _same(g, _spec_cast(x, n, saturate=False), n, x)


def test_cast_every_encoding_to_float_int_and_other_low_precision_types():
    names = list(ALL)
    inputs = [(f"in_{n}", ALL[n], [len(_all_encodings(n))]) for n in names]
    nodes, outputs = [], []
    for n in names:
        targets = [T.FLOAT] + ([T.FLOAT16] if n in FLOAT8 else []) + ([T.INT8] if n == "int4" else [])
        for to in targets:
            out = f"{n}_to_{to}"
            nodes.append(helper.make_node("Cast", [f"in_{n}"], [out], to=to))
            outputs.append((out, to, [len(_all_encodings(n))]))
    # low precision to low precision, both ways through float32
    for src, dst, sat in (
        ("float8_e5m2", "float8_e4m3fn", 0),
        ("float8_e4m3fnuz", "float8_e5m2fnuz", 1),
        ("int4", "float8_e4m3fn", 1),
        ("float8_e4m3fn", "float4_e2m1fn", 1),
    ):
        out = f"{src}_to_{dst}"
        nodes.append(helper.make_node("Cast", [f"in_{src}"], [out], to=ALL[dst], saturate=sat))
        outputs.append((out, ALL[dst], [len(_all_encodings(src))]))
    feeds = {f"in_{n}": _all_encodings(n) for n in names}
    got, want = _run_both(_model(nodes, inputs, outputs), feeds)
    for (out, _, _), g, w in zip(outputs, got, want):
        src = out.split("_to_")[0]
        _same(g, w, out, _all_encodings(src).astype(np.float32) if src in ALL else None)


def test_castlike_takes_the_type_of_its_second_operand():
    x = _boundaries()
    like = np.zeros(1, _np("float8_e5m2"))
    model = _model(
        [helper.make_node("CastLike", ["x", "like"], ["y"], saturate=0)],
        [("x", T.FLOAT, [len(x)]), ("like", T.FLOAT8E5M2, [1])],
        [("y", T.FLOAT8E5M2, [len(x)])],
    )
    got, want = _run_both(model, {"x": x, "like": like})
    _same(got[0], want[0], "castlike", x)


@pytest.mark.parametrize("per", ["axis", "block"])
def test_quantize_and_dequantize_low_precision_types(per):
    """Per-axis and blocked scales, zero points, saturate on and off; round trip through Dequantize."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2, 4, 6)) * 40).astype(np.float32)
    x[0, 0, :3] = [1e6, -1e6, 0.0]
    scale_shape = [4] if per == "axis" else [2, 4, 3]
    attrs = dict(axis=1) if per == "axis" else dict(axis=2, block_size=2)
    inits, nodes, outputs = [], [], []
    cases = [("float8_e4m3fn", 1), ("float8_e5m2fnuz", 0), ("float4_e2m1fn", 1), ("int4", 1), ("uint2", 1)]
    for k, (name, sat) in enumerate(cases):
        zp = np.zeros(scale_shape, _np(name))
        if name in SMALL_INTS:
            zp = rng.integers(0 if name.startswith("u") else -1, 2, scale_shape).astype(_np(name))
        inits.append(numpy_helper.from_array(zp, f"zp{k}"))
        q, d = f"q{k}_{name}", f"d{k}_{name}"
        nodes.append(helper.make_node("QuantizeLinear", ["x", "scale", f"zp{k}"], [q], saturate=sat, **attrs))
        nodes.append(helper.make_node("DequantizeLinear", [q, "scale", f"zp{k}"], [d], **attrs))
        outputs += [(q, ALL[name], list(x.shape)), (d, T.FLOAT, list(x.shape))]
    model = _model(nodes, [("x", T.FLOAT, list(x.shape)), ("scale", T.FLOAT, scale_shape)], outputs)
    model.graph.initializer.extend(inits)
    scale = rng.uniform(0.05, 3, scale_shape).astype(np.float32)
    got, want = _run_both(model, {"x": x, "scale": scale})
    for (out, _, _), g, w in zip(outputs, got, want):
        _same(g, w, out)


def test_library_describes_and_checks_low_precision_tensors():
    model = _model([helper.make_node("Cast", ["x"], ["y"], to=T.FLOAT)], [("x", T.INT4, [16])], [("y", T.FLOAT, [16])])
    rep = EmberBackend.prepare(model, compile=True)
    x = _all_encodings("int4")
    np.testing.assert_array_equal(rep.run([x])[0], np.arange(16) - 16 * (np.arange(16) >= 8))
    with pytest.raises(RuntimeLoadError, match="int4"):  # raw bytes are not int4 tensors
        rep.run([x.view(np.uint8)])


def test_mod_mish_and_softplus_float_edge_cases():
    x = np.array(
        [
            0.0,
            -0.0,
            0.0,
            -0.0,
            -3.0,
            3.0,
            -1.0,
            1.0,
            np.inf,
            -np.inf,
            1.0,
            1.0,
            np.nan,
            1.0,
            -4.3,
            7.2,
            1e30,
            -30.0,
            25.0,
            -100.0,
            5.5,
            -10.0,
            1e-3,
            3.0,
        ],
        np.float32,
    )
    y = np.array(
        [
            -2.0,
            2.0,
            2.0,
            -2.0,
            np.inf,
            np.inf,
            -np.inf,
            -np.inf,
            2.0,
            2.0,
            0.0,
            -0.0,
            2.0,
            np.nan,
            2.1,
            -3.4,
            3.3,
            7.0,
            0.3,
            0.7,
            -1.5,
            -20.0,
            100.0,
            -90.0,
        ],
        np.float32,
    )
    n = len(x)
    model = _model(
        [
            helper.make_node("Mod", ["x", "y"], ["m0"], fmod=0),
            helper.make_node("Mod", ["x", "y"], ["m1"], fmod=1),
            helper.make_node("Mish", ["x"], ["mish"]),
            helper.make_node("Softplus", ["y"], ["softplus"]),
        ],
        [("x", T.FLOAT, [n]), ("y", T.FLOAT, [n])],
        [("m0", T.FLOAT, [n]), ("m1", T.FLOAT, [n]), ("mish", T.FLOAT, [n]), ("softplus", T.FLOAT, [n])],
        opset=22,
    )
    got = EmberBackend.prepare(model, compile=True).run([x, y])
    with np.errstate(all="ignore"):
        _same(got[0], np.mod(x, y), "mod fmod=0")
        _same(got[1], np.fmod(x, y), "mod fmod=1")
        wide = x.astype(np.float64)
        mish = wide * np.tanh(np.log1p(np.exp(wide)))
    np.testing.assert_allclose(got[2], mish.astype(np.float32), rtol=3e-7, atol=1e-40)
    softplus = np.logaddexp(0, y.astype(np.float64)).astype(np.float32)  # no overflow, no lost digits
    np.testing.assert_allclose(got[3], softplus, rtol=5e-7, atol=0)


def test_mx_blocks_float4_values_with_e8m0_scales():
    """Microscaling: float4_e2m1fn blocks of 4 with float8_e8m0fnu scales, both ways (the 2^-127 scale
    gives float32 subnormals, which must not be flushed to zero)."""
    nodes = [
        helper.make_node("DequantizeLinear", ["q", "s"], ["y"], axis=1, block_size=4, output_dtype=T.FLOAT),
        helper.make_node("QuantizeLinear", ["x", "s"], ["q2"], axis=1, block_size=4, output_dtype=T.FLOAT4E2M1),
    ]
    model = _model(
        nodes,
        [("q", T.FLOAT4E2M1, [2, 8]), ("s", T.FLOAT8E8M0, [2, 2]), ("x", T.FLOAT, [2, 8])],
        [("y", T.FLOAT, [2, 8]), ("q2", T.FLOAT4E2M1, [2, 8])],
        opset=25,
    )
    rng = np.random.default_rng(0)
    feeds = {
        "q": np.arange(16, dtype=np.uint8).reshape(2, 8).view(_np("float4_e2m1fn")),
        "s": np.array([[120, 127], [130, 0]], np.uint8).view(_np("float8_e8m0fnu")),
        "x": (rng.standard_normal((2, 8)) * 3).astype(np.float32),
    }
    got, want = _run_both(model, feeds)
    _same(got[0], want[0], "dequantize")
    _same(got[1], want[1], "quantize")


def test_data_movement_keeps_bits_and_constant_operands_are_storage_bytes():
    """Transpose moves float8 bytes untouched; Pad's constant float8 value reaches the kernel as its
    bits (not the number 1.5 converted to a byte)."""
    pad = numpy_helper.from_array(np.array([0, 1, 0, 1]), "p")
    value = numpy_helper.from_array(np.array(1.5, _np("float8_e4m3fn")), "v")
    model = _model(
        [helper.make_node("Pad", ["x", "p", "v"], ["padded"]), helper.make_node("Transpose", ["x"], ["moved"])],
        [("x", T.FLOAT8E4M3FN, [2, 3])],
        [("padded", T.FLOAT8E4M3FN, [2, 5]), ("moved", T.FLOAT8E4M3FN, [3, 2])],
        opset=23,
    )
    model.graph.initializer.extend([pad, value])
    x = np.array([[0, 1, -2], [448, np.nan, -0.0]], np.float32).astype(_np("float8_e4m3fn"))
    got, want = _run_both(model, {"x": x})
    _same(got[0], want[0], "pad")
    _same(got[1], want[1], "transpose")


def test_float_to_small_int_out_of_range_gives_zero_like_the_interpreter():
    """ONNX leaves float -> int4/int2 out of range undefined; Ember gives 0 there (NaN and infinities
    too), compiled and interpreted alike, as onnx.reference with ml_dtypes 0.7 does. In range, the
    value is truncated toward zero; integer sources wrap."""
    from compiler import interpret
    from frontends.onnx import import_model

    x = np.array(
        [-9.0, -8.9, -8.0, -0.5, 0.5, 7.9, 8.0, 15.5, 16.0, np.nan, np.inf, -np.inf, 1.5, -1.9, 3.5], np.float32
    )
    want = {
        "int4": [0, -8, -8, 0, 0, 7, 0, 0, 0, 0, 0, 0, 1, -1, 3],
        "uint4": [0, 0, 0, 0, 0, 7, 8, 15, 0, 0, 0, 0, 1, 0, 3],
        "int2": [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, -1, 0],
        "uint2": [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 3],
    }
    nodes = [helper.make_node("Cast", ["x"], [name], to=code) for name, code in SMALL_INTS.items()]
    outputs = [(name, code, [len(x)]) for name, code in SMALL_INTS.items()]
    model = _model(nodes, [("x", T.FLOAT, [len(x)])], outputs)
    compiled = EmberBackend.prepare(model, compile=True).run([x])
    interpreted = interpret(import_model(model), {"x": x})
    for (name, _, _), got in zip(outputs, compiled):
        np.testing.assert_array_equal(got.astype(np.int32), want[name], err_msg=name)
        np.testing.assert_array_equal(interpreted[name].astype(np.int32), want[name], err_msg=name)
