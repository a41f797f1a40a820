"""The MAML family of Table 4 (official §4.3–§4.4, §5.2): first-order MAML with a bitwidth task per
episode of the meta-batch; validation and meta-test fine-tune on each support set before the query
inference. Its members differ only by the task policy: FOMAML(+QAT) a fixed task, MEBQAT-MAML random."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..core.registry import MethodInfo
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
from .contract import Engine
from .fewshot import FewShotMethod, StepResult


class MAMLFamily(FewShotMethod):
    meta_batch: int
    """Episodes per meta-update, one bitwidth task each (``train.meta_batch``)."""
    inner_lr: float
    """The inner loop's SGD learning rate in training (``train.inner_lr``)."""
    inner_steps: int
    """The inner loop's SGD steps on each support set in training (``train.inner_steps``)."""
    finetune_lr: float
    """The fine-tuning learning rate of validation and meta-test (``evaluate.finetune_lr``)."""
    finetune_steps: int
    """The fine-tuning steps of validation and meta-test (``evaluate.finetune_steps``)."""

    def __init__(self, config: Mapping[str, Any], info: MethodInfo, engine: Engine) -> None:
        super().__init__(config, info, engine)
        train, evaluate = config["train"], config["evaluate"]
        unset = [f"train.{k}" for k in ("inner_lr", "inner_steps") if train[k] is None]
        unset += [f"evaluate.{k}" for k in ("finetune_lr", "finetune_steps") if evaluate[k] is None]
        if unset:  # the schema allows null: the Prototypical-Network setups have no inner loop
            raise ValueError(f"{info.name}: {', '.join(unset)} must be set for the MAML family, not null")
        self.meta_batch = train["meta_batch"]
        self.inner_lr, self.inner_steps = train["inner_lr"], train["inner_steps"]
        self.finetune_lr, self.finetune_steps = evaluate["finetune_lr"], evaluate["finetune_steps"]

    def tasks_per_step(self) -> int:
        return self.meta_batch

    def test_boot_input(self, episode: Episode) -> torch.Tensor:
        return episode.support_x

    def adapt_kinds(self) -> frozenset[str]:
        """What inner loops and fine-tuning update: weights and biases (BN β never), plus the LSQ steps unless
        the official step-freezing quirk is on."""
        return OFFICIAL_ADAPT_KINDS if self.fidelity.frozen_steps_in_inner_loops else LEARNED_STEPS_ADAPT_KINDS

    def _loop(self, model: nn.Module, lr: float, steps: int, kinds: frozenset[str] | None = None) -> InnerLoop:
        """SGD at ``lr`` for ``steps`` steps on the parameters of ``kinds`` (default: :meth:`adapt_kinds`)."""
        kinds = kinds or self.adapt_kinds()
        adapt = frozenset(name for name, kind in self.kinds(model).items() if kind in kinds)
        return InnerLoop(lr, steps, adapt)

    def _inner_loop(self, model: nn.Module) -> InnerLoop:
        """The training inner loop."""
        return self._loop(model, self.inner_lr, self.inner_steps)

    def _finetune_loop(self, model: nn.Module, kinds: frozenset[str] | None = None) -> InnerLoop:
        """The fine-tuning of validation and meta-test."""
        return self._loop(model, self.finetune_lr, self.finetune_steps, kinds)

    def meta_step(
        self, model: nn.Module, params: ParamDict, buffers: ParamDict, episodes: Episode, tasks: list[BitwidthTask]
    ) -> StepResult:
        inner = self._inner_loop(model)
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
            self._finetune_loop(model),
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
        inner = self._finetune_loop(model, kinds)
        with module_mode(model, True):
            if self.batched:
                return maml_metatest_batched(
                    model,
                    params,
                    buffers,
                    batches,
                    tasks,
                    inner,
                    episode_chunk=self.episode_chunk,
                    prepare=prepare,
                )
            return maml_metatest_sequential(model, params, buffers, batches, tasks, inner, prepare=prepare)
