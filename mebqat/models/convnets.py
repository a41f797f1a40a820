"""The few-shot conv nets (official-mebqat.md §3.5–§3.7).

Both are four blocks of conv3×3 (pad 1, bias) → BatchNorm → ReLU → max-pool 2×2.

* ``maml_convnet`` (the "5-layer CNN"): BatchNorm with γ fixed at 1 and a learned β, then a linear
  classifier; hidden 64 on Omniglot (28×28×1 → 64 features), 32 on MiniImageNet (84×84×3 → 800).
  112,980 parameters (Omniglot 20-way), 32,773 (MiniImageNet 5-way).
* ``proto_convnet`` (the "4-layer CNN"): affine BatchNorm, 64 channels, no classifier; the embedding is
  the flattened output of block 4. 111,936 parameters (Omniglot), 113,088 (MiniImageNet).

Quantized (LSQ by default): the weights of conv2–conv4 and their inputs (the pooled ReLU outputs of
blocks 1–3). conv1 (weights and image input) and the classifier stay FP. Init: conv weights truncated
normal (std 0.02, cut at ±0.04), linear weights N(0, 0.02²), zero biases; each LSQ weight step is booted
from the layer's initial weight at ``weight_options["init_bits"]`` (default 2: the MEBQAT base net).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import QuantizedModel, quant_config
from .layers import (
    ActQuant,
    BetaOnlyBatchNorm2d,
    NormFactory,
    QConv2d,
    QLinear,
    QSequential,
    QuantConfig,
    batchnorm_factory,
)
from .rules import FIRST_LAST_FP, LayerBits, PrecisionRules

DATASET_PRESETS: dict[str, dict[str, Any]] = {
    "omniglot": {"input_shape": (1, 28, 28), "maml_hidden": 64, "proto_hidden": 64},
    "miniimagenet": {"input_shape": (3, 84, 84), "maml_hidden": 32, "proto_hidden": 64},
}


INIT_STD = 0.02


def init_conv(module: nn.Conv2d) -> None:
    nn.init.trunc_normal_(module.weight, mean=0.0, std=INIT_STD, a=-2 * INIT_STD, b=2 * INIT_STD)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def init_linear(module: nn.Linear) -> None:
    nn.init.normal_(module.weight, mean=0.0, std=INIT_STD)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def _conv_blocks(model: QuantizedModel, in_channels: int, hidden: int, norm: NormFactory) -> QSequential:
    layers: list[nn.Module] = []
    channels = in_channels
    for index in range(4):
        role = "first" if index == 0 else "inter"
        if index > 0:
            layers.append(ActQuant(model.quant))
        layers += [
            QConv2d(
                channels,
                hidden,
                3,
                padding=1,
                bias=True,
                quant=model.quant_for("weight", role),
                role=role,
                init=init_conv,
            ),
            norm(hidden),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        ]
        channels = hidden
    return QSequential(*layers)


def _embedding_size(input_shape: tuple[int, int, int], hidden: int) -> int:
    _, height, width = input_shape
    for _ in range(4):
        height, width = height // 2, width // 2
    if height < 1 or width < 1:
        raise ValueError(f"input {input_shape} is too small for four 2×2 poolings")
    return hidden * height * width


def _resolve_shape(
    dataset: str | None, input_shape: Any, hidden: int | None, key: str
) -> tuple[tuple[int, int, int], int]:
    if dataset is not None:
        if dataset not in DATASET_PRESETS:
            raise ValueError(
                f"unknown few-shot dataset preset {dataset!r}; available: {sorted(DATASET_PRESETS)} "
                f"(or pass input_shape=(C, H, W) and hidden=...)"
            )
        preset = DATASET_PRESETS[dataset]
        if input_shape is not None and tuple(input_shape) != preset["input_shape"]:
            raise ValueError(
                f"input_shape {tuple(input_shape)} contradicts dataset {dataset!r} ({preset['input_shape']})"
            )
        return preset["input_shape"], hidden or preset[key]
    if input_shape is None:
        raise ValueError("few-shot nets need dataset='omniglot'|'miniimagenet' or input_shape=(C, H, W)")
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {input_shape!r}")
    return shape, hidden or 64


def _fewshot_quant(scheme: str, weight_options: dict | None, activation_options: dict | None) -> QuantConfig:
    return quant_config(scheme, weight_options, activation_options)


class MAMLConvNet(QuantizedModel):
    def __init__(
        self,
        quant: QuantConfig,
        rules: PrecisionRules,
        input_shape: tuple[int, int, int],
        ways: int,
        hidden: int,
        norm: NormFactory,
    ) -> None:
        super().__init__(quant, rules)
        self.input_shape, self.ways, self.hidden = input_shape, ways, hidden
        self.features = _conv_blocks(self, input_shape[0], hidden, norm)
        self.classifier = QLinear(
            _embedding_size(input_shape, hidden),
            ways,
            quant=self.quant_for("weight", "last"),
            role="last",
            init=init_linear,
        )

    def forward_bits(self, x: torch.Tensor, bits: LayerBits) -> torch.Tensor:
        return self.classifier(self.features(x, bits).flatten(1), bits)


class ProtoConvNet(QuantizedModel):
    def __init__(
        self,
        quant: QuantConfig,
        rules: PrecisionRules,
        input_shape: tuple[int, int, int],
        hidden: int,
        norm: NormFactory,
    ) -> None:
        super().__init__(quant, rules)
        self.input_shape, self.hidden = input_shape, hidden
        self.embedding_size = _embedding_size(input_shape, hidden)
        self.features = _conv_blocks(self, input_shape[0], hidden, norm)

    def forward_bits(self, x: torch.Tensor, bits: LayerBits) -> torch.Tensor:
        return self.features(x, bits).flatten(1)


def maml_convnet(
    ways: int,
    dataset: str | None = None,
    input_shape: Any = None,
    hidden: int | None = None,
    scheme: str = "lsq",
    rules: Any = None,
    track_running_stats: bool = False,
    weight_options: dict | None = None,
    activation_options: dict | None = None,
) -> MAMLConvNet:
    shape, hidden = _resolve_shape(dataset, input_shape, hidden, "maml_hidden")
    if ways < 2:
        raise ValueError(f"maml_convnet needs at least 2 ways, got {ways}")
    norm: NormFactory = lambda c: BetaOnlyBatchNorm2d(c, track_running_stats=track_running_stats)  # noqa: E731
    return MAMLConvNet(
        _fewshot_quant(scheme, weight_options, activation_options),
        PrecisionRules.coerce(rules, FIRST_LAST_FP),
        shape,
        ways,
        hidden,
        norm,
    )


def proto_convnet(
    dataset: str | None = None,
    input_shape: Any = None,
    hidden: int | None = None,
    scheme: str = "lsq",
    rules: Any = None,
    track_running_stats: bool = False,
    weight_options: dict | None = None,
    activation_options: dict | None = None,
) -> ProtoConvNet:
    shape, hidden = _resolve_shape(dataset, input_shape, hidden, "proto_hidden")
    return ProtoConvNet(
        _fewshot_quant(scheme, weight_options, activation_options),
        PrecisionRules.coerce(rules, FIRST_LAST_FP),
        shape,
        hidden,
        batchnorm_factory(track_running_stats),
    )
