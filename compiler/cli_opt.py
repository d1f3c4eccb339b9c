"""``ember opt``: run a pass pipeline on a model and write the result (.ir or .onnx).

    ember opt model.onnx -o out.onnx --passes "fold-constants,cse,dce" --time-passes

Prints the node count before and after; ``--print-ir-after-all``,
``--print-ir-after-change``, ``--print-ir-before/--print-ir-after PASS``,
``--time-passes``, ``--pattern-stats``, ``--verify-each`` and
``--crash-reproducer PATH`` switch on the instruments of ``compiler.instruments``.
"""

from __future__ import annotations

import sys

from .diagnostics import EmberError


def add_parser(subparsers) -> None:
    """Register the ``opt`` subcommand."""
    p = subparsers.add_parser("opt", help="optimize a model with a pass pipeline (writes .ir or .onnx)")
    p.add_argument("model", nargs="?", help="input model (.ir, .onnx, .prototxt)")
    p.add_argument("-o", "--output", help="output file: .ir (text IR) or .onnx")
    p.add_argument(
        "-p",
        "--passes",
        default="O2",
        help="pipeline, e.g. 'fold-constants{max-bytes=4096},cse,dce' or a named one (O0..O3); default O2",
    )
    p.add_argument("--weights", help="Caffe .caffemodel for a .prototxt")
    p.add_argument("--input-shape", action="append", metavar="NAME=D1,D2,...")
    p.add_argument("--print-ir-after-all", action="store_true", help="print the IR after every pass")
    p.add_argument("--print-ir-after-change", action="store_true", help="print the IR after passes that changed it")
    p.add_argument("--print-ir-before", action="append", default=[], metavar="PASS")
    p.add_argument("--print-ir-after", action="append", default=[], metavar="PASS")
    p.add_argument("--time-passes", action="store_true", help="print a timing table")
    p.add_argument("--pattern-stats", action="store_true", help="print per-rule application counts")
    p.add_argument("--verify-each", action="store_true", help="verify the IR after every pass")
    p.add_argument("--crash-reproducer", metavar="PATH", help="if a pass fails, write its input IR and pipeline")
    p.add_argument("--list-passes", action="store_true", help="list the available passes and named pipelines")
    p.set_defaults(func=run)


def _list_passes() -> int:
    from .passes import available_passes
    from .pipeline import named_pipelines

    for name in available_passes():
        print(name)
    for name, text in sorted(named_pipelines().items()):
        print(f"{name} = {text or '(nothing)'}")
    return 0


def run(args) -> int:
    """Load, optimize, report node counts, write."""
    from . import instruments as inst
    from .cli import _load_from_args
    from .pipeline import PassManager

    if args.list_passes:
        return _list_passes()
    if not args.model:
        raise EmberError("ember opt needs a model file (or --list-passes)")
    pm_instruments: list = []
    timing = inst.Timing() if args.time_passes else None
    stats = inst.PatternStatistics() if args.pattern_stats else None
    if args.print_ir_after_all or args.print_ir_after_change or args.print_ir_before or args.print_ir_after:
        pm_instruments.append(
            inst.PrintIR(
                before=args.print_ir_before,
                after=args.print_ir_after,
                after_all=args.print_ir_after_all,
                after_change=args.print_ir_after_change,
            )
        )
    if args.crash_reproducer:
        pm_instruments.append(inst.CrashReproducer(args.crash_reproducer))
    pm_instruments += [i for i in (timing, stats) if i is not None]
    pm = PassManager(args.passes, pm_instruments, verify_each=args.verify_each or None)
    graph = _load_from_args(args)
    before = count_nodes(graph)
    result = pm.run(graph)
    after = count_nodes(graph)
    print(
        f"nodes: {before[0]} -> {after[0]} (constants: {before[1]} -> {after[1]}; "
        f"{'changed' if result.modified else 'unchanged'}; pipeline: {pm.pipeline_text or '(empty)'})"
    )
    if timing is not None:
        print(timing.report())
    if stats is not None:
        print(stats.report())
    if args.output:
        write_model(graph, args.output)
    return 0


def count_nodes(graph) -> tuple[int, int]:
    """(non-constant nodes, Constant nodes), nested graphs included: ONNX counts the first."""
    ops = [n.op for n in graph.walk()]
    constants = ops.count("Constant")
    return len(ops) - constants, constants


def write_model(graph, path: str) -> None:
    """Write ``graph`` as text IR (``.ir``) or ONNX (``.onnx``)."""
    if path.endswith(".ir"):
        from .ir.printer import save_ir

        save_ir(graph, path)
    elif path.endswith(".onnx"):
        import onnx

        from frontends.onnx.exporter import export_model

        onnx.save(export_model(graph), path)
    else:
        raise EmberError("output must end in .ir or .onnx", file=path)
    print(f"wrote {path}", file=sys.stderr)
