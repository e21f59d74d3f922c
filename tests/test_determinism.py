"""The same spec gives byte-identical output whatever the hash seed, working directory and locale.

`specc build` runs three times in subprocesses, each with another PYTHONHASHSEED (0, a fixed number,
random), another working directory (so the spec paths given differ: absolute, relative, relative from
deeper), and another locale and environment (C, C.UTF-8 with a time zone, POSIX without UTF-8 mode).
Every generated file, its bytes and its permissions, must be the same.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Specs that exercise every generator: data and train sections, transfer learning with `extends`, blocks
# with symbolic sizes, several classes of one block, attention, several inputs; and a spec of non-ASCII text.
SPECS = ["lenet", "resnet18_finetune", "char_gpt", "googlenet", "transformer", "resnet50"]
UNICODE_SPEC = """\
name: Unicode
description: "ünïcødé ✓ – 漢字 🚀 \\u2028 \\u202e"
input: {shape: [2]}
layers:
  - {op: linear, out_features: 2, name: fc}
pretrained: {file: "weights/modèle ✓.pt", exclude: ["fc.*"]}
data:
  root: "données/ü"
  source: {type: csv, train: "entraînement ✓.csv", label: "étiquette", features: ["α", "β"], classes: ["oui", "non"]}
train:
  output_dir: "runs/ü ✓"
"""
CONFIGS = [
    {"PYTHONHASHSEED": "0", "LC_ALL": "C", "LANG": "C"},
    {"PYTHONHASHSEED": "4242", "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "TZ": "Asia/Kathmandu"},
    {"PYTHONHASHSEED": "random", "LC_ALL": "POSIX", "LANG": "POSIX", "PYTHONUTF8": "0", "PYTHONIOENCODING": "latin-1"},
]


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(directory)): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, tuple[bytes, int]]]:
    root = tmp_path_factory.mktemp("determinism")
    unicode_spec = root / "unicode.yaml"
    unicode_spec.write_text(UNICODE_SPEC, encoding="utf-8")
    specs = [ROOT / "specs" / f"{name}.yaml" for name in SPECS] + [unicode_spec]
    results = []
    for index, config in enumerate(CONFIGS):
        cwd = root / f"cwd{index}" / ("deeper/still" if index == 2 else "")
        cwd.mkdir(parents=True, exist_ok=True)
        # Spec paths as a user might type them: absolute, relative, relative from deeper down.
        paths = [str(s) if index == 0 else os.path.relpath(s, cwd) for s in specs]
        out = root / f"out{index}"
        env = {key: value for key, value in os.environ.items() if not key.startswith(("LC_", "PYTHONHASH"))}
        env.update(config)
        result = subprocess.run(
            [sys.executable, "-m", "specc", "build", *paths, "-o", os.path.relpath(out, cwd)],
            cwd=cwd,
            env=env,
            capture_output=True,
            check=False,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
        results.append(snapshot(out))
    return results


def test_every_spec_was_built(builds: list[dict[str, tuple[bytes, int]]]) -> None:
    built = {name.split(os.sep)[0] for name in builds[0]}
    assert built == {*SPECS, "unicode"}
    assert {"unicode/model.py", "unicode/dataset.py", "unicode/train.py", "unicode/MODEL.md"} <= set(builds[0])


@pytest.mark.parametrize("index", range(1, len(CONFIGS)))
def test_output_is_byte_identical(builds: list[dict[str, tuple[bytes, int]]], index: int) -> None:
    first, other = builds[0], builds[index]
    assert sorted(first) == sorted(other)
    differing = [name for name in first if first[name] != other[name]]
    assert not differing, f"configuration {CONFIGS[index]} changed {differing}"


def test_building_twice_in_one_process_gives_the_same_text(tmp_path: Path) -> None:
    from specc.compiler import analyze, generate

    spec = tmp_path / "unicode.yaml"
    spec.write_text(UNICODE_SPEC, encoding="utf-8")
    assert generate(analyze(spec), "out") == generate(analyze(spec), "out")
