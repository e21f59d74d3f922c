"""Stage 2: check a loaded document against the pydantic models; every problem becomes a located error."""

from __future__ import annotations

from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ValidationError

from specc.errors import MAX_REPORTED_ERRORS, SourceLoc, SpecError, SpecErrors, did_you_mean
from specc.load import Document, JsonPath
from specc.naming import class_name_problem, name_problem
from specc.ops import all_ops
from specc.spec.document import BlockLayer, SequentialLayer, Spec, layer_models

_CONTAINERS = {"sequential"}


def validate(doc: Document) -> Spec:
    """The validated `Spec`, or `SpecErrors` listing every problem found."""
    if not isinstance(doc.data, dict):
        kind = "a list" if isinstance(doc.data, list) else type(doc.data).__name__
        raise SpecErrors([SpecError("E102", f"a spec must be a mapping at the top level, not {kind}", doc.loc(()))])
    errors, unknown_items = _check_layer_types(doc)
    try:
        spec = Spec.model_validate(doc.data)
    except ValidationError as exc:
        # Every problem is reported, except pydantic's view of layers whose type is already unknown.
        raise SpecErrors(errors + _translate(exc, doc, skip=unknown_items)) from None
    if errors:
        raise SpecErrors(errors)
    return spec


def _check_layer_types(doc: Document) -> tuple[list[SpecError], set[JsonPath]]:
    """Unknown `op` names with a did-you-mean (pydantic's union errors say less), and where those layers are."""
    known = [*all_ops(), *_CONTAINERS]
    errors: list[SpecError] = []
    unknown: set[JsonPath] = set()

    def walk(layers: Any, path: JsonPath) -> None:
        if not isinstance(layers, list):
            return
        for i, item in enumerate(layers):
            item_path = (*path, i)
            op = item if isinstance(item, str) else item.get("op") if isinstance(item, dict) else None
            if isinstance(item, dict) and "op" not in item:
                if "block" not in item:
                    errors.append(
                        SpecError("E103", "a layer needs an `op` (or `block`) key naming its type", doc.loc(item_path))
                    )
                    unknown.add(item_path)
                continue
            if not isinstance(op, str):
                continue
            if op not in known:
                where = item_path if isinstance(item, str) else (*item_path, "op")
                # Hints past the reported errors would be computed for nothing (did_you_mean is the slow part).
                hint = did_you_mean(op, known) if len(errors) < MAX_REPORTED_ERRORS else None
                errors.append(SpecError("E105", f"unknown layer type `{op}`", doc.loc(where), hint=hint))
                unknown.add(item_path)
            elif isinstance(item, str) and op not in _CONTAINERS and (required := _required_params(op)):
                needed = ", ".join(f"`{name}`" for name in required)
                written = ", ".join(f"{name}: ..." for name in required)
                errors.append(
                    SpecError(
                        "E103",
                        f"`{op}` needs parameters ({needed})",
                        doc.loc(item_path),
                        hint=f"write {{op: {op}, {written}}}",
                    )
                )
                unknown.add(item_path)
            elif isinstance(item, dict) and op in _CONTAINERS:
                walk(item.get("layers"), (*item_path, "layers"))

    walk(doc.data.get("layers"), ("layers",))
    blocks = doc.data.get("blocks")
    if isinstance(blocks, dict):
        for name, block in blocks.items():
            if isinstance(block, dict):
                walk(block.get("layers"), ("blocks", name, "layers"))
    return errors, unknown


def _required_params(op: str) -> list[str]:
    params = all_ops()[op].Params.model_fields
    return [name for name, info in params.items() if info.is_required()]


def _data_path(loc: tuple[Any, ...], data: Any) -> tuple[JsonPath, str | None]:
    """Split pydantic's error location into the path in the document and the union member it names."""
    path: list[str | int] = []
    member: str | None = None
    for part in loc:
        if isinstance(data, dict) and isinstance(part, str) and (part in data or part == "in"):
            path.append(part)
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            path.append(part)
            data = data[part]
        elif isinstance(part, str) and member is None and isinstance(data, (dict, list)) is False:
            member = part
        else:
            # A discriminator tag or union member label: not part of the document.
            if isinstance(part, str) and part not in ("[key]",):
                member = member or part
    return tuple(path), member


def _model_at(doc_data: Any, path: JsonPath) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at `path` (for did-you-mean on unknown keys).

    Walks the model tree from `Spec` along `path`; where a union offers several models (a data source,
    a loss), the mapping's `type`/`op` value or, failing that, its keys pick one.
    """
    node: Any = doc_data
    candidates: list[type[BaseModel]] = [Spec]
    for part in path:
        node = node[part]  # type: ignore[index]
        if isinstance(part, str):
            candidates = [
                model
                for candidate in candidates
                for name, info in candidate.model_fields.items()
                if part in (name, info.alias)
                for model in _models_in(info.annotation, info.metadata)
            ] or candidates  # a mapping's key or a list index keeps the element models
    if isinstance(node, dict) and "block" in node and "op" not in node:
        return BlockLayer
    if isinstance(node, dict) and isinstance(node.get("op"), str):
        if node["op"] == "sequential":
            return SequentialLayer
        if node["op"] in layer_models():
            return layer_models()[node["op"]]
    if not isinstance(node, dict) or not candidates:
        return None
    for key in ("type", "op"):
        tagged = [m for m in candidates if _literal_field(m, key) == node.get(key)]
        if node.get(key) is not None and tagged:
            return tagged[0]
    return max(candidates, key=lambda m: len(set(node) & set(_field_names(m))))


def _models_in(annotation: Any, metadata: list[Any] | None = None) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold, looking through unions, lists, dicts and Annotated."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in get_args(annotation):
        for model in _models_in(arg):
            if model not in found:
                found.append(model)
    return found


def _literal_field(model: type[BaseModel], key: str) -> Any:
    info = model.model_fields.get(key)
    if info is None or get_origin(info.annotation) is not Literal:
        return None
    values = get_args(info.annotation)
    return values[0] if len(values) == 1 else None


def _field_names(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _translate(exc: ValidationError, doc: Document, skip: set[JsonPath] = frozenset()) -> list[SpecError]:  # type: ignore[assignment]
    grouped: dict[tuple[JsonPath, str], list[dict[str, Any]]] = {}
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if error["type"] == "extra_forbidden":
            path, _ = _data_path(loc[:-1], doc.data)
            path = (*path, loc[-1])
        else:
            path, _ = _data_path(loc, doc.data)
        grouped.setdefault((path, error["type"] if error["type"] in ("extra_forbidden", "missing") else ""), []).append(
            error
        )
    # Paths with a deeper error under them, and skipped prefixes, as sets: 10,000 errors stay linear.
    shadowed = {other[:depth] for other, _ in grouped for depth in range(len(other))}
    results: list[SpecError] = []
    known_keys: dict[JsonPath, list[str]] = {}  # per mapping: its model's keys, for did-you-mean
    for (path, kind), errors in grouped.items():
        if any(path[:depth] in skip for depth in range(len(path) + 1)):
            continue
        deeper = path in shadowed
        if deeper and not kind and all(e["type"].endswith("_type") for e in errors):
            continue  # another branch of a union got further (e.g. `stride: [1, 0]`): report that one
        field = next((str(p) for p in reversed(path) if isinstance(p, str)), "spec")
        if kind == "extra_forbidden":
            parent = path[:-1]
            if parent not in known_keys:
                known_keys[parent] = _field_names(_model_at(doc.data, parent))
            key = str(path[-1])
            owner = f" in {_describe(doc.data, parent)}" if parent else ""
            # Hints past the reported errors would be computed for nothing (did_you_mean is the slow part).
            hint = did_you_mean(key, known_keys[parent]) if len(results) < MAX_REPORTED_ERRORS else None
            results.append(
                SpecError(
                    "E101", f"unknown key `{_clipped(key, MAX_SHOWN_KEY_CHARS)}`{owner}", doc.key_loc(path), hint=hint
                )
            )
            continue
        if kind == "missing":
            for error in errors:
                missing = str(error["loc"][-1])
                owner = _describe(doc.data, path)
                results.append(SpecError("E103", f"{owner} is missing required key `{missing}`", doc.loc(path)))
            continue
        results.append(_value_error(path, field, errors, doc))
    return results


def _describe(data: Any, path: JsonPath) -> str:
    node: Any = data
    for part in path:
        node = node[part]  # type: ignore[index]
    if isinstance(node, dict) and isinstance(node.get("op"), str):
        name = node.get("name")
        return f"{node['op']} layer" + (f" `{name}`" if isinstance(name, str) else "")
    if isinstance(node, dict) and isinstance(node.get("block"), str):
        return f"use of block `{node['block']}`"
    return f"`{'.'.join(str(p) for p in path)}`" if path else "the spec"


MAX_SHOWN_CHARS = 40
_NAME_FIELDS = ("name", "in", "output", "block")


MAX_SHOWN_KEY_CHARS = 80  # a name may be 64 characters; a longer key is no name


def _clipped(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        return f"the string {_clipped(value)!r}"
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    if value is None:
        return "null"
    return repr(value)


def _name_error(path: JsonPath, field: str, value: Any, loc: SourceLoc, is_key: bool) -> SpecError | None:
    """Names get the naming authority's reason, not a type error."""
    if field not in _NAME_FIELDS and not is_key:
        return None
    if not isinstance(value, str):
        return SpecError("E102", f"`{field}` expects a name, got {_shown(value)}", loc)
    class_name = path in (("name",),) or field == "block" or (path[:1] == ("blocks",) and len(path) == 2)
    problem = class_name_problem(value) if class_name else name_problem(value)
    if problem is None:
        return None
    bad = next((ch for ch in value if not (ch.isascii() and (ch.isalnum() or ch == "_"))), None)
    if bad is not None:
        problem += f"; {bad!r} (U+{ord(bad):04X}) is not allowed"
    return SpecError("E106", f"invalid name {_shown(value)[11:]}: {problem}", loc)


def _value_error(path: JsonPath, field: str, errors: list[dict[str, Any]], doc: Document) -> SpecError:
    value = errors[0].get("input")
    kinds = {e["type"] for e in errors}
    is_key = any("[key]" in e["loc"] for e in errors)
    loc = doc.key_loc(path) if is_key else doc.loc(path)  # a bad key is pointed at, not its value
    named = _name_error(path, field, value, loc, is_key)
    if named is not None:
        return named
    if kinds & {"union_tag_invalid", "union_tag_not_found"}:
        if isinstance(value, dict):
            return SpecError(
                "E102", f"`op` must be a layer type name, got {_shown(value.get('op'))}", doc.loc((*path, "op"))
            )
        return SpecError(
            "E102", f"a layer must be a mapping with an `op` (or `block`) key, or an op name; got {_shown(value)}", loc
        )
    if path == ("specc",):
        return SpecError("E104", f"spec version {_shown(value)} is not supported; this specc reads version 1", loc)
    for error in errors:
        ctx = error.get("ctx") or {}
        if error["type"] == "too_short" and ctx.get("actual_length") == 0:
            return SpecError("E104", f"`{field}` must not be empty", loc)
        if error["type"] in ("too_short", "too_long") and ctx.get("min_length") == ctx.get("max_length"):
            return SpecError(
                "E104", f"`{field}` needs {ctx.get('max_length')} values, got {ctx.get('actual_length')}", loc
            )
        if error["type"] in ("too_short", "too_long"):
            limit = ctx.get("min_length") if error["type"] == "too_short" else ctx.get("max_length")
            side = "at least" if error["type"] == "too_short" else "at most"
            return SpecError("E104", f"`{field}` needs {side} {limit} values, got {ctx.get('actual_length')}", loc)
        if error["type"] == "string_too_long":
            return SpecError(
                "E104", f"`{field}` is {len(value)} characters long; the limit is {ctx.get('max_length')}", loc
            )
    type_errors = [
        e for e in errors if e["type"].endswith("_type") or e["type"] in ("literal_error", "union_tag_invalid")
    ]
    constraint_errors = [e for e in errors if e not in type_errors and e["type"] != "string_pattern_mismatch"]
    if constraint_errors:
        first = constraint_errors[0]
        message = first["msg"]
        if first["type"] == "value_error":
            message = message.removeprefix("Value error, ")
            return SpecError("E104", message if field == "spec" else f"`{field}`: {message}", loc)
        return SpecError("E104", f"`{field}` {_must(message)}, got {_shown(value)}", loc)
    expected = list(dict.fromkeys(_expectation(e) for e in errors))
    hint = None
    if isinstance(value, str) and any(e["type"] == "string_pattern_mismatch" for e in errors):
        hint = f"a quoted value is a string: write {value} without quotes" if _is_number(value) else None
    return SpecError("E102", f"`{field}` expects {_join(expected)}, got {_shown(value)}", loc, hint=hint)


def _expectation(error: dict[str, Any]) -> str:
    kind = error["type"]
    names = {
        "int_type": "an integer",
        "float_type": "a number",
        "bool_type": "a boolean",
        "string_type": "an expression",
        "string_pattern_mismatch": "an expression",
        "list_type": "a list",
        "dict_type": "a mapping",
        "model_type": "a mapping",
        "tuple_type": "a list",
        "none_required": "null",
    }
    if kind == "literal_error":
        return "one of " + error["ctx"]["expected"]
    return names.get(kind, _lower(error["msg"]))


def _must(message: str) -> str:
    return "must be " + message.removeprefix("Input should be ").removeprefix("Value should be ")


def _lower(message: str) -> str:
    message = message.removeprefix("Input should be ").removeprefix("Value error, ")
    return message[:1].lower() + message[1:]


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
