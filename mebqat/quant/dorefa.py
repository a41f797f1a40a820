"""DoReFa as used by Any-Precision DNN (the authors' ``Yu21``), official-mebqat.md §2.1.

Weights, b ≥ 2:  t = tanh(w), M = max|t| (not stop-gradded), u = (t/M + 1)/2,
                 q = round((2^b−1)u)/(2^b−1) (STE), ŵ = E·(2q − 1) with E = sg(mean|w|).
Weights, b = 1:  ŵ = E·sign(w) (sign(0) = 0), gradient 1 (identity STE, no clipping).
Activations:     â = round((2^b−1)·clip(r, 0, 1))/(2^b−1), gradient 1 on 0 ≤ r ≤ 1 (inclusive).
FP (None):       raw weights and the unclipped activation.
No learnable parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from ..core.registry import QUANTIZERS
from .bits import Bits, exp2, is_tensor_bits, quantize_by_bits
from .registry import QuantScheme
from .ste import straight_through

NAME = "dorefa"
MIN_BITS = QUANTIZERS.get(NAME).min_bits


def _weight_scale(w: torch.Tensor) -> torch.Tensor:
    return w.abs().mean().detach()


def _max_abs(t: torch.Tensor) -> torch.Tensor:
    """max|t|, differentiable (the arg-max element gets the gradient), never exactly zero."""
    return t.abs().amax().clamp_min(torch.finfo(t.dtype).tiny)


def _weight_one_bit(w: torch.Tensor) -> torch.Tensor:
    scale = _weight_scale(w)
    return straight_through(scale * torch.sign(w), w)


def _weight_multi_bit(w: torch.Tensor, levels: float | torch.Tensor) -> torch.Tensor:
    t = torch.tanh(w)
    u = (t / _max_abs(t) + 1) / 2
    q = torch.round(levels * u) / levels
    scale = _weight_scale(w)
    return straight_through(scale * (2 * q - 1), scale * (2 * u - 1))


def _weight(w: torch.Tensor, b: int | torch.Tensor) -> torch.Tensor:
    if not is_tensor_bits(b):
        return _weight_one_bit(w) if b == 1 else _weight_multi_bit(w, exp2(b, w) - 1)
    one_bit = b == 1
    multi_bits = torch.where(one_bit, torch.full_like(b, 2), b)
    return torch.where(one_bit, _weight_one_bit(w), _weight_multi_bit(w, exp2(multi_bits, w) - 1))


def quantize_weight(w: torch.Tensor, bits: Bits) -> torch.Tensor:
    return quantize_by_bits(w, bits, NAME, MIN_BITS, lambda b: _weight(w, b))


def _activation(x: torch.Tensor, levels: float | torch.Tensor) -> torch.Tensor:
    clipped = torch.clamp(x, 0, 1)
    inside = ((x >= 0) & (x <= 1)).to(x.dtype)
    return straight_through(torch.round(levels * clipped) / levels, x * inside)


def quantize_activation(x: torch.Tensor, bits: Bits) -> torch.Tensor:
    return quantize_by_bits(x, bits, NAME, MIN_BITS, lambda b: _activation(x, exp2(b, x) - 1))


class WeightQuantizer(nn.Module):
    """Per-layer DoReFa weight quantizer (no parameters)."""

    scheme = NAME

    def __init__(self, weight: torch.Tensor | None = None) -> None:
        super().__init__()

    def forward(self, w: torch.Tensor, bits: Bits) -> torch.Tensor:
        return quantize_weight(w, bits)


class ActivationQuantizer(nn.Module):
    """Per-site DoReFa activation quantizer (no parameters)."""

    scheme = NAME

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor, bits: Bits) -> torch.Tensor:
        return quantize_activation(x, bits)


SCHEME = QuantScheme(
    quantize_weight=quantize_weight,
    quantize_activation=quantize_activation,
    weight_quantizer=WeightQuantizer,
    activation_quantizer=ActivationQuantizer,
)
