"""What AdaBits and Any-Precision DNN share: joint training of one model over a fixed bit list on the
same batch, gradients *summed* over the bitwidths (not averaged), switchable per-bitwidth BatchNorm with
running statistics, and evaluation only at the trained bitwidths (there is no BatchNorm for others)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mebqat.core.counters import PassCounter
from mebqat.core.registry import QUANTIZERS, MethodInfo
from mebqat.core.tasks import BitwidthTask, parse_bits_list
from mebqat.methods.base import MethodOptions
from mebqat.methods.contract import Engine, SupervisedBatch, UpdateStats
from mebqat.methods.functional import forward_tasks_batched
from mebqat.methods.supervised import SupervisedMethod
from mebqat.models.layers import switchable_batchnorm_factory


@dataclass(frozen=True)
class BitListOptions(MethodOptions):
    """The ``method:`` options of ``adabits`` and ``apdnn`` (their defaults: their entries in
    :mod:`mebqat.core.catalog`)."""

    bits: tuple[int | str, ...]
    """The bit list every batch trains, as configured: bitwidths and ``"FP"``, e.g. ``(1, 2, 4, 8, "FP")``."""


class JointBitListMethod(SupervisedMethod):
    options_type = BitListOptions
    options: BitListOptions
    bits: list[int | None]
    """The bit list, parsed (None: FP)."""
    tasks: list[BitwidthTask]
    """(b, b) for each bitwidth b of the bit list."""

    def __init__(self, config: Mapping[str, Any], info: MethodInfo, engine: Engine) -> None:
        super().__init__(config, info, engine)
        self.bits = parse_bits_list(self.options.bits)
        if not self.bits:
            raise ValueError(f"{info.name}: the bit list is empty")
        allowed = QUANTIZERS.get(self.family).bit_choices
        bad = [b for b in self.bits if b not in allowed]
        if bad:
            raise ValueError(f"{info.name}: bitwidths {bad} are not valid for the {self.family} quantizer")
        self.tasks = [BitwidthTask(b, b) for b in self.bits]

    def model_options(self) -> dict[str, Any]:
        return {"norm": switchable_batchnorm_factory(tuple(self.bits), track_running_stats=True)}

    def trained_tasks(self) -> list[BitwidthTask]:
        return list(self.tasks)

    def can_evaluate(self, task: BitwidthTask) -> bool:
        return task in self.tasks

    def training_order(self) -> list[BitwidthTask]:
        return list(self.tasks)

    def task_loss(
        self, index: int, logits: torch.Tensor, y: torch.Tensor, previous_logits: torch.Tensor | None
    ) -> torch.Tensor:
        """The loss of the ``index``-th task of :meth:`training_order`, given the (detached) logits of the
        task before it."""
        raise NotImplementedError

    def update(self, model: nn.Module, batch: SupervisedBatch, counter: PassCounter) -> UpdateStats:
        x, y = batch
        order = self.training_order()
        losses: list[torch.Tensor] = []
        if self.batched:
            logits = forward_tasks_batched(model, x, order)
            losses = [self.task_loss(k, logits[k], y, logits[k - 1].detach() if k else None) for k in range(len(order))]
            torch.stack(losses).sum().backward()
        else:  # the reference: one forward and backward per bitwidth, gradients accumulating in .grad
            previous = None
            for k, task in enumerate(order):
                logits = model(x, task)
                loss = self.task_loss(k, logits, y, previous)
                loss.backward()
                losses.append(loss.detach())
                previous = logits.detach()
        counter.forward(len(order))
        counter.backward(len(order))
        self.clamp(model)
        return {"loss": torch.stack([loss.detach() for loss in losses]).mean()}
