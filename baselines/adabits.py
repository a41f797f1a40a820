"""AdaBits (Jin et al., CVPR 2020) inside the MobileNetV2 setup (baselines.md §1): for every batch, a
forward and CE loss at each bitwidth of the bit list, gradients summed, one optimizer step; switchable
clipping levels (one SAT α per bitwidth, "S-CL") and switchable BatchNorm. No distillation (the released
code has none). Default bit list {2, 3, 4}: the rows the paper's AdaBits column fills."""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

from .joint import JointBitListMethod


class AdaBits(JointBitListMethod):
    def model_options(self) -> dict[str, Any]:
        if self.family != "sat":
            raise ValueError(f"adabits uses the SAT quantizer (switchable clipping levels), not {self.family!r}")
        return {
            **super().model_options(),
            "activation_options": {"per_bitwidth": True, "bit_choices": tuple(self.bits)},
        }

    def task_loss(
        self, index: int, logits: torch.Tensor, y: torch.Tensor, previous_logits: torch.Tensor | None
    ) -> torch.Tensor:
        return F.cross_entropy(logits, y)
