"""specc in CI: check mode, project config, diagnostics formats, hooks, diagrams, scaffolding, overrides."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from specc.cli import main
from specc.compiler import analyze
from specc.graph import diagram, to_dot, to_mermaid
from tests.generated import ROOT, SPECS

LENET = ROOT / "specs" / "lenet.yaml"
BAD = "name: Net\ninput: {shape: [4]}\nlayers:\n  - {op: linear, out_features: 0}\n  - {op: rleu}\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user project: a spec, [tool.specc.builds], and committed generated code."""
    (tmp_path / "specs").mkdir()
    shutil.copy(LENET, tmp_path / "specs" / "lenet.yaml")
    (tmp_path / "pyproject.toml").write_text('[tool.specc.builds]\n"specs/lenet.yaml" = "models/lenet"\n')
    monkeypatch.chdir(tmp_path)
    assert main(["build"]) == 0
    return tmp_path


def test_check_passes_on_a_fresh_build(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["build", "--check"]) == 0
    assert capsys.readouterr().out == ""


def test_check_fails_after_editing_generated_code(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = project / "models" / "lenet" / "model.py"
    model.write_text(model.read_text().replace("nn.Tanh()", "nn.ReLU()", 1))
    capsys.readouterr()
    assert main(["build", "--check"]) == 1
    out = capsys.readouterr().out
    assert "-        self.act1 = nn.ReLU()" in out and "+        self.act1 = nn.Tanh()" in out


def test_check_fails_after_editing_the_spec(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = project / "specs" / "lenet.yaml"
    spec.write_text(spec.read_text().replace("out_features: 120", "out_features: 100"))
    capsys.readouterr()
    assert main(["build", "--check"]) == 1
    assert "nn.Linear(400, 100)" in capsys.readouterr().out


def test_check_fails_after_changing_a_template(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    overrides = project / "specc_templates"
    overrides.mkdir()
    original = (ROOT / "templates" / "model.py.jinja").read_text()
    (overrides / "model.py.jinja").write_text(original.replace('"""The network, with', '"""The whole network, with'))
    with (project / "pyproject.toml").open("a") as handle:
        handle.write('\n[tool.specc]\ntemplates = "specc_templates"\n')
    (project / "pyproject.toml").write_text(
        '[tool.specc]\ntemplates = "specc_templates"\n\n[tool.specc.builds]\n"specs/lenet.yaml" = "models/lenet"\n'
    )
    capsys.readouterr()
    assert main(["build", "--check"]) == 1
    assert '+    """The whole network' in capsys.readouterr().out
    assert main(["build"]) == 0  # the override is used for real builds too
    assert main(["build", "--check"]) == 0


def test_diff_prints_without_failing(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "models" / "lenet" / "model.py").unlink()
    capsys.readouterr()
    assert main(["build", "--diff"]) == 0
    assert "(missing)" in capsys.readouterr().out
    assert not (project / "models" / "lenet" / "model.py").exists()


def test_check_exits_2_on_a_spec_error(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "specs" / "lenet.yaml").write_text(BAD)
    assert main(["build", "--check"]) == 2
    assert "error[E104]" in capsys.readouterr().err


def test_template_override_from_the_command_line(tmp_path: Path) -> None:
    overrides = tmp_path / "mine"
    overrides.mkdir()
    text = (ROOT / "templates" / "model.py.jinja").read_text()
    (overrides / "model.py.jinja").write_text(text.replace("INPUT_DTYPES =", "CUSTOM = True\nINPUT_DTYPES ="))
    assert main(["build", str(LENET), "-o", str(tmp_path / "out"), "--templates", str(overrides)]) == 0
    namespace: dict[str, object] = {}
    exec(compile((tmp_path / "out" / "model.py").read_text(), "model.py", "exec"), namespace)  # our output
    assert namespace["CUSTOM"] is True


def _bad_specs(tmp_path: Path) -> list[str]:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    return [str(bad), str(LENET)]


def test_validate_reports_every_error_as_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", *_bad_specs(tmp_path)]) == 1
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if "error[" in line]
    assert [re.search(r"error\[(E\d+)\]", line).group(1) for line in lines] == ["E104", "E105"]  # type: ignore[union-attr]
    assert f"{LENET}: ok" in captured.out


def test_validate_reports_all_schema_errors_not_only_the_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: Net\ninput: {shape: [4]}\nlayers:\n  - {op: linear, out_features: 0}\n  - {op: linear, bias: 3}\n"
    )
    assert main(["validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:4:32: error[E104]" in err and f"{bad}:5:5: error[E103]" in err and f"{bad}:5:24: error[E102]" in err


def test_validate_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "json", *_bad_specs(tmp_path)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["error_count"] == 2
    bad, good = report["files"]
    assert good == {"file": str(LENET), "ok": True, "errors": []}
    assert [(e["code"], e["line"], e["col"]) for e in bad["errors"]] == [("E104", 4, 32), ("E105", 5, 10)]
    assert bad["errors"][1]["hint"] == "did you mean `relu`?"


def test_validate_github_annotations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "github", *_bad_specs(tmp_path)]) == 1
    first, line = capsys.readouterr().out.splitlines()
    assert first.startswith("::error ") and ",title=specc E104::" in first
    match = re.fullmatch(r"::error file=([^,]+),line=(\d+),col=(\d+),title=specc E105::(.*)", line)
    assert match, line
    assert match.group(1) == _bad_specs(tmp_path)[0].replace(":", "%3A")
    assert match.group(4) == "unknown layer type `rleu`%0Ahint: did you mean `relu`?"


def test_validate_sarif(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "sarif", *_bad_specs(tmp_path)]) == 1
    sarif = json.loads(capsys.readouterr().out)
    assert sarif["version"] == "2.1.0"
    (run,) = sarif["runs"]
    assert run["tool"]["driver"]["name"] == "specc"
    assert [rule["id"] for rule in run["tool"]["driver"]["rules"]] == ["E104", "E105"]
    _, result = run["results"]
    assert result["ruleId"] == "E105" and result["level"] == "error" and result["ruleIndex"] == 1
    region = result["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 5, "startColumn": 10}


def test_validate_expands_globs(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["validate", "specs/*.yaml"]) == 0
    assert capsys.readouterr().out.count(": ok") == len(SPECS)


def test_pre_commit_hooks_file() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    by_id = {hook["id"]: hook for hook in hooks}
    assert set(by_id) == {"specc-validate", "specc-check"}
    for hook in hooks:
        assert {"id", "name", "entry", "language"} <= set(hook)
        assert hook["entry"].split()[0] == "specc"
    assert by_id["specc-check"]["pass_filenames"] is False
    assert main([*by_id["specc-validate"]["entry"].split()[1:], str(LENET)]) == 0


def test_docs_examples_parse() -> None:
    text = (ROOT / "docs" / "ci.md").read_text()
    for block in re.findall(r"```yaml\n(.*?)```", text, flags=re.S):
        assert yaml.safe_load(block) is not None


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_graph_for_every_example(spec: Path) -> None:
    graph = analyze(spec).graph
    d = diagram(graph)
    mermaid = to_mermaid(d)
    declared = set(re.findall(r"^\s+(\w+)\[", mermaid, flags=re.M))
    edges = re.findall(r"^\s+(\w+) -- \"\(B[^\"]*\)\" --> (\w+)$", mermaid, flags=re.M)
    assert edges and all(a in declared and b in declared for a, b in edges)
    assert mermaid.count("subgraph") == mermaid.count("\n  end") + mermaid.count("\n    end") + len(
        re.findall(r"^\s{6,}end$", mermaid, flags=re.M)
    )
    dot = to_dot(d, graph.name)
    assert dot.count("{") == dot.count("}")
    assert len(re.findall(r" -> ", dot)) == len(edges)


def test_graph_renders_svg_with_graphviz_or_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "lenet.svg"
    code = main(["graph", str(LENET), "-o", str(target)])
    if shutil.which("dot"):
        assert code == 0 and target.read_text().lstrip().startswith("<")
    else:
        assert code == 2 and not target.exists()
        assert "Graphviz" in capsys.readouterr().err


@pytest.mark.parametrize("template", ["lenet", "resnet18", "mlp", "resnet18_finetune"])
def test_scaffolded_specs_validate(template: str, tmp_path: Path) -> None:
    assert main(["new", str(tmp_path / "my_net.yaml"), "--from", template]) == 0
    text = (tmp_path / "my_net.yaml").read_text()
    assert text.splitlines()[0] == "# yaml-language-server: $schema=specc.schema.json"
    assert (tmp_path / "specc.schema.json").is_file()
    compiled = analyze(tmp_path / "my_net.yaml")
    assert compiled.graph.name == "MyNet"
    assert main(["new", str(tmp_path / "my_net.yaml"), "--from", template]) == 2  # no silent overwrite


def test_new_rejects_unknown_template(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new", str(tmp_path / "x.yaml"), "--from", "resnet19"]) == 1
    assert "did you mean `resnet18`?" in capsys.readouterr().err


@pytest.fixture(scope="module")
def built_examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lint")
    for spec in SPECS:
        assert main(["build", str(spec), "-o", str(root / spec.stem)]) == 0
    return root


def test_generated_code_passes_ruff_and_black(built_examples: Path) -> None:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    bin_dir = Path(sys.executable).parent
    ruff = subprocess.run(
        [str(bin_dir / "ruff"), "check", "--isolated", "--no-cache", str(built_examples)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr
    black = subprocess.run(
        [sys.executable, "-m", "black", "--check", "--quiet", "--line-length", "100", str(built_examples)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert black.returncode == 0, black.stderr
