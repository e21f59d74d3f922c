"""Project configuration: `[tool.specc]` in the nearest pyproject.toml.

    [tool.specc]
    templates = "specc_templates"          # optional: a directory of template overrides

    [tool.specc.builds]                    # spec -> output directory, for `specc build [--check]`
    "specs/lenet.yaml" = "models/lenet"

Paths are relative to the pyproject.toml that declares them.
"""

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from specc.errors import SourceLoc, SpecError


@dataclass(frozen=True)
class Config:
    root: Path | None = None  # the directory of the pyproject.toml, if one declared [tool.specc]
    builds: dict[Path, Path] = field(default_factory=dict)
    templates: Path | None = None


def find_pyproject(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_config(start: Path) -> Config:
    """The `[tool.specc]` table of the nearest pyproject.toml at or above `start` (empty if none)."""
    path = find_pyproject(start.resolve())
    if path is None:
        return Config()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SpecError("E001", f"cannot read {path.name}: {exc}", SourceLoc(str(path))) from None
    table: Any = data.get("tool", {}).get("specc")
    if table is None:
        return Config()
    root = path.parent
    loc = SourceLoc(str(path))
    if not isinstance(table, dict) or set(table) - {"builds", "templates"}:
        raise SpecError("E101", "[tool.specc] takes `builds` and `templates`", loc)
    builds = table.get("builds", {})
    if not isinstance(builds, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in builds.items()):
        raise SpecError("E102", "[tool.specc.builds] maps spec paths to output directories (strings)", loc)
    templates = table.get("templates")
    if templates is not None and not isinstance(templates, str):
        raise SpecError("E102", "[tool.specc] templates must be a directory path (a string)", loc)
    outputs = {root / spec: root / out for spec, out in builds.items()}
    for out in outputs.values():
        # A pyproject.toml can arrive in a pull request: its builds may only write inside the project.
        resolved = out.resolve()
        if resolved == root.resolve() or not resolved.is_relative_to(root.resolve()):
            raise SpecError("E401", f"[tool.specc.builds] output {str(out)!r} is not inside the project", loc)
    return Config(
        root=root,
        builds=outputs,
        templates=root / templates if templates else None,
    )
