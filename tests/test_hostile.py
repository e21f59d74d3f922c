"""The hostile-input corpus (tests/hostile/README.md): specc refuses every hostile spec with a located
diagnostic, or turns it into safe code.

A refused case: `specc build` exits 1 with `file:line:col: error[Ennn]` diagnostics inside the file, no
traceback, nothing written, in under a second and 256 MB. A case with output ("safe"): the files
compile, black leaves them unchanged, no module-level name of model.py is bound twice, the model runs
in torch with the shapes specc inferred (`specc.verify`), and nothing is written outside `-o`. For specs
that carry a hostile string the generated code has the same AST as the code generated from a benign
string once string constants are masked. Finally every generated file is imported and run (model,
dataset loading, train.py's command line) in a subprocess, and no payload ever creates the canary file.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import re
import subprocess
import sys
import textwrap
import time
import traceback
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from specc.cli import main
from specc.compiler import analyze
from specc.errors import MAX_REPORTED_ERRORS, SpecErrors
from specc.format import format_python
from specc.load import MAX_FILE_BYTES, MAX_LINES, MAX_VALUES
from specc.verify import verify
from tests.tally import TALLY

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "hostile"
MANIFEST = tomllib.loads((CORPUS / "cases.toml").read_text(encoding="utf-8"))
PAYLOADS: dict[str, str] = json.loads((CORPUS / "carriers" / "payloads.json").read_text(encoding="utf-8"))
CANARY = "SPECC_CANARY"  # the file every payload tries to create
TIME_LIMIT = 1.0  # seconds to refuse a case
MEMORY_LIMIT = 256 * 2**20  # bytes allocated while refusing a case
DIAGNOSTIC = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): error\[(?P<code>E\d{3})\]: ")
MAX_DIAGNOSTIC_LINE = 2000  # a hostile spec must not flood a CI log line
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ENCODING_COOKIE = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")  # PEP 263, as Python's tokenizer reads it

FILES = sorted(p.name for p in CORPUS.iterdir() if p.is_file() and p.suffix in (".yaml", ".json"))
CARRIERS = sorted(p.stem for p in (CORPUS / "carriers").glob("*.yaml"))


# --------------------------------------------------------------------------------------------- running


@dataclass
class Outcome:
    """What one `specc build SPEC -o OUT` did, run in-process in a sandbox directory."""

    spec: Path
    out: Path
    code: int | None  # None: it raised
    stderr: str
    stdout: str
    seconds: float
    peak_bytes: int = 0
    crash: str | None = None  # the traceback, if specc raised
    outside: list[str] = field(default_factory=list)  # files that appeared outside OUT

    @property
    def files(self) -> dict[str, str]:
        if not self.out.is_dir():
            return {}
        return {p.name: p.read_text(encoding="utf-8") for p in sorted(self.out.iterdir()) if p.is_file()}


def _tree(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*")} if directory.exists() else set()


@contextlib.contextmanager
def _cwd(directory: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(previous)


def build(spec: Path, sandbox: Path, out: Path | None = None, measure_memory: bool = False) -> Outcome:
    """`specc build spec -o out` with the sandbox as working directory; the sandbox is watched for files
    appearing outside `out`."""
    out = out or sandbox / "out"
    before = _tree(sandbox)
    stdout, stderr = io.StringIO(), io.StringIO()
    crash, code = None, None
    start = time.perf_counter()
    with _cwd(sandbox), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(["build", str(spec), "-o", str(out)])
        except (Exception, SystemExit):  # any exception is a finding, reported with its traceback
            crash = traceback.format_exc()
    seconds = time.perf_counter() - start
    outcome = Outcome(spec, out, code, stderr.getvalue(), stdout.getvalue(), seconds, crash=crash)
    try:
        out_rel = str(out.relative_to(sandbox))
    except ValueError:
        out_rel = None
    outcome.outside = sorted(
        p for p in _tree(sandbox) - before if out_rel is None or not (p == out_rel or p.startswith(out_rel + os.sep))
    )
    if measure_memory:
        outcome.peak_bytes = peak_memory(spec, sandbox)
    TALLY["hostile: builds run"] += 1
    TALLY["hostile: files written outside the output directory"] += len(outcome.outside)
    return outcome


def peak_memory(spec: Path, sandbox: Path) -> int:
    """Bytes allocated at the peak while specc analyses `spec` (what refusing it costs)."""
    tracemalloc.start()
    try:
        with _cwd(sandbox), contextlib.suppress(SpecErrors):
            analyze(spec)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def check_refused(outcome: Outcome, code: str | None = None, at: str | None = None) -> None:
    """Exit 1, located diagnostics only, nothing written anywhere, quickly and in little memory."""
    assert outcome.crash is None, f"specc crashed:\n{outcome.crash}"
    assert outcome.code == 1, f"expected a refusal, got exit {outcome.code}\n{outcome.stderr}"
    assert not outcome.out.exists(), f"a refused spec wrote {sorted(outcome.out.rglob('*'))}"
    assert not outcome.outside, f"files appeared: {outcome.outside}"
    assert outcome.stdout == ""
    assert "Traceback" not in outcome.stderr
    lines = outcome.stderr.splitlines()
    assert lines, "a refusal must print a diagnostic"
    raw = source_lines(outcome.spec)
    for text in lines:
        assert len(text) <= MAX_DIAGNOSTIC_LINE, f"a diagnostic line of {len(text):,} characters"
        assert text.isprintable(), f"unescaped control or bidi characters reach the terminal: {text!r}"
        if text.startswith(("  note: ", "  hint: ")):
            continue
        match = DIAGNOSTIC.match(text)
        assert match, f"not a located diagnostic: {text!r}"
        if match["path"].startswith("<specc>/"):
            continue  # a problem inside a bundled base spec (`extends`), with a note pointing here
        line, col = int(match["line"]), int(match["col"])
        assert 1 <= line <= len(raw), text
        assert 1 <= col <= len(raw[line - 1]) + 1, text
    first = DIAGNOSTIC.match(lines[0])
    assert first is not None
    if code is not None:
        assert first["code"] == code, lines[0]
    if at is not None:
        assert f"{first['line']}:{first['col']}" == at, lines[0]
    assert outcome.seconds < TIME_LIMIT, f"refusing it took {outcome.seconds:.2f} s"
    if outcome.peak_bytes:
        assert outcome.peak_bytes < MEMORY_LIMIT, f"refusing it allocated {outcome.peak_bytes / 2**20:.0f} MB"
    TALLY["hostile: refused with a located diagnostic"] += 1


def source_lines(spec: Path) -> list[str] | list[bytes]:
    """The spec's lines as YAML counts them (and columns in characters), or its bytes by `\\n` if not UTF-8."""
    if not spec.is_file():
        return [""]
    raw = spec.read_bytes().removeprefix(b"\xef\xbb\xbf")
    try:
        return re.split("\r\n|[\n\r\x85\u2028\u2029]", raw.decode("utf-8"))
    except UnicodeDecodeError:
        return raw.split(b"\n")


def check_safe(outcome: Outcome, run_model: bool = True, black: bool = True) -> None:
    """Exit 0; files only in `-o`; they compile, are black-formatted, bind no global twice; torch agrees.

    A spec that differs from a fully checked one only in its strings (see `check_same_code`) may skip the
    slow parts: black (its code is black's output) and the model run (the same model)."""
    assert outcome.crash is None, f"specc crashed:\n{outcome.crash}"
    assert outcome.code == 0, f"expected output, got exit {outcome.code}:\n{outcome.stderr}"
    assert not outcome.outside, f"files written outside {outcome.out}: {outcome.outside}"
    files = outcome.files
    assert "model.py" in files and "MODEL.md" in files, sorted(files)
    for name, text in files.items():
        if name.endswith(".py"):
            tree = ast.parse(text, name)
            compile(tree, name, "exec")
            if black:
                assert format_python(text) == text, f"{name} is not black-formatted"
            check_globals(tree, name)
        bad = [ch for ch in set(text) if not ch.isprintable() and ch != "\n"]
        assert not bad, f"{name} holds raw control, line-separator or bidi characters: {bad}"
        if name.endswith(".py"):  # PEP 263: a `coding` comment on line 1 or 2 changes how Python reads the file
            cookies = [line for line in text.splitlines()[:2] if ENCODING_COOKIE.match(line)]
            assert not cookies, f"{name} declares a source encoding: {cookies}"
    if run_model:
        report = verify(outcome.spec)
        assert report.ok, report.format()
    TALLY["hostile: built, and the output passed every safety check"] += 1
    RUNNABLE.append(outcome.out)


def check_globals(tree: ast.Module, name: str) -> None:
    """No module-level name is bound twice (a class called like a constant, two classes with one name)."""
    bound: dict[str, int] = {}
    for node in tree.body:
        targets: list[str] = []
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            targets = [node.name]
        elif isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets = [node.target.id]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            targets = [(a.asname or a.name).split(".")[0] for a in node.names]
        for target in targets:
            assert target not in bound, (
                f"{name}: `{target}` is bound on line {bound[target]} and again on {node.lineno}"
            )
            bound[target] = node.lineno


def masked(text: str) -> str:
    """The AST with every string constant replaced: what the code does, whatever strings it holds."""

    class Mask(ast.NodeTransformer):
        def visit_Constant(self, node: ast.Constant) -> ast.Constant:
            return ast.Constant("<str>") if isinstance(node.value, str) else node

    return ast.dump(Mask().visit(ast.parse(text)), include_attributes=False)


def check_same_code(outcome: Outcome, benign: Outcome) -> None:
    mine, theirs = outcome.files, benign.files
    assert sorted(mine) == sorted(theirs)
    for name in mine:
        if name.endswith(".py"):
            assert masked(mine[name]) == masked(theirs[name]), f"{name}: the payload changed the code, not a string"


# Output directories whose code the subprocess at the end imports and runs.
RUNNABLE: list[Path] = []


# ------------------------------------------------------------------------------------------ file cases


def _expectation(name: str) -> dict[str, object]:
    entry = MANIFEST["files"].get(name)
    assert entry is not None, f"tests/hostile/{name} has no entry in tests/hostile/cases.toml"
    return entry  # type: ignore[no-any-return]


def _marks(entry: dict[str, object]) -> list[pytest.MarkDecorator]:
    reason = entry.get("xfail")
    return [pytest.mark.xfail(strict=True, reason=str(reason))] if reason else []


FILE_PARAMS = [pytest.param(name, marks=_marks(MANIFEST["files"].get(name, {})), id=name) for name in FILES]


def check_expected(outcome: Outcome, expect: str, at: str | None = None) -> None:
    if expect == "safe":
        check_safe(outcome)
    elif expect == "any":  # refused with a location, or safe output
        if outcome.code == 0 and outcome.crash is None:
            check_safe(outcome)
        else:
            check_refused(outcome)
    else:
        check_refused(outcome, None if expect == "reject" else expect, at)


@pytest.mark.parametrize("name", FILE_PARAMS)
def test_file_case(name: str, tmp_path: Path) -> None:
    entry = _expectation(name)
    spec = tmp_path / name
    spec.write_bytes((CORPUS / name).read_bytes())
    if entry.get("isolate"):
        outcome = build_isolated(spec, tmp_path)
    else:
        outcome = build(spec, tmp_path, measure_memory=entry["expect"] != "safe")
    check_expected(outcome, str(entry["expect"]), entry.get("at"))  # type: ignore[arg-type]


def build_isolated(spec: Path, sandbox: Path) -> Outcome:
    """`specc build` in a subprocess capped at 1 GB and 5 s: for cases that may exhaust time or memory."""
    out = sandbox / "out"
    script = textwrap.dedent(
        """
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))
        from specc.cli import main
        sys.exit(main(["build", sys.argv[1], "-o", sys.argv[2]]))
        """
    )
    start = time.perf_counter()
    try:
        result = subprocess.run(
            [sys.executable, "-c", script, str(spec), str(out)],
            cwd=sandbox,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Outcome(spec, out, None, "", "", 5.0, crash="timed out after 5 s")
    seconds = time.perf_counter() - start
    crash = result.stderr if "Traceback" in result.stderr or result.returncode not in (0, 1) else None
    # The subprocess pays for Python's start and imports: only specc's share counts towards the limit.
    return Outcome(spec, out, result.returncode, result.stderr, result.stdout, max(0.0, seconds - 1.0), crash=crash)


def test_every_file_has_an_expectation() -> None:
    listed = set(MANIFEST["files"])
    assert listed == set(FILES), f"unlisted: {sorted(set(FILES) - listed)}; missing: {sorted(listed - set(FILES))}"
    for name, entry in MANIFEST["files"].items():
        assert (
            entry["expect"] == "safe" or entry["expect"] in ("reject", "any") or re.match(r"E\d{3}$", entry["expect"])
        )
        assert entry.get("why"), f"{name}: say what the case tries"


# ----------------------------------------------------------------------------- cases generated at run time


def _nested(depth: int, opening: str, closing: str, inner: str = "1") -> str:
    return opening * depth + inner + closing * depth


GENERATED: dict[str, tuple[str, str | bytes]] = {
    # name: (expectation, content); a str content is written as UTF-8
    "nesting_5000_flow.yaml": ("E007", "name: Net\nlayers: " + _nested(5000, "[", "]") + "\n"),
    "nesting_5000_maps.yaml": ("E007", "name: Net\nparams: " + _nested(5000, "{a: ", "}") + "\n"),
    "nesting_5000_arrays.json": ("E007", '{"name": "Net", "layers": ' + _nested(5000, "[", "]") + "}\n"),
    "nesting_5000_objects.json": ("E007", '{"name": "Net", "params": ' + _nested(5000, '{"a": ', "}") + "}\n"),
    "nesting_1000_block.yaml": (
        "E007",
        "name: Net\n" + "".join(" " * i + "a:\n" for i in range(1000)) + " " * 1000 + "b: 1\n",
    ),
    "integer_5000_digits.yaml": ("E010", "name: Net\ninput: {shape: [" + "9" * 5000 + "]}\nlayers: [relu]\n"),
    "float_5000_digits.yaml": (
        "E009",
        "name: Net\ninput: {shape: [4]}\nlayers:\n  - {op: dropout, p: 1" + "0" * 5000 + ".0}\n",
    ),
    "values_over_the_cap.yaml": ("E002", "name: Net\ninput: {shape: [4]}\nlayers: [" + "relu, " * 100_000 + "]\n"),
    "json_values_over_the_cap.json": (
        "E002",
        '{"name": "Net", "input": {"shape": [4]}, "layers": [' + ", ".join(['"relu"'] * 100_000) + "]}\n",
    ),
    "lines_over_the_cap.yaml": ("E002", "name: Net\ninput: {shape: [4]}\nlayers: [relu]\n" + "#\n" * MAX_LINES),
    "carriage_returns_over_the_cap.yaml": ("E002", "name: Net\r" + "\r" * MAX_LINES),
    "long_string_at_the_size_limit.yaml": (
        "E104",
        "name: Net\ninput: {shape: [4]}\nlayers: [relu]\ndescription: " + "x" * (MAX_FILE_BYTES - 100) + "\n",
    ),
    "escapes_at_the_size_limit.yaml": (
        "E104",
        'name: Net\ninput: {shape: [4]}\nlayers: [relu]\ndescription: "' + "\\n" * (MAX_FILE_BYTES // 2 - 60) + '"\n',
    ),
    "spaces_at_the_size_limit.yaml": ("E011", " " * (MAX_FILE_BYTES - 1) + "\n"),
    "over_the_size_limit.yaml": ("E002", "a: " + "x" * (MAX_FILE_BYTES - 3) + "\n"),
    # 10,000 errors: linear passes, and no did-you-mean past the errors reported
    "unknown_ops_at_the_cap.yaml": (
        "E105",
        "name: Net\ninput: {shape: [4]}\nlayers:\n" + "- rleu\n" * (MAX_VALUES - 20),
    ),
    "unknown_keys_at_the_cap.yaml": (
        "E101",
        "name: Net\ninput: {shape: [4]}\nlayers: [relu]\n" + "".join(f"k{i}: 1\n" for i in range(MAX_VALUES // 2 - 20)),
    ),
}


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_case(name: str, tmp_path: Path) -> None:
    expect, content = GENERATED[name]
    spec = tmp_path / name
    spec.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    check_expected(build(spec, tmp_path, measure_memory=True), expect)


def test_errors_past_the_cap_are_counted_not_shown(tmp_path: Path) -> None:
    spec = tmp_path / "many.yaml"
    spec.write_text(GENERATED["unknown_ops_at_the_cap.yaml"][1], encoding="utf-8")
    outcome = build(spec, tmp_path)
    check_refused(outcome, "E105", "4:3")
    assert outcome.stderr.count("error[E105]") == MAX_REPORTED_ERRORS
    assert f"{MAX_VALUES - 20 - MAX_REPORTED_ERRORS:,} more errors not shown" in outcome.stderr
    assert outcome.stderr.count("did you mean `relu`?") == MAX_REPORTED_ERRORS


def test_a_50_mb_file_is_refused_unread(tmp_path: Path) -> None:
    spec = tmp_path / "huge.yaml"
    chunk = ("name: Net\n" + "# padding " * 100 + "\n").encode() * 1000
    with spec.open("wb") as handle:
        while handle.tell() < 50 * 2**20:
            handle.write(chunk)
    check_refused(build(spec, tmp_path, measure_memory=True), "E002", "1:1")


def test_a_50_mb_sparse_file_is_refused_unread(tmp_path: Path) -> None:
    spec = tmp_path / "sparse.json"
    with spec.open("wb") as handle:
        handle.truncate(50 * 2**20)
    check_refused(build(spec, tmp_path, measure_memory=True), "E002", "1:1")


# ------------------------------------------------------------------------------- payloads in every string


def yaml_escape(text: str) -> str:
    """`text` inside a YAML double-quoted scalar: every character that is not plain printable ASCII escaped."""
    out = []
    for ch in text:
        if ch in '\\"':
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        elif ord(ch) <= 0xFF:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out)


def carrier_spec(carrier: str, payload: str, directory: Path) -> Path:
    template = (CORPUS / "carriers" / f"{carrier}.yaml").read_text(encoding="utf-8")
    directory.mkdir(parents=True, exist_ok=True)
    spec = directory / "spec.yaml"
    spec.write_text(template.replace("@PAYLOAD@", yaml_escape(payload)), encoding="utf-8")
    return spec


def _carrier_entry(carrier: str) -> dict[str, object]:
    entry = MANIFEST["carriers"].get(carrier)
    assert entry is not None, f"tests/hostile/carriers/{carrier}.yaml has no entry in cases.toml"
    return entry  # type: ignore[no-any-return]


def carrier_expectation(carrier: str, payload_name: str) -> str:
    """A text carrier prints every payload safely (except those its field limits refuse); a name carrier
    refuses every payload that is not an identifier, and refuses or safely prints those that are."""
    entry = _carrier_entry(carrier)
    if payload_name in entry.get("rejects", []):  # type: ignore[operator]
        return "reject"
    if entry["kind"] == "text":
        return "safe"
    return "any" if IDENTIFIER.match(PAYLOADS[payload_name]) else "reject"


def _carrier_params() -> list[object]:
    params = []
    for carrier in CARRIERS:
        xfails = _carrier_entry(carrier).get("xfail", {})
        for payload in PAYLOADS:
            reason = xfails.get(payload) if isinstance(xfails, dict) else None  # type: ignore[union-attr]
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            params.append(pytest.param(carrier, payload, marks=marks, id=f"{carrier}-{payload}"))
    return params


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module")
def benign_builds(sandbox: Path) -> dict[str, Outcome]:
    """Each text carrier built with a harmless string, for the AST comparison."""
    built = {}
    for carrier in CARRIERS:
        if _carrier_entry(carrier)["kind"] == "text":
            directory = sandbox / "benign" / carrier
            built[carrier] = build(carrier_spec(carrier, "benign", directory), directory)
            check_safe(built[carrier])
    return built


@pytest.mark.parametrize(("carrier", "payload"), _carrier_params())
def test_payload(carrier: str, payload: str, sandbox: Path, benign_builds: dict[str, Outcome]) -> None:
    directory = sandbox / "carriers" / carrier / payload
    outcome = build(carrier_spec(carrier, PAYLOADS[payload], directory), directory)
    expect = carrier_expectation(carrier, payload)
    if expect == "safe":  # a text carrier: the same code as the benign build, which was checked in full
        check_safe(outcome, run_model=False, black=False)
        check_same_code(outcome, benign_builds[carrier])
    else:
        check_expected(outcome, expect)


def test_every_carrier_has_an_expectation() -> None:
    assert set(MANIFEST["carriers"]) == set(CARRIERS)
    for carrier in CARRIERS:
        text = (CORPUS / "carriers" / f"{carrier}.yaml").read_text(encoding="utf-8")
        assert "@PAYLOAD@" in text
        entry = MANIFEST["carriers"][carrier]
        assert entry["kind"] in ("name", "text")
        assert set(entry.get("rejects", [])) <= set(PAYLOADS)
        assert set(entry.get("xfail", {})) <= set(PAYLOADS)


def _file_name(payload: str) -> str:
    """The payload as a file name this system accepts: no `/` or NUL, at most 200 bytes, no surrogates."""
    name = payload.replace("/", "_").replace("\x00", "_").encode("utf-8", "replace")[:200].decode("utf-8", "ignore")
    return name if name not in ("", ".", "..") else f"_{name}"


BASE_SPEC = CORPUS / "carriers" / "text_csv.yaml"
SMALL_SPEC = "name: Net\ninput: {shape: [4]}\nlayers:\n  - {op: linear, out_features: 2}\n"
# File names that also go through train.py's description (a data section): quotes, a newline, argparse's %.
WITH_DATA = ("single_quote", "double_quote", "newline", "format_spec")


COOKIE_BUG = (
    "codegen.shown_file_name: an unusual spec file name is shown as repr() on line 1 of every generated file;"
    " a name containing `coding: unicode_escape` (or utf-7) is a PEP 263 cookie, and Python then decodes"
    " the file with that codec: escapes in string literals become code"
)
FILE_NAME_XFAIL: dict[str, str] = {}  # was {"coding_cookie": COOKIE_BUG, "coding_utf7": COOKIE_BUG}: fixed


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(
            p, marks=[pytest.mark.xfail(strict=True, reason=FILE_NAME_XFAIL[p])] if p in FILE_NAME_XFAIL else []
        )
        for p in sorted(PAYLOADS)
    ],
)
def test_payload_in_the_spec_file_name(payload: str, sandbox: Path) -> None:
    """The spec's file name reaches every generated header (and train.py's description)."""
    text = BASE_SPEC.read_text(encoding="utf-8").replace("@PAYLOAD@", "benign") if payload in WITH_DATA else SMALL_SPEC
    directory = sandbox / "file-names" / payload
    directory.mkdir(parents=True)
    spec = directory / f"{_file_name(PAYLOADS[payload])}.yaml"
    spec.write_text(text, encoding="utf-8")
    outcome = build(spec, directory)
    check_safe(outcome, run_model=False)
    benign = directory / "benign"
    benign.mkdir()
    (benign / "benign.yaml").write_text(text, encoding="utf-8")
    check_same_code(outcome, build(benign / "benign.yaml", benign))


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_payload_in_the_output_directory_name(payload: str, sandbox: Path) -> None:
    """`-o` reaches the `Regenerate:` line of every header."""
    directory = sandbox / "out-names" / payload
    directory.mkdir(parents=True)
    spec = directory / "spec.yaml"
    spec.write_text(SMALL_SPEC, encoding="utf-8")
    outcome = build(spec, directory, out=directory / _file_name(PAYLOADS[payload]))
    check_safe(outcome, run_model=False)
    check_same_code(outcome, build(spec, directory, out=directory / "benign"))


def test_spec_file_name_cannot_set_the_source_encoding(sandbox: Path) -> None:
    directory = sandbox / "cookie"
    directory.mkdir()
    spec = directory / "coding=unicode_escape"
    text = BASE_SPEC.read_text(encoding="utf-8").replace("@PAYLOAD@", yaml_escape(PAYLOADS["unicode_escape_breakout"]))
    spec.write_text(text, encoding="utf-8")
    outcome = build(spec, directory)
    assert outcome.code == 0, outcome.stderr
    for name, content in outcome.files.items():
        if name.endswith(".py"):
            head = content.splitlines()[:2]
            assert not any(re.match(r"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", line) for line in head), head
    run_generated([outcome.out], directory)


# ------------------------------------------------------------------------------------- the output directory


def _lenet_spec(directory: Path) -> Path:
    spec = directory / "net.yaml"
    spec.write_text("name: Net\ninput: {shape: [4]}\nlayers:\n  - {op: linear, out_features: 2}\n", encoding="utf-8")
    return spec


def test_symlinks_planted_in_the_output_are_replaced_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "outside" / "secret.py"
    secret.parent.mkdir()
    secret.write_text("SECRET = 1\n", encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.py").symlink_to(secret)
    (out / "MODEL.md").symlink_to(tmp_path / "outside" / "dangling.md")  # dangling: must not be created
    (out / ".model.py.tmp").symlink_to(secret)
    outcome = build(_lenet_spec(tmp_path), tmp_path, out=out)
    check_safe(outcome)
    assert secret.read_text(encoding="utf-8") == "SECRET = 1\n"
    assert not (tmp_path / "outside" / "dangling.md").exists()
    assert not (out / "model.py").is_symlink() and not (out / "MODEL.md").is_symlink()


def test_output_that_is_a_file_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_text("not a directory\n", encoding="utf-8")
    outcome = build(_lenet_spec(tmp_path), tmp_path, out=out)
    assert outcome.crash is None and outcome.code == 1, outcome.stderr
    assert outcome.stderr.startswith(f"{out}:1:1: error[E401]: ")
    assert out.read_text(encoding="utf-8") == "not a directory\n"


def test_a_directory_where_a_file_goes_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "model.py").mkdir(parents=True)
    outcome = build(_lenet_spec(tmp_path), tmp_path, out=out)
    assert outcome.crash is None and outcome.code == 1, outcome.stderr
    assert "error[E401]" in outcome.stderr


def test_default_output_stays_in_build(tmp_path: Path) -> None:
    spec = tmp_path / "...yaml"
    spec.write_text(_lenet_spec(tmp_path).read_text(encoding="utf-8"), encoding="utf-8")
    before = _tree(tmp_path)
    stdout, stderr = io.StringIO(), io.StringIO()
    with _cwd(tmp_path), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["build", str(spec)])
    written = sorted(_tree(tmp_path) - before)
    assert code == 1 or all(p == "build" or p.startswith("build" + os.sep) for p in written), written


def test_configured_outputs_stay_in_the_project(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    _lenet_spec(project)
    (project / "pyproject.toml").write_text('[tool.specc.builds]\n"net.yaml" = "../escaped"\n', encoding="utf-8")
    stdout, stderr = io.StringIO(), io.StringIO()
    with _cwd(project), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["build"])
    assert not (tmp_path / "escaped").exists()
    assert code == 1 and "error[E401]" in stderr.getvalue()


# ------------------------------------------------------------------------------------ running what was made

RUNNER = textwrap.dedent(
    """
    import importlib.util, inspect, json, os, sys, traceback
    results = {}
    for out in json.loads(sys.argv[1]):
        errors = []
        run_dir = os.path.join(out, "run")
        os.makedirs(run_dir, exist_ok=True)
        os.chdir(run_dir)
        sys.path.insert(0, out)
        for name in ("model", "dataset", "train"):
            sys.modules.pop(name, None)
        try:
            import model
            kwargs = {}
            if "pretrained" in inspect.signature(model.build_model).parameters:
                kwargs = {"pretrained": False, "weights_file": None}
            net = model.build_model(**kwargs)
            net(*model.example_inputs(2))
        except Exception:
            errors.append("model: " + traceback.format_exc(limit=3))
        if os.path.exists(os.path.join(out, "dataset.py")):
            try:
                import dataset
                for split in ("train", "val", "test"):
                    try:
                        dataset.load_split(split, run_dir, None, False)
                    except Exception:
                        pass  # no data here: only that nothing else happens matters
                import train
                train.parse_args([])
                try:
                    train.parse_args(["--help"])
                except SystemExit:
                    pass
            except Exception:
                errors.append("dataset/train: " + traceback.format_exc(limit=3))
        sys.path.remove(out)
        results[out] = errors
    print(json.dumps(results))
    """
)


def run_generated(outputs: list[Path], root: Path) -> dict[str, list[str]]:
    """Import and run every generated file of `outputs` in one subprocess; no canary may appear under `root`."""
    before = {p for p in root.rglob(CANARY)}
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps([str(o) for o in outputs])],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert result.returncode == 0, result.stderr[-5000:]
    canaries = sorted({p for p in root.rglob(CANARY)} - before) + sorted(Path.cwd().glob(CANARY))
    TALLY["hostile: canary files created (payloads that ran)"] += len(canaries)
    TALLY["hostile: outputs imported and run in a subprocess"] += len(outputs)
    assert not canaries, f"a payload ran: {canaries}"
    return json.loads(result.stdout.splitlines()[-1])  # type: ignore[no-any-return]


# Outputs (relative to the sandbox) known to fail when run, with the bug; an entry that starts to pass
# fails the test, like xfail(strict=True).
KNOWN_RUN_FAILURES: dict[str, str] = {}  # "file-names/format_spec/out" (a `%` in train.py's description): fixed


def test_running_every_generated_file_never_runs_a_payload(sandbox: Path) -> None:
    """Runs last in this module: every output made above is imported, built, called and its data loaded."""
    if not RUNNABLE:
        pytest.skip("no output was generated in this session (run the whole module)")
    assert not list(sandbox.rglob(CANARY)), "a payload ran while specc compiled"
    errors = run_generated(sorted(set(RUNNABLE)), sandbox)
    failures = {str(Path(out).relative_to(sandbox)): e for out, e in errors.items() if e}
    unexpected = {out: e for out, e in failures.items() if out not in KNOWN_RUN_FAILURES}
    assert not unexpected, json.dumps(unexpected, indent=1)[:5000]
    fixed = [out for out in KNOWN_RUN_FAILURES if out not in failures and str(sandbox / out) in errors]
    assert not fixed, f"these now run: remove them from KNOWN_RUN_FAILURES: {fixed}"


def test_the_corpus_is_big_enough() -> None:
    cases = len(FILES) + len(GENERATED) + 2 + len(CARRIERS) * len(PAYLOADS) + 2 * len(PAYLOADS)
    assert cases >= 100
    assert len(FILES) >= 100
