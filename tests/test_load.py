"""Stage 1, the loader: YAML 1.2 scalars, strict JSON, the source map, and every refusal located."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from specc import load
from specc.errors import SourceLoc, SpecError
from specc.load import MAX_DEPTH, MAX_FILE_BYTES, MAX_INT, load_bytes, load_file


def value(text: str) -> object:
    """The value of `v` in a one-key YAML document."""
    return load_bytes(f"v: {text}\n".encode()).data["v"]


def refusal(raw: bytes | str, file: str = "spec.yaml") -> SpecError:
    with pytest.raises(SpecError) as info:
        load_bytes(raw.encode() if isinstance(raw, str) else raw, file)
    return info.value


NESTED = b"""\
specc: 1
name: Net
input:
  shape: [1, 28, 28]
layers:
  - op: conv2d
    out_channels: 8
    kernel_size: [3, 3]
  - {op: flatten, name: flat}
  - relu
"""


# --- the source map -----------------------------------------------------------------------------


def test_source_map_locates_nested_keys_and_list_items() -> None:
    doc = load_bytes(NESTED, "net.yaml")
    assert doc.file == "net.yaml"
    assert doc.loc(()) == SourceLoc("net.yaml", 1, 1)
    assert doc.loc(("name",)) == SourceLoc("net.yaml", 2, 7)
    assert doc.loc(("input",)) == SourceLoc("net.yaml", 4, 3)  # a block mapping starts at its first key
    assert doc.loc(("input", "shape")) == SourceLoc("net.yaml", 4, 10)
    assert doc.loc(("input", "shape", 1)) == SourceLoc("net.yaml", 4, 14)
    assert doc.loc(("layers", 0)) == SourceLoc("net.yaml", 6, 5)
    assert doc.loc(("layers", 0, "out_channels")) == SourceLoc("net.yaml", 7, 19)
    assert doc.loc(("layers", 0, "kernel_size", 1)) == SourceLoc("net.yaml", 8, 22)
    assert doc.loc(("layers", 1)) == SourceLoc("net.yaml", 9, 5)
    assert doc.loc(("layers", 1, "name")) == SourceLoc("net.yaml", 9, 25)
    assert doc.loc(("layers", 2)) == SourceLoc("net.yaml", 10, 5)


def test_key_locations() -> None:
    doc = load_bytes(NESTED, "net.yaml")
    assert doc.key_loc(("layers",)) == SourceLoc("net.yaml", 5, 1)
    assert doc.key_loc(("layers", 0, "kernel_size")) == SourceLoc("net.yaml", 8, 5)
    assert doc.key_loc(("layers", 1, "name")) == SourceLoc("net.yaml", 9, 19)
    # A list item has no key: its own location is used.
    assert doc.key_loc(("layers", 2)) == doc.loc(("layers", 2))


def test_missing_path_falls_back_to_nearest_located_ancestor() -> None:
    doc = load_bytes(NESTED, "net.yaml")
    assert doc.loc(("layers", 1, "out_features")) == doc.loc(("layers", 1))
    assert doc.loc(("layers", 7, "x")) == doc.loc(("layers",))
    assert doc.loc(("nothing", "here")) == doc.loc(())


def test_data_and_raw_bytes() -> None:
    doc = load_bytes(NESTED, "net.yaml")
    assert doc.raw == NESTED
    assert doc.data["layers"] == [
        {"op": "conv2d", "out_channels": 8, "kernel_size": [3, 3]},
        {"op": "flatten", "name": "flat"},
        "relu",
    ]


def test_load_file_names_the_file_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "a.yaml").write_bytes(NESTED)
    monkeypatch.chdir(tmp_path)
    doc = load_file("specs/a.yaml")
    assert doc.file == "specs/a.yaml"
    assert doc.loc(("name",)) == SourceLoc("specs/a.yaml", 2, 7)


# --- YAML 1.2 core-schema scalars ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # YAML 1.1 booleans are strings in YAML 1.2.
        ("no", "no"),
        ("yes", "yes"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        ("n", "n"),
        ("NO", "NO"),
        ("true", True),
        ("True", True),
        ("FALSE", False),
        # Integers: a leading zero is decimal, 0o is octal; sexagesimal and underscores do not exist.
        ("0755", 755),
        ("0o17", 15),
        ("0x1F", 31),
        ("-12", -12),
        ("+12", 12),
        ("1:30", "1:30"),
        ("1_000", "1_000"),
        ("0b101", "0b101"),
        (str(MAX_INT), MAX_INT),
        (str(-MAX_INT), -MAX_INT),
        # Floats.
        ("1.5", 1.5),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("-2.5e-3", -0.0025),
        # Nulls.
        ("~", None),
        ("null", None),
        ("Null", None),
        ("NULL", None),
        ("", None),
        # Quoted scalars are strings, whatever they look like.
        ('"10"', "10"),
        ("'10'", "10"),
        ('"true"', "true"),
        ("'~'", "~"),
        ('"null"', "null"),
        ("'.nan'", ".nan"),
        # Not timestamps either.
        ("2001-12-14", "2001-12-14"),
        ("relu", "relu"),
    ],
)
def test_yaml_1_2_scalars(text: str, expected: object) -> None:
    result = value(text)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("!!str 10", "10"), ("!!int 10", 10), ("!!float 10", 10.0), ("!!bool true", True), ("!!null ~", None)],
)
def test_standard_tags(text: str, expected: object) -> None:
    result = value(text)
    assert result == expected
    assert type(result) is type(expected)


def test_standard_tag_with_a_wrong_value_is_a_type_error() -> None:
    error = refusal("v: !!int ten\n")
    assert (error.code, error.loc) == ("E102", SourceLoc("spec.yaml", 1, 4))
    assert "ten" in error.message


def test_keys_are_strings() -> None:
    doc = load_bytes(b"1: a\ntrue: b\nno: c\n~: d\n")
    assert doc.data == {"1": "a", "true": "b", "no": "c", "~": "d"}


def test_complex_key_is_refused() -> None:
    error = refusal("? [a, b]\n: 1\n")
    assert (error.code, error.loc) == ("E102", SourceLoc("spec.yaml", 1, 3))


def test_bom_is_accepted_and_positions_are_unchanged() -> None:
    doc = load_bytes(b"\xef\xbb\xbf" + NESTED, "net.yaml")
    assert doc.data["name"] == "Net"
    assert doc.loc(("name",)) == SourceLoc("net.yaml", 2, 7)
    assert doc.loc(()) == SourceLoc("net.yaml", 1, 1)


def test_bom_then_bad_utf8_is_located_after_the_bom() -> None:
    error = refusal(b"\xef\xbb\xbfa: 1\nb: \xff\n")
    assert (error.code, error.loc) == ("E003", SourceLoc("spec.yaml", 2, 4))


# --- JSON ---------------------------------------------------------------------------------------

JSON_SPEC = b"""{
  "specc": 1,
  "name": "Net",
  "input": {"shape": [1, 28, 28]},
  "layers": [
    {"op": "flatten"},
    {"op": "linear", "out_features": 10}
  ]
}
"""


def test_json_is_parsed_with_positions() -> None:
    doc = load_bytes(JSON_SPEC, "net.json")
    assert doc.data["layers"][1] == {"op": "linear", "out_features": 10}
    assert doc.loc(("name",)) == SourceLoc("net.json", 3, 11)
    assert doc.loc(("input", "shape", 2)) == SourceLoc("net.json", 4, 30)
    assert doc.loc(("layers", 1)) == SourceLoc("net.json", 7, 5)
    assert doc.loc(("layers", 1, "out_features")) == SourceLoc("net.json", 7, 38)
    assert doc.key_loc(("layers", 1, "out_features")) == SourceLoc("net.json", 7, 22)


def test_json_strings_are_strings() -> None:
    doc = load_bytes(b'{"a": "no", "b": "0755", "c": "1:30", "d": "10", "e": null, "f": false}', "x.json")
    assert doc.data == {"a": "no", "b": "0755", "c": "1:30", "d": "10", "e": None, "f": False}


@pytest.mark.parametrize(
    ("raw", "line", "col"),
    [
        (b'{"a": [1, 2,]}', 1, 13),  # trailing comma
        (b'{"a": 1,\n "b": 2,\n}', 3, 1),
        (b'{"a": 1} // comment', 1, 10),
        (b"{'a': 1}", 1, 2),  # single quotes
        (b"", 1, 1),
        (b'{"a": 1} {"b": 2}', 1, 10),  # two documents
    ],
)
def test_strict_json_syntax_errors_are_located(raw: bytes, line: int, col: int) -> None:
    error = refusal(raw, "x.json")
    assert (error.code, error.loc) == ("E004", SourceLoc("x.json", line, col))
    assert error.message.startswith("JSON syntax error: ")


@pytest.mark.parametrize(
    ("raw", "line", "col", "literal"),
    [
        (b'{"a": NaN}', 1, 7, "NaN"),
        (b'{"a": [1,\n  Infinity]}', 2, 3, "Infinity"),
        (b'{"NaN": "NaN \\" Infinity", "b": -Infinity}', 1, 33, "-Infinity"),
    ],
)
def test_json_nan_and_infinity_are_refused_where_they_are(raw: bytes, line: int, col: int, literal: str) -> None:
    error = refusal(raw, "x.json")
    assert (error.code, error.loc) == ("E009", SourceLoc("x.json", line, col))
    assert f"`{literal}`" in error.message


def test_json_huge_integer_is_out_of_range_not_a_crash() -> None:
    error = refusal(b'{"a": 1,\n "b": ' + b"7" * 5000 + b"}", "x.json")
    assert (error.code, error.loc) == ("E010", SourceLoc("x.json", 2, 7))


def test_json_too_deep_is_located() -> None:
    error = refusal(b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}", "x.json")
    assert error.code == "E007"
    assert error.loc == SourceLoc("x.json", 1, 7 + MAX_DEPTH - 1)  # the bracket that opens level MAX_DEPTH + 1


def test_json_duplicate_keys_are_refused() -> None:
    error = refusal(b'{"a": 1,\n "a": 2}', "x.json")
    assert (error.code, error.loc) == ("E005", SourceLoc("x.json", 2, 2))


# --- refusals -----------------------------------------------------------------------------------


def test_duplicate_key_names_both_lines() -> None:
    error = refusal("specc: 1\nname: A\nlayers: []\nname: B\n")
    assert (error.code, error.loc) == ("E005", SourceLoc("spec.yaml", 4, 1))
    assert "`name`" in error.message and "line 2" in error.message
    assert error.notes == ["spec.yaml:2:1: first definition of `name`"]


def test_duplicate_key_in_a_nested_flow_mapping() -> None:
    error = refusal("layers:\n  - {op: relu, op: tanh}\n")
    assert (error.code, error.loc) == ("E005", SourceLoc("spec.yaml", 2, 16))
    assert error.notes == ["spec.yaml:2:6: first definition of `op`"]


@pytest.mark.parametrize(
    ("text", "line", "col"),
    [
        ("a: &x 1\nb: *x\n", 2, 4),
        ("base: &b {k: 1}\nother:\n  <<: *b\n", 3, 7),  # a merge key uses an alias too
    ],
)
def test_aliases_are_refused(text: str, line: int, col: int) -> None:
    error = refusal(text)
    assert (error.code, error.loc) == ("E006", SourceLoc("spec.yaml", line, col))


@pytest.mark.parametrize(
    "tag", ["!!python/object/apply:os.system", "!!python/name:os.system", "!custom", "!!binary", "!!set", "!!omap"]
)
def test_non_standard_tags_are_refused(tag: str) -> None:
    error = refusal(f"a: 1\nb: {tag} [x]\n")
    assert (error.code, error.loc) == ("E008", SourceLoc("spec.yaml", 2, 4))


def test_python_tag_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    error = refusal(f'a: !!python/object/apply:os.system ["touch {marker}"]\n')
    assert error.code == "E008"
    assert not marker.exists()


def test_depth_limit() -> None:
    ok = "a: " + "[" * (MAX_DEPTH - 3) + "]" * (MAX_DEPTH - 3) + "\n"
    assert load_bytes(ok.encode()).data["a"] is not None
    error = refusal("a: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n")
    assert error.code == "E007"
    assert error.loc is not None and error.loc.line == 1


def test_very_deep_nesting_is_refused_without_recursion_error() -> None:
    start = time.perf_counter()
    error = refusal("a: " + "[" * 200_000 + "]" * 200_000 + "\n")
    assert error.code == "E007"
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize(
    ("text", "code", "col"),
    [
        (".nan", "E009", 4),
        (".NaN", "E009", 4),
        (".inf", "E009", 4),
        ("-.Inf", "E009", 4),
        ("+.INF", "E009", 4),
        ("1e999", "E009", 4),
        ("!!float .nan", "E009", 4),
        (str(MAX_INT + 1), "E010", 4),
        (str(-MAX_INT - 1), "E010", 4),
        ("123456789012345678901234567890", "E010", 4),
        ("0x" + "f" * 17, "E010", 4),
        ("0o" + "7" * 22, "E010", 4),
        ("9" * 5000, "E010", 4),  # more digits than Python converts: was a traceback
        ("-" + "0" * 4999 + "1", None, 4),  # leading zeros do not count
    ],
)
def test_non_finite_and_huge_numbers(text: str, code: str | None, col: int) -> None:
    raw = f"a: 1\nv: {text}\n".encode()
    if code is None:
        assert load_bytes(raw).data["v"] == -1
        return
    error = refusal(raw)
    assert (error.code, error.loc) == (code, SourceLoc("spec.yaml", 2, col))
    assert len(error.message) < 120  # a 5000-digit number is not echoed in full


def test_non_utf8_is_located() -> None:
    error = refusal(b"a: 1\nname: caf\xe9\n")
    assert (error.code, error.loc) == ("E003", SourceLoc("spec.yaml", 2, 10))
    assert "0xe9" in error.message


def test_non_utf8_on_the_first_line() -> None:
    error = refusal(b"\xfe\xff")
    assert (error.code, error.loc) == ("E003", SourceLoc("spec.yaml", 1, 1))


def test_nul_byte_is_located() -> None:
    error = refusal(b"a: 1\nb: x\x00y\n")
    assert (error.code, error.loc) == ("E004", SourceLoc("spec.yaml", 2, 5))
    assert "NUL" in error.message


def test_yaml_syntax_error_is_located() -> None:
    error = refusal("a: [1, 2\nb: 3\n")
    assert error.code == "E004"
    assert error.message.startswith("YAML syntax error: ")
    assert error.loc is not None and error.loc.line == 2


def test_tab_indentation_is_a_syntax_error() -> None:
    error = refusal("a:\n\tb: 1\n")
    assert (error.code, error.loc) == ("E004", SourceLoc("spec.yaml", 2, 1))


@pytest.mark.parametrize("raw", [b"", b"\n\n", b"# only a comment\n", b"   ", b"\xef\xbb\xbf"])
def test_empty_document(raw: bytes) -> None:
    error = refusal(raw)
    assert (error.code, error.loc) == ("E011", SourceLoc("spec.yaml", 1, 1))


def test_several_documents() -> None:
    error = refusal("a: 1\n---\nb: 2\n")
    assert (error.code, error.loc) == ("E011", SourceLoc("spec.yaml", 2, 1))


def test_explicit_single_document_is_fine() -> None:
    assert load_bytes(b"---\na: 1\n...\n").data == {"a": 1}


# --- the file -----------------------------------------------------------------------------------


def test_file_just_over_the_size_limit_is_refused_without_reading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: no time spent writing it

    def no_reading(self: Path) -> bytes:
        raise AssertionError(f"{self} was read")

    monkeypatch.setattr(Path, "read_bytes", no_reading)
    start = time.perf_counter()
    with pytest.raises(SpecError) as info:
        load_file(big)
    assert time.perf_counter() - start < 1
    assert (info.value.code, info.value.loc) == ("E002", SourceLoc(str(big)))
    assert str(MAX_FILE_BYTES + 1) in info.value.message and str(MAX_FILE_BYTES) in info.value.message


def test_size_limit_boundary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load, "MAX_FILE_BYTES", 64)
    spec = tmp_path / "a.yaml"
    spec.write_bytes(b"a: " + b"x" * 60 + b"\n")  # exactly 64 bytes
    assert load_file(spec).data == {"a": "x" * 60}
    spec.write_bytes(b"a: " + b"x" * 61 + b"\n")
    with pytest.raises(SpecError) as info:
        load_file(spec)
    assert info.value.code == "E002"
    with pytest.raises(SpecError) as info:
        load_bytes(b"a: " + b"x" * 61 + b"\n")
    assert info.value.code == "E002"


def test_bytes_over_the_limit_are_refused() -> None:
    error = refusal(b" " * (MAX_FILE_BYTES + 1))
    assert error.code == "E002"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_file(tmp_path / "nope.yaml")
    assert info.value.code == "E001"
    assert info.value.loc == SourceLoc(str(tmp_path / "nope.yaml"))
    assert "No such file" in info.value.message


def test_directory_is_not_a_spec(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_file(tmp_path)
    assert info.value.code == "E001"


def test_json_rules_follow_the_file_name(tmp_path: Path) -> None:
    text = b'{"a": [1, 2,]}'
    (tmp_path / "a.yaml").write_bytes(text)
    (tmp_path / "a.json").write_bytes(text)
    assert load_file(tmp_path / "a.yaml").data == {"a": [1, 2]}  # YAML flow collections allow it
    with pytest.raises(SpecError) as info:
        load_file(tmp_path / "a.json")
    assert info.value.code == "E004"
