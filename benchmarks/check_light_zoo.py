"""Compile onnx's bundled ``light_*`` zoo models with Ember and compare with onnxruntime.

    python benchmarks/check_light_zoo.py [--models resnet50,squeezenet] [-o OUTDIR]

For each model: import, compile to a shared library, run through ``compiler.runtime`` on a fixed
random input, and print the largest difference to onnxruntime relative to the output's scale,
plus compile time and latency. Exit status 1 when a model fails or differs by more than 1e-4.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile
import time

import numpy as np
import onnx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

LIGHT_DIR = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


def check(path: str, outdir: str) -> tuple[bool, str]:
    import onnxruntime as ort

    from codegen import compile_graph
    from frontends.onnx import import_model as load_onnx
    from compiler.runtime import load

    name = os.path.basename(path)[len("light_"):-len(".onnx")]
    model = onnx.load(path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feeds = {}
    for inp in sess.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in inp.shape]
        feeds[inp.name] = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    expected = sess.run(None, feeds)
    start = time.time()
    lib = os.path.join(outdir, f"{name}.so")
    try:
        compile_graph(load_onnx(model), lib, prefix=name)
    except Exception as exc:
        return False, f"{name:12s} FAILED to compile: {type(exc).__name__}: {str(exc)[:300]}"
    compile_s = time.time() - start
    lib_model = load(lib)
    got = lib_model.run(feeds)
    t0 = time.perf_counter()
    for _ in range(3):
        lib_model.run(feeds)
    latency = (time.perf_counter() - t0) / 3 * 1e3
    worst = 0.0
    for info, ref in zip(sess.get_outputs(), expected):
        out = got[info.name]
        worst = max(worst, float(np.abs(out - ref).max() / (np.abs(ref).max() + 1e-12)))
    ok = worst < 1e-4
    return ok, (f"{name:12s} {'ok  ' if ok else 'DIFF'} max rel diff {worst:.1e}  compile {compile_s:5.1f} s  "
                f"latency {latency:7.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated names (default: all)")
    parser.add_argument("-o", "--outdir", default="")
    args = parser.parse_args()
    paths = sorted(glob.glob(os.path.join(LIGHT_DIR, "light_*.onnx")))
    if args.models:
        wanted = set(args.models.split(","))
        paths = [p for p in paths if os.path.basename(p)[6:-5] in wanted]
    outdir = args.outdir or tempfile.mkdtemp(prefix="ember_light_")
    failures = 0
    for path in paths:
        ok, line = check(path, outdir)
        failures += not ok
        print(line, flush=True)
    print(f"{len(paths) - failures} of {len(paths)} light zoo models compile and match onnxruntime")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
