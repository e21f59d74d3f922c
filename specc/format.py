"""Stage 6: format generated Python with black (pinned in pyproject.toml), in-process."""

from __future__ import annotations

import black

LINE_LENGTH = 100


def format_python(source: str) -> str:
    """Black-formatted `source`. Raises ValueError if the source is not valid Python (a compiler bug)."""
    mode = black.Mode(target_versions={black.TargetVersion.PY310}, line_length=LINE_LENGTH)
    try:
        return black.format_str(source, mode=mode)
    except black.InvalidInput as exc:
        raise ValueError(f"generated code is not valid Python: {exc}\n{source}") from exc
