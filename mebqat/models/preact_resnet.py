"""Pre-activation ResNet-20 of Any-Precision DNN, widened ×5 (official-mebqat.md §3.3); 6,758,810 parameters.

Block: a = ActQ(ReLU(BN1(x))); shortcut = BN(conv1×1_s(a)) when the block downsamples, else the raw x;
out = conv3×3(ActQ(ReLU(BN2(conv3×3_s(a))))) + shortcut. Head: BN, spatial mean, Linear (bias).
Weight quantizers in order: stem (first); per block conv1, conv2, skip; classifier (last) = 22.
Activation quantizers: 2 per block = 18; the last block's second one is the ``last`` activation (the
input of the final 3×3 conv; FP under the authors' Yu21 rules, quantized by ApDNN)."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from .base import QuantizedModel, quant_config
from .layers import ActQuant, NormFactory, QConv2d, QLinear, QuantConfig, batchnorm_factory
from .rules import FIRST_LAST_FP, LayerBits, PrecisionRules


class PreActBlock(nn.Module):
    def __init__(
        self,
        inp: int,
        oup: int,
        stride: int,
        quant: QuantConfig,
        norm: NormFactory,
        last_activation: QuantConfig | None | Literal[False] = False,
    ) -> None:
        """``last_activation``: False for an ordinary block; for the final block, the (possibly None)
        quantizer config of the last activation site."""
        super().__init__()
        self.bn1 = norm(inp)
        self.act1 = ActQuant(quant)
        self.conv1 = QConv2d(inp, oup, 3, stride=stride, padding=1, quant=quant, role="inter")
        self.bn2 = norm(oup)
        self.act2 = ActQuant(quant, "inter") if last_activation is False else ActQuant(last_activation, "last")
        self.conv2 = QConv2d(oup, oup, 3, padding=1, quant=quant, role="inter")
        self.downsample = stride != 1 or inp != oup
        if self.downsample:
            self.skip_conv = QConv2d(inp, oup, 1, stride=stride, quant=quant, role="inter")
            self.skip_bn = norm(oup)

    def forward(self, x: torch.Tensor, bits: LayerBits) -> torch.Tensor:
        a = self.act1(torch.relu(self.bn1(x, bits)), bits)
        shortcut = self.skip_bn(self.skip_conv(a, bits), bits) if self.downsample else x
        h = self.conv1(a, bits)
        h = self.conv2(self.act2(torch.relu(self.bn2(h, bits)), bits), bits)
        return h + shortcut


class PreActResNet20(QuantizedModel):
    def __init__(
        self,
        quant: QuantConfig,
        rules: PrecisionRules,
        num_classes: int = 10,
        expand: int = 5,
        norm: NormFactory | None = None,
    ) -> None:
        super().__init__(quant, rules)
        norm = norm or batchnorm_factory(False)
        widths = (16 * expand, 32 * expand, 64 * expand)
        self.stem = QConv2d(3, widths[0], 3, padding=1, quant=self.quant_for("weight", "first"), role="first")
        blocks: list[nn.Module] = []
        channels = widths[0]
        for stage, width in enumerate(widths):
            for i in range(3):
                stride = 2 if stage > 0 and i == 0 else 1
                last = stage == len(widths) - 1 and i == 2
                blocks.append(
                    PreActBlock(
                        channels, width, stride, quant, norm, self.quant_for("activation", "last") if last else False
                    )
                )
                channels = width
        self.blocks = nn.ModuleList(blocks)
        self.bn_last = norm(channels)
        self.classifier = QLinear(channels, num_classes, quant=self.quant_for("weight", "last"), role="last")

    def forward_bits(self, x: torch.Tensor, bits: LayerBits) -> torch.Tensor:
        x = self.stem(x, bits)
        for block in self.blocks:
            x = block(x, bits)
        return self.classifier(self.bn_last(x, bits).mean(dim=(2, 3)), bits)


def preact_resnet20(
    num_classes: int = 10,
    expand: int = 5,
    scheme: str = "dorefa",
    rules: Any = None,
    track_running_stats: bool = False,
    weight_options: dict | None = None,
    activation_options: dict | None = None,
    norm: NormFactory | None = None,
) -> PreActResNet20:
    """DoReFa ('Yu21') by default with FP first/last weights and an FP last activation."""
    quant = quant_config(scheme, weight_options, activation_options)
    return PreActResNet20(
        quant,
        PrecisionRules.coerce(rules, FIRST_LAST_FP),
        num_classes,
        expand,
        norm or batchnorm_factory(track_running_stats),
    )
