"""The typed half of the method contract, without importing torch: the problem data a method receives from
the engine (:class:`SupervisedData` for Table 2, :class:`FewShotData` for Tables 4/5), the batch one update
takes, what one update returns (:class:`UpdateStats`) and the engine a method runs (:data:`Engine`, resolved
once from ``train.engine`` by :func:`resolve_engine` and given to the method when it is built).

The protocols name only what the methods read. :mod:`mebqat.engine.data`'s classes of the same names implement
them and offer the engine more (steps per epoch, training batches, checkpointed state); anything else with
these members (a benchmark's synthetic data, a test's stand-in) can stand in for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, Protocol, TypedDict

if TYPE_CHECKING:
    import torch

    from ..core.registry import MethodInfo
    from ..data.episode import Episode

Engine = Literal["batched", "sequential"]
"""How a method runs its tasks and episodes: one vmapped pass (``batched``) or a Python loop (``sequential``)."""

ENGINES: tuple[Engine, ...] = ("batched", "sequential")

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
    def test_tasks(self) -> MetaTestTasks: ...

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


def resolve_engine(setting: str, info: MethodInfo, device_type: str | None) -> Engine:
    """The engine ``train.engine`` asks for: ``batched`` or ``sequential`` as given; ``auto`` the method's
    default for the device type (:meth:`MethodInfo.default_engine`), so it needs ``device_type``."""
    if setting == "auto":
        if device_type is None:
            raise ValueError(
                f"method {info.name!r}: train.engine is auto, which depends on the device: give the "
                f"device the method will run on"
            )
        setting = info.default_engine(device_type)
    if setting not in ENGINES:
        raise ValueError(
            f"method {info.name!r}: train.engine must be one of batched, sequential, auto; got {setting!r}"
        )
    return "batched" if setting == "batched" else "sequential"


__all__ = [
    "ENGINES",
    "Engine",
    "FewShotData",
    "MetaTestTasks",
    "SupervisedBatch",
    "SupervisedData",
    "UpdateStats",
    "resolve_engine",
]
