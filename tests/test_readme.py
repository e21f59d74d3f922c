"""The README's examples are real: its spec builds and runs, its diagnostics are what specc prints."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from tests.generated import ROOT, build_text, import_generated

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_readme_spec_builds_and_runs(tmp_path: Path) -> None:
    spec = _blocks("yaml")[0]
    module = import_generated(build_text(spec, tmp_path))
    out = module.build_model()(*module.example_inputs(2))
    assert out.shape == torch.Size([2, 10])


def test_readme_diagnostic_matches_corpus() -> None:
    expected = (ROOT / "tests" / "invalid" / "mnist_cnn_wrong_flatten.expected").read_text(encoding="utf-8")
    assert expected.strip() in README


def test_readme_commands_match_ci() -> None:
    ci_command = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert ci_command in _blocks("bash")[1]
