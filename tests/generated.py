"""Helpers for tests that build specs and import the generated code."""

from __future__ import annotations

import importlib.util
import inspect
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

from specc.compiler import analyze, generate
from specc.write import write_files

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))


def build(spec: Path, out_dir: Path) -> Path:
    """Compile `spec` into `out_dir` as `specc build` does; returns `out_dir`."""
    write_files(out_dir, generate(analyze(spec), out_dir.name))
    return out_dir


def build_text(text: str, tmp_path: Path, name: str = "spec.yaml") -> Path:
    spec = tmp_path / name
    spec.write_text(text, encoding="utf-8")
    return build(spec, tmp_path / "out")


def fresh_model(module: ModuleType) -> Any:
    """`module.build_model()` with random initialisation (no pretrained-weight download, even if the spec asks)."""
    if "pretrained" in inspect.signature(module.build_model).parameters:
        return module.build_model(pretrained=False)
    return module.build_model()


def import_generated(out_dir: Path, module: str = "model") -> ModuleType:
    """Import a generated file under a unique name, with its directory importable (for sibling imports)."""
    path = out_dir / f"{module}.py"
    unique = f"_specc_generated_{module}_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(unique, path)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[unique] = loaded
    spec.loader.exec_module(loaded)
    return loaded
