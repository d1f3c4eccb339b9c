"""Run the ONNX node conformance suite through Ember and print the pass count.

    python scripts/onnx_conformance.py                 # all cases, table of failures by op
    python scripts/onnx_conformance.py -k Conv -v      # cases whose name contains "Conv", with reasons
    python scripts/onnx_conformance.py --every 4       # a deterministic sample (every 4th case)
    python scripts/onnx_conformance.py --compile       # through codegen instead of the interpreter
    python scripts/onnx_conformance.py --export        # import -> export -> onnx.reference (exporter check)
    python scripts/onnx_conformance.py --export ort    # import -> export -> onnxruntime

Exit status 0 when at least ``--min`` cases pass (scaled for a sample).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests", "frontends", "onnx")]

from conformance import ExportRoundTrip, collect_cases, failure_table, run_suite, sample_cases  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", dest="keyword", default="", help="only cases whose name contains this")
    parser.add_argument("--every", type=int, default=1, help="run every N-th case (name order)")
    parser.add_argument("-v", "--verbose", action="store_true", help="list each failing case and its reason")
    parser.add_argument("--compile", action="store_true", help="run through codegen (prepare(compile=True))")
    parser.add_argument(
        "--export",
        nargs="?",
        const="reference",
        choices=("reference", "ort"),
        help="run each case's exported model with onnx.reference (default) or onnxruntime",
    )
    parser.add_argument("--min", type=int, default=1840, help="pass count required of the full suite")
    args = parser.parse_args(argv)

    start = time.time()
    cases = collect_cases()
    total_all = len(cases)
    if args.keyword:
        cases = [c for c in cases if args.keyword.lower() in c.name.lower()]
    if args.every > 1:
        cases = sample_cases(cases, args.every)
    kw = {"compile": True} if args.compile else {}
    backend = ExportRoundTrip(args.export) if args.export else None
    results = run_suite(cases, backend=backend, **kw)
    passed = sum(r.ok for r in results)
    elapsed = time.time() - start
    print(failure_table(results, reasons=args.verbose) or "(no failures)")
    print(f"\npassed {passed} of {len(results)} ONNX node test cases ({total_all} in the suite) in {elapsed:.0f} s")
    needed = args.min * len(results) // total_all if total_all else 0
    return 0 if passed >= needed else 1


if __name__ == "__main__":
    sys.exit(main())
