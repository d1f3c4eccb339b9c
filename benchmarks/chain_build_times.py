"""Compile time of nested elementwise chains fused into one kernel (``codegen/tvm/let_binding.py``).

    python benchmarks/chain_build_times.py              # with the chain cuts, as Ember compiles
    python benchmarks/chain_build_times.py --no-cut     # the cuts off: each chain as one expression

Each chain applies its ops in turn to a [1, 4096] float32 input (one kernel) and is compiled
alone; the table gives the compile seconds (one kernel compiles in this process) and whether the
library matches the interpreter. ``--no-cut`` raises ``CHAIN_DEPTH_LIMIT`` and ``CHAIN_SIZE_LIMIT``
out of reach, which is how the build times in ``let_binding``'s docstring were measured; a chain
given ``--timeout`` seconds or more is reported as such and skipped (a subprocess per chain).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHAINS = {
    "Exp,Tanh x2": ["Exp", "Tanh"] * 2,
    "Exp,Tanh,Exp,Tanh,Exp": ["Exp", "Tanh", "Exp", "Tanh", "Exp"],
    "Tanh x10": ["Tanh"] * 10,
    "Elu x5": ["Elu"] * 5,
    "LeakyRelu x6": ["LeakyRelu"] * 6,
    "LeakyRelu x7": ["LeakyRelu"] * 7,
    "LeakyRelu x8": ["LeakyRelu"] * 8,
    "Log,Softplus,Log": ["Log", "Softplus", "Log"],
}


def chain_model(ops: list[str]):
    from onnx import TensorProto, helper

    nodes, prev = [], "x"
    for k, op in enumerate(ops):
        nodes.append(helper.make_node(op, [prev], [f"y{k}"]))
        prev = f"y{k}"
    value = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 4096])  # noqa: E731
    graph = helper.make_graph(nodes, "chain", [value("x")], [value(prev)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def run_one(ops: list[str], no_cut: bool) -> None:
    """Compile one chain in this process and print 'seconds matched'."""
    import tempfile

    import numpy as np

    sys.path.insert(0, ROOT)
    import codegen.tvm.let_binding as binding
    from compiler import compile as compile_model
    from frontends.onnx.backend import EmberBackend

    if no_cut:
        binding.CHAIN_DEPTH_LIMIT, binding.CHAIN_SIZE_LIMIT = 10**9, 10**18
    model = chain_model(ops)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        lib = compile_model(model, os.path.join(tmp, "chain.so")).library
        seconds = time.perf_counter() - start
        from compiler.runtime import load

        x = np.linspace(-3, 3, 4096, dtype=np.float32)[None]
        got = load(lib, num_threads=1).run({"x": x})
        got = next(iter(got.values())) if isinstance(got, dict) else got[0]
    want = EmberBackend.prepare(model).run({"x": x})[0]
    print(f"{seconds:.2f} {np.allclose(got, want, rtol=2e-6, atol=1e-6, equal_nan=True)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-cut", action="store_true", help="chain cuts off (let_binding's limits out of reach)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per chain")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: compile this chain in-process
    args = parser.parse_args()
    if args.one:
        run_one(args.one.split(","), args.no_cut)
        return 0
    print(f"| chain | compile s ({'no cut' if args.no_cut else 'with cuts'}) | matches the interpreter |")
    print("|---|---|---|")
    for name, ops in CHAINS.items():
        cmd = [sys.executable, os.path.abspath(__file__), "--one", ",".join(ops)]
        cmd += ["--no-cut"] if args.no_cut else []
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, check=True).stdout
            seconds, ok = out.split()[-2:]
            print(f"| {name} | {seconds} | {ok} |", flush=True)
        except subprocess.TimeoutExpired:
            print(f"| {name} | over {args.timeout:.0f} | (not run) |", flush=True)
        except subprocess.CalledProcessError as exc:
            print(f"| {name} | failed: {exc.stderr.strip().splitlines()[-1][:80]} | |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
