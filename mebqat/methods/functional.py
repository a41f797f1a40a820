"""Running one network under several bitwidth tasks on one batch as one vmapped pass (``torch.func``),
logits stacked as [T, batch, classes]. The methods' sequential engines call ``model(x, task)`` per task."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call, vmap

from ..models.bnstats import BatchStatsRecorder, recording
from ..models.layers import SwitchableBatchNorm2d
from ..quant import BitwidthTask, task_tensor


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {**dict(model.named_parameters()), **dict(model.named_buffers())}


def forward_tasks_batched(
    model: nn.Module,
    x: torch.Tensor,
    tasks: Sequence[BitwidthTask],
    extra: Callable[[dict[str, torch.Tensor], torch.Tensor], torch.Tensor] | None = None,
):
    """One vmapped pass over the tasks (dropout draws a fresh mask per task, as separate passes would).

    ``extra(state, task_code)``, if given, is evaluated inside the same vmapped function (e.g. a teacher
    forward) and returned as a second stacked output. Switchable BatchNorm running statistics are
    recorded inside the pass and applied afterwards, per task, in task order.
    """
    state = _state(model)
    codes = task_tensor(list(tasks), device=x.device)
    recorder = BatchStatsRecorder()

    def run(code: torch.Tensor):
        with recording(recorder):
            out = functional_call(model, state, (x, code))
        return out, (extra(state, code) if extra is not None else out.new_zeros(())), recorder.outputs()

    logits, extras, stats = vmap(run, randomness="different")(codes)
    if recorder.modules:
        slots = [_slot(recorder.modules[0], task) for task in tasks]
        recorder.apply(slots, stats)
    return (logits, extras) if extra is not None else logits


def _slot(module: SwitchableBatchNorm2d, task: BitwidthTask) -> int:
    return module.slot(task.w)
