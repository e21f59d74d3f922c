"""Whole-file goldens: every example spec's generated files, compared byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from specc.compiler import analyze, generate
from tests.generated import ROOT, SPECS

GOLDEN = ROOT / "tests" / "golden"
REGENERATE = "python scripts/regen_goldens.py"


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_generated_files_match_golden(spec: Path) -> None:
    golden_dir = GOLDEN / spec.stem
    files = generate(analyze(spec), golden_dir.name)
    on_disk = {p.name for p in golden_dir.iterdir()} if golden_dir.is_dir() else set()
    assert on_disk == set(files), f"golden files for {spec.name} differ; if intended, run: {REGENERATE}"
    for name, text in files.items():
        expected = (golden_dir / name).read_text(encoding="utf-8")
        assert text == expected, f"{spec.stem}/{name} drifted from its golden; if intended, run: {REGENERATE}"


def test_every_golden_has_a_spec() -> None:
    stale = {p.name for p in GOLDEN.iterdir() if p.is_dir()} - {s.stem for s in SPECS}
    assert not stale, f"golden directories without a spec: {sorted(stale)}; run: {REGENERATE}"


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_build_is_deterministic(spec: Path) -> None:
    first = generate(analyze(spec), "out")
    second = generate(analyze(spec), "out")
    assert first == second
