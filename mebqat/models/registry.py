"""The model registry: ``build(name, **kw)``. A model is one module with a builder decorated by
:func:`register_model`, plus one import line in ``mebqat/models/__init__.py``."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

from torch import nn


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    default_scheme: str
    input_shape: tuple[int, ...] | None
    """Input shape (C, H, W) when the architecture fixes it; None when the dataset decides."""


_MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, default_scheme: str, input_shape: tuple[int, ...] | None = None):
    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        _MODELS[name] = ModelEntry(name, builder, default_scheme, input_shape)
        return builder
    return decorate


def get_model_entry(name: str) -> ModelEntry:
    try:
        return _MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(sorted(_MODELS))}") from None


def build(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model; unknown or missing arguments are an error naming the model."""
    entry = get_model_entry(name)
    signature = inspect.signature(entry.builder)
    try:
        signature.bind(**kwargs)
    except TypeError as err:
        raise ValueError(f"model {name!r}: {err} (its arguments: {', '.join(signature.parameters)})") from None
    return entry.builder(**kwargs)


def available_models() -> list[str]:
    return sorted(_MODELS)
