"""The common shape of every model: ``model(x, task)`` resolves the task through the model's precision
rules once and runs ``forward_bits(x, bits)``; nothing is rebuilt to change bitwidth."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .layers import QuantConfig
from .rules import LayerBits, PrecisionRules


class QuantizedModel(nn.Module):
    rules: PrecisionRules
    quant: QuantConfig

    def __init__(self, quant: QuantConfig, rules: PrecisionRules) -> None:
        super().__init__()
        self.quant = quant
        self.rules = rules

    def quant_for(self, kind: str, role: str) -> QuantConfig | None:
        """The quantizer config for a layer of this kind and role, or None if the rules keep it FP."""
        return None if self.rules.always_fp(kind, role) else self.quant

    @property
    def scheme(self) -> str:
        return self.quant.scheme

    def forward(self, x: torch.Tensor, task: Any) -> torch.Tensor:
        """``task``: a ``BitwidthTask``/pair (None = FP), or an integer tensor [2] (FP = 32) for vmap."""
        return self.forward_bits(x, self.rules.resolve(task))

    def forward_bits(self, x: torch.Tensor, bits: LayerBits) -> torch.Tensor:
        raise NotImplementedError


def precision_rules(model: nn.Module) -> PrecisionRules:
    """The precision rules of a network built by :func:`mebqat.models.build` (a :class:`QuantizedModel`, or
    anything else that has them as ``rules``)."""
    rules = getattr(model, "rules", None)
    if not isinstance(rules, PrecisionRules):
        raise TypeError(f"{type(model).__name__} has no precision rules: not a network built by mebqat.models.build")
    return rules


def quant_config(
    scheme: str,
    weight_options: Mapping[str, Any] | None = None,
    activation_options: Mapping[str, Any] | None = None,
    rescale_classifier: bool = False,
) -> QuantConfig:
    return QuantConfig(scheme, dict(weight_options or {}), dict(activation_options or {}), rescale_classifier)
