"""What a Table 4/5 (few-shot) method provides to the engine (:mod:`mebqat.engine.fewshot`).

The engine owns episodes, epochs, optimizer, checkpoints, validation and the meta-test; a method owns the
model's construction (BatchNorm mode; LSQ steps shared or per bitwidth and their levels, from the
fidelity switches), the bitwidth tasks of each step, and how per-task gradients are divided.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

from torch import nn

from ..models import build
from ..quant import BitwidthTask, TaskSampler, bitwidth_candidates
from .base import random_validation_tasks

FP_TASK = BitwidthTask(None, None)
MEBQAT_BASE_TASK = BitwidthTask(2, 2)
"""The authors build every MEBQAT base network at (2,2): weight steps boot at 2 bits, and activation
steps are calibrated once at 2 bits (official §4.3 "Base network", §2.3)."""


class FewShotMethod:
    name: ClassVar[str]
    SCHEMA: ClassVar[str] = "fewshot_job"
    OPTIONS: ClassVar[dict[str, Any]] = {}
    NEEDS_TRAIN_TASK: ClassVar[bool] = False
    ALGORITHM: ClassVar[str]            # "maml" | "pn"
    RUNNING_STATS: ClassVar[bool] = False
    DIVISOR: ClassVar[str] = "batch"    # how per-task gradients are divided (see mebqat.fewshot.aggregate)

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.options = dict(config["method"])
        self.switches = dict(config["fidelity_switches"])
        self.seed = config["job"]["seed"]

    # ---------------------------------------------------------------- model

    def base_task(self) -> BitwidthTask:
        """The task the base network is built at: its weight steps boot there and its activation steps
        are calibrated there."""
        raise NotImplementedError

    def build_model(self) -> nn.Module:
        model_cfg, data = self.config["model"], self.config["data"]
        base = self.base_task()
        per_bitwidth = not self.switches["shared_lsq_steps"]
        levels = "official" if self.switches["lsq_levels_2b"] else "exact"
        options: dict[str, Any] = {
            **model_cfg["options"], "scheme": model_cfg["scheme"], "track_running_stats": self.RUNNING_STATS,
            "weight_options": {"per_bitwidth": per_bitwidth, "init_bits": base.w if base.w is not None else 2},
            "activation_options": {"per_bitwidth": per_bitwidth, "levels": levels},
        }
        if options.get("dataset") is None:
            options.pop("dataset", None)
        if self.ALGORITHM == "maml":
            options["ways"] = data["ways"]
        return build(model_cfg["name"], **options)

    # ---------------------------------------------------------------- tasks

    def trained_tasks(self) -> list[BitwidthTask]:
        raise NotImplementedError

    def step_tasks(self, count: int) -> list[BitwidthTask]:
        """The bitwidth tasks of one step: one per episode of a MAML meta-batch, or the T tasks that share
        a Prototypical-Network episode."""
        raise NotImplementedError

    @property
    def is_fp_baseline(self) -> bool:
        """Trained at full precision only (plain FOMAML / PN): quantized only at meta-test."""
        return self.trained_tasks() == [FP_TASK]

    def validation_tasks(self, count: int, epoch: int) -> list[BitwidthTask]:
        """One task per validation episode: the trained task, or random ones for MEBQAT."""
        trained = self.trained_tasks()
        return [trained[i % len(trained)] for i in range(count)]

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass


class FixedTaskMethod(FewShotMethod):
    """One fixed bitwidth task: plain FOMAML/PN at (FP,FP), or their QAT versions at ``train_task``."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        train_task = config["job"]["train_task"]
        self.task = BitwidthTask.parse(train_task) if train_task is not None else FP_TASK

    def base_task(self) -> BitwidthTask:
        return self.task

    def trained_tasks(self) -> list[BitwidthTask]:
        return [self.task]

    def step_tasks(self, count: int) -> list[BitwidthTask]:
        return [self.task] * count


class RandomTaskMethod(FewShotMethod):
    """MEBQAT-MAML / MEBQAT-PN: tasks drawn uniformly from the 73 LSQ candidates (no guaranteed tasks and
    no distillation in the few-shot code, official §8.7); per-parameter division of step gradients."""

    DIVISOR = "steps_by_usage"

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.sampler = TaskSampler("lsq", tasks_per_step=1, seed=self.seed)

    def base_task(self) -> BitwidthTask:
        return MEBQAT_BASE_TASK

    def trained_tasks(self) -> list[BitwidthTask]:
        return bitwidth_candidates("lsq")

    def step_tasks(self, count: int) -> list[BitwidthTask]:
        return [self.sampler.draw() for _ in range(count)]

    def validation_tasks(self, count: int, epoch: int) -> list[BitwidthTask]:
        return random_validation_tasks("lsq", count, self.seed, epoch, stream=5)

    def state_dict(self) -> dict[str, Any]:
        return {"sampler": self.sampler.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])
