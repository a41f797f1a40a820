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

from typing import Any, Mapping

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from ..engine.counters import PassCounter
from ..models import parameter_usage
from ..quant import BitwidthTask, TaskSampler, task_tensor
from .base import SupervisedMethod, random_validation_tasks
from .functional import forward_tasks_batched
from .losses import kd_loss
from .registry import register_method

FP_TASK = BitwidthTask(None, None)


def usage_counts(model: nn.Module, tasks: list[BitwidthTask]) -> dict[str, torch.Tensor]:
    counts: dict[str, torch.Tensor] = {}
    for task in tasks:
        for name, mask in parameter_usage(model, task).items():
            counts[name] = counts.get(name, 0) + mask
    return counts


def set_averaged_gradients(model: nn.Module, summed: Mapping[str, torch.Tensor | None],
                           counts: Mapping[str, torch.Tensor]) -> None:
    """p.grad = summed / count where count > 0, 0 elsewhere; None when no task used the parameter."""
    for name, param in model.named_parameters():
        count = counts[name].to(param.device)
        total = summed.get(name)
        if total is None or not bool((count > 0).any()):
            param.grad = None
            continue
        param.grad = torch.where(count > 0, total / count.clamp_min(1), torch.zeros_like(total))


@register_method("mebqat", kind="supervised", title="MEBQAT")
class MEBQATSupervised(SupervisedMethod):
    OPTIONS = {"tasks_per_step": 4, "guaranteed": ["(FP,FP)"], "kd": True}

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.sampler = TaskSampler(self.family, self.options["tasks_per_step"], self.options["guaranteed"],
                                   seed=self.seed)
        self.per_task_teacher = self.switches["per_task_teacher"]

    def model_options(self) -> dict[str, Any]:
        return {"track_running_stats": False}

    def trained_tasks(self) -> list[BitwidthTask]:
        from ..quant import bitwidth_candidates

        return bitwidth_candidates(self.family)

    def validation_tasks(self, batches: int, epoch: int) -> list[BitwidthTask]:
        return random_validation_tasks(self.family, batches, self.seed, epoch)

    def state_dict(self) -> dict[str, Any]:
        return {"sampler": self.sampler.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])

    # ---------------------------------------------------------------- one update

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, counter: PassCounter) -> dict[str, float]:
        tasks = self.sampler.sample()
        losses = (self._step_batched if self.batched else self._step_sequential)(model, x, y, tasks, counter)
        self.clamp(model)
        return {"loss": sum(losses) / len(losses), **{f"loss_{t}": l for t, l in zip(tasks, losses)}}

    def _teacher(self, model: nn.Module, x: torch.Tensor, counter: PassCounter) -> torch.Tensor:
        with torch.no_grad():
            counter.forward()
            return model(x, FP_TASK)

    def _step_sequential(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, tasks: list[BitwidthTask],
                         counter: PassCounter) -> list[float]:
        params = dict(model.named_parameters())
        summed: dict[str, torch.Tensor] = {}
        shared_teacher: torch.Tensor | None = None
        losses = []
        for task in tasks:
            quantized_kd = self.options["kd"] and not task.is_full_precision
            teacher = None
            if quantized_kd:
                if self.per_task_teacher:
                    teacher = self._teacher(model, x, counter)
                else:
                    shared_teacher = shared_teacher if shared_teacher is not None else self._teacher(model, x, counter)
                    teacher = shared_teacher
            logits = model(x, task)
            counter.forward()
            loss = kd_loss(logits, y, teacher) if quantized_kd else F.cross_entropy(logits, y)
            if task.is_full_precision and shared_teacher is None and not self.per_task_teacher:
                shared_teacher = logits.detach()
            grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
            counter.backward()
            usage = parameter_usage(model, task)
            for (name, _), grad in zip(params.items(), grads):
                if grad is not None:
                    contribution = grad * usage[name].to(grad.device)
                    summed[name] = summed[name] + contribution if name in summed else contribution
            losses.append(float(loss.detach()))
        set_averaged_gradients(model, summed, usage_counts(model, tasks))
        return losses

    def _step_batched(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, tasks: list[BitwidthTask],
                      counter: PassCounter) -> list[float]:
        fp_index = [i for i, t in enumerate(tasks) if t.is_full_precision]
        q_index = [i for i, t in enumerate(tasks) if not t.is_full_precision]
        kd = self.options["kd"]
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
        set_averaged_gradients(model, dict(zip(params, grads)), usage_counts(model, tasks))
        return [float(l.detach()) for l in ordered]
