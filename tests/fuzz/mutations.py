"""Mutation fuzzing of Ember's frontends: seed models, mutators, and one case runner.

Shared by the CI tests (``tests/fuzz/test_fuzz_*.py``, a few hundred hypothesis cases) and the
long run (``benchmarks/fuzz.py``).  A case is a seed model (small ONNX graphs built here, small
Caffe nets written with ``frontends.caffe.writer``) changed by 1-3 mutations drawn from a
``random.Random``:

- ONNX bytes: bit flips, truncation, inserted, duplicated and zeroed chunks;
- ONNX fields (on the parsed protobuf): tensor and value dims, attribute values and kinds,
  element types, node inputs/outputs/op types/domains, opsets and IR version, sparse indices,
  external data locations, graph outputs, truncated raw data;
- prototxt text: numbers replaced by interesting values, lines dropped or duplicated, layer types
  swapped, characters replaced, truncation.

``run_case`` imports the mutated file (verifies the graph; ``interpret=True`` also runs the
interpreter on small random inputs) and classifies the outcome:

- ``accepted``: imported (and ran);
- ``refused``: an EmberError naming the file, and the op wherever it names a node;
- ``unnamed``: an EmberError without the file, or naming a node but not its op;
- ``traceback``: any other exception (a raw traceback would reach the user);
- ``hang``: past the time limit.
"""

from __future__ import annotations

import math
import os
import random
import signal
import traceback
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from compiler.diagnostics import EmberError

F32, I64 = TensorProto.FLOAT, TensorProto.INT64
INTERESTING_INTS = [-(1 << 63), -(1 << 31), -2, -1, 0, 1, 2, 3, 7, 64, 1 << 31, 1 << 40, 1 << 62]
INTERESTING_FLOATS = [math.nan, math.inf, -math.inf, -1.0, 0.0, 1e-30, 1e30]
INTERESTING_STRINGS = ["", "sideways", "NOTSET", "SAME_UPPER", "LEFT", "forward", "reverse", "nearest", "x" * 40]
OP_TYPES = ["Relu", "Add", "Conv", "Gather", "Reshape", "If", "GRU", "Tile", "Resize", "Expand", "Concat", "Loop"]
OUTCOMES = ("accepted", "refused", "unnamed", "traceback", "hang")


# ---------------------------------------------------------------- seed models


def _vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def _const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def _model(name, nodes, inputs, outputs, initializers=(), sparse=(), opset=17):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=list(initializers))
    graph.sparse_initializer.extend(sparse)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _convnet(f):
    return _model(
        "convnet",
        [
            helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
            helper.make_node("Relu", ["c"], ["r"], name="relu"),
            helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
            helper.make_node("Flatten", ["p"], ["fl"], name="flat"),
            helper.make_node("Gemm", ["fl", "g"], ["z"], name="gemm"),
            helper.make_node("Softmax", ["z"], ["y"], name="softmax"),
        ],
        [_vi("x", F32, [1, 2, 6, 6])],
        [_vi("y", F32, [1, 4])],
        [_const("w", f(3, 2, 3, 3)), _const("b", f(3)), _const("g", f(27, 4))],
    )


def _indexing(f):
    return _model(
        "indexing",
        [
            helper.make_node("Gather", ["x", "idx"], ["g"], name="gather", axis=0),
            helper.make_node("Reshape", ["g", "shape"], ["rs"], name="reshape"),
            helper.make_node("Transpose", ["rs"], ["t"], name="transpose", perm=[1, 0]),
            helper.make_node("Concat", ["t", "extra"], ["cat"], name="concat", axis=0),
            helper.make_node("ReduceSum", ["cat", "axes"], ["s"], name="sum", keepdims=1),
            helper.make_node("Expand", ["s", "eshape"], ["y"], name="expand"),
        ],
        [_vi("x", F32, [2, 3])],
        [_vi("y", F32, [2, 3])],
        [
            _const("idx", np.array([1, 0], np.int64)),
            _const("shape", np.array([3, 2], np.int64)),
            _const("extra", f(1, 3)),
            _const("axes", np.array([0], np.int64)),
            _const("eshape", np.array([2, 1], np.int64)),
        ],
    )


def _control(f):
    then = helper.make_graph(
        [helper.make_node("Add", ["x", "one"], ["a"], name="t_add")], "then", [], [_vi("a", F32, [2])]
    )
    other = helper.make_graph(
        [helper.make_node("Mul", ["x", "x"], ["b"], name="e_mul")], "else", [], [_vi("b", F32, [2])]
    )
    body = helper.make_graph(
        [
            helper.make_node("Add", ["acc", "one"], ["acc_out"], name="body_add"),
            helper.make_node("Identity", ["cond_in"], ["cond_out"], name="body_cond"),
        ],
        "body",
        [_vi("i", I64, []), _vi("cond_in", TensorProto.BOOL, []), _vi("acc", F32, [2])],
        [_vi("cond_out", TensorProto.BOOL, []), _vi("acc_out", F32, [2])],
    )
    return _model(
        "control",
        [
            helper.make_node("If", ["cond"], ["branch"], name="if", then_branch=then, else_branch=other),
            helper.make_node("Loop", ["trips", "", "branch"], ["y"], name="loop", body=body),
        ],
        [_vi("cond", TensorProto.BOOL, []), _vi("x", F32, [2])],
        [_vi("y", F32, [2])],
        [_const("one", np.ones(2, np.float32)), _const("trips", np.array(3, np.int64))],
    )


def _recurrent(f):
    return _model(
        "recurrent",
        [helper.make_node("GRU", ["x", "W", "R", "B"], ["", "y"], name="gru", hidden_size=2, direction="forward")],
        [_vi("x", F32, [2, 1, 3])],
        [_vi("y", F32, [1, 1, 2])],
        [_const("W", f(1, 6, 3)), _const("R", f(1, 6, 2)), _const("B", f(1, 12))],
    )


def _constants(f):
    sparse = helper.make_sparse_tensor(_const("sp", f(2)), _const("sp_idx", np.array([0, 3], np.int64)), [4])
    return _model(
        "constants",
        [
            helper.make_node("Constant", [], ["k"], name="const", value=_const("kv", f(4))),
            helper.make_node("Add", ["x", "k"], ["a"], name="add"),
            helper.make_node("Add", ["a", "sp"], ["b"], name="add_sparse"),
            helper.make_node("Tile", ["b", "reps"], ["t"], name="tile"),
            helper.make_node("Unsqueeze", ["t", "uaxes"], ["u"], name="unsqueeze"),
            helper.make_node("Resize", ["u", "", "scales"], ["y"], name="resize", mode="nearest"),
        ],
        [_vi("x", F32, [4])],
        [_vi("y", F32, [2, 8])],
        [
            _const("reps", np.array([2], np.int64)),
            _const("uaxes", np.array([0], np.int64)),
            _const("scales", np.array([2.0, 1.0], np.float32)),
        ],
        sparse=[sparse],
    )


def onnx_seeds() -> dict[str, bytes]:
    """Small valid models over the importer's paths: conv net, indexing, control flow, RNN, constants."""
    r = np.random.default_rng(0)

    def f(*shape):
        return r.standard_normal(shape).astype(np.float32)

    models = [make(f) for make in (_convnet, _indexing, _control, _recurrent, _constants)]
    return {m.graph.name: m.SerializeToString() for m in models}


def prototxt_seeds() -> dict[str, str]:
    """Small Caffe nets as prototxt text (no trained blobs needed)."""
    from google.protobuf import text_format

    from frontends.caffe.writer import NetSpec

    pools = NetSpec("pools", inputs={"data": (1, 2, 9, 9)})
    pools.layer("pool1", "Pooling", ["data"], ["p1"], pooling_param={"pool": "MAX", "kernel_size": 3, "stride": 2})
    pools.layer(
        "pool2", "Pooling", ["p1"], ["p2"], pooling_param={"pool": "AVE", "kernel_size": 2, "stride": 1, "pad": 1}
    )
    pools.layer("relu", "ReLU", ["p2"], ["p2"])
    pools.layer("flat", "Flatten", ["p2"], ["f"])
    pools.layer("soft", "Softmax", ["f"], ["prob"])
    shapes = NetSpec("shapes", inputs={"data": (2, 3, 4, 4), "other": (2, 3, 4, 4)})
    shapes.layer("sum", "Eltwise", ["data", "other"], ["s"], eltwise_param={"operation": "SUM"})
    shapes.layer("cat", "Concat", ["s", "data"], ["c"], concat_param={"axis": 1})
    shapes.layer("perm", "Permute", ["c"], ["pm"], permute_param={"order": [0, 2, 3, 1]})
    shapes.layer("resh", "Reshape", ["pm"], ["r"], reshape_param={"shape": {"dim": [0, -1]}})
    shapes.layer("slice", "Slice", ["r"], ["a", "b"], slice_param={"axis": 1, "slice_point": [10]})
    shapes.layer("pw", "Power", ["a"], ["y"], power_param={"power": 2.0, "scale": 0.5, "shift": 1.0})
    return {net.name: text_format.MessageToString(net.to_proto(with_blobs=False)) for net in (pools, shapes)}


# ---------------------------------------------------------------- ONNX mutators


def mutate_bytes(data: bytes, rnd: random.Random) -> bytes:
    """A byte-level mutation of a serialized model."""
    buf = bytearray(data)
    kind = rnd.choice(["flip", "flip", "truncate", "insert", "duplicate", "zero"])
    if kind == "flip" or not buf:
        for _ in range(rnd.randint(1, 8)):
            if buf:
                buf[rnd.randrange(len(buf))] ^= 1 << rnd.randrange(8)
    elif kind == "truncate":
        del buf[rnd.randrange(len(buf)) :]
    elif kind == "insert":
        at = rnd.randrange(len(buf) + 1)
        buf[at:at] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 16)))
    elif kind == "duplicate":
        start = rnd.randrange(len(buf))
        chunk = buf[start : start + rnd.randint(1, 64)]
        at = rnd.randrange(len(buf) + 1)
        buf[at:at] = chunk
    else:
        start = rnd.randrange(len(buf))
        end = min(len(buf), start + rnd.randint(1, 8))
        buf[start:end] = bytes(end - start)
    return bytes(buf)


def _graphs(graph):
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _graphs(g)


def _all(model, what):
    out = []
    for g in _graphs(model.graph):
        if what == "node":
            out += list(g.node)
        elif what == "tensor":
            out += list(g.initializer)
            out += [a.t for n in g.node for a in n.attribute if a.type == onnx.AttributeProto.TENSOR]
            out += [s.values for s in g.sparse_initializer] + [s.indices for s in g.sparse_initializer]
        elif what == "value":
            out += list(g.input) + list(g.output) + list(g.value_info)
        elif what == "sparse":
            out += list(g.sparse_initializer)
    return out


def _int(rnd):
    return rnd.choice(INTERESTING_INTS) if rnd.random() < 0.7 else rnd.randint(-4, 16)


def _mutate_dims(model, rnd):
    if rnd.random() < 0.5:
        tensors = _all(model, "tensor")
        if tensors:
            t = rnd.choice(tensors)
            if t.dims and rnd.random() < 0.8:
                t.dims[rnd.randrange(len(t.dims))] = _int(rnd)
            else:
                t.dims.append(_int(rnd))
            return
    values = [v for v in _all(model, "value") if v.type.HasField("tensor_type")]
    if values:
        dims = rnd.choice(values).type.tensor_type.shape.dim
        if dims:
            d = dims[rnd.randrange(len(dims))]
            if rnd.random() < 0.5:
                d.dim_value = _int(rnd)
            else:
                d.dim_param = rnd.choice(["?", "", "N", "batch"])


def _mutate_attribute(model, rnd):
    nodes = [n for n in _all(model, "node") if n.attribute]
    if not nodes:
        return
    attr = rnd.choice(rnd.choice(nodes).attribute)
    A = onnx.AttributeProto
    if rnd.random() < 0.1:
        attr.type = rnd.choice([A.INT, A.FLOAT, A.STRING, A.INTS, A.TENSOR, A.GRAPH, 0])
    elif attr.type == A.INT:
        attr.i = _int(rnd)
    elif attr.type == A.INTS:
        if attr.ints and rnd.random() < 0.7:
            attr.ints[rnd.randrange(len(attr.ints))] = _int(rnd)
        else:
            attr.ints.append(_int(rnd))
    elif attr.type == A.FLOAT:
        attr.f = rnd.choice(INTERESTING_FLOATS)
    elif attr.type == A.STRING:
        attr.s = rnd.choice(INTERESTING_STRINGS).encode()
    elif attr.type == A.TENSOR:
        attr.t.data_type = rnd.randrange(0, 30)
    elif attr.type == A.GRAPH and attr.g.output:
        if rnd.random() < 0.5:
            del attr.g.output[-1]
        else:
            attr.g.output.append(attr.g.output[0])
    else:
        attr.name = rnd.choice(["axis", "perm", "mode", "bogus"])


def _mutate_types(model, rnd):
    elem = rnd.choice([0, 1, 2, 6, 7, 8, 9, 10, 11, 16, 17, 23, 25, 26, 29, 31, 99])
    if rnd.random() < 0.5:
        tensors = _all(model, "tensor")
        if tensors:
            rnd.choice(tensors).data_type = elem
            return
    values = [v for v in _all(model, "value") if v.type.HasField("tensor_type")]
    if values:
        rnd.choice(values).type.tensor_type.elem_type = elem


def _mutate_node_io(model, rnd):
    nodes = _all(model, "node")
    if not nodes:
        return
    node = rnd.choice(nodes)
    names = [n for other in nodes for n in list(other.input) + list(other.output)] or ["x"]
    kind = rnd.choice(["add_input", "drop_input", "rename_input", "add_output", "drop_output", "op_type", "domain"])
    if kind == "add_input":
        node.input.append(rnd.choice(names + ["", "nope"]))
    elif kind == "drop_input" and node.input:
        del node.input[-1]
    elif kind == "rename_input" and node.input:
        node.input[rnd.randrange(len(node.input))] = rnd.choice(names + ["", "nope"])
    elif kind == "add_output":
        node.output.append(rnd.choice(names + ["fresh"]))
    elif kind == "drop_output" and node.output:
        del node.output[-1]
    elif kind == "op_type":
        node.op_type = rnd.choice(OP_TYPES)
    elif kind == "domain":
        node.domain = rnd.choice(["com.microsoft", "ai.onnx.ml", "bogus", "ai.onnx"])


def _mutate_versions(model, rnd):
    if rnd.random() < 0.5:
        model.ir_version = rnd.choice([0, 1, 2, 3, 4, 7, 10, 11, 99, -1])
    elif model.opset_import:
        model.opset_import[0].version = rnd.choice([0, 1, 5, 6, 7, 11, 13, 20, 99, -3])


def _mutate_sparse(model, rnd):
    sparse = _all(model, "sparse")
    if not sparse:
        return _mutate_dims(model, rnd)
    sp = rnd.choice(sparse)
    kind = rnd.choice(["index", "dims", "values"])
    if kind == "index":
        idx = numpy_helper.to_array(sp.indices).copy()
        if idx.size:
            idx.flat[rnd.randrange(idx.size)] = max(min(_int(rnd), (1 << 63) - 1), -(1 << 63))
        sp.indices.CopyFrom(numpy_helper.from_array(idx, sp.indices.name))
    elif kind == "dims" and sp.dims:
        sp.dims[rnd.randrange(len(sp.dims))] = _int(rnd)
    elif sp.values.dims:
        sp.values.dims[0] = _int(rnd)


def _mutate_external(model, rnd):
    tensors = _all(model, "tensor")
    if not tensors:
        return
    t = rnd.choice(tensors)
    t.data_location = TensorProto.EXTERNAL
    t.ClearField("raw_data")
    del t.external_data[:]
    entry = t.external_data.add()
    entry.key = "location"
    entry.value = rnd.choice(["../../etc/passwd", "/etc/passwd", "missing.bin", "", "a/../../b", "fuzz.onnx"])
    if rnd.random() < 0.3:
        entry = t.external_data.add()
        entry.key, entry.value = rnd.choice(["offset", "length"]), rnd.choice(["-1", "x", "99999999999"])


def _mutate_outputs(model, rnd):
    g = model.graph
    kind = rnd.choice(["drop", "duplicate", "rename", "raw_data"])
    if kind == "drop" and g.output:
        del g.output[rnd.randrange(len(g.output))]
    elif kind == "duplicate" and g.output:
        g.output.append(g.output[0])
    elif kind == "rename" and g.output:
        g.output[0].name = rnd.choice(["x", "nope", ""])
    else:
        tensors = [t for t in _all(model, "tensor") if t.raw_data]
        if tensors:
            t = rnd.choice(tensors)
            t.raw_data = t.raw_data[: rnd.randrange(len(t.raw_data) + 1)]


FIELD_MUTATORS = {
    "dims": _mutate_dims,
    "attribute": _mutate_attribute,
    "types": _mutate_types,
    "node_io": _mutate_node_io,
    "versions": _mutate_versions,
    "sparse": _mutate_sparse,
    "external": _mutate_external,
    "outputs": _mutate_outputs,
}


def mutate_onnx(seed: bytes, rnd: random.Random) -> tuple[bytes, list[str]]:
    """1-3 mutations of a serialized seed: field mutations, then sometimes a byte mutation."""
    model = onnx.ModelProto.FromString(seed)
    applied = []
    for _ in range(rnd.randint(1, 3)):
        name = rnd.choice(sorted(FIELD_MUTATORS))
        try:
            FIELD_MUTATORS[name](model, rnd)
        except Exception:  # a mutator tripping on an earlier mutation's result: not a finding, skip it
            continue
        applied.append(name)
    data = model.SerializeToString()
    if rnd.random() < 0.25:
        data = mutate_bytes(data, rnd)
        applied.append("bytes")
    return data, applied


# ---------------------------------------------------------------- prototxt mutators

LAYER_TYPES = ["Pooling", "ReLU", "Concat", "Eltwise", "Reshape", "Slice", "Flatten", "Bogus", "Input", "Power"]


def mutate_prototxt(text: str, rnd: random.Random) -> tuple[str, list[str]]:
    """1-3 mutations of prototxt text."""
    applied = []
    for _ in range(rnd.randint(1, 3)):
        kind = rnd.choice(["number", "number", "number", "drop_line", "dup_line", "type", "char", "truncate"])
        applied.append(kind)
        if kind == "char" and text:
            at = rnd.randrange(len(text))
            text = text[:at] + rnd.choice(['"', "{", "}", ":", " ", "-", "9", "\\"]) + text[at + 1 :]
            continue
        if kind == "truncate" and text:
            text = text[: rnd.randrange(len(text))]
            continue
        lines = text.split("\n")
        if kind == "number":
            spots = [(i, w) for i, line in enumerate(lines) for w in line.split() if _is_number(w)]
            if spots:
                i, word = rnd.choice(spots)
                new = str(_int(rnd)) if rnd.random() < 0.8 else rnd.choice(["1e40", "-0.5", "nan", "inf"])
                lines[i] = lines[i].replace(word, new, 1)
        elif kind == "drop_line" and lines:
            del lines[rnd.randrange(len(lines))]
        elif kind == "dup_line" and lines:
            i = rnd.randrange(len(lines))
            lines.insert(i, lines[i])
        elif kind == "type":
            spots = [i for i, line in enumerate(lines) if line.strip().startswith("type:")]
            if spots:
                lines[rnd.choice(spots)] = f'  type: "{rnd.choice(LAYER_TYPES)}"'
        text = "\n".join(lines)
    return text, applied


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------- running a case


class Hang(BaseException):
    """Raised by the alarm when a case runs past its time limit."""


@contextmanager
def time_limit(seconds: float):
    """Raise ``Hang`` in the main thread after ``seconds`` (SIGALRM; no limit where unavailable)."""
    if seconds <= 0 or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum, frame):
        raise Hang()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Outcome:
    kind: str  # one of OUTCOMES
    detail: str = ""


def classify_error(error: EmberError, file: str) -> Outcome:
    """``refused`` when the error names the file, and the op wherever it names a node."""
    text = str(error)
    if not error.file and file not in text:
        return Outcome("unnamed", f"no file: {text[:300]}")
    if error.node is not None and not error.op:
        return Outcome("unnamed", f"node without op: {text[:300]}")
    return Outcome("refused", text[:300])


def write_case(kind: str, data, folder: str) -> str:
    """The mutated model written into ``folder``; returns its path."""
    if kind == "onnx":
        path = os.path.join(folder, "fuzz.onnx")
        with open(path, "wb") as f:
            f.write(data)
    else:
        path = os.path.join(folder, "fuzz.prototxt")
        with open(path, "w", encoding="utf-8", errors="replace") as f:
            f.write(data)
    return path


def run_case(kind: str, data, folder: str, *, seconds: float = 10.0, interpret: bool = False) -> Outcome:
    """Import one mutated model written into ``folder`` (and verify it; optionally interpret it)."""
    from compiler import verify

    path = write_case(kind, data, folder)
    try:
        with time_limit(seconds):
            if kind == "onnx":
                from frontends.onnx import import_model
            else:
                from frontends.caffe import import_model
            graph = import_model(path)
            verify(graph)
            if interpret:
                try:
                    _interpret(graph)
                except EmberError as error:  # a run-time refusal: the graph, not the file, is running
                    if error.node is None or not error.op:
                        return Outcome("unnamed", f"run without node and op: {str(error)[:300]}")
                    return Outcome("refused", f"interpreter: {error}"[:300])
    except Hang:
        return Outcome("hang", f"over {seconds} s")
    except EmberError as error:
        return classify_error(error, path)
    except Exception as exc:
        if interpret and type(exc).__name__ == "InterpreterError":
            return Outcome("refused", f"interpreter: {exc}"[:300])
        frames = traceback.extract_tb(exc.__traceback__)
        where = f"{os.path.relpath(frames[-1].filename)}:{frames[-1].lineno}" if frames else "?"
        return Outcome("traceback", f"{type(exc).__name__} at {where}: {str(exc)[:200]}")
    return Outcome("accepted")


def _interpret(graph) -> None:
    from compiler import interpret
    from compiler.ir.types import DType, TensorType

    rng = np.random.default_rng(0)
    feeds = {}
    for p in graph.params:
        t = p.type
        if not isinstance(t, TensorType) or not t.is_static or math.prod(t.shape) > 1 << 20 or t.dtype is DType.STRING:
            return
        if t.dtype is DType.BOOL:
            feeds[p.name] = rng.random(t.shape) < 0.5
        else:
            feeds[p.name] = rng.standard_normal(t.shape).astype(t.dtype.np)
    interpret(graph, feeds)
