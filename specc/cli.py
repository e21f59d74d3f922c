"""The `specc` command line. It only wires the stages together."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from specc import __version__
from specc.errors import SpecError, SpecErrors

EXIT_OK, EXIT_SPEC_ERROR, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except SpecErrors as exc:
        print(exc.format(), file=sys.stderr)
        return EXIT_SPEC_ERROR
    except SpecError as exc:
        print(exc.format(), file=sys.stderr)
        return EXIT_SPEC_ERROR
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="specc", description="Compile neural-network specs to PyTorch code.")
    parser.add_argument("--version", action="version", version=f"specc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check specs; print file:line:col diagnostics")
    p.add_argument("specs", nargs="+", type=Path)
    p.set_defaults(func=_validate)

    p = sub.add_parser("build", help="generate model.py from a spec")
    p.add_argument("spec", type=Path)
    p.add_argument("-o", "--output", type=Path, help="output directory (default: build/<spec name>)")
    p.set_defaults(func=_build)

    p = sub.add_parser("summary", help="print layers, output shapes, parameters and MACs")
    p.add_argument("spec", type=Path)
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=_summary)

    p = sub.add_parser("schema", help="print the JSON Schema of spec files")
    p.set_defaults(func=_schema)
    return parser


def _validate(args: argparse.Namespace) -> int:
    from specc.compiler import analyze

    failed = False
    for path in args.specs:
        try:
            analyze(path)
        except SpecErrors as exc:
            print(exc.format(), file=sys.stderr)
            failed = True
        else:
            print(f"{path}: ok")
    return EXIT_SPEC_ERROR if failed else EXIT_OK


def _build(args: argparse.Namespace) -> int:
    from specc.compiler import analyze, generate
    from specc.write import write_files

    compiled = analyze(args.spec)
    out_dir = args.output or Path("build") / args.spec.stem
    files = generate(compiled, str(out_dir))
    for path in write_files(out_dir, files):
        print(f"wrote {path}")
    return EXIT_OK


def _summary(args: argparse.Namespace) -> int:
    from specc.compiler import analyze
    from specc.summary import summary_dict, summary_text

    graph = analyze(args.spec).graph
    if args.format == "json":
        print(json.dumps(summary_dict(graph), indent=2))
    else:
        print(summary_text(graph), end="")
    return EXIT_OK


def _schema(args: argparse.Namespace) -> int:
    from specc.spec.document import json_schema

    print(json.dumps(json_schema(), indent=2, sort_keys=True))
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
