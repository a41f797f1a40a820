"""MobileNetV2 for CIFAR-10 (official-mebqat.md §3.2): stem stride 1, 24-channel stage stride 1,
ReLU6 only in the stem and head, ReLU inside the blocks, PyTorch default init; 2,236,682 parameters.

Quantized: every conv/linear weight (stem = first, classifier = last; SAT: both at 8 bits for every
quantized task) and every post-nonlinearity activation (the head's is the last). Expansion-conv inputs
come from the residual stream and stay FP."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn

from .base import QuantizedModel, quant_config
from .layers import ActQuant, NormFactory, QConv2d, QLinear, QSequential, QuantConfig, batchnorm_factory
from .rules import SAT_MOBILENET, LayerBits, PrecisionRules

# (expansion t, output channels c, repeats n, first stride s)
CIFAR_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a scaled channel count to a multiple of ``divisor``, never more than 10% below it
    (the MobileNet convention for width multipliers)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expansion: int, quant: QuantConfig, norm: NormFactory) -> None:
        super().__init__()
        hidden = int(round(inp * expansion))
        layers: list[nn.Module] = []
        if expansion != 1:
            layers += [
                QConv2d(inp, hidden, 1, quant=quant, role="inter"),
                norm(hidden),
                nn.ReLU(inplace=True),
                ActQuant(quant),
            ]
        layers += [
            QConv2d(hidden, hidden, 3, stride=stride, padding=1, groups=hidden, quant=quant, role="inter"),
            norm(hidden),
            nn.ReLU(inplace=True),
            ActQuant(quant),
            QConv2d(hidden, oup, 1, quant=quant, role="inter"),
            norm(oup),
        ]
        self.body = QSequential(*layers)
        self.residual = stride == 1 and inp == oup

    def forward(self, x: torch.Tensor, bits: LayerBits) -> torch.Tensor:
        out = self.body(x, bits)
        return x + out if self.residual else out


class MobileNetV2CIFAR(QuantizedModel):
    def __init__(
        self,
        quant: QuantConfig,
        rules: PrecisionRules,
        num_classes: int = 10,
        dropout: float = 0.2,
        norm: NormFactory | None = None,
        width_mult: float = 1.0,
        head_gamma_init: float = 1.0,
        last_quant: QuantConfig | None = None,
    ) -> None:
        super().__init__(quant, rules)
        norm = norm or batchnorm_factory(False)
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        stem_channels = make_divisible(32 * width_mult)
        head_channels = make_divisible(1280 * max(1.0, width_mult))
        self.stem = QSequential(
            QConv2d(3, stem_channels, 3, padding=1, quant=self.quant_for("weight", "first"), role="first"),
            norm(stem_channels),
            nn.ReLU6(inplace=True),
            ActQuant(quant),
        )
        blocks: list[nn.Module] = []
        channels = stem_channels
        for expansion, out_channels, repeats, stride in CIFAR_SETTINGS:
            out_channels = make_divisible(out_channels * width_mult)
            for i in range(repeats):
                blocks.append(InvertedResidual(channels, out_channels, stride if i == 0 else 1, expansion, quant, norm))
                channels = out_channels
        self.blocks = nn.ModuleList(blocks)
        last_activation = None if self.quant_for("activation", "last") is None else (last_quant or quant)
        self.head = QSequential(
            QConv2d(channels, head_channels, 1, quant=quant, role="inter"),
            norm(head_channels),
            nn.ReLU6(inplace=True),
            ActQuant(last_activation, role="last"),
        )
        gamma = self.head[1].weight  # the head BatchNorm's scale
        assert isinstance(gamma, torch.Tensor)
        nn.init.constant_(gamma, head_gamma_init)
        self.dropout = nn.Dropout(dropout)
        self.classifier = QLinear(head_channels, num_classes, quant=self.quant_for("weight", "last"), role="last")

    def forward_bits(self, x: torch.Tensor, bits: LayerBits) -> torch.Tensor:
        x = self.stem(x, bits)
        for block in self.blocks:
            x = block(x, bits)
        x = self.head(x, bits).mean(dim=(2, 3))
        return self.classifier(self.dropout(x), bits)


def mobilenetv2_cifar(
    num_classes: int = 10,
    scheme: str = "sat",
    rules: Any = None,
    track_running_stats: bool = False,
    dropout: float = 0.2,
    weight_options: dict | None = None,
    activation_options: dict | None = None,
    rescale_classifier: bool | None = None,
    norm: NormFactory | None = None,
    width_mult: float = 1.0,
    head_gamma_init: float = 1.0,
    last_activation_options: dict | None = None,
) -> MobileNetV2CIFAR:
    """SAT by default: 'modified' weight rounding, classifier rescale, 8-bit first/last weights.
    ``width_mult`` < 1 narrows every stage (1.0 is the paper's network; the CPU scales use less).
    ``head_gamma_init`` is the initial γ of the head's BatchNorm, whose output (after ReLU6, the last activation
    quantizer and pooling) is what the classifier reads; ``last_activation_options`` update
    ``activation_options`` for that last quantizer only (e.g. its SAT ``alpha_init``). PyTorch's defaults
    (γ = 1, the same options everywhere) are the authors'; docs/models.md says why the mini scale changes them."""
    weight_options = dict(weight_options or {})
    if scheme == "sat":
        weight_options.setdefault("rounding", "modified")
    quant = quant_config(
        scheme,
        weight_options,
        activation_options,
        rescale_classifier=(scheme == "sat") if rescale_classifier is None else rescale_classifier,
    )
    last_quant = (
        None
        if not last_activation_options
        else replace(quant, activation_options={**quant.activation_options, **last_activation_options})
    )
    rules = PrecisionRules.coerce(rules, SAT_MOBILENET if scheme == "sat" else PrecisionRules("fp", "fp", "fp"))
    return MobileNetV2CIFAR(
        quant,
        rules,
        num_classes,
        dropout,
        norm or batchnorm_factory(track_running_stats),
        width_mult,
        head_gamma_init,
        last_quant,
    )
