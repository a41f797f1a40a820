"""Losses shared by the methods."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """mean_i [ −Σ_c p[i,c] · log softmax(z)[i,c] ] (temperature 1; the targets are not differentiated)."""
    return -(target_probs.detach() * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def kd_loss(logits: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """MEBQAT's quantized-task loss: CE + soft CE against the FP teacher, equal weights (official §4.1)."""
    return F.cross_entropy(logits, labels) + soft_cross_entropy(logits, F.softmax(teacher_logits.detach(), dim=-1))
