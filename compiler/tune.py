"""``ember tune MODEL --db DIR``: tune a model's heaviest kernels with TVM's MetaSchedule and keep
the schedules that beat Ember's own in a database that ``ember compile --tuning-db DIR`` reads.

    ember tune model.onnx --db model.tuning --kernels 3 --trials 200
    ember compile model.onnx -o model.so --tuning-db model.tuning

The kernels are ranked by the time each takes in profiled runs of the model compiled with
Ember's own schedules (``EMBER_PROFILE``'s per-call timings, each call's shortest of five), or
by their FLOPs where the target is not this machine's kind. Each is searched with MetaSchedule
(``codegen/tvm/tuning.py``), then its best schedule and Ember's are timed in turn here and their
outputs compared: only a faster one that computes the same values enters the database.
Re-running adds to the database; a kernel already tuned for this CPU is skipped unless
``--retune``.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
from typing import Any

from .diagnostics import EmberError


def tune_model(
    model: Any,
    database: str,
    target: Any = "x86-64",
    *,
    kernels: int = 3,
    trials: int = 64,
    pipeline: str = "O2",
    input_shapes: dict | None = None,
    rpc: tuple | None = None,
    keep_slower: bool = False,
    retune: bool = False,
    progress=None,
    verbose: bool = False,
    strategy: str = "evolutionary",
    only: list[str] | None = None,
):
    """Tune the ``kernels`` heaviest kernels of ``model`` for ``target`` with ``trials`` MetaSchedule
    trials each, keeping every schedule that beats Ember's in ``database`` (a directory, created
    where missing). Returns the ``TuneOutcome`` of each kernel tried. ``rpc=(host, port, key)``
    measures candidates on the machines behind a TVM RPC tracker instead of this one. ``only`` names
    the kernels to tune instead (``ember_model_k<i>``, as ``ember bench --profile`` prints them)."""
    from codegen import parse_target
    from codegen.plan import build_plan, kernel_names
    from codegen.tvm.registry import get_lowering
    from codegen.tvm.tuning import TuningDatabase, tune_kernel, workload

    from .driver import load_graph, opt_level, prepare_for_codegen, verify_for_compile

    say = progress or (lambda msg: None)
    tgt = parse_target(target)
    if tgt.kind == "cuda":
        raise EmberError("ember tune tunes CPU kernels (x86-64, aarch64); CUDA kernels keep Ember's schedules")
    if rpc is None and not _runs_here(tgt):
        raise EmberError(
            f"tuning for {tgt.kind} on this {platform.machine()} machine needs --rpc HOST:PORT:KEY: a TVM RPC "
            f"tracker with {tgt.kind} devices to measure the candidates on"
        )
    if trials < 1 or kernels < 1:
        raise EmberError(f"--trials and --kernels must be at least 1 (got {trials} and {kernels})")
    where = os.fspath(model) if isinstance(model, (str, os.PathLike)) else None
    graph = load_graph(model, input_shapes)
    verify_for_compile(graph, "before the graph pipeline", where)
    graph = prepare_for_codegen(graph, pipeline, None, tgt)
    params = tgt.schedule_params()
    level = opt_level(pipeline)  # as compile_model: the same plan, so the same kernels and names
    plan = build_plan(graph, get_lowering, fuse=level > 0, target_name=tgt.kind, schedule=params)
    names = kernel_names(plan, "ember_model")
    db = TuningDatabase(database, create=True)
    target_json = tgt.to_tvm()
    import tvm

    unknown = sorted(set(only or ()) - set(names.values()))
    if unknown:
        raise EmberError(
            f"no kernel named {', '.join(unknown)} in this model (it has ember_model_k0 to "
            f"ember_model_k{len(names) - 1})"
        )
    ranked = _ranked(graph, plan, names, tgt, level, say)
    if only:
        ranked = [entry for entry in ranked if entry[1] in only]
        kernels = len(ranked)
    chosen = []
    for spec, name, share in ranked:
        if len(chosen) == kernels:
            break
        if not retune and db.record(workload(spec, params), tvm.target.Target(target_json)) is not None:
            say(f"{name}: already in the database for this CPU (--retune searches it again)")
            continue
        chosen.append((spec, name, share))
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="ember_tune_") as work:
        for k, (spec, name, share) in enumerate(chosen):
            ops = "+".join(op.op for op in spec.ops)
            say(f"[{k + 1}/{len(chosen)}] {name} ({ops}, {share:.0%} of the model): {trials} trials")
            try:
                outcome = tune_kernel(
                    spec,
                    name,
                    target_json,
                    params,
                    db,
                    work,
                    trials,
                    rpc,
                    keep_slower,
                    verbose=verbose,
                    strategy=strategy,
                )
            except Exception as exc:  # one kernel MetaSchedule cannot take must not end the others
                from codegen.tvm.tuning import TuneOutcome

                first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                outcome = TuneOutcome(name, ops, 0.0, None, False, trials, f"not tuned: {first[:200]}")
            outcome.share = share
            outcomes.append(outcome)
    return outcomes


def _runs_here(tgt) -> bool:
    """Whether libraries for ``tgt`` run on this machine (so the model can be profiled)."""
    machine = platform.machine().lower()
    return (tgt.kind == "x86-64" and machine in ("x86_64", "amd64")) or (
        tgt.kind == "aarch64" and machine in ("aarch64", "arm64")
    )


def _ranked(graph, plan, names: dict, tgt, level: int, say) -> list[tuple]:
    """(spec, kernel name, share of the model) for every kernel, heaviest first: by profiled time
    where the target runs here, else by FLOPs."""
    totals: dict[str, float] = {}
    if _runs_here(tgt):
        from codegen import compile_graph
        from codegen.cli import _random_inputs

        from .runtime import load

        with tempfile.TemporaryDirectory(prefix="ember_tune_profile_") as tmp:
            path = os.path.join(tmp, "model.so")
            say("compiling with Ember's schedules to profile the model")
            compile_graph(graph, path, tgt, opt_level=level)
            lib = load(path, profile=True)
            feeds = _random_inputs(lib)
            for _ in range(2):
                lib.run(feeds)
            lib.enable_profile()
            for _ in range(5):
                lib.run(feeds)
            for call in lib.profile().calls:  # each call's shortest run: a busy moment does not rank it
                totals[call.kernel] = totals.get(call.kernel, 0.0) + call.min_seconds
    else:
        for call in plan.calls:
            totals[names[call.spec]] = totals.get(names[call.spec], 0.0) + float(call.flops)
    whole = sum(totals.values()) or 1.0
    by_name = {name: spec for spec, name in names.items()}
    order = sorted(totals, key=totals.get, reverse=True)
    return [(by_name[n], n, totals[n] / whole) for n in order if n in by_name and totals[n] > 0]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "tune", help="tune the heaviest kernels with TVM MetaSchedule into a database for compile --tuning-db"
    )
    p.add_argument("model")
    p.add_argument("--db", required=True, metavar="DIR", help="tuning database directory (created or added to)")
    p.add_argument("--target", default="x86-64", help="as ember compile's (default: this CPU)")
    p.add_argument("--kernels", type=int, default=3, help="how many of the heaviest kernels to tune (default 3)")
    p.add_argument(
        "--kernel",
        action="append",
        metavar="NAME",
        help="tune this kernel instead (ember_model_k<i>, as ember bench --profile names them); repeatable",
    )
    p.add_argument("--trials", type=int, default=64, help="MetaSchedule trials per kernel (default 64)")
    p.add_argument("--opt", default="O2", choices=["O0", "O1", "O2", "O3"], help="graph pipeline, as compile's")
    p.add_argument("--passes", metavar="PIPELINE", help="passes after --opt's pipeline, as compile's")
    p.add_argument("--input-shape", action="append", metavar="NAME=D1,D2,...", help="pin an input's shape")
    p.add_argument("--weights", help="Caffe .caffemodel for a .prototxt")
    p.add_argument(
        "--rpc",
        metavar="HOST:PORT:KEY",
        help="measure candidates through a TVM RPC tracker (python -m tvm.exec.rpc_tracker) on devices "
        "registered under KEY",
    )
    p.add_argument("--keep-slower", action="store_true", help="keep the best schedule even where Ember's is faster")
    p.add_argument("--retune", action="store_true", help="search kernels the database already holds again")
    p.add_argument(
        "--strategy",
        default="evolutionary",
        choices=["evolutionary", "replay-trace"],
        help="MetaSchedule's search: evolutionary (cost-model guided, the default) or replay-trace (random samples)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="print MetaSchedule's own log")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_tune)


def cmd_tune(args) -> int:
    from .cli import _load_from_args

    rpc = None
    if args.rpc:
        parts = args.rpc.rsplit(":", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            raise EmberError(f"--rpc takes HOST:PORT:KEY, not '{args.rpc}'")
        rpc = (parts[0], int(parts[1]), parts[2])
    progress = None if args.quiet else (lambda msg: print(f"  {msg}", file=sys.stderr, flush=True))
    outcomes = tune_model(
        _load_from_args(args),
        args.db,
        args.target,
        kernels=args.kernels,
        trials=args.trials,
        pipeline=f"{args.opt},{args.passes}" if args.passes else args.opt,
        rpc=rpc,
        keep_slower=args.keep_slower,
        retune=args.retune,
        progress=progress,
        verbose=args.verbose,
        strategy=args.strategy,
        only=args.kernel,
    )
    print(format_outcomes(outcomes, args.db))
    return 0


def format_outcomes(outcomes, database: str) -> str:
    """The table ``ember tune`` prints: per kernel, Ember's time, the tuned time, what was kept."""
    lines = [f"{'kernel':<16} {'ops':<28} {'share':>6} {'Ember ms':>9} {'tuned ms':>9}  result"]
    for o in outcomes:
        tuned = f"{o.tuned_seconds * 1e3:9.3f}" if o.tuned_seconds is not None else f"{'-':>9}"
        ember = f"{o.ember_seconds * 1e3:9.3f}" if o.ember_seconds else f"{'-':>9}"
        if o.kept:
            result = "kept" + (f" ({o.ember_seconds / o.tuned_seconds:.2f}x faster)" if o.tuned_seconds else "")
        else:
            result = o.note or "Ember's schedule is faster: not kept"
        share = f"{o.share:6.0%}"
        lines.append(f"{o.kernel:<16} {o.ops[:28]:<28} {share} {ember} {tuned}  {result}")
    kept = sum(o.kept for o in outcomes)
    lines.append(f"{kept} of {len(outcomes)} kernel(s) kept in {database}; compile with --tuning-db {database}")
    return "\n".join(lines)
