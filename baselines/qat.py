"""Bitwidth-dedicated QAT (Table 2's "QAT" columns), official-mebqat.md §4.2: one model per bitwidth
task, trained with plain CE at that fixed task, BatchNorm with running statistics (inductive at test),
gradients clamped to ±10. The table uses each model's own row; the others are evaluated too (as the
authors did) but not reported."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn
from torch.nn import functional as F

from mebqat.core.counters import PassCounter
from mebqat.core.registry import MethodInfo
from mebqat.core.tasks import BitwidthTask
from mebqat.methods.contract import Engine, SupervisedBatch, UpdateStats
from mebqat.methods.supervised import SupervisedMethod


class DedicatedQAT(SupervisedMethod):
    task: BitwidthTask
    """The one bitwidth task it trains (the job's ``train_task``)."""

    def __init__(self, config: Mapping[str, Any], info: MethodInfo, engine: Engine) -> None:
        super().__init__(config, info, engine)
        if self.train_task is None:  # job resolution already refuses a per-bitwidth job without one
            raise ValueError(f"{info.name} trains one bitwidth task: the job needs a train_task")
        self.task = self.train_task

    def model_options(self) -> dict[str, Any]:
        return {"track_running_stats": True}

    def trained_tasks(self) -> list[BitwidthTask]:
        return [self.task]

    def update(self, model: nn.Module, batch: SupervisedBatch, counter: PassCounter) -> UpdateStats:
        x, y = batch
        loss = F.cross_entropy(model(x, self.task), y)
        counter.forward()
        loss.backward()
        counter.backward()
        self.clamp(model)
        return {"loss": loss.detach()}
