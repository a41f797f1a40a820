"""The 8-layer SVHN CNN of Any-Precision DNN, widened ×8, on 3×40×40 inputs (official-mebqat.md §3.4);
2,081,354 parameters.

conv5×5(bias)→pool→ReLU→ActQ | conv3×3→BN→ReLU→ActQ | conv3×3→BN→pool→ReLU→ActQ | conv3×3(pad 0)→BN→ReLU→ActQ |
conv3×3→BN→ReLU→ActQ | conv3×3(pad 0)→BN→ReLU→ActQ | Dropout→conv5×5(pad 0)→ReLU→ActQ(last) | Linear(last).
The first conv is the first weight. With 32×32 inputs the seventh layer would have no output, hence 40×40."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import QuantizedModel, quant_config
from .layers import ActQuant, NormFactory, QConv2d, QLinear, QSequential, QuantConfig, batchnorm_factory
from .rules import FIRST_LAST_FP, LayerBits, PrecisionRules


class CNNForSVHN(QuantizedModel):
    def __init__(
        self,
        quant: QuantConfig,
        rules: PrecisionRules,
        num_classes: int = 10,
        expand: int = 8,
        dropout: float = 0.5,
        norm: NormFactory | None = None,
    ) -> None:
        super().__init__(quant, rules)
        norm = norm or batchnorm_factory(False)
        c1, c2, c3, c4 = 6 * expand, 8 * expand, 16 * expand, 64 * expand

        def conv(cin: int, cout: int, k: int, pad: int, role: str = "inter", bias: bool = False) -> QConv2d:
            return QConv2d(cin, cout, k, padding=pad, bias=bias, quant=self.quant_for("weight", role), role=role)

        relu = lambda: nn.ReLU(inplace=True)  # noqa: E731
        self.features = QSequential(
            conv(3, c1, 5, 0, role="first", bias=True),
            nn.MaxPool2d(2),
            relu(),
            ActQuant(quant),
            conv(c1, c2, 3, 1),
            norm(c2),
            relu(),
            ActQuant(quant),
            conv(c2, c2, 3, 1),
            norm(c2),
            nn.MaxPool2d(2),
            relu(),
            ActQuant(quant),
            conv(c2, c3, 3, 0),
            norm(c3),
            relu(),
            ActQuant(quant),
            conv(c3, c3, 3, 1),
            norm(c3),
            relu(),
            ActQuant(quant),
            conv(c3, c3, 3, 0),
            norm(c3),
            relu(),
            ActQuant(quant),
            nn.Dropout(dropout),
            conv(c3, c4, 5, 0),
            relu(),
            ActQuant(self.quant_for("activation", "last"), role="last"),
        )
        self.classifier = QLinear(c4, num_classes, quant=self.quant_for("weight", "last"), role="last")

    def forward_bits(self, x: torch.Tensor, bits: LayerBits) -> torch.Tensor:
        return self.classifier(self.features(x, bits).flatten(1), bits)


def cnn_svhn(
    num_classes: int = 10,
    expand: int = 8,
    scheme: str = "dorefa",
    rules: Any = None,
    track_running_stats: bool = False,
    dropout: float = 0.5,
    weight_options: dict | None = None,
    activation_options: dict | None = None,
    norm: NormFactory | None = None,
) -> CNNForSVHN:
    """DoReFa ('Yu21') by default with FP first/last weights and an FP last activation."""
    quant = quant_config(scheme, weight_options, activation_options)
    return CNNForSVHN(
        quant,
        PrecisionRules.coerce(rules, FIRST_LAST_FP),
        num_classes,
        expand,
        dropout,
        norm or batchnorm_factory(track_running_stats),
    )
