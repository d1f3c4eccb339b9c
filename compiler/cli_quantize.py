"""``ember quantize``: calibrate a model on sample inputs and write it quantized (QDQ ONNX or .ir)."""

from __future__ import annotations

import sys


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("quantize", help="post-training int8 quantization (QDQ) with calibration")
    p.add_argument("model")
    p.add_argument("-o", "--output", required=True, help="OUT.onnx (QDQ) or OUT.ir")
    p.add_argument("--calibration", metavar="DIR", help="directory of .npz samples, each keyed by input name")
    p.add_argument("--method", default="minmax", choices=("minmax", "percentile", "entropy"))
    p.add_argument("--percentile", type=float, default=99.999, help="for --method percentile (default 99.999)")
    p.add_argument("--mode", default="static", choices=("static", "dynamic", "weight-only"))
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--per-channel",
        dest="per_channel",
        action="store_true",
        default=True,
        help="one weight scale per output channel (the default)",
    )
    group.add_argument("--per-tensor", dest="per_channel", action="store_false", help="one weight scale per tensor")
    p.add_argument("--exclude", default="", metavar="OP_OR_NODE,...", help="ops or node names to leave in float")
    p.add_argument("--format", choices=("qdq", "ir"), help="output format (default: from the -o suffix)")
    p.add_argument("--input-shape", action="append", metavar="NAME=D1,D2,...", help="pin an input's shape")
    p.add_argument("--weights", help="Caffe .caffemodel for a .prototxt")
    p.add_argument(
        "--library",
        nargs="?",
        const=True,
        metavar="PATH.so",
        help="calibrate through a library compiled with the calibrated tensors as outputs (kept at PATH if given)",
    )
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar on stderr")
    p.set_defaults(func=run)


def run(args) -> int:
    from .cli import _load_from_args
    from .cli_opt import write_model
    from .compression import load_samples, quantize_model
    from .diagnostics import EmberError

    fmt = args.format or ("ir" if args.output.endswith(".ir") else "qdq")
    if (fmt == "ir") != args.output.endswith(".ir"):
        raise EmberError(f"--format {fmt} does not match the output file {args.output}")
    graph = _load_from_args(args)
    samples = load_samples(args.calibration) if args.calibration else []
    report = quantize_model(
        graph,
        samples,
        method=args.method,
        mode=args.mode,
        per_channel=args.per_channel,
        exclude=[e.strip() for e in args.exclude.split(",") if e.strip()],
        percentile=args.percentile,
        progress=args.progress,
        library=args.library,
    )
    print(report.text(), file=sys.stderr)
    write_model(graph, args.output)
    return 0
