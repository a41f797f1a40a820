"""The Prototypical-Network family of Table 5 (official §4.5–§4.6, §5.3): one higher-way training episode per
step, prototypes and −‖z − c‖² logits; the meta-test is one forward per (episode, bitwidth), no fine-tuning.
Its members differ by the task policy (PN(+QAT) a fixed task, MEBQAT-PN T random tasks sharing the
episode) and by BatchNorm (PN(+QAT) keep running statistics)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ..core.tasks import BitwidthTask
from ..data.episode import Episode, unstack_episodes
from ..kernels import pn_batched, pn_metatest_batched, pn_metatest_sequential, pn_sequential
from ..kernels.functional import ParamDict
from ..kernels.metatest import pn_episode_accuracy
from .fewshot import FewShotMethod, StepResult


class ProtoFamily(FewShotMethod):
    def tasks_per_step(self) -> int:
        """One task per episode (PN, PN+QAT); MEBQAT-PN takes its ``tasks_per_step`` option."""
        return 1

    def test_boot_input(self, episode: Episode) -> torch.Tensor:
        return torch.cat([episode.support_x, episode.query_x])

    def meta_step(
        self, model: nn.Module, params: ParamDict, buffers: ParamDict, episodes: Episode, tasks: list[BitwidthTask]
    ) -> StepResult:
        batch = unstack_episodes(episodes)
        if len(batch) != 1:
            raise ValueError(
                f"Prototypical Networks train on one episode per step, got {len(batch)} (set train.meta_batch: 1)"
            )
        # vmap cannot update BN running statistics in place: the running-statistics members loop
        batched = self.batched and not self.running_stats and len(tasks) > 1
        result = (pn_batched if batched else pn_sequential)(model, params, buffers, batch[0], tasks)
        if self.running_stats:
            with torch.no_grad():
                for name, value in result.buffers.items():
                    model.get_buffer(name).copy_(value)
        return result.grads, result.loss, result.accuracy, len(tasks)

    def validation_mode(self) -> bool:
        return False

    def episode_accuracy(
        self, model: nn.Module, params: ParamDict, buffers: ParamDict, episode: Episode, task: Any, ways: int
    ) -> torch.Tensor:
        return pn_episode_accuracy(model, params, buffers, episode, task, ways)

    def meta_test(
        self,
        model: nn.Module,
        params: ParamDict,
        buffers: ParamDict,
        batches: Sequence[Episode],
        tasks: list[BitwidthTask],
        prepare: Callable | None,
    ) -> torch.Tensor:
        if self.batched:
            return pn_metatest_batched(
                model,
                params,
                buffers,
                batches,
                tasks,
                episode_chunk=self.episode_chunk,
                prepare=prepare,
            )
        return pn_metatest_sequential(model, params, buffers, batches, tasks, prepare=prepare)
