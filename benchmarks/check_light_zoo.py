"""Compile onnx's bundled ``light_*`` zoo models with Ember and compare with onnxruntime.

    python benchmarks/check_light_zoo.py [--models resnet50,squeezenet] [--opt O2] [--interpreter] [-o OUTDIR]

For each model: import, compile to a shared library (as ``ember compile --opt``), run through
``compiler.runtime`` on a fixed random input, and print the largest difference to onnxruntime (and
to Ember's interpreter with ``--interpreter``) relative to the output's scale, plus compile time and
latency. The logits before the final Softmax are compared too (``light_zoo.with_logits_output``).
Exit status 1 when a model fails or differs by more than 1e-4. The shared logic is in
``benchmarks/light_zoo.py``; ``tests/codegen/test_light_zoo_compiled.py`` runs it in CI.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from light_zoo import check_light, light_names  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated names (default: all)")
    parser.add_argument("--opt", default="O2", choices=["O0", "O1", "O2", "O3"])
    parser.add_argument("--interpreter", action="store_true", help="also compare with Ember's interpreter")
    parser.add_argument("-o", "--outdir", default="", help="keep the libraries here (default: a removed temp dir)")
    args = parser.parse_args()
    names = light_names()
    if args.models:
        wanted = set(args.models.split(","))
        names = [n for n in names if n in wanted]
    with tempfile.TemporaryDirectory(prefix="ember_light_") as tmp:
        outdir = args.outdir or tmp
        os.makedirs(outdir, exist_ok=True)
        failures = 0
        for name in names:
            result = check_light(name, outdir, args.opt, args.interpreter, runs=3)
            failures += not result.ok
            print(result.line(), flush=True)
    print(
        f"{len(names) - failures} of {len(names)} light zoo models compile and match "
        f"{'onnxruntime and the interpreter' if args.interpreter else 'onnxruntime'}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
