"""The ``ember`` command line.

Subcommands live in small modules, each with ``add_parser(subparsers)`` that
registers its parser and sets ``func``; this file only collects them and turns
every user-facing error into one clear line and a non-zero exit.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

import numpy as np

from . import __version__
from .diagnostics import EmberError

# Modules that contribute subcommands (missing ones are skipped).
SUBCOMMAND_MODULES = ("compiler.cli_opt", "compiler.cli_quantize", "codegen.cli", "compiler.tune")


def load_model(path: str, **kw):
    """Any model Ember reads (.ir, .onnx, .prototxt), as a Graph."""
    if not os.path.exists(path):
        raise EmberError("no such file", file=path)
    if path.endswith(".ir"):
        from .ir.parser import load_ir

        return load_ir(path)
    try:
        from frontends import load_model as frontend_load
    except ImportError:
        raise EmberError("no frontend is installed for this kind of file", file=path) from None
    return frontend_load(path, **kw)


def _parse_input_shapes(items: list[str] | None) -> dict[str, list] | None:
    if not items:
        return None
    shapes = {}
    for item in items:
        name, sep, dims = item.partition("=")
        if not sep:
            raise EmberError(f"--input-shape expects NAME=d1,d2,..., got '{item}'")
        shapes[name] = [int(d) if d.strip().lstrip("-").isdigit() else d.strip() for d in dims.split(",") if d]
    return shapes


def _load_from_args(args):
    kw = {}
    shapes = _parse_input_shapes(getattr(args, "input_shape", None))
    if shapes:
        kw["input_shapes"] = shapes
    if getattr(args, "weights", None):
        kw["weights"] = args.weights
    return load_model(args.model, **kw)


def cmd_show(args) -> int:
    from .ir.printer import print_ir

    graph = _load_from_args(args)
    if args.verify:
        from .ir.verifier import verify

        verify(graph)
    sys.stdout.write(print_ir(graph))
    return 0


def cmd_ops(args) -> int:
    from .ops import all_ops

    for op in all_ops():
        if args.verbose:
            traits = ",".join(sorted(t.value for t in op.traits))
            print(f"{op.name}\t{op.family}\t[{traits}]\t{op.doc[:80]}")
        else:
            print(op.name)
    return 0


def read_inputs(items: list[str] | None) -> dict[str, np.ndarray]:
    """Parse ``NAME=file.npy`` arguments."""
    inputs = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep:
            raise EmberError(f"--input expects NAME=file.npy, got '{item}'")
        if not os.path.exists(path):
            raise EmberError("no such input file", file=path)
        try:
            inputs[name] = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise EmberError(f"cannot read input '{name}': {exc}", file=path) from None
    return inputs


def write_outputs(outputs: dict, out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    for i, (name, value) in enumerate(outputs.items()):
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name) or f"output{i}"
        path = os.path.join(out_dir, f"{safe}.npy")
        np.save(path, np.asarray(value))
        arr = np.asarray(value)
        print(f"{name}: {arr.dtype}{list(arr.shape)} -> {path}")


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30}
_UNITS.update({"t": 1 << 40, "tib": 1 << 40})


def parse_bytes(text: str) -> int:
    """``"16GiB"``, ``"512M"``, ``"1048576"`` -> bytes (binary units); ValueError otherwise."""
    import re

    m = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS or int(m.group(1)) <= 0:
        raise ValueError(f"'{text}' is not a positive size (examples: 1048576, 512MiB, 16GiB)")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


parse_bytes.__name__ = "size"  # argparse: "invalid size value: ..."


def cmd_run(args) -> int:
    inputs = read_inputs(args.input)
    if args.model.endswith(".so"):
        from .runtime import load

        outputs = load(args.model).run(inputs)
    else:
        from .ir.interpreter import interpret

        graph = _load_from_args(args)
        outputs = interpret(
            graph, inputs, max_loop_iterations=args.max_loop_iterations, max_tensor_bytes=args.max_tensor_bytes
        )
    write_outputs(outputs, args.output_dir)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ember", description="Ember: compile ONNX and Caffe models to dependency-free shared libraries."
    )
    parser.add_argument("--version", action="version", version=f"ember {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("show", help="print the IR of a model (.ir, .onnx, .prototxt)")
    p.add_argument("model")
    p.add_argument("--weights", help="Caffe .caffemodel for a .prototxt")
    p.add_argument("--input-shape", action="append", metavar="NAME=D1,D2,...", help="pin an input's shape")
    p.add_argument("--verify", action="store_true", help="verify the IR before printing")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("ops", help="list the registered ops, one per line")
    p.add_argument("-v", "--verbose", action="store_true", help="also print family, traits and a summary")
    p.set_defaults(func=cmd_ops)

    p = sub.add_parser("run", help="run a model (interpreter) or a compiled .so on .npy inputs")
    p.add_argument("model")
    p.add_argument("--input", action="append", metavar="NAME=FILE.npy")
    p.add_argument("--weights", help="Caffe .caffemodel for a .prototxt")
    p.add_argument("--input-shape", action="append", metavar="NAME=D1,D2,...")
    p.add_argument("-o", "--output-dir", default=".", help="where to write OUTPUT.npy files")
    p.add_argument(
        "--max-loop-iterations",
        type=int,
        default=None,
        help="stop a Loop after this many iterations (default: $EMBER_MAX_LOOP_ITERATIONS or 1000000)",
    )
    p.add_argument(
        "--max-tensor-bytes",
        type=parse_bytes,
        default=None,
        metavar="N[KiB|MiB|GiB|TiB]",
        help="refuse a node whose result is larger (default: $EMBER_MAX_TENSOR_BYTES or 16GiB)",
    )
    p.set_defaults(func=cmd_run)

    for module in SUBCOMMAND_MODULES:
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            if exc.name and module.startswith(exc.name):
                continue
            raise
        mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("ember: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # every error reaches the user as one clear message
        return report_error(exc)


def report_error(exc: Exception) -> int:
    from .ir.interpreter import InterpreterError
    from .ir.parser import ParseError
    from .ir.verifier import VerifyError

    known = (EmberError, ParseError, VerifyError, InterpreterError, OSError)
    if isinstance(exc, known):
        print(f"ember: error: {exc}", file=sys.stderr)
        return 1
    if os.environ.get("EMBER_TRACEBACK"):
        raise exc
    print(
        f"ember: internal error: {type(exc).__name__}: {exc}\n"
        "  (this is a bug in Ember; set EMBER_TRACEBACK=1 for the traceback)",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
