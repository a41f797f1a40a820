"""Running-statistics updates for switchable BatchNorm under ``vmap``.

``vmap`` cannot update buffers in place. Inside :func:`recording`, a switchable BatchNorm in train mode
normalises with the batch statistics (as usual) and records them instead of updating its buffers; the
vmapped function returns the recorded tensors as extra outputs, and :meth:`BatchStatsRecorder.apply`
performs the running-statistics updates afterwards, slot by slot, with the same formula as PyTorch
(momentum average, unbiased batch variance).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # layers imports this module
    from .layers import SwitchableBatchNorm2d

_ACTIVE: contextvars.ContextVar[BatchStatsRecorder | None] = contextvars.ContextVar("bn_recorder", default=None)


class BatchStatsRecorder:
    def __init__(self) -> None:
        self.modules: list[SwitchableBatchNorm2d] = []
        self.stats: list[torch.Tensor] = []

    def record(self, module: SwitchableBatchNorm2d, mean: torch.Tensor, var_unbiased: torch.Tensor) -> None:
        self.modules.append(module)
        self.stats.append(torch.stack([mean, var_unbiased]))

    def outputs(self) -> tuple[torch.Tensor, ...]:
        return tuple(s.detach() for s in self.stats)

    @torch.no_grad()
    def apply(self, slots: Sequence[int], stacked: Sequence[torch.Tensor]) -> None:
        """``stacked[i]`` holds [T, 2, C] (mean, unbiased var) for module i and the T vmapped tasks whose
        BatchNorm slots are ``slots``; update each slot's running statistics in task order."""
        for module, stats in zip(self.modules, stacked, strict=True):
            assert module.running_mean is not None and module.running_var is not None  # only they are recorded
            for task_index, slot in enumerate(slots):
                mean, var = stats[task_index]
                module.running_mean[slot].mul_(1 - module.momentum).add_(module.momentum * mean)
                module.running_var[slot].mul_(1 - module.momentum).add_(module.momentum * var)


@contextlib.contextmanager
def recording(recorder: BatchStatsRecorder) -> Iterator[BatchStatsRecorder]:
    token = _ACTIVE.set(recorder)
    try:
        yield recorder
    finally:
        _ACTIVE.reset(token)


def active_recorder() -> BatchStatsRecorder | None:
    return _ACTIVE.get()
