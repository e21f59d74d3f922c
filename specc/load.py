"""Stage 1: read a spec file into plain data plus a source map (JSON path -> file:line:col).

Only YAML 1.2 core-schema scalars are recognised (so `no` is a string and `0755` is 755), tags
other than the standard ones are refused, aliases are refused, and the file's size and nesting
depth are capped. Every problem becomes a located `SpecError`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from specc.errors import SourceLoc, SpecError

# The caps keep the cost of refusing any file under a second: PyYAML's parser is pure Python (about 1 s
# per 2 MB), and later stages take time per value. The largest bundled spec has 500 values in 12 KB.
MAX_FILE_BYTES = 1024 * 1024
MAX_LINES = 50_000
MAX_VALUES = 10_000
MAX_DEPTH = 64
MAX_INT = 2**63 - 1

JsonPath = tuple[str | int, ...]

_STANDARD_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
}
# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution).
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT10 = re.compile(r"^[-+]?[0-9]+$")
_INT8 = re.compile(r"^0o[0-7]+$")
_INT16 = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(?:inf|Inf|INF)$")
_NAN = re.compile(r"^\.(?:nan|NaN|NAN)$")
_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")  # what YAML (1.1, as PyYAML) counts as a line break
_SURROGATE = re.compile("[\ud800-\udfff]")  # from an escape (`"\\ud800"`): not a character, cannot be encoded


@dataclass(frozen=True)
class Document:
    """A loaded spec: its data, where every value came from, and the raw bytes (for the sha256)."""

    data: Any
    source_map: dict[JsonPath, SourceLoc]
    file: str
    raw: bytes
    key_map: dict[JsonPath, SourceLoc] = field(default_factory=dict)

    def loc(self, path: JsonPath) -> SourceLoc:
        """The location of `path`, or of its nearest located ancestor."""
        while path not in self.source_map and path:
            path = path[:-1]
        return self.source_map.get(path, SourceLoc(self.file))

    def key_loc(self, path: JsonPath) -> SourceLoc:
        """The location of the key at the end of `path` (for unknown or duplicate keys)."""
        return self.key_map.get(path) or self.loc(path)


_PLAIN = "specc:plain"  # an untagged plain scalar, resolved by YAML 1.2 rules in `_scalar`


class _Loader(yaml.SafeLoader):
    """Composes a node tree; refuses aliases, and caps the nesting depth (before Python's recursion limit)
    and the number of values (before a big file costs much time or memory)."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        # PyYAML resolves plain scalars by YAML 1.1 rules (`no` is false, `0755` is octal);
        # mark them so that `_scalar` applies the YAML 1.2 core schema instead.
        if kind is yaml.ScalarNode and implicit[0]:
            return _PLAIN
        return str(super().resolve(kind, value, implicit))

    def __init__(self, stream: str, file: str) -> None:
        super().__init__(stream)
        self._file = file
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise SpecError(
                "E006",
                f"YAML alias `*{event.anchor}` is not allowed",
                _mark(self._file, event.start_mark),
                hint="write the value out in full; specs use blocks for reuse",
            )
        self._depth += 1
        self._nodes += 1
        if self._depth > MAX_DEPTH:
            event = self.peek_event()
            raise SpecError(
                "E007",
                f"nesting is deeper than {MAX_DEPTH} levels",
                _mark(self._file, event.start_mark),
            )
        if self._nodes > MAX_VALUES:
            event = self.peek_event()
            raise SpecError(
                "E002",
                f"the spec holds more than {MAX_VALUES:,} values (mappings, lists and scalars); that is the limit",
                _mark(self._file, event.start_mark),
            )
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _mark(file: str, mark: Any) -> SourceLoc:
    return SourceLoc(file, mark.line + 1, mark.column + 1)


def load_file(path: str | Path) -> Document:
    """Read and parse a spec file (.yaml, .yml or .json)."""
    path = Path(path)
    name = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SpecError("E002", f"spec file is {size} bytes; the limit is {MAX_FILE_BYTES}", SourceLoc(name))
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError("E001", f"cannot read spec file: {exc.strerror or exc}", SourceLoc(name)) from None
    return load_bytes(raw, name)


def load_bytes(raw: bytes, file: str = "<spec>") -> Document:
    """Parse spec bytes; `file` names the source in diagnostics. JSON is parsed as YAML 1.2."""
    if len(raw) > MAX_FILE_BYTES:
        raise SpecError("E002", f"spec is {len(raw)} bytes; the limit is {MAX_FILE_BYTES}", SourceLoc(file))
    text = _decode(raw, file)
    lines = len(_LINE_BREAK.findall(text)) + 1
    if lines > MAX_LINES:
        raise SpecError(
            "E002", f"spec has {lines:,} lines; the limit is {MAX_LINES:,}", SourceLoc(file, MAX_LINES + 1, 1)
        )
    if file.endswith(".json"):
        _check_json(text, file)
    node = _compose(text, file)
    if node is None:
        raise SpecError("E011", "spec file is empty", SourceLoc(file))
    source_map: dict[JsonPath, SourceLoc] = {}
    key_map: dict[JsonPath, SourceLoc] = {}
    data = _construct(node, (), file, source_map, key_map)
    return Document(data=data, source_map=source_map, file=file, raw=raw, key_map=key_map)


def _compose(text: str, file: str) -> Any:
    """The node tree of the single document in `text` (None if there is none)."""
    try:
        loader = _Loader(text, file)  # PyYAML's reader refuses control characters here, before parsing
    except yaml.reader.ReaderError as exc:
        problem = f"unacceptable character #x{exc.character:04x}: {exc.reason}"
        raise SpecError("E004", f"YAML syntax error: {problem}", _offset_loc(text, exc.position, file)) from None
    try:
        return loader.get_single_node()
    except SpecError:
        raise
    except yaml.composer.ComposerError as exc:
        loc = _mark(file, exc.problem_mark) if exc.problem_mark else SourceLoc(file)
        raise SpecError("E011", "a spec file must hold exactly one document", loc) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = _mark(file, mark) if mark else SourceLoc(file)
        problem = exc.problem or exc.context or "syntax error"
        raise SpecError("E004", f"YAML syntax error: {problem}", loc) from None
    except yaml.YAMLError as exc:
        raise SpecError("E004", f"YAML syntax error: {exc}", SourceLoc(file)) from None
    finally:
        loader.dispose()


def _decode(raw: bytes, file: str) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise SpecError(
            "E003", f"spec file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})", SourceLoc(file, line, col)
        ) from None
    if "\x00" in text:
        raise SpecError("E004", "spec file contains a NUL character", _offset_loc(text, text.index("\x00"), file))
    return text


class _JsonConstant(ValueError):
    """`NaN`, `Infinity` or `-Infinity` in a JSON file."""


# A JSON string (skipped) or a bracket; used to locate problems the `json` module reports without a position.
_JSON_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|(-?Infinity|NaN)|([\[{])|([\]}])')


def _check_json(text: str, file: str) -> None:
    """JSON files must be strict JSON: no NaN/Infinity literals, no trailing commas, no comments."""

    def refuse_constant(name: str) -> None:
        raise _JsonConstant(name)

    def ignore_number(literal: str) -> int:
        return 0  # only the syntax is checked here; `_scalar` range-checks numbers with their position

    try:
        json.loads(text, parse_constant=refuse_constant, parse_int=ignore_number, parse_float=ignore_number)
    except json.JSONDecodeError as exc:
        raise SpecError("E004", f"JSON syntax error: {exc.msg}", SourceLoc(file, exc.lineno, exc.colno)) from None
    except _JsonConstant as exc:
        raise SpecError(
            "E009",
            f"`{exc}` is not allowed: sizes and rates must be finite numbers",
            _json_locate(text, file, "constant"),
        ) from None
    except RecursionError:
        raise SpecError(
            "E007", f"nesting is deeper than {MAX_DEPTH} levels", _json_locate(text, file, "depth")
        ) from None


def _json_locate(text: str, file: str, what: str) -> SourceLoc:
    """Where the first NaN/Infinity literal is, or the bracket that opens nesting level MAX_DEPTH + 1.

    Only called after `json` has parsed everything before the problem, so the tokens are in step.
    """
    depth = 0
    for match in _JSON_TOKEN.finditer(text):
        if what == "constant" and match.group(1):
            return _offset_loc(text, match.start(1), file)
        if match.group(2):
            depth += 1
            if what == "depth" and depth > MAX_DEPTH:
                return _offset_loc(text, match.start(2), file)
        elif match.group(3):
            depth -= 1
    return SourceLoc(file)


def _offset_loc(text: str, offset: int, file: str) -> SourceLoc:
    line = text.count("\n", 0, offset) + 1
    return SourceLoc(file, line, offset - (text.rfind("\n", 0, offset) + 1) + 1)


def _construct(
    node: yaml.Node,
    path: JsonPath,
    file: str,
    source_map: dict[JsonPath, SourceLoc],
    key_map: dict[JsonPath, SourceLoc],
) -> Any:
    loc = _mark(file, node.start_mark)
    source_map[path] = loc
    if node.tag != _PLAIN and node.tag not in _STANDARD_TAGS:
        raise SpecError("E008", f"YAML tag `{node.tag}` is not allowed", loc, hint="remove the tag")
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        first_seen: dict[str, SourceLoc] = {}
        for key_node, value_node in node.value:
            key_loc = _mark(file, key_node.start_mark)
            if not isinstance(key_node, yaml.ScalarNode):
                raise SpecError("E102", "mapping keys must be plain strings", key_loc)
            if key_node.tag != _PLAIN and key_node.tag not in _STANDARD_TAGS:
                raise SpecError("E008", f"YAML tag `{key_node.tag}` is not allowed", key_loc, hint="remove the tag")
            key = _text(key_node.value, key_loc)  # keys are names: `1: x` means the string "1"
            if key in first_seen:
                raise SpecError(
                    "E005",
                    f"duplicate key `{key}` (first defined at line {first_seen[key].line})",
                    key_loc,
                    notes=[f"{first_seen[key]}: first definition of `{key}`"],
                )
            first_seen[key] = key_loc
            key_map[(*path, key)] = key_loc
            result[key] = _construct(value_node, (*path, key), file, source_map, key_map)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*path, i), file, source_map, key_map) for i, item in enumerate(node.value)]
    return _scalar(node, loc)


def _text(value: str, loc: SourceLoc) -> str:
    surrogate = _SURROGATE.search(value)
    if surrogate:
        raise SpecError(
            "E003",
            f"`\\u{ord(surrogate.group()):04x}` is half of a surrogate pair, not a character:"
            " strings must be valid Unicode",
            loc,
        )
    return value


def _scalar(node: yaml.ScalarNode, loc: SourceLoc) -> Any:
    value: str = _text(node.value, loc)
    tag = node.tag
    if tag == "tag:yaml.org,2002:str":
        return value
    if tag == _PLAIN and _NULL.match(value):
        return None
    if tag in (_PLAIN, "tag:yaml.org,2002:bool") and _BOOL.match(value):
        return value.lower() == "true"
    if tag in (_PLAIN, "tag:yaml.org,2002:int", "tag:yaml.org,2002:float") and (
        _INT10.match(value) or _INT8.match(value) or _INT16.match(value)
    ):
        base = 8 if value.startswith("0o") else 16 if value.startswith("0x") else 10
        digits = (value[2:] if base != 10 else value.lstrip("+-")).lstrip("0") or "0"
        # Python refuses to convert decimal strings of more than 4300 digits; no int64 has 20.
        number = int(digits, base) if len(digits) <= 20 else MAX_INT + 1
        if number > MAX_INT:
            shown = value if len(value) <= 30 else value[:30] + "..."
            raise SpecError("E010", f"integer {shown} is too large", loc)
        number = -number if value.startswith("-") else number
        return float(number) if tag.endswith(":float") else number
    if tag in (_PLAIN, "tag:yaml.org,2002:float") and _FLOAT.match(value):
        number_f = float(value)
        if math.isinf(number_f):
            raise SpecError("E009", f"number {value[:30]} is out of range", loc)
        return number_f
    if _INF.match(value) or _NAN.match(value):
        raise SpecError("E009", f"`{value}` is not allowed: sizes and rates must be finite numbers", loc)
    if tag == "tag:yaml.org,2002:null" and _NULL.match(value):
        return None
    if tag != _PLAIN:
        raise SpecError("E102", f"`{value}` is not a valid {tag.rsplit(':', 1)[-1]}", loc)
    return value
