"""Turning per-task gradients into one outer gradient (official §4.3 "Aggregate", §4.4, §4.5, §8.10–§8.11).

Few-shot MEBQAT (``divisor="steps_by_usage"``): ordinary parameters (weights, biases, BN) are summed over
the B tasks and divided by B, even where some task did not use them; quantizer parameters (LSQ weight and
activation steps, SAT clipping levels) are summed over the tasks that use them and divided by how many
did (per element: with per-bitwidth steps each slot counts its own tasks); an element no task used gets
zero. Dedicated QAT+FOMAML and PN(+QAT) (``divisor="batch"``) divide everything by B. Then every element
is clamped to [−clamp, clamp] (10 in every official scheme).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
from torch import nn

from ..core.registry import QUANTIZER_PARAMETER_KINDS
from ..models import usage_masks
from .checks import Tasks, python_tasks

Divisor = Literal["steps_by_usage", "batch"]
DIVISORS: tuple[str, ...] = ("steps_by_usage", "batch")
OFFICIAL_CLAMP = 10.0


def task_usage(model: nn.Module, tasks: Tasks) -> dict[str, torch.Tensor]:
    """For B tasks, {name: [B, *shape] 0/1 mask of the elements each task uses}
    (:func:`mebqat.models.parameter_usage` stacked over the tasks; the masks are cached per task)."""
    per_task = [usage_masks(model, task) for task in python_tasks(tasks, None, model)]
    return {name: torch.stack([usage[name] for usage in per_task]) for name in per_task[0]}


def aggregate_meta_gradients(
    grads: Mapping[str, torch.Tensor],
    kinds: Mapping[str, str],
    usage: Mapping[str, torch.Tensor] | None = None,
    *,
    divisor: Divisor = "steps_by_usage",
    clamp: float | None = OFFICIAL_CLAMP,
) -> dict[str, torch.Tensor]:
    """One outer gradient per parameter from per-task gradients ``grads[name]`` of shape [B, *shape].

    ``kinds``: :func:`mebqat.models.parameter_kinds` of the model; ``usage``: :func:`task_usage` of the B
    tasks (needed for ``divisor="steps_by_usage"``); ``clamp``: the elementwise bound (None: no clamp).
    """
    if divisor not in DIVISORS:
        raise ValueError(f"divisor must be one of {DIVISORS}, got {divisor!r}")
    if clamp is not None and not clamp > 0:
        raise ValueError(f"clamp must be > 0 (or None for no clamp), got {clamp!r}")
    if not grads:
        raise ValueError("no gradients to aggregate")
    sizes = {name: g.shape[0] if g.dim() else None for name, g in grads.items()}
    if len(set(sizes.values())) != 1 or None in sizes.values():
        raise ValueError(f"every gradient needs the same leading task dimension B, got {sizes}")
    count = next(iter(sizes.values()))
    assert count is not None  # refused just above
    if count == 0:
        raise ValueError("gradients of zero tasks cannot be averaged")
    missing = sorted(set(grads) - set(kinds))
    if missing:
        raise ValueError(f"no parameter kind for {missing}: pass parameter_kinds(model)")
    by_usage = divisor == "steps_by_usage"
    if by_usage and usage is None and any(kinds[n] in QUANTIZER_PARAMETER_KINDS for n in grads):
        raise ValueError("divisor='steps_by_usage' needs usage=task_usage(model, tasks)")

    out: dict[str, torch.Tensor] = {}
    for name, g in grads.items():
        if by_usage and usage is not None and kinds[name] in QUANTIZER_PARAMETER_KINDS:  # (no usage: refused above)
            mask = usage[name].to(g)
            if mask.shape != g.shape:
                raise ValueError(f"usage of {name} has shape {tuple(mask.shape)}, its gradients {tuple(g.shape)}")
            users = mask.sum(0)
            total = (g * mask).sum(0)
            value = torch.where(users > 0, total / users.clamp_min(1), torch.zeros_like(total))
        else:
            value = g.sum(0) / count
        out[name] = value if clamp is None else value.clamp(-clamp, clamp)
    return out
