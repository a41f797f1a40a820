"""SAT / AdaBits quantizer (the authors' ``SAT-modifiedW`` / ``SAT-originalW``), official-mebqat.md §2.1.

Weights (b ≥ 2): u = (tanh(w)/M + 1)/2 with M = max|tanh w| (not stop-gradded);
    ``modified``: q = min(floor(2^b·u), 2^b − 1)/2^b;  ``original``: q = round((2^b − 1)u)/(2^b − 1);
    ŵ = 2q − 1 with a straight-through q (∂q/∂u = 1).
    Classifier rescale (``rescale_out_features=n_out``): ŵ ← ŵ · (1/√n_out) / sg(std(ŵ)), unbiased std.
Activations (b ≥ 2): α' = |α| (learned, init 8), c = min(ReLU(x), α'), â = α'·round((2^b−1)c/α')/(2^b−1);
    ∂â/∂x = 1 on 0 < x < α';  ∂â/∂α' = round((2^b−1)c/α')/(2^b−1) − c/α' where x < α', 1 where x ≥ α'.
FP (None): raw weights without normalisation or rescale; the unclipped activation; α unused.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..core.registry import QUANTIZERS
from .bits import Bits, exp2, quantize_by_bits
from .dorefa import _max_abs
from .registry import QuantScheme
from .ste import straight_through
from .table import BitwidthTable

NAME = "sat"
MIN_BITS = QUANTIZERS.get(NAME).min_bits
ALPHA_INIT = 8.0
ROUNDINGS = ("modified", "original")


def _normalised_weight(w: torch.Tensor) -> torch.Tensor:
    t = torch.tanh(w)
    return (t / _max_abs(t) + 1) / 2


def _weight(
    w: torch.Tensor, two_to_b: float | torch.Tensor, rounding: str, rescale_out_features: int | None
) -> torch.Tensor:
    u = _normalised_weight(w)
    if rounding == "modified":
        q = (
            torch.minimum(torch.floor(two_to_b * u), torch.as_tensor(two_to_b - 1, dtype=u.dtype, device=u.device))
            / two_to_b
        )
    else:
        q = torch.round((two_to_b - 1) * u) / (two_to_b - 1)
    w_hat = straight_through(2 * q - 1, 2 * u - 1)
    if rescale_out_features is not None:
        w_hat = w_hat * (1.0 / math.sqrt(rescale_out_features)) / w_hat.detach().std()
    return w_hat


def _check_options(rounding: str, rescale_out_features: int | None) -> None:
    if rounding not in ROUNDINGS:
        raise ValueError(f"sat: rounding must be one of {ROUNDINGS}, got {rounding!r}")
    if rescale_out_features is not None and (not isinstance(rescale_out_features, int) or rescale_out_features < 1):
        raise ValueError(f"sat: rescale_out_features must be None or a positive int, got {rescale_out_features!r}")


def quantize_weight(
    w: torch.Tensor, bits: Bits, rounding: str = "modified", rescale_out_features: int | None = None
) -> torch.Tensor:
    _check_options(rounding, rescale_out_features)
    return quantize_by_bits(w, bits, NAME, MIN_BITS, lambda b: _weight(w, exp2(b, w), rounding, rescale_out_features))


def _activation(x: torch.Tensor, alpha: torch.Tensor, levels: float | torch.Tensor) -> torch.Tensor:
    a = alpha.abs()
    c = torch.minimum(torch.relu(x), a)
    ratio = (c / a).detach()
    q = torch.round(levels * ratio) / levels
    value = a * q
    below = (x < a).detach()
    grad_x = ((x > 0) & below).to(x.dtype)
    grad_alpha = torch.where(below, q - ratio, torch.ones_like(q))
    return straight_through(value, x * grad_x, a * grad_alpha)


def quantize_activation(x: torch.Tensor, bits: Bits, alpha: torch.Tensor | float = ALPHA_INIT) -> torch.Tensor:
    if not isinstance(alpha, torch.Tensor):
        alpha = torch.as_tensor(float(alpha), dtype=x.dtype, device=x.device)
    return quantize_by_bits(x, bits, NAME, MIN_BITS, lambda b: _activation(x, alpha, exp2(b, x) - 1))


class WeightQuantizer(nn.Module):
    """Per-layer SAT weight quantizer (no parameters); linear classifiers pass ``rescale_out_features``."""

    scheme = NAME

    def __init__(
        self, weight: torch.Tensor | None = None, rounding: str = "modified", rescale_out_features: int | None = None
    ) -> None:
        super().__init__()
        _check_options(rounding, rescale_out_features)
        self.rounding = rounding
        self.rescale_out_features = rescale_out_features

    def forward(self, w: torch.Tensor, bits: Bits) -> torch.Tensor:
        return quantize_weight(w, bits, self.rounding, self.rescale_out_features)

    def extra_repr(self) -> str:
        return f"rounding={self.rounding}, rescale_out_features={self.rescale_out_features}"


class ActivationQuantizer(nn.Module):
    """Per-site SAT activation quantizer owning a learned clipping level α (init 8): one shared by every
    bitwidth (MEBQAT, dedicated QAT), or one per bitwidth (``per_bitwidth=True``: AdaBits' switchable
    clipping levels, selected by the activation bitwidth)."""

    scheme = NAME

    def __init__(
        self,
        alpha_init: float = ALPHA_INIT,
        per_bitwidth: bool = False,
        bit_choices: tuple[int | None, ...] = (2, 3, 4, 5, 6, 7, 8, 16, None),
    ) -> None:
        super().__init__()
        self.alpha = BitwidthTable(per_bitwidth, bit_choices, alpha_init, "sat clipping level", min_bits=MIN_BITS)

    def forward(self, x: torch.Tensor, bits: Bits) -> torch.Tensor:
        return quantize_activation(x, bits, self.alpha.value_for(bits))


SCHEME = QuantScheme(
    quantize_weight=quantize_weight,
    quantize_activation=quantize_activation,
    weight_quantizer=WeightQuantizer,
    activation_quantizer=ActivationQuantizer,
)
