"""Diagnostics for people and machines: text, JSON, GitHub Actions annotations, SARIF 2.1.0."""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from specc import __version__
from specc.errors import ERROR_CODES, SpecError

FORMATS = ("text", "json", "github", "sarif")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


@dataclass(frozen=True)
class FileResult:
    """What checking one spec file found (no errors: it is fine)."""

    file: str
    errors: list[SpecError] = field(default_factory=list)


def render(results: Sequence[FileResult], fmt: str) -> tuple[str, str]:
    """(stdout, stderr) text for `results` in format `fmt`."""
    if fmt == "text":
        out = "".join(f"{r.file}: ok\n" for r in results if not r.errors)
        err = "".join(e.format() + "\n" for r in results for e in r.errors)
        return out, err
    if fmt == "json":
        return json.dumps(_json(results), indent=2) + "\n", ""
    if fmt == "github":
        return "".join(_github(e, r.file) + "\n" for r in results for e in r.errors), ""
    if fmt == "sarif":
        return json.dumps(_sarif(results), indent=2) + "\n", ""
    raise ValueError(f"unknown format {fmt!r}")


def _json(results: Sequence[FileResult]) -> dict[str, object]:
    return {
        "files": [{"file": r.file, "ok": not r.errors, "errors": [e.to_dict() for e in r.errors]} for r in results],
        "error_count": sum(len(r.errors) for r in results),
    }


def _escape_data(text: str) -> str:
    # https://github.com/actions/toolkit/blob/main/packages/core/src/command.ts (escapeData / escapeProperty)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _github(error: SpecError, file: str) -> str:
    loc = error.loc
    props = [f"file={_escape_property(loc.file if loc else file)}"]
    if loc:
        props += [f"line={loc.line}", f"col={loc.col}"]
    props.append(f"title={_escape_property(f'specc {error.code}')}")
    message = "\n".join(
        [error.message, *(f"note: {n}" for n in error.notes), *([f"hint: {error.hint}"] if error.hint else [])]
    )
    return f"::error {','.join(props)}::{_escape_data(message)}"


def _sarif(results: Sequence[FileResult]) -> dict[str, object]:
    used = sorted({e.code for r in results for e in r.errors})
    rules = [{"id": code, "shortDescription": {"text": ERROR_CODES[code]}} for code in used]
    sarif_results = []
    for r in results:
        for e in r.errors:
            text = e.message + (f" (hint: {e.hint})" if e.hint else "")
            location: dict[str, object] = {"artifactLocation": {"uri": (e.loc.file if e.loc else r.file)}}
            if e.loc:
                location["region"] = {"startLine": e.loc.line, "startColumn": e.loc.col}
            sarif_results.append(
                {
                    "ruleId": e.code,
                    "ruleIndex": used.index(e.code),
                    "level": "error",
                    "message": {"text": text},
                    "locations": [{"physicalLocation": location}],
                }
            )
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "specc",
                        "version": __version__,
                        "rules": rules,
                    }
                },
                "results": sarif_results,
            }
        ],
    }
