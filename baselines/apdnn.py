"""Any-Precision DNN (Yu et al., AAAI 2021) inside the DoReFa setups (baselines.md §2): per batch, CE at
full precision, then down the bit list (8, 4, 2, 1) a soft CE against the detached softmax of the next
higher bitwidth ("recursive" distillation, the released default); gradients summed; switchable
BatchNorm per bitwidth. It can be evaluated only at its trained bitwidths (1, 2, 4, 8, FP)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from mebqat.core.tasks import BitwidthTask
from mebqat.methods.losses import soft_cross_entropy

from .joint import JointBitListMethod


def _precision(task: BitwidthTask) -> float:
    return float("inf") if task.w is None else float(task.w)


class AnyPrecisionDNN(JointBitListMethod):
    def training_order(self) -> list[BitwidthTask]:
        """Highest precision first: each bitwidth distils from the one before it."""
        return sorted(self.tasks, key=_precision, reverse=True)

    def task_loss(
        self, index: int, logits: torch.Tensor, y: torch.Tensor, previous_logits: torch.Tensor | None
    ) -> torch.Tensor:
        if previous_logits is None:
            return F.cross_entropy(logits, y)
        return soft_cross_entropy(logits, F.softmax(previous_logits, dim=-1))
