"""A non-editable install works: templates, the schema and the bundled specs ship inside the wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.generated import ROOT


def test_wheel_is_self_contained(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("specc-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "specc/templates/model.py.jinja",
        "specc/schemas/specc.schema.json",
        "specc/zoo/resnet18.yaml",
        "specc/ops/conv.py",
    ):
        assert required in names, required
    assert not any(name.startswith(("tests/", "specs/", "templates/")) for name in names)

    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    spec = tmp_path / "finetune.yaml"
    spec.write_text("extends: resnet18\nname: Tuned\nparams: {num_classes: 3}\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = "import specc, sys; from specc.cli import main; print(specc.__file__); sys.exit(main(sys.argv[1:]))"
    result = subprocess.run(
        [sys.executable, "-c", code, "build", str(spec), "-o", str(tmp_path / "out")],
        cwd=tmp_path,  # not the source tree
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith(str(site))
    assert "class Tuned(nn.Module)" in (tmp_path / "out" / "model.py").read_text()
