"""Stage 1b: `extends` and `replace`, applied to the loaded document before validation.

`extends: resnet18` starts from a bundled spec (its blocks, layers, params and input); the spec's own
keys override the base's (`params` are merged key by key). `replace: {fc: <layer>}` swaps top-level
layers by name. The merged document keeps a source map into both files, so a diagnostic points at the
line that caused it, in whichever file that is.
"""

from importlib import resources
from typing import Any

from specc.errors import SourceLoc, SpecError, did_you_mean
from specc.load import Document, JsonPath, load_bytes

MERGED_BY_KEY = ("params", "blocks")
NOT_OVERRIDABLE = ("layers",)


def zoo_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".yaml") for p in resources.files("specc.zoo").iterdir() if p.name.endswith(".yaml")
    )


def load_zoo(name: str) -> Document:
    """A bundled spec by name (`resnet18`), as a Document whose locations name it `<specc>/specs/resnet18.yaml`."""
    path = resources.files("specc.zoo").joinpath(f"{name}.yaml")
    return load_bytes(path.read_bytes(), f"<specc>/specs/{name}.yaml")


def apply_extends(doc: Document) -> Document:
    data = doc.data
    if not isinstance(data, dict) or ("extends" not in data and "replace" not in data):
        return doc
    merged = dict(data)
    source_map = dict(doc.source_map)
    key_map = dict(doc.key_map)
    base_name = data.get("extends")
    if base_name is not None:
        merged, source_map, key_map = _extend(doc, base_name)
    replace = data.get("replace")
    if isinstance(replace, dict) and replace:
        _replace(doc, replace, merged, source_map, key_map)
        merged.pop("replace")
    return Document(data=merged, source_map=source_map, file=doc.file, raw=doc.raw, key_map=key_map)


def _extend(
    doc: Document, base_name: Any
) -> tuple[dict[str, Any], dict[JsonPath, SourceLoc], dict[JsonPath, SourceLoc]]:
    names = zoo_names()
    if not isinstance(base_name, str) or base_name not in names:
        raise SpecError(
            "E111",
            f"`extends` names no bundled spec: {base_name!r}",
            doc.loc(("extends",)),
            hint=did_you_mean(str(base_name), names) or f"bundled specs: {', '.join(names)}",
        )
    base = load_zoo(base_name)
    if not isinstance(base.data, dict) or "extends" in base.data:
        raise SpecError("E111", f"bundled spec `{base_name}` cannot be extended", doc.loc(("extends",)))
    for key in NOT_OVERRIDABLE:
        if key in doc.data:
            raise SpecError(
                "E104",
                f"a spec that extends `{base_name}` takes its `{key}`; change layers with `replace`",
                doc.key_loc((key,)),
            )
    merged = dict(base.data)
    source_map = dict(base.source_map)
    key_map = dict(base.key_map)
    for key, value in doc.data.items():
        if key in MERGED_BY_KEY and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
            for sub in value:
                _drop(source_map, (key, sub))
                _drop(key_map, (key, sub))
        else:
            merged[key] = value
            _drop(source_map, (key,))
            _drop(key_map, (key,))
    source_map.update({p: loc for p, loc in doc.source_map.items() if p})
    key_map.update(doc.key_map)
    source_map[()] = doc.loc(())
    return merged, source_map, key_map


def _replace(
    doc: Document,
    replace: dict[str, Any],
    merged: dict[str, Any],
    source_map: dict[JsonPath, SourceLoc],
    key_map: dict[JsonPath, SourceLoc],
) -> None:
    layers = merged.get("layers")
    if not isinstance(layers, list):
        return
    names = [item.get("name") for item in layers if isinstance(item, dict)]
    layers = list(layers)
    for name, item in replace.items():
        index = next(
            (i for i, layer in enumerate(layers) if isinstance(layer, dict) and layer.get("name") == name), None
        )
        if index is None:
            raise SpecError(
                "E108",
                f"`replace` names no top-level layer `{name}`",
                doc.key_loc(("replace", name)),
                hint=did_you_mean(name, [n for n in names if isinstance(n, str)]),
            )
        if isinstance(item, dict) and "name" not in item:
            item = {**item, "name": name}
        layers[index] = item
        target: JsonPath = ("layers", index)
        _drop(source_map, target)
        _drop(key_map, target)
        prefix: JsonPath = ("replace", name)
        for path, loc in doc.source_map.items():
            if path[: len(prefix)] == prefix:
                source_map[target + path[len(prefix) :]] = loc
        for path, loc in doc.key_map.items():
            if path[: len(prefix)] == prefix and len(path) > len(prefix):
                key_map[target + path[len(prefix) :]] = loc
    merged["layers"] = layers


def _drop(mapping: dict[JsonPath, SourceLoc], prefix: JsonPath) -> None:
    for path in [p for p in mapping if p[: len(prefix)] == prefix]:
        del mapping[path]
