"""Straight-through estimators as pure tensor expressions.

``straight_through(value, *surrogates)`` returns a tensor whose forward value is *exactly* ``value``
and whose gradient is the sum of the surrogates' gradients: ``value.detach() + Σ (s − s.detach())``.
Each quantizer writes its forward formula once and its specified backward as surrogates, so both are
visible side by side. No custom ``autograd.Function`` is involved, so everything works unchanged under
``torch.func.grad``, ``vmap`` and ``functional_call``.
"""

from __future__ import annotations

import torch


def straight_through(value: torch.Tensor, *surrogates: torch.Tensor) -> torch.Tensor:
    out = value.detach()
    for surrogate in surrogates:
        out = out + (surrogate - surrogate.detach())
    return out


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round half to even in the forward pass, identity in the backward pass."""
    return straight_through(torch.round(x), x)
