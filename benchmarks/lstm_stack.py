"""A 2-layer bidirectional LSTM (the recurrent part of a CRNN) compiled, timed against onnxruntime.

    python benchmarks/lstm_stack.py --out /tmp/lstm            # writes lstm.onnx, compiles lstm.so
    python benchmarks/lstm_stack.py --out /tmp/lstm --time old.so new.so --threads 1,2 --runs 20
    python benchmarks/lstm_stack.py --out /tmp/lstm_fw --direction forward    # one direction

Input 80 steps x 512 features, hidden 256, batch 1, fixed random weights. ``--time`` runs the
given libraries and onnxruntime alternately, one run each per round, and prints medians (ms) and
the median of per-round ratios to onnxruntime.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from timing import interleaved_times  # noqa: E402  (paused before each run: onnxruntime's pool spins)

STEPS, FEATURES, HIDDEN = 80, 512, 256


def lstm_stack(layers: int = 2, direction: str = "bidirectional") -> object:
    """The ONNX model: LSTM -> Transpose/Reshape (directions into features) -> LSTM ..."""
    rng = np.random.default_rng(0)
    dirs = 2 if direction == "bidirectional" else 1
    nodes, inits, x, size = [], [], "X", FEATURES
    for k in range(layers):
        scale = 1 / np.sqrt(HIDDEN)
        shapes = {f"W{k}": (dirs, 4 * HIDDEN, size), f"R{k}": (dirs, 4 * HIDDEN, HIDDEN), f"B{k}": (dirs, 8 * HIDDEN)}
        for name, shape in shapes.items():
            inits.append(numpy_helper.from_array((rng.uniform(-scale, scale, shape)).astype(np.float32), name))
        outs = [f"Y{k}", f"Yh{k}", f"Yc{k}"]
        nodes.append(helper.make_node("LSTM", [x, *shapes], outs, hidden_size=HIDDEN, direction=direction))
        nodes.append(helper.make_node("Transpose", [f"Y{k}"], [f"T{k}"], perm=[0, 2, 1, 3]))
        inits.append(numpy_helper.from_array(np.array([STEPS, 1, dirs * HIDDEN], np.int64), f"S{k}"))
        x = f"Z{k}" if k < layers - 1 else "out"
        nodes.append(helper.make_node("Reshape", [f"T{k}", f"S{k}"], [x]))
        size = dirs * HIDDEN
    graph = helper.make_graph(
        nodes,
        "lstm_stack",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [STEPS, 1, FEATURES])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [STEPS, 1, size])],
        initializer=inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def time_all(model_path: str, libraries: list[str], threads: int, runs: int) -> None:
    import onnxruntime as ort

    from compiler.runtime import load

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    sess = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
    libs = [load(path, num_threads=threads) for path in libraries]
    feeds = {"X": np.random.default_rng(1).standard_normal((STEPS, 1, FEATURES)).astype(np.float32)}
    want = sess.run(None, feeds)[0]
    for path, lib in zip(libraries, libs):
        err = float(np.max(np.abs(lib.run(feeds)["out"] - want)))
        print(f"{os.path.basename(path)}: max abs error vs onnxruntime {err:.2e}")
    calls = {"ort": lambda: sess.run(None, feeds)}
    calls.update({path: (lambda lib=lib: lib.run(feeds)) for path, lib in zip(libraries, libs)})
    times = interleaved_times(calls, runs, rotate=False)
    ort_ms = 1e3 * statistics.median(times["ort"])
    print(f"threads={threads}: onnxruntime {ort_ms:.2f} ms")
    for path in libraries:
        ms = 1e3 * statistics.median(times[path])
        ratio = statistics.median(a / b for a, b in zip(times[path], times["ort"]))
        print(f"threads={threads}: {os.path.basename(path)} {ms:.2f} ms, / onnxruntime {ratio:.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for lstm.onnx and lstm.so")
    parser.add_argument("--time", nargs="*", help="libraries to time against onnxruntime")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--direction", default="bidirectional", help="of every layer: also forward, reverse")
    args = parser.parse_args()
    import onnx

    os.makedirs(args.out, exist_ok=True)
    model_path = os.path.join(args.out, "lstm.onnx")
    if not os.path.exists(model_path):
        onnx.save(lstm_stack(direction=args.direction), model_path)
    if args.time:
        for threads in (int(t) for t in args.threads.split(",")):
            time_all(model_path, args.time, threads, args.runs)
        return 0
    from compiler.driver import compile_model

    start = time.perf_counter()
    result = compile_model(model_path, os.path.join(args.out, "lstm.so"))
    print(f"compiled in {time.perf_counter() - start:.1f} s: {result.num_kernels} kernel calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
