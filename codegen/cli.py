"""``ember compile`` and ``ember bench`` (registered by compiler/cli.py through ``add_parser``).

Both compile through the one driver, ``compiler.driver.compile_model`` (``--opt`` pipeline, then
``codegen-prepare``, then code generation), as ``prepare(compile=True)`` and ``compiler.compile`` do.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time

import numpy as np

from compiler.cli import parse_bytes
from compiler.driver import opt_level, prepare_for_codegen  # noqa: F401  (prepare_for_codegen: re-exported)


def add_parser(sub) -> None:
    p = sub.add_parser("compile", help="compile a model into a shared library plus C header")
    p.add_argument("model")
    p.add_argument("-o", "--output", default="model.so", help="library path (model.h is written beside it)")
    p.add_argument("--target", default="x86-64", help="x86-64[:mcpu=...,features=+a+b] (default: host CPU)")
    p.add_argument(
        "--opt",
        default="O2",
        choices=["O0", "O1", "O2", "O3"],
        help="graph pipeline before codegen-prepare and codegen (passes/pipelines.py); "
        "O0: no graph optimisation and no kernel fusion",
    )
    p.add_argument(
        "--passes",
        metavar="PIPELINE",
        help="passes run after --opt's pipeline (pipeline text), e.g. convert-bfloat16: bfloat16 compute "
        "between float32 inputs and outputs (vdpbf16ps kernels on CPUs with AVX-512 BF16)",
    )
    p.add_argument("--input-shape", action="append", metavar="NAME=D1,D2,...", help="pin an input's shape")
    p.add_argument(
        "--weights",
        default="embedded",
        metavar="{embedded,external,MODEL.caffemodel}",
        help="embed weights in the library or write <output stem>.weights beside it; "
        "for a .prototxt, the .caffemodel holding its weights (embedded)",
    )
    p.add_argument("--prefix", default="ember_model", help="C symbol prefix (header: model.h or PREFIX.h)")
    p.add_argument(
        "--emit",
        choices=["so", "ir", "llvm", "c-header"],
        default="so",
        help="ir: print the graph being compiled; llvm: write every kernel's LLVM IR to "
        "<output stem>.ll (no library); c-header: write only the header",
    )
    p.add_argument("-j", "--jobs", type=int, default=0, help="parallel kernel compiles (default: cores)")
    p.add_argument(
        "--max-tensor-bytes",
        type=parse_bytes,
        default=None,
        metavar="N[KiB|MiB|GiB|TiB]",
        help="refuse any tensor above this size, naming its node (default: 16GiB)",
    )
    p.add_argument(
        "--tuning-db",
        metavar="DIR",
        help="build the kernels this MetaSchedule database (written by ember tune) holds with its schedules",
    )
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("bench", help="latency and throughput of a model or compiled .so")
    p.add_argument("model")
    p.add_argument("--input-shape", action="append", metavar="NAME=D1,D2,...")
    p.add_argument("-n", "--runs", type=int, default=50)
    p.add_argument("--threads", type=int, default=0, help="threads per instance (default: all cores)")
    p.add_argument("--instances", type=int, default=2, help="concurrent instances for the throughput test")
    p.add_argument(
        "--profile",
        action="store_true",
        help="then time every kernel call over --runs runs and print them, slowest first, with their fused "
        "ops, GFLOP/s, share of the FMA peak and bytes moved",
    )
    p.add_argument(
        "--profile-json",
        metavar="TRACE.json",
        help="write the profiled runs as a Chrome trace (chrome://tracing, ui.perfetto.dev); implies --profile",
    )
    p.add_argument(
        "--peak-gflops",
        type=float,
        default=None,
        metavar="GFLOPS",
        help="f32 FMA peak of one core for --profile's %%peak (default: measured by compiler.fma_peak)",
    )
    p.add_argument("--target", default="x86-64", help="compile a model file for this target first (e.g. cuda:sm_90)")
    p.set_defaults(func=cmd_bench)


def _graph(args):
    from compiler.cli import _load_from_args

    args.weights_file = None
    saved = getattr(args, "weights", None)
    # compiler.cli reads --weights as a Caffe .caffemodel; here it also names the weight placement
    caffemodel = saved if saved not in (None, "embedded", "external") else None
    args.weights = caffemodel
    try:
        return _load_from_args(args)
    finally:
        args.weights = "embedded" if caffemodel else saved


def _pipeline(args) -> str:
    """--opt's named pipeline, then any --passes."""
    return f"{args.opt},{args.passes}" if getattr(args, "passes", None) else args.opt


def cmd_compile(args) -> int:
    from codegen.plan import build_plan
    from codegen.tvm.registry import get_lowering
    from compiler.driver import compile_model

    graph = _graph(args)
    log = None if args.quiet else sys.stderr
    progress = None if args.quiet else (lambda msg: print(f"  {msg}", file=sys.stderr, flush=True))
    if args.emit == "so":
        result = compile_model(
            graph,
            args.output,
            args.target,
            pipeline=_pipeline(args),
            prefix=args.prefix,
            weights=args.weights,
            jobs=args.jobs,
            progress=progress,
            max_tensor_bytes=args.max_tensor_bytes,
            log=log,
            tuning_db=args.tuning_db,
        )
        print(
            f"wrote {result.library} and {result.header}"
            + (f" and {result.weights_file}" if result.weights_file else "")
        )
        print(
            f"  {result.num_kernels} kernel calls ({result.num_unique_kernels} unique), arena "
            f"{result.arena_bytes / 2**20:.2f} MiB (without reuse "
            f"{result.stats['naive_activation_bytes'] / 2**20:.2f}),"
            f" weights {result.weight_bytes / 2**20:.2f} MiB, {result.seconds:.1f} s"
        )
        if args.tuning_db:
            print(f"  {result.stats['schedules'].get('tuned', 0)} kernel(s) built with schedules from {args.tuning_db}")
        return 0
    from compiler.driver import verify_for_compile

    verify_for_compile(graph, "before the graph pipeline", args.model)
    graph = prepare_for_codegen(graph, _pipeline(args), log)
    verify_for_compile(graph, "after the pipelines", args.model)
    if args.emit == "ir":
        from compiler import print_ir

        print(print_ir(graph))
        return 0
    if args.emit == "llvm":
        path = os.path.splitext(os.path.abspath(args.output))[0] + ".ll"
        count = write_llvm(graph, path, args.target, args.prefix, opt_level(args.opt))
        print(f"wrote {path} ({count} kernel{'s' if count != 1 else ''})")
        return 0
    if args.emit == "c-header":
        from codegen.aot.header import render_header
        from codegen.memory import plan_memory

        plan = build_plan(graph, get_lowering, max_tensor_bytes=args.max_tensor_bytes)
        header = render_header(
            args.prefix, plan.name, len(plan.inputs), len(plan.outputs), plan_memory(plan).arena_bytes
        )
        path = os.path.join(
            os.path.dirname(os.path.abspath(args.output)),
            "model.h" if args.prefix == "ember_model" else f"{args.prefix}.h",
        )
        with open(path, "w") as f:
            f.write(header)
        print(f"wrote {path}")
    return 0


def write_llvm(graph, path: str, target="x86-64", prefix: str = "ember_model", opt_level: int = 2) -> int:
    """Write the LLVM IR of each unique kernel of ``graph`` to ``path``, one module after another.

    Kernels are planned and named as ``compile_graph`` does (``<prefix>_k<N>``, exported as
    ``__tvm_ffi_<prefix>_k<N>``); each module is headed by a ``;`` comment naming the kernel and the
    graph nodes it runs for. Nothing is linked. Returns the number of kernels.
    """
    from codegen import CodegenError, parse_target
    from codegen.plan import build_plan, kernel_names
    from codegen.tvm.kernel import build_kernel_module
    from codegen.tvm.registry import get_lowering

    tgt = parse_target(target)
    for node in graph.walk():  # name unnamed nodes (text IR, fused groups' bodies) by their first result
        if not node.name and node.results:
            node.name = f"%{node.results[0].name} = {node.op}"
    plan = build_plan(graph, get_lowering, fuse=opt_level > 0, target_name=tgt.kind, schedule=tgt.schedule_params())
    names = kernel_names(plan, prefix)
    nodes: dict = {}
    for call in plan.calls:
        nodes.setdefault(call.spec, []).extend(call.node_names)
    chunks = []
    for spec, name in names.items():
        try:
            lib, schedule = build_kernel_module(spec, name, tgt.to_tvm(), tgt.schedule_params())
        except Exception as exc:
            raise CodegenError(f"kernel {name} ({spec.label}) failed to build: {type(exc).__name__}: {exc}") from exc
        chunks.append(
            f"; ---- kernel {name} (function __tvm_ffi_{name}, schedule {schedule})\n"
            f"; ---- graph nodes: {', '.join(nodes[spec])}\n" + lib.inspect_source("ll").rstrip("\n") + "\n"
        )
    with open(path, "w") as f:
        f.write("\n".join(chunks))
    return len(names)


def _random_inputs(model) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    feeds = {}
    for info in model.inputs:
        if info.dtype.kind == "f":
            feeds[info.name] = rng.standard_normal(info.shape).astype(info.dtype)
        else:
            feeds[info.name] = np.zeros(info.shape, info.dtype)
    return feeds


def cmd_bench(args) -> int:
    if args.model.endswith(".so"):
        return _bench(args, args.model)
    from compiler.driver import compile_model

    with tempfile.TemporaryDirectory(prefix="ember_bench_") as tmp:  # removed once the runs are done
        path = os.path.join(tmp, "model.so")
        print(f"compiling {args.model} ...", file=sys.stderr)
        compile_model(_graph(args), path, getattr(args, "target", "x86-64"))
        return _bench(args, path)


def _bench(args, path: str) -> int:
    """Latency of the library ``path`` over ``args.runs`` runs, then throughput with ``args.instances``."""
    from compiler.runtime import load

    model = load(path, num_threads=args.threads)
    feeds = _random_inputs(model)
    for _ in range(3):
        model.run(feeds)
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        model.run(feeds)
        times.append(1e3 * (time.perf_counter() - t0))
    times.sort()
    info = model.info()
    if model.is_cuda:  # kernels alone, from CUDA events (the times above include the copies)
        gpu = sorted(_gpu_times(model, feeds, args.runs))
        print(
            f"GPU latency (CUDA events) over {args.runs} runs: avg {statistics.mean(gpu):.3f} ms,"
            f" p50 {statistics.median(gpu):.3f} ms"
        )
    p99 = times[min(len(times) - 1, int(round(0.99 * (len(times) - 1))))]
    print(
        f"latency over {args.runs} runs: avg {statistics.mean(times):.3f} ms, p50 {statistics.median(times):.3f}"
        f" ms, p99 {p99:.3f} ms, max {times[-1]:.3f} ms"
    )
    print(
        f"throughput with {args.instances} concurrent instances: "
        f"{_throughput(path, args.instances, feeds, args.runs):.1f} inferences/s"
    )
    print(
        f"weights {info['weight_bytes']} bytes, {info['param_count']} parameters, "
        f"{info['flops'] / 1e9:.3f} GFLOP per run, arena {info['arena_bytes']} bytes"
    )
    if args.profile or args.profile_json:
        _profile(args, path, feeds)
    return 0


def _profile(args, path: str, feeds) -> None:
    """Time each kernel call over ``args.runs`` runs of a fresh profiled instance; print the table and
    write the Chrome trace (one snapshot per run, so each run's own call times appear)."""
    import json

    from compiler.profiling import chrome_trace, format_profile
    from compiler.runtime import load

    model = load(path, num_threads=args.threads, profile=True)
    for _ in range(3):
        model.run(feeds)
    model.enable_profile()  # restart at zero after the warm-up
    snapshots = []
    for _ in range(args.runs):
        model.run(feeds)
        if args.profile_json:
            snapshots.append(model.profile())
    profile = model.profile()
    model.close()
    print(format_profile(profile, args.peak_gflops))
    if args.profile_json:
        name = os.path.splitext(os.path.basename(args.model))[0]
        with open(args.profile_json, "w") as f:
            json.dump(chrome_trace(snapshots, name=name, pid=os.getpid()), f)
        print(f"wrote {args.profile_json} ({len(snapshots)} runs; open it in chrome://tracing or ui.perfetto.dev)")


def _gpu_times(model, feeds, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        model.run(feeds)
        times.append(model.gpu_time_ms())
    return times


def _throughput(path, instances: int, feeds, runs: int) -> float:
    from compiler.runtime import load

    models = [load(path, num_threads=1) for _ in range(instances)]
    for m in models:
        m.run(feeds)
    barrier = threading.Barrier(instances + 1)

    def work(m):
        barrier.wait()
        for _ in range(runs):
            m.run(feeds)

    threads = [threading.Thread(target=work, args=(m,)) for m in models]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return instances * runs / (time.perf_counter() - t0)
