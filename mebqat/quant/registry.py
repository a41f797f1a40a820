"""What a quantizer family implements. Its metadata (bit choices, learned parameters) is its registry entry
(:class:`mebqat.core.registry.QuantizerInfo`); its ``impl`` is a :class:`QuantScheme`. Adding a family is one
module defining ``SCHEME`` plus one entry in :mod:`mebqat.core.catalog` (or a plugin's ``register_quantizer``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..core.registry import QUANTIZERS


@dataclass(frozen=True)
class QuantScheme:
    quantize_weight: Callable[..., torch.Tensor]
    """``(w, bits, **params) -> ŵ``: pure, differentiable with the family's straight-through gradient."""
    quantize_activation: Callable[..., torch.Tensor]
    """``(x, bits, **params) -> x̂``."""
    weight_quantizer: type[nn.Module]
    """Per-layer module owning the weight quantizer's parameters (if any); ``forward(w, bits)``."""
    activation_quantizer: type[nn.Module]
    """Per-site module owning the activation quantizer's parameters (if any); ``forward(x, bits)``."""


def get_scheme(name: str) -> QuantScheme:
    scheme = QUANTIZERS.load(name)
    if not isinstance(scheme, QuantScheme):
        raise TypeError(f"quantizer family {name!r}: its impl must be a QuantScheme, got {type(scheme).__name__}")
    return scheme


def available_schemes() -> list[str]:
    return QUANTIZERS.names()
