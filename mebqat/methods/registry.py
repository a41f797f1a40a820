"""The method registry. A method is one module whose class is decorated with :func:`register_method`,
plus one import line in ``mebqat/methods/__init__.py``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class MethodEntry:
    name: str
    cls: type
    kind: str          # "supervised" (Table 2) | "fewshot" (Tables 4/5)
    title: str         # how tables name the method


_METHODS: dict[str, MethodEntry] = {}
KINDS = ("supervised", "fewshot")


def register_method(name: str, kind: str, title: str) -> Callable[[type], type]:
    if kind not in KINDS:
        raise ValueError(f"method kind must be one of {KINDS}, got {kind!r}")

    def decorate(cls: type) -> type:
        if name in _METHODS:
            raise ValueError(f"method {name!r} is registered twice")
        cls.name = name
        _METHODS[name] = MethodEntry(name, cls, kind, title)
        return cls
    return decorate


def get_method(name: str) -> MethodEntry:
    try:
        return _METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; available: {', '.join(sorted(_METHODS))}") from None


def available_methods(kind: str | None = None) -> list[str]:
    return sorted(n for n, e in _METHODS.items() if kind is None or e.kind == kind)
