"""Measure this machine's f32 FMA peak, the yardstick of the profiler's and the zoo's "% peak" columns.

A figure written down once goes stale when the code runs on another CPU: the 117 GFLOP/s per core
that issue 13 quoted was a Zen 4 with two 256-bit FMA pipes, and the machine that now runs the zoo is
a Zen 5 whose FMA pipes are 512 bits wide, so onnxruntime showed "190% of peak". So the peak is
measured: llvmlite JIT-compiles a loop of independent vector FMAs (enough accumulators to cover the
FMA latency on every current core) at the host's widest vector width, and times it on 1..N threads.
"""

from __future__ import annotations

import ctypes
import functools
import threading
import time

# independent FMA chains: latency (4-5 cycles) x pipes (2), with room to spare; with AVX2's 16 vector
# registers 16 chains plus the two operands spill, and a Zen 3 measured half its peak (48 GFLOP/s a core)
ACCUMULATORS = 16
ACCUMULATORS_16_REGISTERS = 12
ITERATIONS = 2_000_000  # per timing: ~0.05-0.2 s on a current core


def _vector_lanes(features: str) -> int:
    if "+avx512f" in features:
        return 16
    if "+avx" in features or "+fma" in features:
        return 8
    return 4  # NEON, SSE


def _accumulators(features: str) -> int:
    """FMA chains that fit the register file with the two operands: x86 without AVX-512 has 16."""
    x86 = "+avx" in features or "+sse2" in features
    return ACCUMULATORS_16_REGISTERS if x86 and "+avx512f" not in features else ACCUMULATORS


def _kernel_ir(lanes: int, accumulators: int = ACCUMULATORS) -> str:
    vec = f"<{lanes} x float>"
    acc_names = [f"%a{i}" for i in range(accumulators)]
    phis = "\n".join(f"  {a} = phi {vec} [ %init, %entry ], [ {a}n, %loop ]" for a in acc_names)
    fmas = "\n".join(f"  {a}n = call {vec} @llvm.fma.v{lanes}f32({vec} {a}, {vec} %x, {vec} %y)" for a in acc_names)
    sums = []
    prev = acc_names[0] + "n"
    for i, a in enumerate(acc_names[1:]):
        sums.append(f"  %s{i} = fadd {vec} {prev}, {a}n")
        prev = f"%s{i}"
    return f"""
declare {vec} @llvm.fma.v{lanes}f32({vec}, {vec}, {vec})
define void @fma_loop(i64 %n, float* %io) {{
entry:
  %p = bitcast float* %io to {vec}*
  %x = load {vec}, {vec}* %p, align 4
  %p1 = getelementptr {vec}, {vec}* %p, i64 1
  %y = load {vec}, {vec}* %p1, align 4
  %p2 = getelementptr {vec}, {vec}* %p, i64 2
  %init = load {vec}, {vec}* %p2, align 4
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %i1, %loop ]
{phis}
{fmas}
  %i1 = add i64 %i, 1
  %done = icmp eq i64 %i1, %n
  br i1 %done, label %exit, label %loop
exit:
{chr(10).join(sums)}
  store {vec} {prev}, {vec}* %p2, align 4
  ret void
}}
"""


@functools.cache
def _compiled_kernel():
    import llvmlite.binding as llvm

    try:  # llvmlite < 0.44 needs explicit initialisation; newer ones do it themselves and refuse it
        llvm.initialize()
    except RuntimeError:
        pass
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    features = llvm.get_host_cpu_features().flatten()
    lanes, accumulators = _vector_lanes(features), _accumulators(features)
    module = llvm.parse_assembly(_kernel_ir(lanes, accumulators))
    module.verify()
    machine = llvm.Target.from_default_triple().create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=features, opt=3
    )
    engine = llvm.create_mcjit_compiler(module, machine)
    engine.finalize_object()
    address = engine.get_function_address("fma_loop")
    function = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.POINTER(ctypes.c_float))(address)
    return engine, function, lanes, accumulators  # the engine owns the code: keep it alive with the function


def _time_one(function, lanes: int, iterations: int) -> float:
    buffer = (ctypes.c_float * (3 * lanes))(*([1.0] * lanes + [1e-9] * lanes + [0.0] * lanes))
    start = time.perf_counter()
    function(iterations, buffer)
    return time.perf_counter() - start


@functools.cache
def measure_fma_peak(threads: int = 1, repeats: int = 3) -> float:
    """Measured f32 FMA peak in GFLOP/s of ``threads`` cores together (best of ``repeats``)."""
    _engine, function, lanes, accumulators = _compiled_kernel()
    flops = 2.0 * accumulators * lanes * ITERATIONS
    _time_one(function, lanes, ITERATIONS // 10)  # warm the core up to its sustained clock
    best = 0.0
    for _ in range(repeats):
        elapsed = [0.0] * threads

        def work(slot: int, elapsed: list[float] = elapsed) -> None:  # ctypes releases the GIL here
            elapsed[slot] = _time_one(function, lanes, ITERATIONS)

        workers = [threading.Thread(target=work, args=(slot,)) for slot in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        best = max(best, threads * flops / max(elapsed) / 1e9)
    return best


def main() -> None:
    import os

    for threads in range(1, (os.cpu_count() or 1) + 1):
        print(f"{threads} thread(s): {measure_fma_peak(threads):.1f} GFLOP/s f32 FMA peak")


if __name__ == "__main__":
    main()
