"""The command line, run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from specc.cli import main
from tests.generated import ROOT, SPECS

LENET = ROOT / "specs" / "lenet.yaml"


def run(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "specc", *args], cwd=cwd, capture_output=True, text=True, env=env, check=False
    )


def test_validate_all_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", *map(str, SPECS)]) == 0
    assert capsys.readouterr().out.count(": ok") == len(SPECS)


def test_misspelled_layer_is_located_with_did_you_mean(tmp_path: Path) -> None:
    text = LENET.read_text().replace("{op: tanh, name: act2}", "{op: tahn, name: act2}")
    spec = tmp_path / "lenet.yaml"
    spec.write_text(text)
    line = next(i for i, s in enumerate(text.splitlines(), 1) if "tahn" in s)
    col = text.splitlines()[line - 1].index("tahn") + 1
    result = run("validate", str(spec))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{spec}:{line}:{col}: error[E105]: unknown layer type `tahn`",
        "  hint: did you mean `tanh`?",
    ]
    assert "Traceback" not in result.stderr + result.stdout


def test_validate_reports_every_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: Net\ninput: {shape: [4]}\nlayers: [{op: linear}]\n")
    assert main(["validate", str(bad), str(LENET)]) == 1
    captured = capsys.readouterr()
    assert f"{bad}:3:10: error[E103]" in captured.err
    assert f"{LENET}: ok" in captured.out


def test_build_writes_model_and_imports(tmp_path: Path) -> None:
    out = tmp_path / "lenet"
    result = run("build", str(LENET), "-o", str(out))
    assert result.returncode == 0, result.stderr
    check = subprocess.run(
        [sys.executable, "-c", "import model; m = model.build_model(); print(m(*model.example_inputs(2)).shape)"],
        cwd=out,
        capture_output=True,
        text=True,
        check=True,
    )
    assert check.stdout.strip() == "torch.Size([2, 10])"


def test_build_error_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: Net\ninput: {shape: [1, 4, 4]}\nlayers: [{op: conv2d, out_channels: 2, kernel_size: 5}]\n")
    out = tmp_path / "out"
    result = run("build", str(bad), "-o", str(out))
    assert result.returncode == 1
    assert "error[E202]" in result.stderr
    assert not out.exists()


def test_rebuild_keeps_other_files_and_replaces_symlink(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    outside = tmp_path / "outside.txt"
    outside.write_text("untouched")
    (out / "model.py").symlink_to(outside)
    assert main(["build", str(LENET), "-o", str(out)]) == 0
    assert outside.read_text() == "untouched"
    assert not (out / "model.py").is_symlink()
    assert (out / "notes.txt").read_text() == "mine"
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temp files left
    assert {"model.py", "MODEL.md", "notes.txt"} <= {p.name for p in out.iterdir()}


def test_summary_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", str(LENET)]) == 0
    text = capsys.readouterr().out
    assert "Total params: 61,706" in text
    assert main(["summary", str(LENET), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total_params"] == 61_706
    assert data["trainable_params"] == 61_706
    assert data["layers"][0] == {
        "name": "conv1",
        "op": "conv2d",
        "output_shape": [6, 28, 28],
        "params": 156,
        "macs": 117_600,
        "depth": 0,
    }
    assert data["macs"] == sum(layer["macs"] for layer in data["layers"] if layer["depth"] == 0)


def test_schema_command_matches_committed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == (ROOT / "schemas" / "specc.schema.json").read_text()


def test_compiler_never_imports_torch(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom specc.cli import main\n"
        f"assert main(['build', {str(LENET)!r}, '-o', {str(tmp_path / 'o')!r}]) == 0\n"
        f"assert main(['summary', {str(LENET)!r}]) == 0\n"
        "assert 'torch' not in sys.modules, 'the compiler imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_same_bytes_across_hash_seeds_and_directories(tmp_path: Path) -> None:
    outputs = []
    for seed, cwd in (("0", ROOT), ("1", tmp_path), ("12345", ROOT / "specs")):
        out = tmp_path / f"out{seed}" / "lenet"
        env = {**os.environ, "PYTHONHASHSEED": seed, "LC_ALL": "C"}
        assert run("build", str(LENET), "-o", str(out), cwd=cwd, env=env).returncode == 0
        outputs.append((out / "model.py").read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
