"""The bad-input corpus: each file in tests/invalid is a spec that specc must refuse.

For every case, `specc validate tests/invalid/<name>` (run from the repository root) must exit 1 and
print exactly the text of `tests/invalid/<stem>.expected` to stderr, with no traceback; `specc build`
must refuse it the same way and write nothing. Most checks call `specc.cli.main` in-process (fast);
a few run the real command line in a subprocess.

After an intended change of a diagnostic, rewrite the expected files with REGEN_COMMAND below and
review the diff.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from specc.cli import main
from specc.errors import ERROR_CODES

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "invalid"
REGEN_ENV = "SPECC_REGEN"
REGEN = os.environ.get(REGEN_ENV) == "1"
REGEN_COMMAND = f"{REGEN_ENV}=1 python -m pytest tests/test_invalid.py"

# Every file in the corpus is a case, except the expected outputs and the README.
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_file() and p.suffix not in (".expected", ".md"))
DIAGNOSTIC = re.compile(r"^(?P<path>\S+?):(?P<line>\d+):(?P<col>\d+): error\[(?P<code>E\d{3})\]: ")


def rel(name: str) -> str:
    return f"tests/invalid/{name}"


def expected_file(name: str) -> Path:
    return CORPUS / f"{Path(name).stem}.expected"


def read_expected(name: str) -> str:
    with expected_file(name).open(encoding="utf-8", newline="") as handle:
        return handle.read()


def run_main(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    monkeypatch.chdir(ROOT)
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def run_cli(*args: str, console_script: bool = False) -> subprocess.CompletedProcess[str]:
    """The command line as a user runs it: `python -m specc ...`, or the installed `specc` script."""
    if console_script:
        script = Path(sys.executable).with_name("specc")
        if not script.exists():
            found = shutil.which("specc")
            if found is None:
                pytest.skip("the `specc` console script is not installed")
            script = Path(found)
        command = [str(script), *args]
    else:
        command = [sys.executable, "-m", "specc", *args]
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, encoding="utf-8", env=env, check=False, timeout=60
    )


def mismatch(name: str, expected: str, actual: str) -> str:
    diff = "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            fromfile=str(expected_file(name).relative_to(ROOT)),
            tofile=f"stderr of specc validate {rel(name)}",
        )
    )
    return (
        f"the diagnostic for {rel(name)} changed:\n{diff}\n"
        f"If the new text is intended, regenerate the expected files (from the repository root) with:\n"
        f"    {REGEN_COMMAND}\n"
        "and review the diff."
    )


@pytest.mark.parametrize("name", CASES)
def test_validate_prints_the_expected_diagnostic(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run_main(["validate", rel(name)], capsys, monkeypatch)
    assert "Traceback" not in out + err
    if REGEN:
        expected_file(name).write_bytes(err.encode("utf-8"))
    if not expected_file(name).exists():
        pytest.fail(
            f"{rel(name)} has no expected output {expected_file(name).relative_to(ROOT)}; create it with:\n"
            f"    {REGEN_COMMAND}"
        )
    expected = read_expected(name)
    assert err == expected, mismatch(name, expected, err)
    assert code == 1, f"specc validate {rel(name)} exited {code}, not 1"
    assert out == "", "a refused spec must not also be reported ok"


@pytest.mark.parametrize("name", CASES)
def test_build_refuses_and_writes_nothing(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    code, out, err = run_main(["build", rel(name), "-o", str(out_dir)], capsys, monkeypatch)
    assert code == 1
    assert not out_dir.exists(), f"specc build {rel(name)} wrote {sorted(out_dir.rglob('*'))}"
    assert out == ""
    if expected_file(name).exists():
        assert err == read_expected(name), mismatch(name, read_expected(name), err)


@pytest.mark.parametrize("name", CASES)
def test_diagnostics_are_located_in_the_file(name: str) -> None:
    """Each diagnostic line is `<path>:<line>:<col>: error[Ennn]: ...` (notes and hints are indented),
    its code is registered, and its position lies inside the file."""
    if not expected_file(name).exists():
        pytest.skip("no expected file yet (test_validate_prints_the_expected_diagnostic fails for it)")
    lines = read_expected(name).splitlines()
    assert lines, "a refused spec must print a diagnostic"
    raw_lines = (CORPUS / name).read_bytes().split(b"\n")
    for text in lines:
        if text.startswith("  note: ") or text.startswith("  hint: "):
            continue
        match = DIAGNOSTIC.match(text)
        assert match, f"not a located diagnostic: {text!r}"
        assert match["code"] in ERROR_CODES
        if match["path"].startswith("<specc>/specs/"):
            # A problem surfacing in a bundled base spec (`extends`): a note must point into this file.
            assert any(f"note: {rel(name)}:" in other for other in lines), lines
            continue
        assert match["path"] == rel(name)
        line, col = int(match["line"]), int(match["col"])
        assert 1 <= line <= len(raw_lines)
        # Columns count characters; a byte count bounds them (and is the unit for undecodable lines).
        assert 1 <= col <= len(raw_lines[line - 1]) + 1
    assert DIAGNOSTIC.match(lines[0])


# (case, line, col, code, what the file holds at that position)
LOCATED = [
    ("unknown_layer_type_conv2.yaml", 6, 10, "E105", "conv2,"),
    ("unknown_layer_type_rleu.yaml", 7, 5, "E105", "rleu"),
    ("json_unknown_layer_type.json", 6, 12, "E105", '"flaten"'),
    ("unknown_layer_param.yaml", 8, 5, "E101", "strides:"),
    ("unknown_top_level_key.yaml", 3, 1, "E101", "descripton:"),
    ("duplicate_key.yaml", 8, 5, "E005", "out_channels: 16"),
    ("mnist_cnn_wrong_flatten.yaml", 19, 42, "E201", "9216"),
    ("in_unknown_node.yaml", 6, 31, "E108", "stme"),
    ("expr_unknown_name.yaml", 7, 32, "E302", "num_clases"),
    ("zero_size.yaml", 3, 20, "E104", "0, 28"),
    ("nan_value.yaml", 6, 22, "E009", ".nan"),
    ("json_nan.json", 7, 28, "E009", "NaN"),
    ("python_tag.yaml", 4, 14, "E008", "!!python/object/apply:os.system"),
    ("yaml_alias.yaml", 6, 5, "E006", "*block"),
    ("nul_byte.yaml", 5, 14, "E004", "\x00"),
    ("non_utf8.yaml", 3, 6, "E003", b"\xe9"),
]


@pytest.mark.parametrize(("name", "line", "col", "code", "token"), LOCATED)
def test_diagnostic_points_at_the_culprit(name: str, line: int, col: int, code: str, token: str | bytes) -> None:
    first = read_expected(name).splitlines()[0]
    assert first.startswith(f"{rel(name)}:{line}:{col}: error[{code}]: ")
    raw_line = (CORPUS / name).read_bytes().split(b"\n")[line - 1]
    if isinstance(token, bytes):  # an undecodable line: the column counts bytes
        assert raw_line[col - 1 :].startswith(token)
    else:
        assert raw_line.decode("utf-8")[col - 1 :].startswith(token)


def test_the_mnist_mistake_names_both_sizes() -> None:
    text = read_expected("mnist_cnn_wrong_flatten.yaml")
    assert "9216" in text and "1600" in text
    assert "fc1" in text


def test_duplicate_key_names_both_lines() -> None:
    lines = read_expected("duplicate_key.yaml").splitlines()
    assert lines[0].startswith(f"{rel('duplicate_key.yaml')}:8:5: ")
    assert "line 6" in lines[0]
    assert lines[1] == f"  note: {rel('duplicate_key.yaml')}:6:5: first definition of `out_channels`"


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("unknown_layer_type_conv2.yaml", "did you mean `conv2d`?"),
        ("unknown_layer_type_rleu.yaml", "did you mean `relu`?"),
        ("unknown_layer_param.yaml", "did you mean `stride`?"),
        ("unknown_top_level_key.yaml", "did you mean `description`?"),
        ("expr_unknown_name.yaml", "did you mean `num_classes`?"),
        ("in_unknown_node.yaml", "did you mean `stem`?"),
    ],
)
def test_did_you_mean(name: str, hint: str) -> None:
    assert f"  hint: {hint}" in read_expected(name).splitlines()


def test_corpus_layout() -> None:
    assert len(CASES) >= 35
    stems = [Path(n).stem for n in CASES]
    assert len(stems) == len(set(stems)), "two cases share a stem, so they would share an .expected file"
    orphans = sorted(p.name for p in CORPUS.glob("*.expected") if not any((CORPUS / n).stem == p.stem for n in CASES))
    assert not orphans, f"expected files without a case: {orphans}"
    assert (CORPUS / "README.md").is_file()
    assert {Path(n).suffix for n in CASES} == {".yaml", ".json"}


def test_whole_corpus_through_python_m_specc() -> None:
    """One real `python -m specc validate` over every case: same text, exit 1, no traceback."""
    if any(not expected_file(n).exists() for n in CASES):
        pytest.skip("some cases have no expected file yet")
    result = run_cli("validate", *map(rel, CASES))
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "".join(read_expected(n) for n in CASES)


@pytest.mark.parametrize(
    "name", ["mnist_cnn_wrong_flatten.yaml", "unknown_layer_type_conv2.yaml", "non_utf8.yaml", "json_nan.json"]
)
def test_console_script(name: str, tmp_path: Path) -> None:
    """The installed `specc` script, one case at a time, for both validate and build."""
    out_dir = tmp_path / "out"
    for args in (("validate", rel(name)), ("build", rel(name), "-o", str(out_dir))):
        result = run_cli(*args, console_script=True)
        assert "Traceback" not in result.stdout + result.stderr
        assert result.returncode == 1, args
        assert result.stderr == read_expected(name), mismatch(name, read_expected(name), result.stderr)
    assert not out_dir.exists()
