"""Building registered models: ``build(name, **kw)``. A model is one module with a builder function plus
one entry in :mod:`mebqat.core.catalog` (its metadata: default quantizer family, input shape)."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from ..core.registry import MODELS


def build(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model; unknown or missing arguments are an error naming the model."""
    builder = MODELS.load(name)
    signature = inspect.signature(builder)
    try:
        signature.bind(**kwargs)
    except TypeError as err:
        raise ValueError(f"model {name!r}: {err} (its arguments: {', '.join(signature.parameters)})") from None
    return builder(**kwargs)


def available_models() -> list[str]:
    return MODELS.names()
