"""Diagnostics: every problem with a spec becomes a located `SpecError`, never a traceback."""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

# Stable error codes. Documented in docs/errors.md; a test keeps that file in sync.
ERROR_CODES: dict[str, str] = {
    "E001": "the spec file cannot be read",
    "E002": "the spec file is larger than the size limit",
    "E003": "the spec file is not valid UTF-8",
    "E004": "YAML or JSON syntax error",
    "E005": "duplicate key in a mapping",
    "E006": "YAML anchors and aliases are not allowed",
    "E007": "nesting deeper than the limit",
    "E008": "YAML tag not allowed",
    "E009": "NaN or infinity is not allowed",
    "E010": "integer out of range",
    "E011": "the file holds no document, or more than one",
    "E101": "unknown key",
    "E102": "wrong type",
    "E103": "missing required key",
    "E104": "value out of range or not allowed",
    "E105": "unknown layer type",
    "E106": "invalid name",
    "E107": "duplicate name (two nodes, or two classes)",
    "E108": "reference to an unknown node",
    "E109": "unknown block",
    "E110": "block used recursively",
    "E111": "`extends` names no bundled spec",
    "E112": "a parameter-name pattern matches no parameter",
    "E201": "a declared size disagrees with the inferred one",
    "E202": "impossible shape or memory use (non-positive size, kernel larger than its input, unsafe in-place op)",
    "E203": "input has the wrong rank",
    "E204": "inputs of a merge have incompatible shapes",
    "E205": "input has the wrong dtype",
    "E206": "wrong number of inputs",
    "E207": "tied weights differ in shape, or a tie names a layer without a weight",
    "E301": "expression syntax not allowed",
    "E302": "unknown name in an expression",
    "E303": "expression cannot be evaluated",
    "E401": "output path is not allowed",
}


@dataclass(frozen=True, order=True)
class SourceLoc:
    """A position in a spec file; line and column are 1-based."""

    file: str
    line: int = 1
    col: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass
class SpecError(Exception):
    """A problem with a spec, with where it is and what to do about it."""

    code: str
    message: str
    loc: SourceLoc | None = None
    hint: str | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.code not in ERROR_CODES:
            raise ValueError(f"unregistered error code {self.code}")
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.format()

    def format(self) -> str:
        where = f"{printable(str(self.loc))}: " if self.loc else ""
        lines = [f"{where}error[{self.code}]: {printable(self.message)}"]
        lines += [f"  note: {printable(note)}" for note in self.notes]
        if self.hint:
            lines.append(f"  hint: {printable(self.hint)}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.message,
            "file": self.loc.file if self.loc else None,
            "line": self.loc.line if self.loc else None,
            "col": self.loc.col if self.loc else None,
            "hint": self.hint,
            "notes": list(self.notes),
        }


# A spec with 10,000 mistakes is one mistake repeated: the first hundred say it, the rest would bury the log.
MAX_REPORTED_ERRORS = 100


class SpecErrors(Exception):
    """Several spec errors found in one pass (validation reports all of them, not only the first),
    in file order; past MAX_REPORTED_ERRORS the last one reported notes how many more there are."""

    def __init__(self, errors: Iterable[SpecError]) -> None:
        ordered = sorted(errors, key=lambda e: (e.loc or SourceLoc(""), e.code))
        self.errors = ordered[:MAX_REPORTED_ERRORS]
        if len(ordered) > MAX_REPORTED_ERRORS:
            last = self.errors[-1]
            more = len(ordered) - MAX_REPORTED_ERRORS
            plural = "s" if more > 1 else ""
            note = f"{more:,} more error{plural} not shown (specc reports the first {MAX_REPORTED_ERRORS})"
            self.errors[-1] = replace(last, notes=[*last.notes, note])
        super().__init__(self.format())

    def format(self) -> str:
        return "\n".join(e.format() for e in self.errors)


def printable(text: str) -> str:
    """Spec text as it may reach a terminal or CI log: control, line-separator and bidi characters are
    escaped, so a spec cannot forge a diagnostic line or reorder what the reader sees."""
    out = []
    for ch in text:
        category = unicodedata.category(ch)
        if category in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
            out.append(ch.encode("unicode_escape").decode("ascii") if ord(ch) < 0x10000 else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    return "".join(out)


def did_you_mean(word: str, choices: Sequence[str]) -> str | None:
    """A hint naming the closest known choice, or None if nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        match = lowered.get(word.lower().replace("-", "_"))
        close = [match] if match else []
    return f"did you mean `{close[0]}`?" if close else None
