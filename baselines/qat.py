"""Bitwidth-dedicated QAT (Table 2's "QAT" columns), official-mebqat.md §4.2: one model per bitwidth
task, trained with plain CE at that fixed task, BatchNorm with running statistics (inductive at test),
gradients clamped to ±10. The table uses each model's own row; the others are evaluated too (as the
authors did) but not reported."""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn
from torch.nn import functional as F

from mebqat.engine.counters import PassCounter
from mebqat.methods.base import SupervisedMethod
from mebqat.methods.registry import register_method
from mebqat.quant import BitwidthTask


@register_method("qat", kind="supervised", title="QAT")
class DedicatedQAT(SupervisedMethod):
    NEEDS_TRAIN_TASK = True

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.task = BitwidthTask.parse(config["job"]["train_task"])

    def model_options(self) -> dict[str, Any]:
        return {"track_running_stats": True}

    def trained_tasks(self) -> list[BitwidthTask]:
        return [self.task]

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, counter: PassCounter) -> dict[str, float]:
        loss = F.cross_entropy(model(x, self.task), y)
        counter.forward()
        loss.backward()
        counter.backward()
        self.clamp(model)
        return {"loss": float(loss.detach())}
