"""What a Table 2 (supervised) method provides to the engine (:mod:`mebqat.engine.supervised`).

The engine owns data, epochs, optimizer, schedule, checkpoints and evaluation; a method owns its model's
construction (BatchNorm mode, switchable parts), the bitwidth tasks it trains, one training step (which
leaves the aggregated, clamped gradient in each parameter's ``.grad``), the bitwidths it can be evaluated
at, and how a per-epoch validation score is formed.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

import torch
from torch import nn

from ..engine.counters import PassCounter
from ..engine.optim import clamp_gradients_
from ..engine.runtime import derived_seed
from ..models import build
from ..quant import BitwidthTask, TaskSampler, format_bits


class SupervisedMethod:
    name: ClassVar[str]
    SCHEMA: ClassVar[str] = "supervised_job"
    OPTIONS: ClassVar[dict[str, Any]] = {}
    NEEDS_TRAIN_TASK: ClassVar[bool] = False

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.options: dict[str, Any] = dict(config["method"])
        self.family: str = config["model"]["scheme"]
        self.switches: dict[str, bool] = dict(config["fidelity_switches"])
        self.batched: bool = config["train"]["engine"] == "batched"
        self.grad_clamp: float | None = config["train"]["grad_clamp"]
        self.seed: int = config["job"]["seed"]

    # ---------------------------------------------------------------- model

    def model_options(self) -> dict[str, Any]:
        """Builder arguments the method adds (BatchNorm mode, switchable parts)."""
        return {}

    def build_model(self, num_classes: int) -> nn.Module:
        model_cfg = self.config["model"]
        options = {**model_cfg.get("options", {}), **self.model_options()}
        return build(model_cfg["name"], num_classes=num_classes, scheme=model_cfg["scheme"], **options)

    # ---------------------------------------------------------------- training

    def trained_tasks(self) -> list[BitwidthTask]:
        """The bitwidth tasks this method trains (metrics identity; Table 3's N)."""
        raise NotImplementedError

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, counter: PassCounter) -> dict[str, float]:
        """One update's forward/backward passes; leaves the aggregated gradient in ``p.grad``."""
        raise NotImplementedError

    def clamp(self, model: nn.Module) -> None:
        clamp_gradients_(model.parameters(), self.grad_clamp)

    # ---------------------------------------------------------------- evaluation

    def can_evaluate(self, task: BitwidthTask) -> bool:
        return True

    def evaluation_tasks(self, requested: list[BitwidthTask], strict: bool) -> list[BitwidthTask]:
        """The requested tasks this method can be evaluated at. With ``strict``, an impossible one is an
        error; otherwise it is skipped (its table cell stays empty)."""
        impossible = [t for t in requested if not self.can_evaluate(t)]
        if impossible and strict:
            raise ValueError(f"{self.name} cannot be evaluated at {', '.join(map(str, impossible))}: "
                             f"it was trained at {', '.join(map(str, self.trained_tasks()))} only")
        return [t for t in requested if t not in impossible]

    def validation_tasks(self, batches: int, epoch: int) -> list[BitwidthTask]:
        """One task per validation batch (default: cycle through the trained tasks)."""
        trained = self.trained_tasks()
        return [trained[i % len(trained)] for i in range(batches)]

    # ---------------------------------------------------------------- resumable state

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass


def parse_bit_list(bits: list[Any]) -> list[int | None]:
    """``[1, 2, 4, 8, "FP"]`` → [1, 2, 4, 8, None]."""
    from ..quant import parse_bits

    parsed = [parse_bits(b) for b in bits]
    if len(set(parsed)) != len(parsed):
        raise ValueError(f"duplicate bitwidths in {[format_bits(b) for b in parsed]}")
    return parsed


def random_validation_tasks(family: str, count: int, seed: int, epoch: int, stream: int = 7) -> list[BitwidthTask]:
    """A random valid task per validation batch or episode, from a stream that depends only on (seed,
    epoch, stream)."""
    sampler = TaskSampler(family, tasks_per_step=1, seed=derived_seed(seed, epoch, stream))
    return [sampler.draw() for _ in range(count)]
