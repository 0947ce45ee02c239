"""The ``inceptdsl`` command line (see docs/cli.md).

Exit codes: 0 success, 1 the spec is invalid (or a check failed), 2 bad usage. Spec errors
go to stderr as ``PATH:LINE:COL: error: MESSAGE`` with the source line and a caret.
``check``, ``summary``, ``render``, ``list`` and ``fmt`` never import torch or jax;
``weights from-keras`` imports keras only for a ``.keras`` file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from .errors import SpecError, UsageError
from .ops import fmt_shape

EXIT_OK, EXIT_SPEC, EXIT_USAGE = 0, 1, 2


def emit(text: str, stream: TextIO | None = None) -> None:
    """Print ``text`` and a newline; a reader that went away (``| head``, ``2>&1 | true``)
    silences the stream but changes no exit code: an invalid spec still exits 1."""
    stream = stream or sys.stdout
    try:
        print(text, file=stream)
        stream.flush()
    except BrokenPipeError:
        _silence(stream)


def _silence(stream: TextIO) -> None:
    """Point a stream whose pipe is closed at /dev/null, so that exiting does not fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (tests): nothing to do
        pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 on usage errors; keep that
        emit(self.format_usage().rstrip("\n"), sys.stderr)
        emit(f"inceptdsl: error: {message}", sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _depth(text: str) -> int:
    """``--depth N``: a whole number of block levels, at least 1."""
    try:
        depth = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, found '{text}'") from None
    if depth < 1:
        raise argparse.ArgumentTypeError(f"the depth must be at least 1 (found {depth})")
    return depth


def _add_set(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V",
                   help="override a parameter, the input ([C,H,W]) or a knob (width); "
                        "the value is YAML, e.g. --set input=[3,224,224]")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="inceptdsl", description="Declarative architecture compiler for "
                     "convolutional networks.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"inceptdsl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("list", help="list the shipped specs")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("check", help="validate specs")
    p.add_argument("specs", nargs="+", metavar="SPEC")
    _add_set(p)

    p = sub.add_parser("summary", help="shapes and exact costs")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--depth", type=_depth, default=1)
    p.add_argument("--json", action="store_true")
    _add_set(p)

    p = sub.add_parser("compile", help="generate PyTorch or Flax source, or an ONNX model")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--backend", required=True, choices=["torch", "flax", "onnx"])
    p.add_argument("-o", "--output", metavar="FILE")
    p.add_argument("--optimize", choices=["inference"])
    p.add_argument("--weights", metavar="FILE", help="onnx: initializers from a state_dict "
                   "(.safetensors or .npz, keys as the torch model's); default: seeded init")
    _add_set(p)

    p = sub.add_parser("render", help="draw the architecture (svg, png, pdf, dot) or write "
                       "an interactive page (html)")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("-o", "--output", required=True, metavar="FILE")
    p.add_argument("--depth", type=_depth, default=None)
    _add_set(p)

    p = sub.add_parser("fmt", help="convert between YAML and the text DSL")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--to", required=True, choices=["yaml", "dsl"])
    p.add_argument("-o", "--output", metavar="FILE")

    p = sub.add_parser("diff", help="per-block params and MACs deltas between two specs")
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    p.add_argument("--depth", type=_depth, default=1)
    p.add_argument("--json", action="store_true")
    _add_set(p)

    sub.add_parser("schema", help="JSON Schema of the YAML format")

    p = sub.add_parser("weights", help="import weights from another framework")
    how = p.add_subparsers(dest="weights_command", required=True, parser_class=_Parser)
    k = how.add_parser("from-keras", help="a Keras model's weights as the spec's state_dict")
    k.add_argument("source", metavar="FILE", help="a .keras or .weights.h5 file")
    k.add_argument("--spec", required=True, metavar="SPEC")
    k.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="OUT.safetensors or OUT.npz (PyTorch layouts and keys)")
    _add_set(k)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except UsageError as exc:
        emit(exc.render(), sys.stderr)
        return EXIT_USAGE
    except SpecError as exc:
        emit(exc.render(), sys.stderr)
        return EXIT_SPEC
    except BrokenPipeError:  # the reader of stdout went away after everything was valid
        _silence(sys.stdout)
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
    except RecursionError:
        emit("inceptdsl: error: the spec is nested too deeply", sys.stderr)
        return EXIT_SPEC
    except MemoryError:
        emit("inceptdsl: error: out of memory (the spec is too large)", sys.stderr)
        return EXIT_SPEC
    except Exception as exc:  # a bug in inceptdsl: say so in one line, never a traceback
        emit(f"inceptdsl: internal error: {type(exc).__name__}: {exc} (please report this "
             "with the spec that caused it)", sys.stderr)
        return EXIT_SPEC


def _load(ref: str, overrides: list[str]):
    from .loader import load, parse_overrides

    return load(ref, parse_overrides(overrides))


def cmd_list(args: argparse.Namespace) -> int:
    from .catalog import catalog

    entries = catalog()
    if args.json:
        emit(json.dumps(entries, indent=2))
        return EXIT_OK
    width = max(len(e["name"]) for e in entries)
    for e in entries:
        alias = f"  (also: {', '.join(e['aliases'])})" if e["aliases"] else ""
        emit(f"{e['name']:<{width}}  {e['params']:>11,} params  {e['macs'] / 1e9:6.2f} GMACs"
             f"  {fmt_shape(e['input'])}  {e['description']}{alias}")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from .pipeline import check

    status = EXIT_OK
    for ref in args.specs:
        try:
            spec = _load(ref, args.overrides)
            report = check(spec)
        except UsageError:
            raise
        except SpecError as exc:  # SpecErrors (several at once) is one too
            emit(exc.render(), sys.stderr)
            status = EXIT_SPEC
            continue
        emit(f"{ref}: ok ({report.name}: {report.params:,} params, "
             f"output {fmt_shape(report.output)})")
        if spec.variant is not None:
            emit(f"  extends {spec.variant.parent}: {spec.variant.describe()}")
    return status


def cmd_summary(args: argparse.Namespace) -> int:
    from .analysis import table
    from .pipeline import analyze

    report = analyze(_load(args.spec, args.overrides), depth=args.depth)
    emit(json.dumps(report.to_json(), indent=2) if args.json else table(report))
    return EXIT_OK


def cmd_compile(args: argparse.Namespace) -> int:
    from .fileio import STDOUT, write_output
    from .pipeline import compile_source

    spec = _load(args.spec, args.overrides)
    code = compile_source(spec, args.backend, optimize=args.optimize, weights=args.weights)
    write_output(args.output or STDOUT, code,
                 protect=[p for p in (spec.path, args.weights) if p])
    return EXIT_OK


def cmd_render(args: argparse.Namespace) -> int:
    from .page import render_any

    spec = _load(args.spec, args.overrides)
    render_any(spec, Path(args.output), depth=args.depth)
    return EXIT_OK


def cmd_fmt(args: argparse.Namespace) -> int:
    from .fileio import STDOUT, write_output
    from .fmt import check_output_suffix, format_file
    from .loader import find

    if args.output:
        check_output_suffix(args.output, args.to)
    text = format_file(args.spec, args.to)
    write_output(args.output or STDOUT, text, protect=[str(find(args.spec))])
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    from .diff import diff_reports, diff_table

    result = diff_reports(_load(args.a, args.overrides), _load(args.b, args.overrides),
                          depth=args.depth)
    emit(json.dumps(result, indent=2) if args.json else diff_table(result))
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from .schema import json_schema

    emit(json.dumps(json_schema(), indent=2))
    return EXIT_OK


def cmd_weights(args: argparse.Namespace) -> int:
    """``weights from-keras FILE --spec S -o OUT``: all or nothing, OUT is never partial."""
    from .fileio import write_output
    from .weights import KerasImportError, from_keras, state_dict_bytes

    source, output = Path(args.source), Path(args.output)
    if not source.is_file():
        raise UsageError(f"{source}: no such file")
    if not source.name.endswith((".keras", ".weights.h5")):
        raise UsageError(f"{source}: expected a .keras or .weights.h5 file")
    if output.suffix not in (".safetensors", ".npz"):
        raise UsageError(f"{output}: the output must end in .safetensors or .npz")
    spec = _load(args.spec, args.overrides)
    try:
        state = from_keras(source, spec)
    except KerasImportError as exc:
        emit(f"inceptdsl: error: {source}: {exc}", sys.stderr)
        return EXIT_SPEC
    except ModuleNotFoundError as exc:
        raise UsageError(f"reading {source} needs '{exc.name}' (pip install keras)") from None
    write_output(output, state_dict_bytes(state, output.suffix), protect=[str(source)])
    emit(f"{output}: {len(state)} tensors for '{spec.name}' from {source}")
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "list": cmd_list, "check": cmd_check, "summary": cmd_summary, "compile": cmd_compile,
    "render": cmd_render, "fmt": cmd_fmt, "diff": cmd_diff, "schema": cmd_schema,
    "weights": cmd_weights,
}


if __name__ == "__main__":
    raise SystemExit(main())
