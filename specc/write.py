"""Stage 7: write generated files atomically inside the output directory, or compare with what is there."""

from __future__ import annotations

import difflib
import os
import tempfile
from pathlib import Path

from specc.errors import SourceLoc, SpecError


def _check_names(files: dict[str, str]) -> None:
    for name in files:
        if "/" in name or "\\" in name or name.startswith(".") or not name:
            raise ValueError(f"refusing to write {name!r}: generated files are plain names")


def write_files(out_dir: Path, files: dict[str, str]) -> list[Path]:
    """Write each file as temp-file + rename in `out_dir`; a reader never sees a partial file.

    Nothing outside `out_dir` is touched: names are plain file names, and a symlink planted at a
    target name is replaced by the new file (rename replaces the link, not what it points to).
    """
    _check_names(files)
    if out_dir.exists() and not out_dir.is_dir():
        raise SpecError("E401", f"output path {out_dir} exists and is not a directory", SourceLoc(str(out_dir)))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in sorted(files.items()):
        target = out_dir / name
        if target.is_dir() and not target.is_symlink():
            raise SpecError("E401", f"{target} is a directory", SourceLoc(str(target)))
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written.append(target)
    return written


def diff_files(out_dir: Path, files: dict[str, str]) -> str:
    """A unified diff from what is in `out_dir` to what a fresh build writes; empty if they agree."""
    _check_names(files)
    chunks = []
    for name, text in sorted(files.items()):
        target = out_dir / name
        try:
            current = target.read_text(encoding="utf-8") if target.is_file() else ""
        except (OSError, UnicodeDecodeError):
            current = ""
        if current != text:
            chunks += difflib.unified_diff(
                current.splitlines(keepends=True),
                text.splitlines(keepends=True),
                fromfile=f"{target} (on disk)" if target.exists() else f"{target} (missing)",
                tofile=f"{target} (fresh build)",
            )
    return "".join(chunks)
