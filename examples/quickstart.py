"""Quickstart: compile the bundled model to a shared library, run it, compare with the interpreter.

    python examples/quickstart.py [MODEL.onnx] [-o OUT.so]

Writes build/tiny_cnn.so and its C header build/model.h (under the current directory) unless
``-o`` says otherwise, then prints the library's outputs beside Ember's reference interpreter's
and the largest difference between them.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=os.path.join(HERE, "tiny_cnn.onnx"))
    parser.add_argument("-o", "--output", default=os.path.join(os.getcwd(), "build", "tiny_cnn.so"))
    args = parser.parse_args()

    from codegen import compile_graph
    from compiler import interpret
    from compiler.runtime import load
    from frontends.onnx import import_model

    graph = import_model(args.model)
    x = np.load(os.path.join(HERE, "tiny_input.npy"))
    expected = interpret(graph, {"input": x})

    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    print(f"compiling {args.model} -> {args.output}")
    result = compile_graph(graph, args.output)
    print(f"C header: {result.header}  (arena {result.arena_bytes} bytes, {result.num_kernels} kernel calls)")
    library = load(args.output)
    got = library.run({"input": x})

    for name, ref in expected.items():
        out = got[name]
        print(f"\noutput '{name}' {out.dtype}{list(out.shape)}")
        print(f"  {'compiled .so':>14}: {np.array2string(out.ravel()[:10], precision=5)}")
        print(f"  {'interpreter':>14}: {np.array2string(ref.ravel()[:10], precision=5)}")
        print(f"  max abs diff: {float(np.max(np.abs(out - ref))):.3g}")
        if not np.allclose(out, ref, rtol=1e-4, atol=1e-5):
            print("MISMATCH", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
