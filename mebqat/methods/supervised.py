"""What every Table 2 (supervised) method shares: building the network for the dataset, the per-epoch
validation score and the evaluation at every tested bitwidth (per-image correctness on the test split,
summarised per batch as the authors did, or per image). A Table 2 method adds its model options, its
trained tasks and its :meth:`update`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..core.config import deep_merge
from ..core.tasks import BitwidthTask
from ..models import build
from .base import DivergenceError, Evaluation, Method
from .contract import SupervisedBatch, SupervisedData


def summarise_accuracy(correct: Sequence[torch.Tensor], per_batch: bool) -> tuple[float, float, int]:
    """(accuracy %, 95% CI half-width %, images) from per-batch 0/1 correctness. Per-batch (official): the
    unweighted mean of batch accuracies, CI from their spread; per-image: the fraction correct, binomial
    (normal) CI."""
    sizes = [int(c.numel()) for c in correct]
    images = sum(sizes)
    if per_batch:
        accs = torch.tensor([float(c.sum()) / n for c, n in zip(correct, sizes, strict=True)], dtype=torch.float64)
        mean = float(accs.mean())
        ci = 1.96 * float(accs.std(unbiased=True)) / math.sqrt(len(accs)) if len(accs) > 1 else float("nan")
    else:
        mean = sum(float(c.sum()) for c in correct) / images
        ci = 1.96 * math.sqrt(mean * (1 - mean) / images)
    return 100 * mean, 100 * ci, images


class SupervisedMethod(Method[SupervisedData, SupervisedBatch]):
    problem: ClassVar[str] = "supervised"

    def model_options(self) -> dict[str, Any]:
        """Builder arguments the method adds (BatchNorm mode, switchable parts)."""
        return {}

    def build_model(self, data: SupervisedData) -> nn.Module:
        model_cfg = self.config["model"]
        options = deep_merge(model_cfg.get("options", {}), self.model_options())
        return build(model_cfg["name"], num_classes=data.num_classes, scheme=model_cfg["scheme"], **options)

    def validation_tasks(self, batches: int, epoch: int) -> list[BitwidthTask]:
        """One task per validation batch (default: cycle through the trained tasks)."""
        trained = self.trained_tasks()
        return [trained[i % len(trained)] for i in range(batches)]

    @torch.no_grad()
    def _correct(
        self, model: nn.Module, batches: Sequence[tuple[torch.Tensor, ...]], tasks: Sequence[BitwidthTask]
    ) -> list[torch.Tensor]:
        """Per batch, which images the model classifies right; non-finite outputs stop the job (an arg-max
        of NaN logits would look like a real accuracy)."""
        model.eval()
        correct, finite = [], []
        for (x, y, *_), task in zip(batches, tasks, strict=True):
            logits = model(x, task)
            finite.append(torch.isfinite(logits).all())
            correct.append(logits.argmax(-1) == y)
        if finite and not bool(torch.stack(finite).all()):
            bad = [str(t) for t, f in zip(tasks, torch.stack(finite).tolist(), strict=True) if not f]
            raise DivergenceError(
                f"the model's outputs are not finite at {', '.join(dict.fromkeys(bad))}: it "
                f"diverged; no metrics are written"
            )
        return correct

    def validate(self, model: nn.Module, data: SupervisedData, epoch: int) -> float:
        batches = data.selection_batches(epoch)
        correct = self._correct(model, batches, self.validation_tasks(len(batches), epoch))
        return summarise_accuracy(correct, self.fidelity.per_batch_accuracy)[0]

    def evaluate(self, model: nn.Module, data: SupervisedData, tasks: list[BitwidthTask]) -> Evaluation:
        batches = data.test_batches()
        rows, per_item = [], []
        for task in tasks:
            correct = self._correct(model, batches, [task] * len(batches))
            rows.append(summarise_accuracy(correct, self.fidelity.per_batch_accuracy))
            per_item.append(torch.cat(correct).cpu().numpy())
        ids = torch.cat([b[2] for b in batches]).cpu().numpy()
        return Evaluation(
            tasks=list(tasks),
            accuracy=[r[0] for r in rows],
            ci95=[r[1] for r in rows],
            n=[r[2] for r in rows],
            per_item=np.stack(per_item).astype(np.uint8) if per_item else np.zeros((0, len(ids)), np.uint8),
            item_kind="images",
            item_ids=ids,
            batch_sizes=[int(b[1].numel()) for b in batches],
        )
