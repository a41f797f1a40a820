"""The MAML family of Table 4 (official §4.3–§4.4, §5.2): first-order MAML with a bitwidth task per
episode of the meta-batch; validation and meta-test fine-tune on each support set before the query
inference. Its members differ only by the task policy: FOMAML(+QAT) a fixed task, MEBQAT-MAML random."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ..core.tasks import BitwidthTask
from ..data.episode import Episode
from ..kernels import (
    LEARNED_STEPS_ADAPT_KINDS,
    OFFICIAL_ADAPT_KINDS,
    InnerLoop,
    fomaml_batched,
    fomaml_sequential,
    maml_metatest_batched,
    maml_metatest_sequential,
)
from ..kernels.functional import ParamDict, autograd_gradient, functorch_gradient, module_mode
from ..kernels.metatest import maml_episode_accuracy
from .fewshot import FewShotMethod, StepResult


class MAMLFamily(FewShotMethod):
    def tasks_per_step(self) -> int:
        return self.config["train"]["meta_batch"]

    def test_boot_input(self, episode: Episode) -> torch.Tensor:
        return episode.support_x

    def adapt_kinds(self) -> frozenset[str]:
        """What inner loops and fine-tuning update: weights and biases (BN β never), plus the LSQ steps unless
        the official step-freezing quirk is on."""
        return OFFICIAL_ADAPT_KINDS if self.fidelity.frozen_steps_in_inner_loops else LEARNED_STEPS_ADAPT_KINDS

    def _loop(self, model: nn.Module, section: str, kinds: frozenset[str] | None = None) -> InnerLoop:
        """The training inner loop (``train``) or the fine-tuning of validation and meta-test (``evaluate``)."""
        kinds = kinds or self.adapt_kinds()
        cfg = self.config[section]
        lr, steps = (
            (cfg["inner_lr"], cfg["inner_steps"]) if section == "train" else (cfg["finetune_lr"], cfg["finetune_steps"])
        )
        adapt = frozenset(name for name, kind in self.kinds(model).items() if kind in kinds)
        return InnerLoop(lr, steps, adapt)

    def meta_step(
        self, model: nn.Module, params: ParamDict, buffers: ParamDict, episodes: Episode, tasks: list[BitwidthTask]
    ) -> StepResult:
        inner = self._loop(model, "train")
        result = (fomaml_batched if self.batched else fomaml_sequential)(model, params, buffers, episodes, tasks, inner)
        return result.grads, result.query_loss, result.query_accuracy, len(tasks) * (inner.steps + 1)

    def validation_mode(self) -> bool:
        return True

    def episode_accuracy(
        self, model: nn.Module, params: ParamDict, buffers: ParamDict, episode: Episode, task: Any, ways: int
    ) -> torch.Tensor:
        return maml_episode_accuracy(
            model,
            params,
            buffers,
            episode,
            task,
            self._loop(model, "evaluate"),
            functorch_gradient if self.batched else autograd_gradient,
        )

    def meta_test(
        self,
        model: nn.Module,
        params: ParamDict,
        buffers: ParamDict,
        batches: Sequence[Episode],
        tasks: list[BitwidthTask],
        prepare: Callable | None,
    ) -> torch.Tensor:
        kinds = self.adapt_kinds()
        if self.is_fp_baseline and self.fidelity.frozen_steps_in_inner_loops:
            kinds = kinds | {"weight_step"}  # the fresh test net's s_w is in its fine-tuning optimizer (§5.2)
        inner = self._loop(model, "evaluate", kinds)
        with module_mode(model, True):
            if self.batched:
                return maml_metatest_batched(
                    model,
                    params,
                    buffers,
                    batches,
                    tasks,
                    inner,
                    episode_chunk=self.config["evaluate"]["episode_chunk"],
                    prepare=prepare,
                )
            return maml_metatest_sequential(model, params, buffers, batches, tasks, inner, prepare=prepare)
