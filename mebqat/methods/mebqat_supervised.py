"""MEBQAT for bitwidth adaptation (Table 2), official-mebqat.md §4.1.

Per step, T bitwidth tasks share one batch: the guaranteed tasks first ((FP,FP), and (1,1) for DoReFa),
then rejection-sampled ones. A quantized task's loss is CE + soft CE against the current FP model
(temperature 1, equal weights); the FP task's is CE. Each parameter's gradient is averaged over the
tasks that use it (a SAT α only over tasks that quantize its activation), then clamped to ±10.
BatchNorm uses batch statistics always (transductive), in training and at test.

The teacher: ``per_task_teacher`` (official) runs a separate FP forward in train mode for every quantized
task (dropout draws a new mask each time); otherwise one teacher pass serves the step — the FP task's
own logits when an FP task is present.

Engines: ``sequential`` follows the specification literally (a forward and ``autograd.grad`` per task,
masked sums, per-parameter counts). ``batched`` runs the quantized tasks as one vmapped pass and one
backward of the summed loss: a task that does not use a parameter contributes an exactly-zero gradient to
it, so Σ_t u_t·g_t = ∇ Σ_t L_t and only the division by the usage counts remains.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from ..core.counters import PassCounter
from ..core.registry import MethodInfo
from ..core.tasks import FP_TASK, BitwidthTask, TaskSampler, bitwidth_candidates
from ..models import unused_parameters, usage_counts, usage_masks
from ..quant import task_tensor
from .base import MethodOptions, random_validation_tasks
from .contract import Engine, SupervisedBatch, UpdateStats
from .functional import forward_tasks_batched
from .losses import kd_loss
from .supervised import SupervisedMethod


def set_averaged_gradients(
    model: nn.Module, summed: Mapping[str, torch.Tensor | None], tasks: list[BitwidthTask]
) -> None:
    """p.grad = summed / count where count > 0, 0 elsewhere; None when no task used the parameter. The
    usage masks are cached per task and the unused parameters known on the host: no device round trip."""
    counts = usage_counts(model, tasks)
    unused = frozenset.intersection(*(unused_parameters(model, t) for t in tasks))
    for name, param in model.named_parameters():
        total = summed.get(name)
        if total is None or name in unused:
            param.grad = None
            continue
        count = counts[name]
        param.grad = torch.where(count > 0, total / count.clamp_min(1), torch.zeros_like(total))


@dataclass(frozen=True)
class MEBQATOptions(MethodOptions):
    """The ``method:`` options of ``mebqat`` (their defaults: its entry in :mod:`mebqat.core.catalog`)."""

    tasks_per_step: int
    """T: the bitwidth tasks that share each batch."""
    guaranteed: tuple[str, ...]
    """The tasks every step trains first, e.g. ``"(FP,FP)"`` (and ``"(1,1)"`` in the DoReFa setups)."""
    kd: bool
    """A quantized task's loss adds a soft CE against the FP model's logits (else CE only)."""


class MEBQATSupervised(SupervisedMethod):
    options_type = MEBQATOptions
    options: MEBQATOptions
    per_task_teacher: bool
    """A separate FP teacher pass for every quantized task (official); else one per step (fidelity switch)."""

    def __init__(self, config: Mapping[str, Any], info: MethodInfo, engine: Engine) -> None:
        super().__init__(config, info, engine)
        self.sampler = TaskSampler(self.family, self.options.tasks_per_step, self.options.guaranteed, seed=self.seed)
        self.per_task_teacher = self.fidelity.per_task_teacher

    def model_options(self) -> dict[str, Any]:
        return {"track_running_stats": False}

    def trained_tasks(self) -> list[BitwidthTask]:
        return bitwidth_candidates(self.family)

    def validation_tasks(self, batches: int, epoch: int) -> list[BitwidthTask]:
        return random_validation_tasks(self.family, batches, self.seed, epoch)

    def state_dict(self) -> dict[str, Any]:
        return {"sampler": self.sampler.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])

    # ---------------------------------------------------------------- one update

    def update(self, model: nn.Module, batch: SupervisedBatch, counter: PassCounter) -> UpdateStats:
        x, y = batch
        tasks = self.sampler.sample()
        losses = (self._step_batched if self.batched else self._step_sequential)(model, x, y, tasks, counter)
        self.clamp(model)
        return {"loss": losses.mean()}

    def _teacher(self, model: nn.Module, x: torch.Tensor, counter: PassCounter) -> torch.Tensor:
        with torch.no_grad():
            counter.forward()
            return model(x, FP_TASK)

    def _step_sequential(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, tasks: list[BitwidthTask], counter: PassCounter
    ) -> torch.Tensor:
        params = dict(model.named_parameters())
        summed: dict[str, torch.Tensor] = {}
        shared_teacher: torch.Tensor | None = None
        losses = []
        for task in tasks:
            quantized_kd = self.options.kd and not task.is_full_precision
            teacher = None
            if quantized_kd:
                if self.per_task_teacher:
                    teacher = self._teacher(model, x, counter)
                else:
                    shared_teacher = shared_teacher if shared_teacher is not None else self._teacher(model, x, counter)
                    teacher = shared_teacher
            logits = model(x, task)
            counter.forward()
            if quantized_kd:
                assert teacher is not None  # set above for every quantized task with KD
                loss = kd_loss(logits, y, teacher)
            else:
                loss = F.cross_entropy(logits, y)
            if task.is_full_precision and shared_teacher is None and not self.per_task_teacher:
                shared_teacher = logits.detach()
            grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
            counter.backward()
            usage = usage_masks(model, task)
            for (name, _), grad in zip(params.items(), grads, strict=True):
                if grad is not None:
                    contribution = grad * usage[name]
                    summed[name] = summed[name] + contribution if name in summed else contribution
            losses.append(loss.detach())
        set_averaged_gradients(model, summed, tasks)
        return torch.stack(losses)

    def _step_batched(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, tasks: list[BitwidthTask], counter: PassCounter
    ) -> torch.Tensor:
        fp_index = [i for i, t in enumerate(tasks) if t.is_full_precision]
        q_index = [i for i, t in enumerate(tasks) if not t.is_full_precision]
        kd = self.options.kd
        losses: dict[int, torch.Tensor] = {}
        shared_teacher = None
        if fp_index:
            fp_logits = model(x, FP_TASK)
            counter.forward()
            loss = F.cross_entropy(fp_logits, y)
            # (FP,FP) drawn more than once: each copy is its own pass in the reference engine (the same
            # logits without dropout); here the FP network runs once and its loss counts once per copy.
            for i in fp_index:
                losses[i] = loss
            shared_teacher = fp_logits.detach()
        if q_index:
            q_tasks = [tasks[i] for i in q_index]
            if kd and self.per_task_teacher:
                fp_code = task_tensor(FP_TASK, device=x.device)

                def teacher(state: dict[str, torch.Tensor], code: torch.Tensor) -> torch.Tensor:
                    return functional_call(model, {k: v.detach() for k, v in state.items()}, (x, fp_code)).detach()

                logits, teachers = forward_tasks_batched(model, x, q_tasks, extra=teacher)
                counter.forward(2 * len(q_tasks))
            else:
                logits = forward_tasks_batched(model, x, q_tasks)
                counter.forward(len(q_tasks))
                if kd and shared_teacher is None:
                    shared_teacher = self._teacher(model, x, counter)
                teachers = [shared_teacher] * len(q_tasks)
            for j, i in enumerate(q_index):
                losses[i] = kd_loss(logits[j], y, teachers[j]) if kd else F.cross_entropy(logits[j], y)
        ordered = [losses[i] for i in range(len(tasks))]
        params = dict(model.named_parameters())
        grads = torch.autograd.grad(torch.stack(ordered).sum(), list(params.values()), allow_unused=True)
        counter.backward(bool(fp_index) + len(q_index))
        set_averaged_gradients(model, dict(zip(params, grads, strict=True)), tasks)
        return torch.stack(ordered).detach()
