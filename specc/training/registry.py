"""The component registry: `@register` adds a source, transform, loss, metric, optimizer or scheduler.

Components are discovered by importing every module of `specc.training.components`, so a new one
needs nothing but its class in one of those modules (or a new module there). Duplicates and
malformed components are refused at import.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TypeVar

from specc.training.base import Component

KINDS = ("source", "transform", "loss", "metric", "optimizer", "scheduler")
# How each kind is called in messages ("unknown loss `foo`").
KIND_WORDS = {
    "source": "data source",
    "transform": "transform",
    "loss": "loss",
    "metric": "metric",
    "optimizer": "optimizer",
    "scheduler": "scheduler",
}

_REGISTRY: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}
_loaded = False

C = TypeVar("C", bound=type[Component])


def register(cls: C) -> C:
    kind, name = cls.kind, getattr(cls, "name", "")
    if kind not in _REGISTRY:
        raise ValueError(f"component {cls.__name__} has unknown kind {kind!r}")
    if not name.isidentifier() or name != name.lower():
        raise ValueError(f"{kind} name {name!r} must be a lower-case identifier")
    if name in _REGISTRY[kind]:
        raise ValueError(f"{kind} {name!r} is registered twice")
    if not cls.summary:
        raise ValueError(f"{kind} {name!r} needs a summary")
    _REGISTRY[kind][name] = cls()
    return cls


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    import specc.training.components as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        importlib.import_module(f"specc.training.components.{info.name}")
    _loaded = True


def get(kind: str, name: str) -> Component | None:
    _load_all()
    return _REGISTRY[kind].get(name)


def all_of(kind: str) -> dict[str, Component]:
    """Every registered component of `kind`, by name, sorted."""
    _load_all()
    return dict(sorted(_REGISTRY[kind].items()))
