"""The `specc` command line. It only wires the stages together.

Exit codes: 0 success; 1 a spec error (or, for `build --check`, generated files that drift);
2 a usage error (and, for `build --check`, a spec error: 1 is reserved for drift there).
"""

from __future__ import annotations

import argparse
import glob
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from specc import __version__
from specc.errors import SourceLoc, SpecError, SpecErrors

EXIT_OK, EXIT_SPEC_ERROR, EXIT_USAGE = 0, 1, 2
EXIT_DRIFT = 1


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
    except BrokenPipeError:  # `specc graph ... | head`
        return EXIT_OK
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    from specc.graph import FORMATS as GRAPH_FORMATS
    from specc.report import FORMATS as REPORT_FORMATS

    parser = argparse.ArgumentParser(prog="specc", description="Compile neural-network specs to PyTorch code.")
    parser.add_argument("--version", action="version", version=f"specc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check specs; report every problem with file:line:col")
    p.add_argument("specs", nargs="+", help="spec files or glob patterns (quoted: 'specs/*.yaml')")
    p.add_argument("--format", choices=REPORT_FORMATS, default="text", help="text, json, github annotations, sarif")
    p.set_defaults(func=_validate)

    p = sub.add_parser("build", help="generate model.py (and dataset.py, train.py, MODEL.md) from specs")
    p.add_argument("specs", nargs="*", type=Path, help="spec files; none: every build in [tool.specc.builds]")
    p.add_argument("-o", "--output", type=Path, help="output directory (with several specs: their parent)")
    p.add_argument("--check", action="store_true", help="exit 1 with a diff if files on disk differ from a build")
    p.add_argument("--diff", action="store_true", help="print the diff against files on disk; write nothing")
    p.add_argument("--templates", type=Path, help="directory of template overrides (same file names win)")
    p.set_defaults(func=_build)

    p = sub.add_parser("summary", help="print layers, output shapes, parameters and MACs")
    p.add_argument("spec", type=Path)
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=_summary)

    p = sub.add_parser("graph", help="print the architecture as a Mermaid or Graphviz diagram")
    p.add_argument("spec", type=Path)
    p.add_argument("--format", choices=GRAPH_FORMATS, default="mermaid")
    p.add_argument("-o", "--output", type=Path, help="write to a file; .svg/.png/.pdf are rendered with Graphviz")
    p.set_defaults(func=_graph)

    p = sub.add_parser("verify", help="run the generated model (needs torch) and compare every shape with specc's")
    p.add_argument("spec", type=Path)
    p.set_defaults(func=_verify)

    p = sub.add_parser("new", help="start a spec from a bundled example")
    p.add_argument("path", type=Path, help="the spec file to create, e.g. my_net.yaml (class MyNet)")
    p.add_argument("--from", dest="template", default="lenet", help="bundled spec to start from (default: lenet)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=_new)

    p = sub.add_parser("schema", help="print the JSON Schema of spec files")
    p.set_defaults(func=_schema)
    return parser


def _expand(patterns: Sequence[str]) -> list[Path]:
    paths: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise SpecError("E001", f"no spec file matches {pattern!r}", SourceLoc(pattern))
        paths += [Path(m) for m in matches]
    return paths


def _validate(args: argparse.Namespace) -> int:
    from specc.compiler import analyze
    from specc.report import FileResult, render

    results = []
    for path in _expand(args.specs):
        try:
            analyze(path)
        except SpecErrors as exc:
            results.append(FileResult(str(path), exc.errors))
        else:
            results.append(FileResult(str(path)))
    out, err = render(results, args.format)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return EXIT_SPEC_ERROR if any(r.errors for r in results) else EXIT_OK


def _builds(args: argparse.Namespace) -> tuple[list[tuple[Path, Path]], Path | None]:
    """(spec, output directory) pairs from the command line or [tool.specc], and the templates directory."""
    from specc.config import load_config

    config = load_config(Path.cwd())
    templates = args.templates or config.templates
    if not args.specs:
        if not config.builds:
            raise SpecError(
                "E001", "no specs given and no [tool.specc.builds] in pyproject.toml", SourceLoc("<command line>")
            )
        return sorted(config.builds.items()), templates
    if len(args.specs) == 1:
        spec = args.specs[0]
        return [(spec, args.output or config.builds.get(spec.resolve()) or Path("build") / _dir_name(spec))], templates
    parent = args.output or Path("build")
    return [(spec, parent / _dir_name(spec)) for spec in args.specs], templates


def _dir_name(spec: Path) -> str:
    """The default output folder name for a spec: its stem, unless that could leave the parent (`...yaml`)."""
    stem = spec.stem
    return stem if stem not in ("", ".", "..") and "/" not in stem and "\\" not in stem else "model"


def _build(args: argparse.Namespace) -> int:
    from specc.compiler import analyze, generate
    from specc.write import diff_files, write_files

    pairs, templates = _builds(args)
    try:
        generated = [(out, generate(analyze(spec), str(out), templates=templates)) for spec, out in pairs]
    except SpecErrors as exc:
        print(exc.format(), file=sys.stderr)
        return EXIT_USAGE if args.check else EXIT_SPEC_ERROR
    if args.check or args.diff:
        drift = False
        for out, files in generated:
            diff = diff_files(out, files)
            if diff:
                drift = True
                sys.stdout.write(diff)
            elif args.check:
                print(f"{out}: up to date", file=sys.stderr)
        if drift and args.check:
            print("generated files differ from a fresh build; run `specc build` to update them", file=sys.stderr)
            return EXIT_DRIFT
        return EXIT_OK
    for out, files in generated:
        for path in write_files(out, files):
            print(f"wrote {path}")
    return EXIT_OK


def _summary(args: argparse.Namespace) -> int:
    from specc.compiler import analyze
    from specc.summary import summary_dict, summary_text

    compiled = analyze(args.spec)
    trainable = compiled.transfer.trainable_params
    if args.format == "json":
        print(json.dumps(summary_dict(compiled.graph, trainable), indent=2))
    else:
        print(summary_text(compiled.graph, trainable), end="")
    return EXIT_OK


RENDERED = {".svg": "svg", ".png": "png", ".pdf": "pdf"}


def _graph(args: argparse.Namespace) -> int:
    from specc.compiler import analyze
    from specc.graph import diagram, to_dot, to_mermaid

    graph = analyze(args.spec).graph
    d = diagram(graph)
    output: Path | None = args.output
    if output is not None and output.suffix.lower() in RENDERED:
        dot = shutil.which("dot")
        if dot is None:
            print(
                f"specc: rendering {output.suffix} needs Graphviz's `dot` program, which is not installed"
                " (apt install graphviz, brew install graphviz); `--format dot` prints the source instead",
                file=sys.stderr,
            )
            return EXIT_USAGE
        result = subprocess.run(
            [dot, f"-T{RENDERED[output.suffix.lower()]}", "-o", str(output)],
            input=to_dot(d, graph.name),
            text=True,
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            print(f"specc: dot failed: {result.stderr.strip()}", file=sys.stderr)
            return EXIT_USAGE
        print(f"wrote {output}")
        return EXIT_OK
    text = to_mermaid(d) if args.format == "mermaid" else to_dot(d, graph.name)
    if output is None:
        sys.stdout.write(text)
    else:
        from specc.write import write_files

        write_files(output.parent, {output.name: text})
        print(f"wrote {output}")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from specc.verify import verify_command

    return verify_command(args.spec)


def _new(args: argparse.Namespace) -> int:
    from specc.scaffold import scaffold
    from specc.write import write_files

    path: Path = args.path if args.path.suffix in (".yaml", ".yml") else args.path.with_suffix(".yaml")
    files = scaffold(path.name, args.template)
    if path.exists() and not args.force:
        print(f"specc: {path} exists; use --force to overwrite it", file=sys.stderr)
        return EXIT_USAGE
    for written in write_files(path.parent, files):
        print(f"wrote {written}")
    return EXIT_OK


def _schema(args: argparse.Namespace) -> int:
    from specc.spec.document import json_schema

    print(json.dumps(json_schema(), indent=2, sort_keys=True))
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
