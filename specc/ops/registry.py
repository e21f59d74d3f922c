"""The op registry: `@register` adds an op class; duplicates and malformed ops are refused at import."""

from __future__ import annotations

import importlib
import pkgutil
from typing import TypeVar

from specc.ops.base import Op

_REGISTRY: dict[str, Op] = {}
_loaded = False

OpT = TypeVar("OpT", bound=type[Op])


def register(cls: OpT) -> OpT:
    name = cls.name
    if not name.isidentifier() or name != name.lower():
        raise ValueError(f"op name {name!r} must be a lower-case identifier")
    if name in _REGISTRY:
        raise ValueError(f"op {name!r} is registered twice")
    if not cls.summary or not cls.prefix:
        raise ValueError(f"op {name!r} needs a summary and a prefix")
    _REGISTRY[name] = cls()
    return cls


def _load_all() -> None:
    """Import every module of `specc.ops`, so that a new op needs nothing but its own module."""
    global _loaded
    if _loaded:
        return
    import specc.ops as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name not in ("base", "registry"):
            importlib.import_module(f"specc.ops.{info.name}")
    _loaded = True


def get_op(name: str) -> Op | None:
    _load_all()
    return _REGISTRY.get(name)


def all_ops() -> dict[str, Op]:
    _load_all()
    return dict(sorted(_REGISTRY.items()))
