"""The quantizer registry: one entry per quantizer family.

Adding a family is one module that defines its pure functions and per-layer modules and calls
:func:`register_scheme`, plus one import line in ``mebqat/quant/__init__.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn


@dataclass(frozen=True)
class QuantScheme:
    name: str
    description: str
    quantize_weight: Callable[..., torch.Tensor]
    """``(w, bits, **params) -> ŵ``: pure, differentiable with the family's straight-through gradient."""
    quantize_activation: Callable[..., torch.Tensor]
    """``(x, bits, **params) -> x̂``."""
    bit_choices: tuple[int | None, ...]
    """Per-tensor bitwidths that bitwidth tasks of this family draw b_w and b_a from (None = FP)."""
    weight_quantizer: type[nn.Module]
    """Per-layer module owning the weight quantizer's parameters (if any); ``forward(w, bits)``."""
    activation_quantizer: type[nn.Module]
    """Per-site module owning the activation quantizer's parameters (if any); ``forward(x, bits)``."""
    min_bits: int = 1


_SCHEMES: dict[str, QuantScheme] = {}


def register_scheme(scheme: QuantScheme) -> QuantScheme:
    if scheme.name in _SCHEMES:
        raise ValueError(f"quantizer scheme {scheme.name!r} is registered twice")
    _SCHEMES[scheme.name] = scheme
    return scheme


def get_scheme(name: str) -> QuantScheme:
    try:
        return _SCHEMES[name]
    except KeyError:
        raise ValueError(f"unknown quantizer scheme {name!r}; available: {', '.join(sorted(_SCHEMES))}") from None


def available_schemes() -> list[str]:
    return sorted(_SCHEMES)
