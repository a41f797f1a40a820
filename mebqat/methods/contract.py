"""The typed half of the method contract, without importing torch: the problem data a method receives from
the engine (:class:`SupervisedData` for Table 2, :class:`FewShotData` for Tables 4/5), the batch one update
takes and what one update returns (:class:`UpdateStats`).

The protocols name only what the methods read. :mod:`mebqat.engine.data`'s classes of the same names implement
them and offer the engine more (steps per epoch, training batches, checkpointed state); anything else with
these members (a benchmark's synthetic data, a test's stand-in) can stand in for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, Sequence, TypedDict

if TYPE_CHECKING:
    import torch

    from ..data.episode import Episode

SupervisedBatch = tuple["torch.Tensor", "torch.Tensor"]
"""What a Table 2 method's update takes: (network input [N, C, H, W], labels [N])."""


class SupervisedData(Protocol):
    """The data of a Table 2 job, as a method sees them."""

    @property
    def num_classes(self) -> int:
        """The number of labels (the network's output width)."""
        ...

    def selection_batches(self, epoch: int) -> Sequence[tuple[torch.Tensor, torch.Tensor]]:
        """(input, labels) per batch of the split the per-epoch score is computed on, in the epoch's order."""
        ...

    def test_batches(self) -> Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(input, labels, test-image indices) per test batch: the same batches for every bitwidth."""
        ...


class MetaTestTasks(Protocol):
    """The fixed meta-test tasks' identity, as metrics.json records it."""

    def __len__(self) -> int: ...

    @property
    def fingerprint(self) -> str:
        """A digest of the exact set (paired comparisons check it)."""
        ...

    @property
    def queries(self) -> int:
        """Query images per class of each test episode."""
        ...


class FewShotData(Protocol):
    """The data of a Table 4/5 job, as a method sees them (a training batch is a stacked :class:`Episode`)."""

    @property
    def ways(self) -> int:
        """Classes per validation and test episode."""
        ...

    @property
    def episode_chunk(self) -> int:
        """Episodes per vmapped chunk at validation (``evaluate.episode_chunk``)."""
        ...

    @property
    def test_tasks(self) -> MetaTestTasks:
        ...

    def calibration_episode(self) -> Episode:
        """One training episode of its own stream (the base network's activation steps boot from its support)."""
        ...

    def validation_episodes(self) -> Episode:
        """Every fixed meta-validation task, stacked ([V, ...])."""
        ...

    def test_batches(self) -> Sequence[Episode]:
        """The fixed meta-test tasks in stacked chunks."""
        ...


class _UpdateLoss(TypedDict):
    loss: torch.Tensor | float
    """The update's mean training loss (a tensor is read back only every ``train.log_every`` steps)."""


class UpdateStats(_UpdateLoss, total=False):
    """What one :meth:`~mebqat.methods.base.Method.update` returns: the loss, and what else the job log shows."""

    accuracy: torch.Tensor | float
    """Few-shot: the mean query accuracy of the update's episodes (0–1)."""


__all__ = ["FewShotData", "MetaTestTasks", "SupervisedBatch", "SupervisedData", "UpdateStats"]
